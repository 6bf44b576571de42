"""The one command grammar every platform shares.

/friction <text>                     log friction (prefix `anon` to stay anonymous)
/friction themes | theme T-12 | mine | help | digest preview
/friction assign T-12 @user          /friction status T-12 <status> [note]
/friction merge T-3 into T-12        /friction rename T-12 <title>
/friction split T-12 S-4 S-9         /friction undo S-41 | metoo T-12
"""

import re
from dataclasses import dataclass

from storage.models import THEME_STATUSES

THEME = r"(?:T-?)?(\d+)"
SUBMISSION = r"(?:S-?)?(\d+)"
STATUS_ALIASES = {
    "ack": "acknowledged",
    "acknowledge": "acknowledged",
    "acknowledged": "acknowledged",
    "in-progress": "in_progress",
    "in_progress": "in_progress",
    "inprogress": "in_progress",
    "progress": "in_progress",
    "doing": "in_progress",
    "new": "new",
    "open": "new",
    "resolved": "resolved",
    "done": "resolved",
    "fixed": "resolved",
    "wont-fix": "wont_fix",
    "wont_fix": "wont_fix",
    "won't-fix": "wont_fix",
    "wontfix": "wont_fix",
}
assert set(STATUS_ALIASES.values()) == set(THEME_STATUSES)

HELP = """How to use frictionlog:
• /friction <what got in your way>: log policy friction or a customer pain point (one message is enough)
• /friction anon <text>: the same, anonymously
• /friction mine: what you logged and where it stands
• /friction themes: the themes, biggest first · /friction theme T-12: one theme
• /friction metoo T-12: add your voice to a theme · /friction undo S-41: take back your submission (24 h)
• /friction digest preview: this week's digest, as leadership will read it
Team leads: digest here [off] (the weekly digest in this channel) · \
assign T-12 @user · status T-12 <new|acknowledged|in-progress|resolved|wont-fix> [note] · \
merge T-3 into T-12 · rename T-12 <title> · split T-12 S-4 S-9"""


@dataclass(frozen=True)
class Submit:
    text: str
    anonymous: bool = False


@dataclass(frozen=True)
class Help:
    reason: str = ""


@dataclass(frozen=True)
class Themes:
    pass


@dataclass(frozen=True)
class ShowTheme:
    theme_id: int


@dataclass(frozen=True)
class Mine:
    pass


@dataclass(frozen=True)
class DigestPreview:
    pass


@dataclass(frozen=True)
class DigestHere:
    """A lead asks for (or stops) the weekly digest in the channel they typed it in."""

    on: bool = True


@dataclass(frozen=True)
class Assign:
    theme_id: int
    owner: str


@dataclass(frozen=True)
class SetStatus:
    theme_id: int
    status: str
    note: str = ""


@dataclass(frozen=True)
class Merge:
    source_id: int
    target_id: int


@dataclass(frozen=True)
class Rename:
    theme_id: int
    title: str


@dataclass(frozen=True)
class Split:
    theme_id: int
    submission_ids: tuple[int, ...]


@dataclass(frozen=True)
class Undo:
    submission_id: int


@dataclass(frozen=True)
class MeToo:
    theme_id: int


Command = (
    Submit
    | Help
    | Themes
    | ShowTheme
    | Mine
    | DigestPreview
    | DigestHere
    | Assign
    | SetStatus
    | Merge
    | Rename
    | Split
    | Undo
    | MeToo
)

# Commands are recognised only in their exact shape, so friction text that merely starts
# with a command word ("status of my refund is unclear…") is logged, not misread.
PATTERNS: list[tuple[re.Pattern, type]] = [
    (re.compile(r"help|\?", re.I), Help),
    (re.compile(r"themes|list", re.I), Themes),
    (re.compile(rf"theme\s+{THEME}", re.I), ShowTheme),
    (re.compile(r"mine|my submissions", re.I), Mine),
    (re.compile(r"digest\s+here(?:\s+(on|off))?", re.I), DigestHere),
    (re.compile(r"digest(?:\s+preview)?", re.I), DigestPreview),
    (re.compile(rf"assign\s+{THEME}\s+(?:to\s+)?(@?\S+)", re.I), Assign),
    (re.compile(rf"status\s+{THEME}\s+(\S+)(?:\s+(.*))?", re.I | re.S), SetStatus),
    (re.compile(rf"merge\s+{THEME}\s+(?:into|to|->)\s+{THEME}", re.I), Merge),
    (re.compile(rf"rename\s+{THEME}\s+(.+)", re.I | re.S), Rename),
    (re.compile(rf"split\s+{THEME}((?:\s+{SUBMISSION})+)", re.I), Split),
    (re.compile(rf"undo\s+{SUBMISSION}", re.I), Undo),
    (re.compile(rf"(?:me\s*too|metoo|\+1)\s+{THEME}", re.I), MeToo),
]
ANONYMOUS = re.compile(r"(?:anon|anonymous|anonymously)\s*[:\-]?\s+(.*)", re.I | re.S)


def parse(text: str) -> Command:
    text = text.strip()
    if text.lower().startswith("/friction"):
        text = text[len("/friction") :].strip()
    if not text:
        return Help()
    for pattern, kind in PATTERNS:
        match = pattern.fullmatch(text)
        if match:
            return _build(kind, match)
    anonymous = ANONYMOUS.fullmatch(text)
    if anonymous:
        return Submit(anonymous.group(1).strip(), anonymous=True) if anonymous.group(1).strip() else Help()
    return Submit(text)


def _build(kind: type, match: re.Match) -> Command:
    groups = match.groups()
    if kind is SetStatus:
        status = STATUS_ALIASES.get(groups[1].lower())
        if status is None:
            return Help(f"Unknown status “{groups[1]}”. Use one of: " + ", ".join(THEME_STATUSES) + ".")
        return SetStatus(int(groups[0]), status, (groups[2] or "").strip())
    if kind is Assign:
        return Assign(int(groups[0]), groups[1].lstrip("@"))
    if kind is Merge:
        return Merge(int(groups[0]), int(groups[1]))
    if kind is Rename:
        return Rename(int(groups[0]), groups[1].strip())
    if kind is Split:
        return Split(int(groups[0]), tuple(int(n) for n in re.findall(r"\d+", groups[1])))
    if kind is DigestHere:
        return DigestHere((groups[0] or "on").lower() != "off")
    if kind in (ShowTheme, MeToo):
        return kind(int(groups[0]))
    if kind is Undo:
        return Undo(int(groups[0]))
    return kind()
