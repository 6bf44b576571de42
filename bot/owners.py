"""Owners' use cases: a lead assigns an owner, who hears at once on their own platform; the
owner moves the status; a resolution goes back to every reporter, anonymous ones included."""

from dataclasses import replace

from sqlmodel import Session

from bot.actions import SetStatus
from bot.core import STATUS_LABELS, Core, UserError, clip, people_count
from bot.messages import Button, Inbound, Notification, Reply, Section
from bot.people import Person
from digests.digest import IsoWeek, counted
from storage import queries
from storage.models import CLOSED_STATUSES, Theme

OWNER_QUOTES = 3
TREND_WEEKS = 6


def assign(core: Core, session: Session, event: Inbound, theme_id: int, owner: Person) -> Reply:
    core.require_lead(session, event, "assign owners")
    theme = core.theme(session, theme_id)
    now = core.clock()
    previous = Person.stored(theme.owner_platform, theme.owner)
    if previous == owner and theme.owner_assigned_at is not None:
        # Typed again: the deadlines they met or are working to stand; only a new owner restarts them.
        return Reply(
            f"{theme.key} “{theme.title}” already has this owner; their deadlines stand.",
            sections=(Section(title=f"{theme.key} · {theme.title}", fields=(("Owner", owner),)),),
        )
    theme.resolution_due_at = None  # a fix date is its owner's promise: the new owner makes their own
    # The clock starts again: every deadline is counted from the assignment (bot/deadlines.py).
    theme.owner, theme.owner_platform = owner.id, owner.platform
    theme.owner_assigned_at, theme.acknowledged_at, theme.updated_at = now, None, now
    session.add(theme)
    core.audit(session, event, "assign", theme.id, f"owner {previous or 'none'} -> {owner}")
    hours = core.settings.ack_hours
    elsewhere = f" on {owner.platform.title()}" if owner.platform != event.platform else ""
    return Reply(
        f"{theme.key} “{theme.title}” has a new owner{elsewhere}, who has {hours} h to acknowledge it.",
        sections=(Section(title=f"{theme.key} · {theme.title}", fields=(("Owner", owner),)),),
        notifications=(
            replace(
                owner_notification(core, session, theme, owner),
                if_undeliverable=Notification(
                    to=event.person,
                    text=f"{theme.key}'s new owner could not be told on {owner.platform.title()}; "
                    "reach them another way, or assign someone else.",
                    label=f"{theme.key}: the owner could not be reached",
                    budgeted=False,  # the outcome of the lead's own act
                ),
            ),
        ),
    )


def owner_notification(core: Core, session: Session, theme: Theme, owner: Person) -> Notification:
    """What a new owner gets: the theme, its quotes, its count and trend, and the status buttons."""
    people = queries.reporter_count(session, theme_id=theme.id)
    recent = [s for s in queries.submissions_of_theme(session, theme_id=theme.id, limit=20) if not s.hidden]
    writers = queries.writer_count(session, theme_id=theme.id)
    quotes = "\n".join(f"“{clip(s.text, 280)}”" for s in recent[:OWNER_QUOTES]) if core.quotable(writers) else ""
    hours = core.settings.ack_hours
    return Notification(
        to=owner,
        label=f"{theme.key} to its new owner",
        text=(
            f"You now own {theme.key} “{theme.title}”: {counted(theme.size, 'submission', 'submissions')} from "
            f"{people_count(people)}. "
            f"Please acknowledge it within {hours} h and give a first status update within "
            f"{core.settings.update_days} days; /friction due {theme.key} YYYY-MM-DD names the day you will "
            "fix it by. Reminders follow each date."
        ),
        sections=(
            Section(
                title=f"{theme.key} · {theme.title}",
                text=core.example(theme, writers),
                fields=(
                    ("Submissions", str(theme.size)),
                    ("Reported by", people_count(people)),
                    ("Weekly trend", trend(core, session, theme)),
                    ("Status", STATUS_LABELS.get(theme.status, theme.status)),
                ),
            ),
            Section(title="What people said", text=quotes or core.withheld(writers)),
        ),
        buttons=(
            Button("Acknowledge", SetStatus(theme.id, "acknowledged"), "primary"),
            Button("In progress", SetStatus(theme.id, "in_progress")),
            Button("Resolved", SetStatus(theme.id, "resolved")),
            Button("Won't fix", SetStatus(theme.id, "wont_fix"), "danger"),
        ),
    )


