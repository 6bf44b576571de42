"""Deadlines that chase themselves: an owner who misses one hears about it, and a day later the
team leads do.

Every owned open theme has up to three deadlines, all counted from its owner's assignment, so a
new owner starts with a fresh clock:
- acknowledge: FRICTIONLOG_ACK_HOURS (24) after the assignment. Met by any status change (the
  Acknowledge button, or moving it further).
- first update: FRICTIONLOG_UPDATE_DAYS (7) after the assignment. Met by a status change after
  the assignment that moves the theme past acknowledged (in progress, resolved, won't fix) or
  carries a note (`/friction status T-12 acknowledged waiting for finance`): something a reporter
  or a lead could read as news. Pressing Acknowledge again is not an update.
- resolution: the day the owner set (`/friction due T-12 2026-12-10`), due at the end of that day,
  local time. Met by resolving (or won't fix). A new date is a new deadline; a new owner clears it.

At a missed deadline the owner gets a reminder saying what is due and how to do it.
FRICTIONLOG_ESCALATE_HOURS (24) after that reminder reached the owner, if the deadline is still
missed, every team lead (every configured lead on every platform frictionlog serves, the owner
excepted) gets an escalation naming the theme and its owner. Counting from the reminder rather
than from the deadline gives an owner the full day even for a deadline that passed while nothing
was chasing (a first start, an outage); counting from when it reached them, even when their daily
DM budget held it until the next day.

Each reminder and escalation is claimed in the `notice` table (kind, "T-12:acknowledge", the
deadline) in the transaction that writes it to the outbox: however many replicas chase, and
however often, each is sent once. Both are unprompted, so they count against the recipient's
daily DM budget (bot/outbox.py).
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlmodel import Session

from bot.actions import AssignOwner, SetStatus
from bot.core import STATUS_LABELS, Core, UserError, people_count
from bot.messages import Button, Inbound, Notification, Reply, Section
from bot.outbox import enqueue_notification
from bot.owners import parse_status_detail
from bot.people import Person
from bot.settings import Settings
from storage import queries
from storage.db import session_scope
from storage.models import CLOSED_STATUSES, Notice, OutboxMessage, Theme

log = logging.getLogger(__name__)
ACKNOWLEDGE, UPDATE, RESOLVE = "acknowledge", "update", "resolve"
UPDATED = ("in_progress", "resolved", "wont_fix")
CLEAR = ("off", "none", "clear", "no", "-")
Names = Mapping[tuple[str, str], str]


@dataclass(frozen=True)
class Deadline:
    theme_id: int
    what: str  # acknowledge, update, resolve
    due: datetime

    @property
    def subject(self) -> str:
        """How the notice table names it: "T-12:acknowledge"."""
        return f"T-{self.theme_id}:{self.what}"

    @property
    def period(self) -> str:
        """The deadline itself: a new assignment or a new fix date is a new deadline."""
        return self.due.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Chased:
    """What one chase sent: the subjects of its reminders and escalations."""

    reminders: tuple[str, ...] = ()
    escalations: tuple[str, ...] = ()


def deadlines_of(theme: Theme, settings: Settings) -> list[Deadline]:
    """The deadlines of an owned theme, met or not."""
    if theme.owner_assigned_at is None:
        return []
    assigned = theme.owner_assigned_at
    found = [
        Deadline(theme.id, ACKNOWLEDGE, assigned + timedelta(hours=settings.ack_hours)),
        Deadline(theme.id, UPDATE, assigned + timedelta(days=settings.update_days)),
    ]
    if theme.resolution_due_at is not None:
        found.append(Deadline(theme.id, RESOLVE, theme.resolution_due_at))
    return found


def is_met(session: Session, theme: Theme, deadline: Deadline) -> bool:
    if theme.status in CLOSED_STATUSES:
        return True
    if deadline.what == ACKNOWLEDGE:
        return theme.acknowledged_at is not None
    if deadline.what == UPDATE:
        changes = queries.status_details_since(session, theme_id=theme.id, since=theme.owner_assigned_at)
        for detail in changes:
            status, note = parse_status_detail(detail)
            if status in UPDATED or note:
                return True
        return False
    return False  # resolve: met only by closing the theme


def missed(session: Session, theme: Theme, settings: Settings, now: datetime) -> list[Deadline]:
    """The theme's deadlines that have passed unmet."""
    if theme.owner is None or theme.merged_into_id is not None or theme.status in CLOSED_STATUSES:
        return []
    return [d for d in deadlines_of(theme, settings) if d.due <= now and not is_met(session, theme, d)]


