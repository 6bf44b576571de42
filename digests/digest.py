"""The weekly digest as one frozen value; renderers turn it into Markdown, HTML, text, blocks."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, order=True)
class IsoWeek:
    """An ISO week; weeks compare in time order (year, then week)."""

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> "IsoWeek":
        """`2026-W47` (or `2026W47`)."""
        cleaned = text.strip().upper().replace("W", "-W").replace("--", "-")
        try:
            year, week = cleaned.split("-W")
            monday = date.fromisocalendar(int(year), int(week), 1)
        except ValueError as error:
            raise ValueError(f"{text!r} is not an ISO week; write it like 2026-W47") from error
        return cls(*monday.isocalendar()[:2])

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> "IsoWeek":
        year, week, _ = moment.astimezone(zone).isocalendar()
        return cls(year, week)

    @classmethod
    def last_complete(cls, now: datetime, zone: ZoneInfo) -> "IsoWeek":
        return cls.containing(now, zone).previous()

    def previous(self, weeks: int = 1) -> "IsoWeek":
        monday = date.fromisocalendar(self.year, self.week, 1) - timedelta(weeks=weeks)
        return IsoWeek(*monday.isocalendar()[:2])

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """Monday 00:00 to the next Monday 00:00, local time, as aware datetimes."""
        monday = date.fromisocalendar(self.year, self.week, 1)
        start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
        end_day = monday + timedelta(weeks=1)
        return start, datetime(end_day.year, end_day.month, end_day.day, tzinfo=zone)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True)
class Owner:
    """A theme's owner: the stored (platform, id), and the name the platform shows for them."""

    platform: str
    id: str
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ThemeLine:
    key: str
    title: str
    summary: str
    status: str
    owner: Owner | None
    this_week: int
    last_week: int
    total: int
    reporters: int
    trend: tuple[int, ...]  # submissions per ISO week, oldest first, ending with this week
    first_seen: datetime | None
    last_seen: datetime | None
    quotes: tuple[str, ...] = ()  # only when at least FRICTIONLOG_MIN_GROUP people reported it
    missed: tuple[str, ...] = ()  # deadlines it is past: "not acknowledged in time", …
    came_back: bool = False  # reported again after it was resolved
    # First reported this week (first_seen within it). A theme quiet for weeks that is reported
    # again is not new: it is listed (or growing) with "none the week before".
    is_new: bool = False

    @property
    def overdue(self) -> bool:
        return bool(self.missed)

    @property
    def growth(self) -> float | None:
        """Change against the previous week as a fraction; None when there was nothing before."""
        return None if self.last_week == 0 else (self.this_week - self.last_week) / self.last_week


def counted(n: int, one: str, many: str) -> str:
    """`n` and the noun that goes with it: "1 theme", "2 themes"."""
    return f"{n} {one if n == 1 else many}"


def people_count(people: int) -> str:
    return counted(people, "person", "people")


@dataclass(frozen=True)
class Closed:
    key: str
    title: str
    status: str
    owner: Owner | None
    note: str
    reporters: int


@dataclass(frozen=True)
class Accounting:
    """Where every submission of the week went: the figures add up to the week's total."""

    themed: int  # in one of `themes` themes
    themes: int
    unthemed: int  # stored, not yet placed in a theme
    hidden: int  # hidden by a team lead
    withdrawn: int  # withdrawn by the person who sent it

    @property
    def total(self) -> int:
        return self.themed + self.unthemed + self.hidden + self.withdrawn


def _names(lines, total: int, limit: int = 3) -> str:
    """ "T-4 Card declined abroad, T-9 Refund approval and 3 more" """
    named = [f"{line.key} {line.title}" for line in lines[:limit]]
    rest = total - len(named)
    if rest > 0:
        named.append(f"{rest} more")
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


@dataclass(frozen=True)
class Digest:
    week: IsoWeek
    start: datetime
    end: datetime
    timezone: str
    submissions: int  # every submission of the week, hidden ones included
    previous_submissions: int
    by_kind: tuple[tuple[str, int], ...]  # by kind, then ("withdrawn", n): adds up to `submissions`
    active_themes: int  # every theme reported this week: `top` shows the first of them
    top: tuple[ThemeLine, ...]
    growing: tuple[ThemeLine, ...]
    unowned: tuple[ThemeLine, ...]
    overdue: tuple[ThemeLine, ...]
    resolved: tuple[Closed, ...]
    # Area tags with at least three distinct reporters; smaller groups are never shown.
    areas: tuple[tuple[str, int], ...]
    curation: tuple[str, ...]  # merges, renames, hides and splits of the week, in words
    # How many there are in all, when a list above shows only the first ones.
    growing_total: int = 0
    unowned_total: int = 0
    new: tuple[ThemeLine, ...] = ()  # first reported this week
    new_total: int = 0
    came_back: tuple[ThemeLine, ...] = ()  # reported again this week after being resolved
    came_back_total: int = 0
    accounting: Accounting | None = None
    min_group: int = 5

    @property
    def accounted(self) -> str:
        """The footer's sentence: where every submission of the week went, adding up."""
        a = self.accounting
        if a is None:
            return f"{self.submissions} submissions this week."
        parts = [f"{a.themed} in {counted(a.themes, 'theme', 'themes')}"]
        parts += [f"{a.unthemed} not yet themed"] if a.unthemed else []
        parts += [f"{a.hidden} hidden by a team lead"] if a.hidden else []
        parts += [f"{a.withdrawn} withdrawn by their senders"] if a.withdrawn else []
        return f"{counted(a.total, 'submission', 'submissions')} this week: " + ", ".join(parts) + "."

    @property
    def quotes_rule(self) -> str:
        return f"Quotes appear only for themes at least {self.min_group} people reported, so no one can be singled out."

    @property
    def brief(self) -> tuple[str, str, str]:
        """Three plain sentences for the top: what is new, what is growing, what is stuck."""
        fresh, back = self.new, self.came_back
        if fresh and back:
            returned = _names(back, self.came_back_total)
            new = f"New this week: {_names(fresh, self.new_total)}; {returned} came back after being resolved."
        elif back:
            returned = _names(back, self.came_back_total)
            new = f"Nothing brand new this week, but {returned} came back after being resolved."
        elif fresh:
            new = f"New this week: {_names(fresh, self.new_total)}."
        else:
            new = "Nothing new surfaced this week."
        if self.growing:
            growing = f"Growing: {_names(self.growing, self.growing_total)}."
        else:
            growing = "No theme grew sharply."
        stuck = []
        if self.unowned_total:
            stuck.append(
                f"{counted(self.unowned_total, 'theme needs', 'themes need')} an owner "
                f"({_names(self.unowned, self.unowned_total)})"
            )
        if self.overdue:
            late = len(self.overdue)
            stuck.append(f"{counted(late, 'theme is', 'themes are')} past a deadline ({_names(self.overdue, late)})")
        stuck_sentence = (
            ("Stuck: " + "; ".join(stuck) + ".")
            if stuck
            else "Nothing is stuck: every active theme has an owner and none is overdue."
        )
        return new, growing, stuck_sentence

    @property
    def last_day(self) -> datetime:
        """The week's Sunday: the range reads Mon 16 Nov – Sun 22 Nov, not eight days."""
        return self.end - timedelta(days=1)

    def more(self, shown: tuple, total: int) -> str:
        """ "and N more (T in all)" under a capped list; nothing when it is whole."""
        return f"and {total - len(shown)} more ({total} in all)" if total > len(shown) else ""

    @property
    def title(self) -> str:
        return f"frictionlog weekly digest · {self.week}"
