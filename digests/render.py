"""Renderers for the digest: plain text (terminal, chat preview), Markdown and HTML."""

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from digests.digest import Digest, ThemeLine

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
_environment.globals.update(STATUS=STATUS, sparkline=sparkline, growth_label=growth_label, owner_label=owner_label)


def _markdown_escape(text: str) -> str:
    """Staff text is data: no headings, links, emphasis or HTML from a quote."""
    for char in "\\`*_{}[]<>()#+-!|":
        text = text.replace(char, "\\" + char)
    return " ".join(text.split())


_environment.filters["md"] = _markdown_escape


def render_markdown(digest: Digest) -> str:
    return _environment.get_template("digest.md.j2").render(d=digest)


def render_html(digest: Digest) -> str:
    return _environment.get_template("digest.html.j2").render(d=digest)


def render_text(digest: Digest) -> str:
    return _environment.get_template("digest.txt.j2").render(d=digest)