# How the digest names each missed deadline.
MISSED = {ACKNOWLEDGE: "not acknowledged in time", UPDATE: "no update in time", RESOLVE: "past its fix date"}


def missed_by_theme(core: Core, now: datetime) -> dict[int, tuple[str, ...]]:
    """Every owned open theme past a deadline, with what it missed: the digest's Overdue list,
    by the same rule the chase reminds and escalates by."""
    with Session(core.engine) as session:
        found = {theme.id: missed(session, theme, core.settings, now) for theme in queries.owned_open_themes(session)}
    return {theme_id: tuple(MISSED[d.what] for d in late) for theme_id, late in found.items() if late}


def chase(core: Core, *, platforms: Iterable[str], now: datetime | None = None, names: Names | None = None) -> Chased:
    """One pass over every owned open theme: remind owners of missed deadlines, escalate those
    still missed FRICTIONLOG_ESCALATE_HOURS after the reminder. Safe to run as often as liked,
    from any number of replicas. `platforms`: where leads are reached (the ones served here);
    `names`: display names by (platform, id) for the owners, from their platforms."""
    now = now or core.clock()
    platforms = list(platforms)
    with Session(core.engine) as session:
        theme_ids = [theme.id for theme in queries.owned_open_themes(session)]
    reminders: list[str] = []
    escalations: list[str] = []
    for theme_id in theme_ids:
        with session_scope(core.engine) as session:  # one theme at a time: its claims and its messages
            theme = session.get(Theme, theme_id)
            if theme is None:
                continue
            for deadline in missed(session, theme, core.settings, now):
                reminded = queries.find_notice(
                    session, kind="reminder", subject=deadline.subject, period=deadline.period
                )
                if reminded is None:
                    if _remind(core, session, theme, deadline, now):
                        reminders.append(deadline.subject)
                elif (reached := _reached(session, reminded)) and now >= reached + timedelta(
                    hours=core.settings.escalate_hours
                ):
                    if _escalate(core, session, theme, deadline, now, platforms, names or {}):
                        escalations.append(deadline.subject)
    return Chased(tuple(reminders), tuple(escalations))


def _reached(session: Session, reminder: Notice) -> datetime | None:
    """When the reminder reached its owner, the escalation's day counting from there: a reminder
    held by the owner's daily DM budget, or retried, has not reached them yet (None). One that
    could not be delivered counts from when it was due."""
    row = session.get(OutboxMessage, reminder.message_id) if reminder.message_id is not None else None
    if row is None:
        return reminder.created_at
    if row.state in ("pending", "held"):
        return None
    if row.state == "batched":  # went out with others once its hold ended
        return max(reminder.created_at, row.next_attempt_at)
    return row.sent_at or reminder.created_at


def _remind(core: Core, session: Session, theme: Theme, deadline: Deadline, now: datetime) -> bool:
    notice = queries.claim_notice(session, kind="reminder", subject=deadline.subject, period=deadline.period, at=now)
    if notice is None:
        return False  # another replica reminded first
    row = enqueue_notification(session, core.sealer, reminder(core, theme, deadline, now))
    session.flush()
    notice.message_id = row.id
    session.add(notice)
    return True


