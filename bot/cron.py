"""A digest target's schedule: five crontab fields in an IANA time zone.

One parser serves FRICTIONLOG_DIGEST_CRON and the schedules leads set in chat (`digest here
0 16 * * fri Europe/London`), so both are refused in the same words and read the same way.

Crontab numbers weekdays from Sunday (0 or 7); APScheduler 3 counts from Monday = 0 and reads
`0 9 * * 1` as Tuesday (its issue 286). The day-of-week field is translated to names here, so a
schedule means what it means in crontab.

The schedule only says when; whether a digest is due is decided from the latest time it fired
(`last_fire`), which is what lets a run missed while no server was up go out when one is back.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

FIELDS = (("minute", "minute"), ("hour", "hour"), ("day", "day of month"), ("month", "month"))
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
EXAMPLE = "five crontab fields (minute hour day-of-month month day-of-week), e.g. `0 9 * * mon`"
# How far back `last_fire` looks: the rarest crontab (29 February) fires every 4 years, 8 around 2100.
LOOKBACK = timedelta(days=366 * 8)
GAP = timedelta(hours=1)  # the longest a clock change skips (Lord Howe's half hour is within it)


@dataclass(frozen=True)
class Schedule:
    cron: str  # as written, fields separated by single spaces
    timezone: str

    @classmethod
    def parse(cls, cron: str, timezone: str) -> "Schedule":
        """The schedule, or ValueError saying which field or time zone is wrong."""
        schedule = cls(" ".join(cron.split()), timezone.strip())
        zone = _zone(schedule.timezone)
        trigger = _trigger(schedule.cron, zone)
        if trigger.get_next_fire_time(None, datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise ValueError(f"`{schedule.cron}` never happens (check the day and the month)")
        return schedule

    @cached_property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)

    @cached_property
    def trigger(self) -> BaseTrigger:
        return _trigger(self.cron, self.zone)

    def next_fire(self, now: datetime) -> datetime | None:
        """The first time at or after `now`, in the schedule's zone. Looked for from an hour
        before: a time in a spring-forward gap (02:30 on a night clocks skip from 02:00 to 03:00)
        happens an hour on, at 03:30, and APScheduler looking from 03:10 would miss it."""
        fire = self.trigger.get_next_fire_time(None, now - GAP)
        while fire is not None and fire < now:
            fire = self.trigger.get_next_fire_time(fire, fire)
        return self._as_on_clocks(fire)

    def last_fire(self, now: datetime) -> datetime | None:
        """The latest time at or before `now`, in the schedule's zone; None if there was none
        within LOOKBACK. APScheduler only looks forward, so this looks forward from ever earlier
        points (1 minute back, 2, 4, …) until a window holds a fire time, then walks to its last."""
        window = timedelta(minutes=1)
        while window < 2 * LOOKBACK:
            fire = self.trigger.get_next_fire_time(None, now - window)
            if fire is not None and fire <= now:
                while (later := self.trigger.get_next_fire_time(fire, fire)) is not None and later <= now:
                    fire = later
                return self._as_on_clocks(fire)
            window *= 2
        return None

    def _as_on_clocks(self, fire: datetime | None) -> datetime | None:
        """The time as clocks show it: APScheduler writes one in a spring-forward gap as it was
        scheduled (02:30, which that night does not exist), though it is the same instant as 03:30."""
        return fire.astimezone(UTC).astimezone(self.zone) if fire is not None else None

    def __str__(self) -> str:
        return f"{self.cron} ({self.timezone})"


def when(moment: datetime) -> str:
    """A fire time as people read it, in its own zone: `Mon 23 Nov 2026 09:00`."""
    return f"{moment:%a %d %b %Y %H:%M}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone `{name}` (use an IANA name such as Europe/London)") from error


def _trigger(cron: str, zone: ZoneInfo) -> BaseTrigger:
    values = cron.split()
    if len(values) != 5:
        raise ValueError(f"`{cron}` has {len(values)} fields; a schedule is {EXAMPLE}")
    fields = {}
    for (name, label), value in zip(FIELDS, values, strict=False):
        try:
            CronTrigger(**{name: value})  # one field at a time, to say which one is wrong
        except ValueError as error:
            reason = str(error).split("': ", 1)[-1]  # APScheduler's "Error validating expression '25': …"
            raise ValueError(f"the {label} field `{value}` of `{cron}`: {reason}") from None
        fields[name] = value
    try:
        fields["day_of_week"] = weekdays(values[4])
        trigger = CronTrigger(**fields, timezone=zone)
    except ValueError as error:
        raise ValueError(f"the day-of-week field `{values[4]}` of `{cron}`: {error}") from None
    if unrestricted(values[2]) or unrestricted(values[4]):
        return trigger
    # Both day fields restricted: crontab fires on either (`0 9 1 * mon`, the 1st and every
    # Monday), where APScheduler would ask for both.
    return OrTrigger(
        [
            CronTrigger(**{**fields, "day_of_week": "*"}, timezone=zone),
            CronTrigger(**{**fields, "day": "*"}, timezone=zone),
        ]
    )


def unrestricted(field: str) -> bool:
    return field in ("*", "?")


def weekdays(field: str) -> str:
    """Crontab's day-of-week field (0–7 or sun–sat; lists, ranges, steps) as the weekday names
    APScheduler 3 reads the same way."""
    if unrestricted(field):
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        spec, slash, step_text = item.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f"`{item}` has no valid step after the /")
        step = int(step_text) if slash else 1
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            start, _, end = spec.partition("-")
            first, last = _day(start), _day(end)
            if last == 0 and first > 0:  # fri-sun
                last = 7
        else:
            first = _day(spec)
            last = 7 if slash else first  # crontab's `1/2`: from Monday on, every other day
        if last < first:
            raise ValueError(f"`{item}` runs backwards")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(DAYS[day] for day in sorted(days))


def _day(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text in DAYS:
        return DAYS.index(text)
    raise ValueError(f"`{text}` is not a day of the week (0–7 or sun–sat)")
