"""Composing the weekly digest from what is stored: counts, growth, owners, quotes."""

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digests.digest import Accounting, Closed, Digest, IsoWeek, Owner, ThemeLine, counted
from digests.theming import regrouped
from storage import queries
from storage.models import ANONYMOUS_SENDER, CLOSED_STATUSES, Theme

TREND_WEEKS = 8  # the chart: weekly volume of the top themes over the last 8 weeks
TOP = 7
QUOTES = 2
CURATION = ("merge", "rename", "split", "hide")


def compose_digest(
    engine: Engine,
    *,
    zone: ZoneInfo,
    now: datetime,
    week: IsoWeek | None = None,
    missed: Mapping[int, tuple[str, ...]] | None = None,
    names: Mapping[tuple[str, str], str] | None = None,
    min_group: int = 5,
) -> Digest:
    """The digest of `week` (the last complete one by default). `missed`: by theme id, the
    deadlines it is past, as bot/deadlines.py counts them. `names`: display names by
    (platform, id), from the platforms; an owner without one is shown by id. Quotes and
    breakdowns only for groups of at least `min_group` distinct reporters."""
    names, missed = names or {}, missed or {}
    week = week or IsoWeek.last_complete(now, zone)
    start, end = week.bounds(zone)
    trend_start, _ = week.previous(TREND_WEEKS - 1).bounds(zone)
    with Session(engine) as session:
        facts = queries.submission_facts(session, since=trend_start, until=end)
        weekly: dict[int, Counter[str]] = defaultdict(Counter)
        kinds: Counter[str] = Counter()
        area_reporters: dict[str, set[str]] = defaultdict(set)
        area_counts: Counter[str] = Counter()
        this_week = previous_week = 0
        accounts: Counter[str] = Counter()
        arrived: dict[int, list[datetime]] = defaultdict(list)  # this week's, by theme
        for theme_id, created_at, kind, tags, author_hash, hidden, withdrawn in facts:
            label = str(IsoWeek.containing(created_at, zone))
            counted = not hidden and not withdrawn  # hidden and withdrawn are accounted apart
            if theme_id is not None and counted:
                weekly[theme_id][label] += 1
            if start <= created_at < end:
                this_week += 1
                accounts[
                    "withdrawn" if withdrawn else "hidden" if hidden else "unthemed" if theme_id is None else "themed"
                ] += 1
                if theme_id is not None and counted:
                    arrived[theme_id].append(created_at)
                if withdrawn:
                    continue
                kinds[kind] += 1
                for tag in filter(None, tags.split(",")):
                    area_counts[tag] += 1
                    if author_hash:  # a row without an author names nobody (as queries.reporter_count)
                        area_reporters[tag].add(author_hash)
            elif label == str(week.previous()):
                previous_week += 1
        seen = queries.first_and_last_seen(session)
        labels = [str(week.previous(n)) for n in reversed(range(TREND_WEEKS))]
        themes = queries.unmerged_themes(session)
        lines = {
            theme.id: _line(
                session,
                theme,
                weekly[theme.id],
                labels,
                seen,
                missed.get(theme.id, ()),
                names,
                arrived[theme.id],
                start,
            )
            for theme in themes
            if theme.size > 0 or theme.id in weekly
        }
        resolved = tuple(
            Closed(
                t.key,
                t.title,
                t.status,
                owner_of(t, names),
                t.status_note,
                queries.reporter_count(session, theme_id=t.id),
            )
            for t in themes
            if t.status in CLOSED_STATUSES and t.status_changed_at and start <= t.status_changed_at < end
        )
        events = queries.audit_events(session, since=start, until=end)
        curation = tuple(
            f"{event.action.capitalize()} by {_actor(event, names)}: {event.detail}"
            for event in events
            if event.action in CURATION
        ) + _regrouping([event.detail for event in events if event.action == "recluster"])

    open_lines = [line for line in lines.values() if line.status not in CLOSED_STATUSES]
    by_week = sorted((line for line in lines.values() if line.this_week), key=lambda line: (-line.this_week, line.key))
    # Growing: themes known before this week; a new or returning one is named under New already.
    growing = sorted(
        (
            line
            for line in open_lines
            if line.this_week >= 3
            and line.this_week >= 1.5 * max(line.last_week, 1)
            and not (line.is_new or line.came_back)
        ),
        key=lambda line: (-(line.this_week - line.last_week), line.key),
    )
    unowned = sorted(
        (line for line in open_lines if not line.owner and (line.this_week or line.total >= 3)),
        key=lambda line: (-line.this_week, -line.total, line.key),
    )
    overdue = sorted((line for line in open_lines if line.overdue), key=lambda line: (-line.total, line.key))
    # Back after being resolved is said apart from brand new, each counted over its whole list.
    came_back = [line for line in by_week if line.came_back]
    new = [line for line in by_week if line.is_new and not line.came_back]
    accounting = Accounting(
        themed=accounts["themed"],
        themes=len(by_week),
        unthemed=accounts["unthemed"],
        hidden=accounts["hidden"],
        withdrawn=accounts["withdrawn"],
    )
    return Digest(
        week=week,
        start=start,
        end=end,
        timezone=str(zone),
        submissions=this_week,
        previous_submissions=previous_week,
        # Withdrawn ones have no kind to show any more, but the header's figures add up to its total.
        by_kind=tuple(sorted(kinds.items()))
        + ((("withdrawn", accounts["withdrawn"]),) if accounts["withdrawn"] else ()),
        active_themes=len(by_week),
        top=tuple(_with_quotes(engine, by_week[:TOP], start, end, min_group)),
        new=tuple(new[:5]),
        new_total=len(new),
        came_back=tuple(came_back[:5]),
        came_back_total=len(came_back),
        growing=tuple(growing[:5]),
        unowned=tuple(unowned[:10]),
        growing_total=len(growing),
        unowned_total=len(unowned),
        overdue=tuple(overdue),
        resolved=resolved,
        areas=shown_areas(area_counts, area_reporters, min_group),
        curation=curation,
        accounting=accounting,
        min_group=min_group,
    )


