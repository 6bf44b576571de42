"""Renderers for the digest: plain text (terminal, chat preview), Markdown and HTML."""

from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape

from digests.chart import FULL, alt_text, chart_png, data_uri
from digests.digest import Digest, ThemeLine, people_count

STATUS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "in_progress": "in progress",
    "resolved": "resolved",
    "wont_fix": "won't fix",
}
SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: tuple[int, ...]) -> str:
    top = max(values) if values else 0
    if top == 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, round(v / top * (len(SPARKS) - 1)))] for v in values)


MEANINGFUL_BASE = 10  # below this many the week before, a percentage misleads: +1800% from 1


def growth_label(line: ThemeLine) -> str:
    if line.is_new:
        return "new this week"
    if line.growth is None:
        return f"{line.this_week} this week, none the week before"
    if line.last_week < MEANINGFUL_BASE:
        return f"{line.this_week - line.last_week:+d} this week, from {line.last_week}"
    return f"{line.growth:+.0%} vs last week ({line.last_week} → {line.this_week})"


def owner_label(line) -> str:
    return str(line.owner) if line.owner else "unowned"


_environment = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_environment.globals.update(
    STATUS=STATUS, sparkline=sparkline, growth_label=growth_label, owner_label=owner_label, people=people_count
)


def _markdown_escape(text: str) -> str:
    """Staff text is data: no headings, links, emphasis or HTML from a quote."""
    for char in "\\`*_{}[]<>()#+-!|":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


_environment.filters["md"] = _markdown_escape


def render_markdown(digest: Digest, chart: str | None = None) -> str:
    """`chart`: the chart's PNG, relative to where the Markdown goes (write_markdown puts it
    beside it); without one, no image. A file, not a data URI: most Markdown viewers show
    a file beside the page and many refuse data URIs."""
    return _environment.get_template("digest.md.j2").render(d=digest, chart=chart, chart_alt=alt_text(digest))


def render_html(digest: Digest) -> str:
    """One self-contained page: the chart is inside it as a data URI."""
    png = chart_png(digest)
    chart = data_uri(png) if png else None
    return _environment.get_template("digest.html.j2").render(
        d=digest, chart=chart, chart_alt=alt_text(digest), chart_size=FULL.pixels
    )


def write_markdown(digest: Digest, path: Path) -> list[Path]:
    """The Markdown digest at `path` and its chart beside it (`digest.md`, `digest-chart.png`);
    returns the files written."""
    written = []
    chart = None
    png = chart_png(digest)
    image = path.with_name(f"{path.stem}-chart.png")
    if png is None:
        image.unlink(missing_ok=True)  # an earlier week's chart must not pass for this one's
    else:
        image.write_bytes(png)
        written.append(image)
        chart = quote(image.name)
    path.write_text(render_markdown(digest, chart), encoding="utf-8")
    return [path, *written]


def render_text(digest: Digest) -> str:
    return _environment.get_template("digest.txt.j2").render(d=digest)