def _escalate(
    core: Core,
    session: Session,
    theme: Theme,
    deadline: Deadline,
    now: datetime,
    platforms: list[str],
    names: Names,
) -> bool:
    notice = queries.claim_notice(session, kind="escalation", subject=deadline.subject, period=deadline.period, at=now)
    if notice is None:
        return False
    owner = Person.stored(theme.owner_platform, theme.owner)
    people = [lead for lead in leads(core, session, platforms) if lead != owner]
    if not people:
        log.warning("%s is overdue (%s) and no team lead is configured to hear about it", theme.key, deadline.what)
    rows = [
        enqueue_notification(session, core.sealer, escalation(core, session, theme, deadline, lead, names))
        for lead in people
    ]
    if rows:
        session.flush()
        notice.message_id = rows[0].id
        session.add(notice)
    return True


def leads(core: Core, session: Session, platforms: Iterable[str]) -> list[Person]:
    """Every team lead on these platforms: from the settings (user group handles are not people)
    and from the roles table."""
    wanted = list(platforms)
    people = [
        Person(platform, user)
        for platform in wanted
        for user in sorted(core.settings.team_lead_ids_for(platform))
        if not user.startswith("@")
    ]
    people += [Person(p, user) for p, user in queries.people_with_role(session, role="lead") if p in wanted]
    return list(dict.fromkeys(people))


# The words -------------------------------------------------------------------------------------


def when(moment: datetime, zone: tzinfo) -> str:
    """A moment as people read it: Thu 19 Nov 10:00 CET."""
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %H:%M} {local.tzname()}"


def fix_day(due: datetime, zone: tzinfo) -> date:
    """The day an owner named: a fix date is due at the end of it (the next local midnight)."""
    return (due.astimezone(zone) - timedelta(days=1)).date()


def day_text(day: date) -> str:
    return f"{day:%a %d %b %Y}"


def reminder(core: Core, theme: Theme, deadline: Deadline, now: datetime) -> Notification:
    """What the owner reads: what is due, since when, how to do it, and when the leads hear."""
    zone = core.settings.zone
    owner = Person.stored(theme.owner_platform, theme.owner)
    key, title = theme.key, theme.title
    leads_hear = when(now + timedelta(hours=core.settings.escalate_hours), zone)
    if deadline.what == ACKNOWLEDGE:
        text = (
            f"Reminder: please acknowledge {key} “{title}”. It was assigned to you on "
            f"{when(theme.owner_assigned_at, zone)} and was due to be acknowledged by {when(deadline.due, zone)}. "
            f"Press Acknowledge below, or type /friction status {key} acknowledged. If it is not yours to own, "
            "tell your team lead."
        )
        buttons = (
            Button("Acknowledge", SetStatus(theme.id, "acknowledged"), "primary"),
            Button("In progress", SetStatus(theme.id, "in_progress")),
        )
    elif deadline.what == UPDATE:
        text = (
            f"Reminder: {key} “{title}” needs its first status update, due {when(deadline.due, zone)} "
            f"({core.settings.update_days} days after it was assigned to you). Press In progress below, or type "
            f"/friction status {key} in-progress <what is happening>: the note goes back to everyone who "
            f"reported it. Already fixed? /friction status {key} resolved <what changed>."
        )
        buttons = (
            Button("In progress", SetStatus(theme.id, "in_progress"), "primary"),
            Button("Resolved", SetStatus(theme.id, "resolved")),
            Button("Won't fix", SetStatus(theme.id, "wont_fix"), "danger"),
        )
    else:
        text = (
            f"Reminder: {key} “{title}” was due to be fixed by {day_text(fix_day(deadline.due, zone))}, the date "
            f"you set. If it is fixed, press Resolved and say what changed (it goes back to everyone who "
            f"reported it), or type /friction status {key} resolved <what changed>. Need more time? "
            f"/friction due {key} YYYY-MM-DD sets a new date."
        )
        buttons = (
            Button("Resolved", SetStatus(theme.id, "resolved"), "primary"),
            Button("Won't fix", SetStatus(theme.id, "wont_fix"), "danger"),
        )
    return Notification(
        to=owner,
        text=f"{text} If it is still {_still(deadline.what)} on {leads_hear}, the team leads hear about it.",
        buttons=buttons,
        label=f"{deadline.subject} reminder to its owner",
    )


def _still(what: str) -> str:
    return {ACKNOWLEDGE: "not acknowledged", UPDATE: "without an update"}.get(what, "open")