def trend(core: Core, session: Session, theme: Theme) -> str:
    """Submissions per ISO week, oldest first, ending with this week."""
    zone = core.settings.zone
    this_week = IsoWeek.containing(core.clock(), zone)
    weeks = [this_week.previous(n) for n in reversed(range(TREND_WEEKS))]
    since, _ = weeks[0].bounds(zone)
    counts = {str(week): 0 for week in weeks}
    for created in queries.created_times_of_theme(session, theme_id=theme.id, since=since):
        label = str(IsoWeek.containing(created, zone))
        if label in counts:
            counts[label] += 1
    return f"{' · '.join(str(v) for v in counts.values())} (last {TREND_WEEKS} weeks, this week last)"


def set_status(core: Core, session: Session, event: Inbound, theme_id: int, status: str, note: str = "") -> Reply:
    theme = core.theme(session, theme_id)
    owns = theme.owner is not None and event.person == Person.stored(theme.owner_platform, theme.owner)
    if not owns:  # an unowned theme has no owner to match: only a lead may move it
        core.require_lead(session, event, "change the status of a theme they do not own")
    if status in CLOSED_STATUSES and not note:
        raise UserError(
            f"Please add a note for “{STATUS_LABELS[status]}”: it goes back to everyone who reported "
            f"{theme.key}. Example: /friction status {theme.key} {status.replace('_', '-')} <what changed>"
        )
    now = core.clock()
    before = theme.status
    theme.status, theme.status_changed_at, theme.updated_at = status, now, now
    # Reopened without a word, a theme's resolution note no longer says where it stands.
    reopened = before in CLOSED_STATUSES and status not in CLOSED_STATUSES
    theme.status_note = note or ("" if reopened else theme.status_note)
    if status != "new" and theme.acknowledged_at is None:
        theme.acknowledged_at = now
    session.add(theme)
    core.audit(session, event, "status", theme.id, status_detail(before, status, note))
    notifications = resolution_notifications(core, session, theme) if status in CLOSED_STATUSES else ()
    told = len(notifications)
    return Reply(
        f"{theme.key} “{theme.title}” is now {STATUS_LABELS[status]}."
        + (f" Note: {note.rstrip('.')}." if note else "")
        + (f" {told} {'reporter' if told == 1 else 'reporters'} will hear about it." if told else ""),
        notifications=notifications,
    )


def status_detail(before: str, status: str, note: str) -> str:
    """A status change as the audit trail keeps it; read back by parse_status_detail."""
    return f"{before} -> {status}" + (f": {note}" if note else "")


def parse_status_detail(detail: str) -> tuple[str, str]:
    """(the new status, the note) of a status change in the audit trail."""
    _before, _, after = detail.partition(" -> ")
    status, _, note = after.partition(": ")
    return status.strip(), note.strip()


def resolution_notifications(core: Core, session: Session, theme: Theme) -> tuple[Notification, ...]:
    """ "You said, we did": the note goes to every reporter and "me too" of the theme, anonymous
    ones included, each on their own platform. Their ids are opened from the sealed column for
    this delivery only, and sealed again in the outbox."""
    text = f"Update on something you reported: {theme.key} “{theme.title}” is {STATUS_LABELS[theme.status]}."
    section = Section(title="What the owner says", text=theme.status_note)
    notifications = []
    for _person, sealed in queries.sealed_people_of_theme(session, theme_id=theme.id):
        opened = core.sealer.open(sealed)
        if opened is not None:
            notifications.append(
                Notification(
                    to=Person(*opened), text=text, sections=(section,), label=f"{theme.key} outcome to a reporter"
                )
            )
    return tuple(notifications)
