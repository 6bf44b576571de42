"""The weekly digest, exactly once per (target, ISO week), however many replicas run.

Claiming a target's week and putting the digest in the outbox happen in one transaction: the
unique (target, period) row lets one replica in, and the outbox sends what it wrote once, with
retries (bot/outbox.py). A process that dies after the claim leaves a pending outbox row, which
another process sends; nothing is claimed without being queued. Which targets are due and when
is bot/targets.py's business; this module composes and queues.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.core import Core
from bot.deadlines import missed_by_theme
from bot.outbox import enqueue_digest
from bot.people import Person
from bot.router import Router
from digests.compose import CURATION, compose_digest
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
class Due:
    """One digest to queue: where, which ISO week, and the zone that week's bounds are in."""

    target: Target
    week: IsoWeek
    zone: ZoneInfo


@dataclass(frozen=True)
class Queued:
    target: Target
    result: str  # "queued", or "already queued" (this week's went in before)
    message_id: int | None = None  # the outbox message that carries it
    week: IsoWeek | None = None


Names = dict[tuple[str, str], str]


def compose_for(
    core: Core, week: IsoWeek | None = None, names: Names | None = None, zone: ZoneInfo | None = None
) -> Digest:
    """The digest of `week` (the last complete one by default), its bounds in `zone`
    (FRICTIONLOG_TIMEZONE by default)."""
    settings = core.settings
    return compose_digest(
        core.engine,
        zone=zone or settings.zone,
        now=core.clock(),
        week=week,
        missed=missed_by_theme(core, core.clock()),
        names=names,
        min_group=settings.min_group,
    )


def people_to_name(core: Core) -> list[Person]:
    """Whom a digest may name: owners, and who curated themes lately."""
    with Session(core.engine) as session:
        people = queries.people_to_name(session, acted_since=core.clock() - timedelta(weeks=2), actions=CURATION)
    return [Person(platform, user) for platform, user in people]


async def owner_names(core: Core, router: Router) -> Names:
    """Every owner's display name, as their own platform shows it (platforms cache them)."""
    resolved = await router.display_names(people_to_name(core))
    return {(person.platform, person.id): name for person, name in resolved.items()}


def known_names(core: Core) -> Names:
    """The same names as owner_names, for the core's own thread (a chat command such as the
    digest preview): through the pipeline that runs it; ids where there is none."""
    if core.display_names is None:
        return {}
    resolved = core.display_names(people_to_name(core))
    return {(person.platform, person.id): name for person, name in resolved.items()}


def composer(core: Core, names: Names | None) -> Callable[[Due], Digest]:
    """Digests by (week, zone), each composed once and shared by the targets that have them."""
    digests: dict[tuple[IsoWeek, str], Digest] = {}

    def digest_of(item: Due) -> Digest:
        key = (item.week, str(item.zone))
        if key not in digests:
            digests[key] = compose_for(core, item.week, names, item.zone)
        return digests[key]

    return digest_of


def queue_digests(core: Core, due: Iterable[Due], names: Names | None = None) -> list[Queued]:
    """Queue each digest once per (target, week); one digest is composed per distinct
    (week, zone) and shared by the targets that have them."""
    digest_of = composer(core, names)
    outcomes = []
    for item in due:
        digest, target, period = digest_of(item), item.target, str(item.week)
        with session_scope(core.engine) as session:
            run = queries.claim_digest(session, target=str(target), period=period, at=core.clock())
            if run is None:
                earlier = queries.digest_run(session, target=str(target), period=period)
                outcomes.append(Queued(target, "already queued", earlier.message_id if earlier else None, item.week))
                continue
            run.message_id = enqueue_digest(
                session, core.sealer, platform=target.platform, channel=target.channel, digest=digest
            )
            session.add(run)
        outcomes.append(Queued(target, "queued", run.message_id, item.week))
    return outcomes


def queue_weekly_digest(
    core: Core, targets: list[Target], week: IsoWeek | None = None, names: Names | None = None
) -> list[Queued]:
    """Queue `week`'s digest (the last complete week by default) once per target, its bounds
    in FRICTIONLOG_TIMEZONE."""
    zone = core.settings.zone
    week = week or IsoWeek.last_complete(core.clock(), zone)
    return queue_digests(core, [Due(target, week, zone) for target in targets], names)


@dataclass(frozen=True)
class WouldPost:
    """What queueing `due` would do: post `digest`, or nothing because `earlier` (the state of
    the outbox message that carried it: sent, pending, failed…) went before."""

    due: Due
    digest: Digest | None
    earlier: str | None = None


def dry_run(core: Core, due: Iterable[Due], names: Names | None = None) -> list[WouldPost]:
    """`digest --post --dry-run`: what each target would get, composed as queue_digests would;
    nothing is claimed or queued."""
    digest_of = composer(core, names)
    shown = []
    for item in due:
        with Session(core.engine) as session:
            run = queries.digest_run(session, target=str(item.target), period=str(item.week))
            state = None
            if run is not None:
                latest = queries.outbox_rows(session, message_ids=[run.message_id] if run.message_id else [])
                state = latest[0].state if latest else "claimed"
        if state is not None:
            shown.append(WouldPost(item, None, state))
            continue
        shown.append(WouldPost(item, digest_of(item)))
    return shown
