"""The digest's chart: submissions per week of the top themes over the trend's weeks, as a PNG.

PNG because every place the digest goes takes it: a file uploaded to Slack, an Adaptive Card
Image in Teams (a data URI), an <img> in the HTML digest and an image beside the Markdown one.

matplotlib is imported on first use, so neither start-up nor the ack path pays for it (about
half a second); figures are built with its object API (no pyplot state), under a lock because matplotlib
is not thread-safe, with settings fixed here rather than read from a matplotlibrc, and written
without a version or a timestamp: the same digest always gives the same bytes. Text is drawn in
DejaVu Sans, which matplotlib ships, so every machine has the font the layout was made for.
"""

import base64
import io
import threading
from dataclasses import dataclass
from datetime import date, timedelta

from digests.digest import Digest, ThemeLine

CHART_THEMES = 5  # more lines than this stop being readable at the size a chat shows an image
LABEL_CHARS = 38
# Okabe–Ito: told apart with every common kind of colour blindness, and in greyscale with the markers.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7")
MARKERS = ("o", "s", "D", "^", "v")
INK, GRID = "#1d1d1f", "#d9d9d9"
_lock = threading.Lock()


@dataclass(frozen=True)
class ChartSize:
    """Pixels are width × dpi by height × dpi. `shades`: written as a palette PNG of the chart's
    own colours in that many shades each (a fifth of the bytes), for a tight budget such as a
    Teams card; None keeps full colour."""

    width: float
    height: float
    dpi: int
    font: float = 11
    columns: int = 2  # of the legend, under the plot
    shades: int | None = None

    @property
    def pixels(self) -> tuple[int, int]:
        return round(self.width * self.dpi), round(self.height * self.dpi)


FULL = ChartSize(8.0, 5.0, 100)  # 800 × 500: Slack, the HTML and Markdown digests
COMPACT = ChartSize(6.0, 4.5, 90, font=10, columns=1, shades=4)  # 540 × 405: inside a Teams card's 25 KB


def charted(digest: Digest) -> tuple[ThemeLine, ...]:
    """The themes the chart draws: the first CHART_THEMES of the top themes."""
    return digest.top[:CHART_THEMES]


def week_starts(digest: Digest, weeks: int) -> list[date]:
    """The Monday of each of the last `weeks` weeks, oldest first, ending with the digest's."""
    monday = digest.start.date()
    return [monday - timedelta(weeks=n) for n in reversed(range(weeks))]


def short(text: str, length: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def label(line: ThemeLine) -> str:
    return f"{line.key} · {short(line.title)}"


def alt_text(digest: Digest) -> str:
    """What the chart shows, in words: the alt text of the image wherever it goes."""
    lines = charted(digest)
    if not lines:
        return "No chart: nothing was logged this week."
    weeks = max(len(line.trend) for line in lines)
    first, last = week_starts(digest, weeks)[0], week_starts(digest, weeks)[-1]
    series = "; ".join(f"{label(line)}: {', '.join(map(str, line.trend))}" for line in lines)
    return (
        f"Line chart of submissions per week for the {_top(len(lines))}, {weeks} weeks from the week of "
        f"{first:%d %b} to the week of {last:%d %b %Y}, oldest first. {series}."
    )


def _top(count: int) -> str:
    return "top theme" if count == 1 else f"top {count} themes"


def chart_png(digest: Digest, size: ChartSize = FULL) -> bytes | None:
    """The chart as PNG bytes; None when there is nothing to draw (no theme had a submission)."""
    lines = charted(digest)
    if not lines:
        return None
    with _lock:
        return _draw(digest, lines, size)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _draw(digest: Digest, lines: tuple[ThemeLine, ...], size: ChartSize) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    weeks = max(len(line.trend) for line in lines)
    mondays = week_starts(digest, weeks)
    settings = {
        "font.family": "DejaVu Sans",
        "font.size": size.font,
        "axes.edgecolor": GRID,
        "axes.labelcolor": INK,
        "text.color": INK,
        "xtick.color": INK,
        "ytick.color": INK,
        "path.simplify": False,
    }
    with matplotlib.rc_context(settings):
        figure = Figure(figsize=(size.width, size.height), dpi=size.dpi, facecolor="white", layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for index, line in enumerate(lines):
            values = list(line.trend)
            # An older, shorter trend is aligned on the digest's week, its last value.
            xs = list(range(weeks - len(values), weeks))
            axes.plot(
                xs,
                values,
                color=COLOURS[index % len(COLOURS)],
                marker=MARKERS[index % len(MARKERS)],
                markersize=5,
                linewidth=2.2,
                # "$" would start matplotlib's maths mode: staff text is shown as written.
                label=label(line).replace("$", r"\$"),
            )
        axes.set_xticks(range(weeks), [f"{monday.day} {monday:%b}" for monday in mondays])
        axes.set_xlim(-0.3, weeks - 0.7)
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        axes.grid(axis="y", color=GRID, linewidth=0.8)
        axes.set_axisbelow(True)
        for side in ("top", "right"):
            axes.spines[side].set_visible(False)
        axes.set_xlabel("week starting Monday")
        axes.set_title(f"Submissions per week, {_top(len(lines))}", loc="left", fontsize=size.font + 1)
        figure.legend(loc="outside lower left", ncols=size.columns, frameon=False, handlelength=1.8)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    png = buffer.getvalue()
    return _palette(png, size.shades) if size.shades else png


def _palette_colours(shades: int) -> list[tuple[int, int, int]]:
    """White, and each colour of the chart blended with white in `shades` steps: the colours its
    anti-aliased edges are made of. A palette chosen by frequency instead (median cut) merges two
    series' colours when one of them draws little."""
    colours = [(255, 255, 255)]
    for hex_colour in (INK, GRID, *COLOURS):
        rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
        for step in range(shades, 0, -1):
            alpha = step / shades
            colours.append(tuple(round(c * alpha + 255 * (1 - alpha)) for c in rgb))
    return colours


def _palette(png: bytes, shades: int) -> bytes:
    from PIL import Image

    palette = Image.new("P", (1, 1))
    palette.putpalette([value for colour in _palette_colours(shades) for value in colour])
    with Image.open(io.BytesIO(png)) as image:
        reduced = image.convert("RGB").quantize(palette=palette, dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        reduced.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
