"""What anyone can look at: the themes, one theme, the digest preview, and the home page
(a lead's board with owner pickers and "same problem?" pairs, or an agent's own reports)."""

from dataclasses import replace
from datetime import timedelta

from sqlmodel import Session

from bot.actions import AssignOwner, MergeThemes, NotTheSame
from bot.core import Core, clip
from bot.messages import Button, Inbound, Reply, Section
from bot.people import Person
from bot.publish import compose_for, known_names
from bot.submissions import mine
from digests.digest import counted
from digests.render import render_text
from storage import queries
from storage.models import CLOSED_STATUSES, Theme, theme_key

BOARD_LIMIT = 25
SAME_PROBLEM_PAIRS = 3  # "Same problem?" questions on the board at a time


def themes_overview(core: Core, session: Session, limit: int = 20) -> Reply:
    themes = queries.live_themes(session)
    if not themes:
        return Reply("No themes yet: nothing has been logged.")
    sections = tuple(core.theme_section(session, t) for t in themes[:limit])
    more = f" (the {limit} biggest shown)" if len(themes) > limit else ""
    return Reply(f"{counted(len(themes), 'theme', 'themes')}{more}:", sections=sections)


def show_theme(core: Core, session: Session, theme_id: int, quotes: int = 5) -> Reply:
    theme = core.theme(session, theme_id)
    moved = f"{theme_key(theme_id)} was merged into {theme.key}.\n" if theme.id != theme_id else ""
    people = queries.reporter_count(session, theme_id=theme.id)
    writers = queries.writer_count(session, theme_id=theme.id)
    sections = (core.theme_section(session, theme, people, writers),)
    if core.quotable(writers):
        recent = queries.submissions_of_theme(session, theme_id=theme.id, limit=quotes)
        lines = [f"“{clip(s.text, 280)}”" for s in recent if not s.hidden]
        sections += (Section(title="Recent reports", text="\n".join(lines)),)
    note = f"\nLatest note: {theme.status_note}" if theme.status_note else ""
    return Reply(f"{moved}{theme.key} “{theme.title}” — {theme.size} submissions.{note}", sections=sections)


def digest_preview(core: Core) -> Reply:
    """The digest as it would be posted: people by the names their platforms show."""
    return Reply(render_text(compose_for(core, names=known_names(core))))


def home(core: Core, session: Session, event: Inbound, before: Reply | None = None) -> Reply:
    """The person's home page: a lead's theme board, or an agent's own submissions. `before`:
    the answer to what they just did there, shown on top."""
    own = mine(core, session, event)
    if core.is_lead(session, event):
        page = board(core, session)
        page = Reply(
            page.text,
            sections=page.sections + (Section(title="Your own submissions", text=own.text),) + own.sections,
        )
    else:
        page = own
    if before is None:
        return page
    return Reply(
        f"{before.text}\n\n{page.text}", sections=page.sections, ok=before.ok, notifications=before.notifications
    )


def board(core: Core, session: Session) -> Reply:
    """Every live theme for a lead, unowned and growing first, each with an owner picker."""
    now = core.clock()
    week = timedelta(days=7)
    themes = [t for t in queries.live_themes(session) if t.status not in CLOSED_STATUSES]
    recent = queries.theme_counts_since(session, since=now - week, until=now + timedelta(seconds=1))
    before = queries.theme_counts_since(session, since=now - 2 * week, until=now - week)
    themes.sort(key=lambda t: (t.owner is not None, -(recent.get(t.id, 0) - before.get(t.id, 0)), -t.size, t.id))
    sections = []
    for theme in themes[:BOARD_LIMIT]:
        section = core.theme_section(session, theme)
        growth = recent.get(theme.id, 0) - before.get(theme.id, 0)
        fields = section.fields + (("Last 7 days", f"{recent.get(theme.id, 0)} ({growth:+d})"),)
        picker = Button("Owner", AssignOwner(theme.id), preset=Person.stored(theme.owner_platform, theme.owner))
        sections.append(replace(section, fields=fields, buttons=(picker,)))
    sections += same_problem_sections(core, session, themes)
    if not sections:
        return Reply("Theme board: no open themes yet.")
    unowned = sum(1 for t in themes if t.owner is None)
    more = f", the first {BOARD_LIMIT} shown" if len(themes) > BOARD_LIMIT else ""
    return Reply(f"Theme board: {len(themes)} open themes, {unowned} without an owner{more}.", tuple(sections))


def same_problem_sections(core: Core, session: Session, themes: list[Theme]) -> list[Section]:
    """The leads' merge queue: theme pairs re-clustering found linked, most linked first, each
    with "Merge" (the smaller into the bigger) and "Not the same" (never asked again)."""
    sections = []
    for one, other, share in core.theming.same_problem(session, themes)[:SAME_PROBLEM_PAIRS]:
        small, big = sorted((one, other), key=lambda t: (t.size, -t.id))
        sections.append(
            Section(
                title=f"Same problem? {small.key} and {big.key}",
                text=f"{small.key} “{small.title}” ({small.size}) and {big.key} “{big.title}” ({big.size}): "
                f"{share:.0%} of the nearest neighbours of one theme's submissions are in the other.",
                buttons=(
                    Button(f"Merge {small.key} into {big.key}", MergeThemes(small.id, big.id)),
                    Button("Not the same", NotTheSame(small.id, big.id)),
                ),
            )
        )
    return sections
