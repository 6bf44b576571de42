"""Seen by leadership: when a digest has gone out, the people whose reports it features hear so.

Told only once the digest was sent: the outbox calls `tell_reporters` in the transaction that
marks the digest message sent (bot/outbox.py), so a digest that failed, or is still being
retried, tells nobody that their report "reached leadership".

Each reporter (the author of a submission in a theme the digest features: top, growing,
unowned, overdue or resolved) hears once per ISO week, on their own platform, in one message
listing their featured themes and who owns each now, however many targets the digest went to
and however many replicas sent them: the claim is a `notice` row (kind "seen", the person's keyed
hash, the week) written with the message. Anonymous reporters are reached through their sealed
identity, opened for this delivery only and sealed again in the outbox: the message names them
to nobody, and nothing stored says who they are. `/friction quiet` stops these notes for a person
(kept by keyed hash), `/friction quiet off` starts them again. They count against the daily DM
budget.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from bot.core import STATUS_LABELS, Core
from bot.messages import Inbound, Notification, Reply
from bot.outbox import enqueue_notification
from bot.people import Person
from digests.compose import owner_of
from digests.digest import Digest, Owner
from storage import queries
from storage.models import CLOSED_STATUSES


@dataclass(frozen=True)
class Featured:
    key: str
    title: str
    owner: Owner | None


@dataclass
class _Reporter:
    sealed: str
    themes: dict[int, bool] = field(default_factory=dict)  # theme id -> every report on it anonymous


def featured(digest: Digest) -> list[Featured]:
    """The themes a digest shows, each once, in the order it shows them."""
    lines = [*digest.top, *digest.growing, *digest.unowned, *digest.overdue, *digest.resolved]
    found: dict[str, Featured] = {}
    for line in lines:
        found.setdefault(line.key, Featured(line.key, line.title, line.owner))
    return list(found.values())


def hook(core: Core) -> Callable[[Session, Digest], None]:
    """What the outbox calls when a digest went out."""

    def digest_sent(session: Session, digest: Digest) -> None:
        tell_reporters(core, session, digest)

    return digest_sent


def tell_reporters(core: Core, session: Session, digest: Digest) -> int:
    """Tell each reporter of the digest's themes, once per digest week (however many targets get
    it, in whatever time zones they are); returns how many were told."""
    shown = {int(item.key.removeprefix("T-")): item for item in featured(digest) if item.key.startswith("T-")}
    if not shown:
        return 0
    now = core.clock()
    # The week the digest covers, not the week it was sent in: a target in Auckland gets its
    # Monday digest on Sunday, UTC, and must not make a second week of it.
    week = str(digest.week)
    reporters: dict[str, _Reporter] = {}
    for theme_id, person_hash, sealed, anonymous in queries.sealed_reporters_of_themes(session, theme_ids=list(shown)):
        reporter = reporters.setdefault(person_hash, _Reporter(sealed))
        reporter.themes[theme_id] = reporter.themes.get(theme_id, True) and anonymous
    quiet = queries.quiet_among(session, person_hashes=reporters)
    themes = {theme.id: theme for theme in queries.themes_by_ids(session, theme_ids=list(shown))}
    names = {(item.owner.platform, item.owner.id): item.owner.name for item in shown.values() if item.owner}
    told = 0
    for person_hash, reporter in reporters.items():
        opened = core.sealer.open(reporter.sealed)
        if person_hash in quiet or opened is None:
            continue
        notice = queries.claim_notice(session, kind="seen", subject=person_hash, period=week, at=now)
        if notice is None:
            continue  # told of this week's digest already (another target's, another replica)
        lines = []
        for theme_id, anonymous in reporter.themes.items():
            theme = themes.get(theme_id)
            title = theme.title if theme is not None else shown[theme_id].title
            lines.append((f"T-{theme_id} · {title}", _standing(theme, names), anonymous))
        row = enqueue_notification(session, core.sealer, _notification(Person(*opened), lines))
        session.flush()
        notice.message_id = row.id
        session.add(notice)
        told += 1
    return told


def _standing(theme, names: dict[tuple[str, str], str]) -> str:
    """Who owns it now (by the name the digest showed, else by id), or how it ended."""
    if theme is None:
        return "no owner yet"
    if theme.status in CLOSED_STATUSES:
        return STATUS_LABELS[theme.status]
    owner = owner_of(theme, names)
    return f"owner: {owner}" if owner else "no owner yet"


def _notification(to: Person, lines: list[tuple[str, str, bool]]) -> Notification:
    if len(lines) == 1:
        theme, standing, anonymous = lines[0]
        text = f"Your report on {theme} reached leadership in this week's digest; {standing}."
    else:
        text = "Your reports reached leadership in this week's digest:\n" + "\n".join(
            f"• {theme}; {standing}" for theme, standing, _ in lines
        )
    if any(anonymous for *_, anonymous in lines):
        text += "\nYou reported anonymously: nobody was told who you are."
    text += "\nRather not hear about this? /friction quiet"
    return Notification(to=to, text=text, label=f"seen by leadership ({len(lines)} themes)")


def quiet(core: Core, session: Session, event: Inbound, on: bool) -> Reply:
    """`/friction quiet`: no more "reached leadership" notes for this person; `quiet off`: again."""
    person_hash = core.person_hash(event.person)
    if on:
        changed = queries.set_quiet(session, person_hash=person_hash, at=core.clock())
        return Reply(
            ("Done: " if changed else "You are already quiet: ")
            + "you will not hear when the weekly digest features what you reported. "
            "Replies, owners' updates and resolutions still reach you. /friction quiet off turns it back on."
        )
    changed = queries.unset_quiet(session, person_hash=person_hash)
    return Reply(
        ("Done: " if changed else "You already hear about it: ")
        + "when the weekly digest features what you reported, you get a note that it reached leadership."
    )
