"""The digest's chart: one line per top theme over the trend's weeks, the same bytes for the same
digest, nothing drawn for an empty week, and matplotlib loaded only when a chart is drawn."""

import io
import subprocess
import sys
from dataclasses import replace
from datetime import UTC
from pathlib import Path

from PIL import Image

from digests.chart import CHART_THEMES, COLOURS, COMPACT, FULL, alt_text, chart_png, week_starts
from digests.digest import Digest, IsoWeek, Owner, ThemeLine
from digests.render import render_html, render_markdown, render_text, write_markdown

ROOT = Path(__file__).resolve().parents[1]
TITLES = (
    "Refunds over $50 need a supervisor, and it takes $$ and days",  # "$" is not maths here
    "Android app crashes at checkout",
    "Late fee waiver needs a ticket",
    "Long hold times on the phone line",
    "CRM billing address does not sync",
    "Password reset emails arrive late",
    "Store hours wrong on the website",
)
TRENDS = (
    (3, 4, 6, 5, 8, 9, 12, 14),
    (0, 0, 0, 1, 2, 6, 9, 11),
    (5, 5, 4, 6, 5, 7, 6, 8),
    (2, 3, 2, 4, 3, 5, 4, 7),
    (1, 1, 2, 2, 3, 2, 4, 5),
    (0, 1, 0, 2, 1, 1, 3, 4),
    (1, 0, 1, 1, 0, 2, 1, 3),
)


def themed_digest(count: int = 7) -> Digest:
    """A week with `count` top themes, each with eight weeks of history."""
    week = IsoWeek(2026, 46)
    start, end = week.bounds(UTC)
    top = tuple(
        ThemeLine(
            key=f"T-{n + 1}",
            title=TITLES[n],
            summary="",
            status="new",
            owner=Owner("slack", "U1", "Dana") if n % 2 else None,
            this_week=TRENDS[n][-1],
            last_week=TRENDS[n][-2],
            total=sum(TRENDS[n]),
            reporters=5,
            trend=TRENDS[n],
            first_seen=start,
            last_seen=start,
            quotes=("it takes days",),
        )
        for n in range(count)
    )
    return Digest(
        week=week,
        start=start,
        end=end,
        timezone="UTC",
        submissions=sum(line.this_week for line in top),
        previous_submissions=40,
        by_kind=(("policy", 40),),
        active_themes=count,
        top=top,
        growing=top[:2],
        unowned=top[::2],
        overdue=(),
        resolved=(),
        areas=(),
        curation=(),
    )


def colours_in(png: bytes) -> set[tuple[int, int, int]]:
    with Image.open(io.BytesIO(png)) as image:
        return {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 20)}


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_the_chart_draws_one_line_per_top_theme_and_the_same_digest_gives_the_same_bytes():
    digest = themed_digest()
    png = chart_png(digest)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == chart_png(digest)
    assert b"tIME" not in png and b"Software" not in png  # no timestamp, no version
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == FULL.pixels == (800, 500)
    drawn = colours_in(png)
    assert {rgb(c) for c in COLOURS[:CHART_THEMES]} <= drawn  # the five series, in their own colours
    # Two themes: two lines, and the colours of the others nowhere.
    two = colours_in(chart_png(themed_digest(2)))
    assert {rgb(c) for c in COLOURS[:2]} <= two and not {rgb(c) for c in COLOURS[2:]} & two


def test_the_compact_chart_keeps_every_series_colour_in_a_small_palette_png():
    png = chart_png(themed_digest(), COMPACT)
    with Image.open(io.BytesIO(png)) as image:
        assert image.mode == "P" and image.size == COMPACT.pixels
    assert {rgb(c) for c in COLOURS} <= colours_in(png)
    assert len(png) < 16_000  # measured: 11 KB for this digest, 13 KB at worst (see adapters/teams/cards.py)


def test_weeks_are_the_mondays_ending_with_the_digests_and_alt_text_says_what_is_drawn():
    digest = themed_digest()
    mondays = week_starts(digest, 8)
    assert [m.isoformat() for m in (mondays[0], mondays[-1])] == ["2026-09-21", "2026-11-09"]
    assert all(m.weekday() == 0 for m in mondays)
    alt = alt_text(digest)
    assert alt.startswith("Line chart of submissions per week for the top 5 themes, 8 weeks")
    assert "T-2 · Android app crashes at checkout: 0, 0, 0, 1, 2, 6, 9, 11" in alt and "T-6" not in alt


def test_a_week_with_nothing_logged_has_no_chart_and_every_rendering_still_works(tmp_path):
    empty = replace(themed_digest(), top=(), growing=(), unowned=(), submissions=0, active_themes=0)
    assert chart_png(empty) is None and chart_png(empty, COMPACT) is None
    html = render_html(empty)
    assert "<img" not in html and "Nothing was logged this week." in html
    assert "![" not in render_markdown(empty) and "Nothing was logged" in render_text(empty)
    (tmp_path / "digest-chart.png").write_bytes(b"last week's")
    assert write_markdown(empty, tmp_path / "digest.md") == [tmp_path / "digest.md"]
    assert not (tmp_path / "digest-chart.png").exists()  # an older chart is not left to pass for this week's


def test_an_older_six_week_trend_is_drawn_against_the_digests_last_weeks():
    digest = themed_digest(3)
    short = replace(digest, top=tuple(replace(line, trend=line.trend[-6:]) for line in digest.top))
    png = chart_png(short)
    assert png is not None and png != chart_png(digest)


def test_html_and_markdown_carry_the_chart():
    digest = themed_digest()
    html = render_html(digest)
    assert '<img id="chart" src="data:image/png;base64,' in html and 'width="800" height="500"' in html
    assert 'alt="Line chart of submissions per week for the top 5 themes' in html
    assert "$50" in html
    markdown = render_markdown(digest, chart="digest%20chart.png")
    assert "\n\n![Line chart of submissions per week" in markdown and "](digest%20chart.png)\n\n### T-1" in markdown


def test_start_up_and_the_ack_path_do_not_load_matplotlib():
    code = (
        "import sys\n"
        "import adapters.cli, adapters.web, adapters.slack.platform, adapters.teams.platform, digests.render\n"
        "import bot.service, bot.pipeline, bot.outbox\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib was imported at start-up'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_composed_digests_carry_eight_weeks_of_trend_for_the_chart(service, clock):
    from datetime import timedelta

    from bot.publish import compose_for
    from tests.conftest import START, ask

    refund = "refunds over $50 need supervisor approval and it takes three days"
    clock.now = START - timedelta(weeks=7)  # the oldest week the chart shows
    ask(service, "U1", refund)
    clock.now = START - timedelta(weeks=8)  # one week too old for it
    ask(service, "U2", refund)
    clock.now = START
    for user in ("U3", "U4"):
        ask(service, user, refund)
    digest = compose_for(service, IsoWeek(2026, 47))
    [line] = digest.top
    assert line.trend == (1, 0, 0, 0, 0, 0, 0, 2) and line.total == 4
    assert chart_png(digest) is not None and "1, 0, 0, 0, 0, 0, 0, 2" in alt_text(digest)