def shown_areas(counts: Counter[str], reporters: dict[str, set[str]], min_group: int) -> tuple[tuple[str, int], ...]:
    """Areas with at least `min_group` distinct reporters. When exactly one area is withheld,
    the smallest shown one is withheld too, so the hidden one cannot be worked out from the
    week's total by subtraction."""
    shown = [(tag, n) for tag, n in counts.most_common() if len(reporters[tag]) >= min_group]
    if len(counts) - len(shown) == 1 and shown:
        shown.pop()
    return tuple(shown)


def _regrouping(details: list[str]) -> tuple[str, ...]:
    """Re-clustering's own changes to the themes in one line: themes it opened, and themes it
    emptied into others (what a lead would have called merges)."""
    new, emptied = regrouped(details)
    if not new and not emptied:
        return ()
    times = "once" if len(details) == 1 else f"{len(details)} times"
    opened = counted(new, "new theme", "new themes")
    return (f"Regrouped by frictionlog {times}: {opened}, {emptied} emptied into others",)


def _actor(event, names: Mapping[tuple[str, str], str]) -> str:
    if event.actor in ("frictionlog", ANONYMOUS_SENDER):
        return event.actor
    if not event.actor_platform:
        return "a team lead"
    return names.get((event.actor_platform, event.actor)) or event.actor


def owner_of(theme: Theme, names: Mapping[tuple[str, str], str]) -> Owner | None:
    if not theme.owner:
        return None
    platform = theme.owner_platform or "console"
    return Owner(platform, theme.owner, names.get((platform, theme.owner)) or theme.owner)


def _line(session, theme: Theme, weekly, labels, seen, missed, names, arrived, start: datetime) -> ThemeLine:
    trend = tuple(weekly[label] for label in labels)
    first, last = seen.get(theme.id, (None, None))
    return ThemeLine(
        key=theme.key,
        title=theme.title,
        summary=theme.summary,
        status=theme.status,
        owner=owner_of(theme, names),
        this_week=trend[-1],
        last_week=trend[-2] if len(trend) > 1 else 0,
        total=theme.size,
        reporters=queries.reporter_count(session, theme_id=theme.id),
        trend=trend,
        first_seen=first,
        last_seen=last,
        missed=tuple(missed),
        # Reported again after it was closed: the fix did not hold, or was not the fix.
        came_back=theme.status in CLOSED_STATUSES
        and theme.status_changed_at is not None
        and any(at > theme.status_changed_at for at in arrived),
        # Its first report is this week's, however far back the trend looks.
        is_new=first is not None and first >= start,
    )


def _with_quotes(engine: Engine, lines: list[ThemeLine], start: datetime, end: datetime, min_group: int):
    """Quotes for the themes enough people reported that no quote can single anyone out."""
    with Session(engine) as session:
        return [
            replace(
                line,
                quotes=tuple(queries.quotes(session, theme_id=int(line.key[2:]), since=start, until=end, limit=QUOTES)),
            )
            if queries.writer_count(session, theme_id=int(line.key[2:])) >= min_group  # words, not votes
            else line
            for line in lines
        ]
