"""Where the weekly digest goes and when: each target's schedule, and which digests are due.

A target is a channel in FRICTIONLOG_DIGEST_SLACK_CHANNELS or one a lead typed `digest here` in.
Each has a schedule (bot/cron.py): its own crontab fields and time zone, set in chat, or
FRICTIONLOG_DIGEST_CRON in FRICTIONLOG_TIMEZONE. One check serves on-time runs and missed ones
alike (`due_digests`, run every minute by `serve`): a target's latest scheduled time at or
before now asks for the last complete ISO week as of then, in the target's zone; that week is
queued (bot/publish.py: exactly once) unless it, or a later one, went to the target before, or
the target was added in chat after that time. A server down over a Monday 09:00 posts that week
once when it is back; one down for three weeks posts only the latest week, not a flood of old ones.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.core import Core, UserError
from bot.cron import Schedule, when
from bot.messages import Inbound, Reply
from bot.publish import Due, Target
from bot.settings import Settings
from digests.digest import IsoWeek
from storage import queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scheduled:
    """A target with its schedule, and where it comes from: configured in the environment
    (FRICTIONLOG_DIGEST_SLACK_CHANNELS), added in chat by a lead, or both."""

    target: Target
    schedule: Schedule
    configured: bool = False
    added_by: str | None = None  # as stored: the lead's platform:id
    added_at: datetime | None = None

    @property
    def source(self) -> str:
        chat = f"added in chat by {self.added_by}" if self.added_by else ""
        return "; ".join(filter(None, ("configured" if self.configured else "", chat)))

    def counts(self, fire: datetime) -> bool:
        """Whether a scheduled time asks this target for a digest: a target added in chat gets
        nothing for times before it was added (a configured one has always been there)."""
        return self.configured or self.added_at is None or fire >= self.added_at


def default_schedule(settings: Settings) -> Schedule:
    return Schedule(settings.digest_cron, settings.timezone)


SCHEDULE_EXAMPLE = "five crontab fields and a time zone, e.g. `digest here 0 16 * * fri Europe/London`"


def digest_here(
    core: Core, session: Session, event: Inbound, on: bool, cron: str | None = None, timezone: str | None = None
) -> Reply:
    """A lead makes the channel they are in a digest target, or stops it. With `cron` and/or
    `timezone` the channel gets a schedule of its own; what is not given stays as it was (for
    a new target: the default, which follows FRICTIONLOG_DIGEST_CRON and FRICTIONLOG_TIMEZONE)."""
    core.require_lead(session, event, "choose where the weekly digest goes")
    if not event.channel:
        raise UserError("Type this in the channel that should get the weekly digest.")
    target = Target(event.platform, event.channel)
    if not on:
        removed = queries.remove_digest_target(session, platform=target.platform, channel=target.channel)
        if removed:
            core.audit(session, event, "digest target", None, f"{target} removed")
        if target in configured_targets(core.settings):  # chat cannot undo what the environment says
            return Reply(
                ("Its own schedule is gone. " if removed else "")
                + "This channel still gets the weekly digest on the default schedule: it is listed in "
                "FRICTIONLOG_DIGEST_SLACK_CHANNELS, and only taking it out of that setting stops it."
            )
        return Reply(
            "This channel will no longer get the weekly digest." if removed else "This channel gets no digest."
        )
    row = queries.digest_target(session, platform=target.platform, channel=target.channel)
    given = cron is not None or timezone is not None
    cron = (" ".join(cron.split()) if cron else None) or (row.cron if row else None)
    timezone = timezone or (row.timezone if row else None)
    defaults = default_schedule(core.settings)
    try:
        schedule = Schedule.parse(cron or defaults.cron, timezone or defaults.timezone)
    except ValueError as error:
        raise UserError(
            f"Nothing changed: {error}. Write `digest here`, then {SCHEDULE_EXAMPLE}; "
            "or only a time zone; or neither, for the default schedule."
        ) from None
    if row is None:
        queries.add_digest_target(
            session,
            platform=target.platform,
            channel=target.channel,
            added_by=str(event.person),
            at=core.clock(),
            cron=cron,
            timezone=timezone,
        )
        start, change = "This channel will get the weekly digest", "added"
    elif given:
        row.cron, row.timezone = cron, timezone
        session.add(row)
        start, change = "This channel's weekly digest has a new schedule", "schedule changed"
    else:
        start, change = "This channel already gets the weekly digest", ""
    if change:
        core.audit(session, event, "digest target", None, f"{target} {change}: {schedule}")
    upcoming = schedule.next_fire(core.clock())
    return Reply(
        f"{start}: `{schedule.cron}` in {schedule.timezone}"
        + (f", next on {when(upcoming)}" if upcoming else "")
        + ". Each time it gets the last complete week, Monday to Sunday."
    )


def configured_targets(settings: Settings) -> list[Target]:
    return [Target("slack", channel) for channel in settings.digest_slack_channel_list]


def targets_now(core: Core, configured: list[Target]) -> list[Scheduled]:
    """The configured targets and those leads added in chat, each once, with their schedules. A
    configured channel a lead also typed `digest here` in takes the schedule set there."""
    defaults = default_schedule(core.settings)
    found = {target: Scheduled(target, defaults, configured=True) for target in configured}
    with Session(core.engine) as session:
        rows = queries.digest_targets(session)
    for row in rows:
        target = Target(row.platform, row.channel)
        schedule = Schedule(row.cron or defaults.cron, row.timezone or defaults.timezone)
        found[target] = Scheduled(target, schedule, target in found, row.added_by, row.created_at)
    return list(found.values())


def due_digests(core: Core, configured: list[Target]) -> list[Due]:
    """The digests due now: for each target, the week its latest scheduled time asks for,
    unless that week or a later one was queued for it before (module docstring)."""
    now = core.clock()
    with Session(core.engine) as session:
        latest = queries.latest_digest_runs(session)
    due = []
    for item in targets_now(core, configured):
        try:
            fire = item.schedule.last_fire(now)
        except ValueError as error:  # a time zone this machine no longer knows: the others still go
            log.error("digest to %s: its schedule %s cannot be read: %s", item.target, item.schedule, error)
            continue
        if fire is None or not item.counts(fire):
            continue
        week = IsoWeek.last_complete(fire, item.schedule.zone)
        before = latest.get(str(item.target))
        if before is not None and IsoWeek.parse(before[0]) >= week:
            continue
        due.append(Due(item.target, week, item.schedule.zone))
    return due


def by_hand(core: Core, targets: Iterable[Scheduled], week: IsoWeek | None = None) -> list[Due]:
    """`digest --post`: `week` (by default the last complete one in each target's zone) now."""
    now = core.clock()
    return [
        Due(item.target, week or IsoWeek.last_complete(now, item.schedule.zone), item.schedule.zone) for item in targets
    ]


@dataclass(frozen=True)
class TargetStatus:
    """A line of `frictionlog targets`."""

    scheduled: Scheduled
    next_run: datetime | None  # in the target's zone
    last_week: str | None  # the latest week queued for it
    last_state: str | None  # the outbox state of that week's message


def targets_overview(core: Core, configured: list[Target]) -> list[TargetStatus]:
    now = core.clock()
    with Session(core.engine) as session:
        latest = queries.latest_digest_runs(session)
    lines = []
    for item in targets_now(core, configured):
        week, state = latest.get(str(item.target), (None, None))
        try:
            upcoming = item.schedule.next_fire(now)
        except ValueError:  # a time zone this machine no longer knows: shown without a next run
            upcoming = None
        lines.append(TargetStatus(item, upcoming, week, state))
    return lines