def escalation(
    core: Core, session: Session, theme: Theme, deadline: Deadline, lead: Person, names: Names
) -> Notification:
    """What a lead reads: which theme, who owns it, what was missed and since when."""
    zone = core.settings.zone
    owner = Person.stored(theme.owner_platform, theme.owner)
    name = names.get((owner.platform, owner.id)) or owner.id
    elsewhere = f" on {owner.platform.title()}" if owner.platform != lead.platform else ""
    if deadline.what == ACKNOWLEDGE:
        missed_text = f"has not acknowledged it, due {when(deadline.due, zone)}"
    elif deadline.what == UPDATE:
        missed_text = f"has given no status update since the assignment, due {when(deadline.due, zone)}"
    else:
        missed_text = f"has not resolved it by {day_text(fix_day(deadline.due, zone))}, the date they set"
    people = queries.reporter_count(session, theme_id=theme.id)
    return Notification(
        to=lead,
        text=(
            f"Escalation: {theme.key} “{theme.title}”: its owner, {name}{elsewhere}, {missed_text}. They were "
            f"reminded {core.settings.escalate_hours} h ago. Talk to them, or assign someone else: "
            f"/friction assign {theme.key} @name."
        ),
        sections=(
            Section(
                title=f"{theme.key} · {theme.title}",
                text=core.example(theme, queries.writer_count(session, theme_id=theme.id)),
                fields=(
                    ("Owner", owner),
                    ("Status", STATUS_LABELS.get(theme.status, theme.status)),
                    ("Reported by", people_count(people)),
                ),
                buttons=(Button("Assign someone else", AssignOwner(theme.id), preset=owner),),
            ),
        ),
        label=f"{deadline.subject} escalation to a team lead",
    )


# `/friction due T-12 2026-12-10`: the owner's own fix date ---------------------------------------


def set_due(core: Core, session: Session, event: Inbound, theme_id: int, text: str) -> Reply:
    """The owner (or a lead) names the day the theme will be fixed by; reminders chase it."""
    theme = core.theme(session, theme_id)
    owner = Person.stored(theme.owner_platform, theme.owner)
    if owner is None or event.person != owner:
        core.require_lead(session, event, "set the fix date of a theme they do not own")
    key = theme.key
    if owner is None:
        raise UserError(f"{key} has no owner yet: assign one first (/friction assign {key} @name).")
    if theme.status in CLOSED_STATUSES:
        raise UserError(f"{key} is already {STATUS_LABELS[theme.status]}: it needs no fix date.")
    zone = core.settings.zone
    now = core.clock()
    today = now.astimezone(zone).date()
    example = (today + timedelta(days=14)).isoformat()
    if text.lower() in CLEAR:
        theme.resolution_due_at, theme.updated_at = None, now
        session.add(theme)
        core.audit(session, event, "due", theme.id, "fix date cleared")
        return Reply(f"{key} “{theme.title}” has no fix date now.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"“{text}” is not a date. Write it as year-month-day: /friction due {key} {example}") from None
    if day < today:
        raise UserError(f"{day_text(day)} is in the past. Pick today or a later day: /friction due {key} {example}")
    theme.resolution_due_at = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    theme.updated_at = now
    session.add(theme)
    core.audit(session, event, "due", theme.id, f"fix date {day.isoformat()}")
    hours = core.settings.escalate_hours
    is_owner = event.person == owner
    who = "you get" if is_owner else "its owner gets"
    told = (
        ()
        if is_owner
        else (
            Notification(
                to=owner,
                text=f"{key} “{theme.title}” is now due to be fixed by {day_text(day)} (set by a team lead). "
                f"/friction due {key} YYYY-MM-DD changes it.",
                label=f"{key} fix date to its owner",
            ),
        )
    )
    return Reply(
        f"{key} “{theme.title}” is due to be fixed by {day_text(day)} (the end of that day, {zone.key}). "
        f"If it is not resolved by then, {who} a reminder, and {hours} h later the team leads hear about it.",
        notifications=told,
    )
