"""The weekly digest, exactly once per (target, ISO week), however many replicas run.

Claiming a target's week and putting the digest in the outbox happen in one transaction: the
unique (target, period) row lets one replica in, and the outbox sends what it wrote once, with
retries (bot/outbox.py). A process that dies after the claim leaves a pending outbox row, which
another process sends; nothing is claimed without being queued.
"""

from dataclasses import dataclass

from sqlmodel import Session

from bot.core import Core, UserError
from bot.messages import Inbound, Reply
from bot.outbox import enqueue_digest
from bot.people import Person
from bot.router import Router
from digests.compose import compose_digest
from digests.digest import Digest, IsoWeek
from storage import queries
from storage.db import session_scope


@dataclass(frozen=True)
class Target:
    platform: str
    channel: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.channel}"


@dataclass(frozen=True)
class Queued:
    target: Target
    result: str  # "queued", or "already queued" (this week's went in before)
    message_id: int | None = None  # the outbox message that carries it


Names = dict[tuple[str, str], str]


def compose_for(core: Core, week: IsoWeek | None = None, names: Names | None = None) -> Digest:
    settings = core.settings
    return compose_digest(
        core.engine, zone=settings.zone, now=core.clock(), week=week, ack_hours=settings.ack_hours, names=names
    )


async def owner_names(core: Core, router: Router) -> Names:
    """Every owner's display name, as their own platform shows it (platforms cache them)."""
    with Session(core.engine) as session:
        owners = queries.theme_owners(session)
    resolved = await router.display_names(Person(platform, user) for platform, user in owners)
    return {(person.platform, person.id): name for person, name in resolved.items()}


def digest_here(core: Core, session: Session, event: Inbound, on: bool) -> Reply:
    """A lead makes the channel they are in a digest target, or stops it."""
    core.require_lead(session, event, "choose where the weekly digest goes")
    if not event.channel:
        raise UserError("Type this in the channel that should get the weekly digest.")
    if on:
        added = queries.add_digest_target(
            session, platform=event.platform, channel=event.channel, added_by=str(event.person), at=core.clock()
        )
        core.audit(session, event, "digest target", None, f"{event.platform}:{event.channel} added")
        when = core.settings.digest_cron
        return Reply(
            ("This channel will get" if added else "This channel already gets")
            + f" the weekly digest (schedule `{when}`, {core.settings.timezone})."
        )
    removed = queries.remove_digest_target(session, platform=event.platform, channel=event.channel)
    if removed:
        core.audit(session, event, "digest target", None, f"{event.platform}:{event.channel} removed")
    return Reply("This channel will no longer get the weekly digest." if removed else "This channel gets no digest.")


def targets_now(core: Core, configured: list[Target]) -> list[Target]:
    """The configured targets and those leads added in chat, each once."""
    with Session(core.engine) as session:
        added = [Target(platform, channel) for platform, channel in queries.digest_targets(session)]
    return list(dict.fromkeys([*configured, *added]))


def queue_weekly_digest(
    core: Core, targets: list[Target], week: IsoWeek | None = None, names: Names | None = None
) -> list[Queued]:
    """Compose the digest (the last complete week by default) and queue it once per target."""
    digest = compose_for(core, week, names)
    outcomes = []
    for target in targets:
        with session_scope(core.engine) as session:
            run = queries.claim_digest(session, target=str(target), period=str(digest.week), at=core.clock())
            if run is None:
                earlier = queries.digest_run(session, target=str(target), period=str(digest.week))
                outcomes.append(Queued(target, "already queued", earlier.message_id if earlier else None))
                continue
            run.message_id = enqueue_digest(
                session, core.sealer, platform=target.platform, channel=target.channel, digest=digest
            )
            session.add(run)
        outcomes.append(Queued(target, "queued", run.message_id))
    return outcomes
