"""The one command grammar every platform shares.

/friction <text>                     log friction (prefix `anon` to stay anonymous)
/friction themes | theme T-12 | mine | help | digest preview
/friction assign T-12 @user          /friction status T-12 <status> [note]
/friction merge T-3 into T-12        /friction rename T-12 <title>
/friction split T-12 S-4 S-9         /friction undo S-41 | metoo T-12
/friction due T-12 2026-12-10        /friction quiet [off]
"""

import difflib
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
• /friction quiet: no note when the weekly digest features what you reported · quiet off: notes again
Owners: status T-12 <status> [note] · due T-12 2026-12-10 (the day you will fix it by; reminders follow it)
Team leads: digest here [0 9 * * mon Europe/Paris | off] (the weekly digest in this channel) · \
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
class Usage:
    """What looks like a command but is not one in full (`undo`, `assign T-6`, a lone `T-12`):
    the sender gets that command's usage and an example, and nothing is logged."""

    text: str


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
    """A lead asks for (or stops) the weekly digest in the channel they typed it in, optionally
    on a schedule of its own: five crontab fields and/or a time zone (checked by the core)."""

    on: bool = True
    cron: str | None = None
    timezone: str | None = None


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
class Due:
    """The owner's fix date (`due T-12 2026-12-10`, or `off`), as typed: the core reads the date."""

    theme_id: int
    when: str


@dataclass(frozen=True)
class Quiet:
    on: bool = True


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
    | Usage
    | Themes
    | ShowTheme
    | Mine
    | DigestPreview
    | DigestHere
    | Assign
    | SetStatus
    | Due
    | Quiet
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
    (re.compile(r"digest\s+here(?:\s+(.+))?", re.I), DigestHere),
    (re.compile(r"digest(?:\s+preview)?", re.I), DigestPreview),
    (re.compile(rf"assign\s+{THEME}\s+(?:to\s+)?(?!to$)(@?\S+)", re.I), Assign),
    (re.compile(rf"status\s+{THEME}\s+(\S+)(?:\s+(.*))?", re.I | re.S), SetStatus),
    (re.compile(rf"due\s+{THEME}\s+(?:(?:on|by)\s+)?(\S+)", re.I), Due),
    (re.compile(r"quiet(?:\s+(on|off))?", re.I), Quiet),
    (re.compile(rf"merge\s+{THEME}\s+(?:into|to|->)\s+{THEME}", re.I), Merge),
    (re.compile(rf"rename\s+{THEME}\s+(.+)", re.I | re.S), Rename),
    (re.compile(rf"split\s+{THEME}((?:\s+{SUBMISSION})+)", re.I), Split),
    (re.compile(rf"undo\s+{SUBMISSION}", re.I), Undo),
    (re.compile(rf"(?:me\s*too|metoo|\+1)\s+{THEME}", re.I), MeToo),
]
# `anon <text>`, or `anonymous: <text>`: "anonymous callers cannot…" is prose about callers.
ANONYMOUS = re.compile(r"(?:anon\b\s*[:\-]?|anonymous(?:ly)?\s*[:\-])\s*(\S.*)", re.I | re.S)
LOG = re.compile(r"log\s*[:\-]?\s+(.*)", re.I | re.S)  # `log undo`: log it, whatever it starts with
HELP_TOPIC = re.compile(r"help\s+(\S+)", re.I)
LEADING_MENTION = re.compile(r"^(?:<@[UW][A-Z0-9]+(?:\|[^>]*)?>|@frictionlog)[\s:,]*", re.I)
TRAILING = re.compile(r"[\s.!?,;:]+$")
KEY = re.compile(r"^[TS]-?\d+$", re.I)

# Each command word: its usage, an example, and whether it takes a theme or submission key.
USAGES: dict[str, tuple[str, bool]] = {
    "undo": ("undo S-41: take back your own submission within 24 hours", True),
    "metoo": ("metoo T-12: add your voice to a theme", True),
    "theme": ("theme T-12: one theme, its owner, status and recent reports", True),
    "assign": ("assign T-12 @dana: give a theme an owner (team leads)", True),
    "status": (
        "status T-12 in-progress [note]: move a theme (its owner or a lead); resolved and wont-fix need a note",
        True,
    ),
    "due": ("due T-12 2026-12-10: the day a theme will be fixed by (its owner or a lead; `off` clears it)", True),
    "quiet": ("quiet [off]: no note when the weekly digest features what you reported (off: notes again)", False),
    "merge": ("merge T-3 into T-12: put two themes together (team leads)", True),
    "rename": ("rename T-12 Refund approvals take days: a title for a theme (team leads)", True),
    "split": ("split T-12 S-4 S-9: move submissions into a theme of their own (team leads)", True),
    "themes": ("themes: the themes, biggest first", False),
    "mine": ("mine: what you logged and where it stands", False),
    "digest": (
        "digest preview: this week's digest · digest here [0 16 * * fri Europe/London | off]: the digest in this "
        "channel, on the default schedule or its own (leads)",
        False,
    ),
    "anon": ("anon <what got in your way>: log it anonymously", False),
    "help": ("help [command]: how to use frictionlog", False),
}
ALIASES = {"me": "metoo", "+1": "metoo", "anonymous": "anon", "anonymously": "anon", "list": "themes"}


def command_word(word: str) -> str | None:
    """The command a first word names: exactly, or mistyped by a letter or two (`asign`, `stauts`)."""
    word = word.lower()
    if word in USAGES or word in ALIASES:
        return ALIASES.get(word, word)
    if len(word) >= 5:
        close = difflib.get_close_matches(word, [w for w in USAGES if len(w) >= 5], n=1, cutoff=0.8)
        return close[0] if close else None
    return None


def usage(word: str, lead: str = "") -> Usage:
    line, _takes_key = USAGES[word]
    return Usage(
        f"{lead}Usage: {line}.\nNothing was logged. To log a message that starts like a command, "
        "begin it with `log`, e.g. log undo button in the app is broken"
    )


def parse(text: str) -> Command:
    text = LEADING_MENTION.sub("", text.strip(), count=1).strip()
    if text.lower().startswith("/friction"):
        text = text[len("/friction") :].strip()
    if not text:
        return Help()
    bare = TRAILING.sub("", text) or text  # "undo S-41." and "themes?" are commands too
    for candidate in dict.fromkeys((text, bare)):
        for pattern, kind in PATTERNS:
            match = pattern.fullmatch(candidate)
            if match:
                return _build(kind, match)
    logged = LOG.fullmatch(text)
    if logged and logged.group(1).strip():
        return Submit(logged.group(1).strip())
    anonymous = ANONYMOUS.fullmatch(text)
    if anonymous and TRAILING.sub("", anonymous.group(1)).strip():
        return Submit(anonymous.group(1).strip(), anonymous=True)
    topic = HELP_TOPIC.fullmatch(bare)
    if topic and command_word(topic.group(1)):
        return usage(command_word(topic.group(1)))
    return malformed(bare) or Submit(text)


def names_an_owner(text: str) -> bool:
    """An assign command: the one place a platform turns @mentions into ids, since an owner is
    stored by their platform id. Anywhere else a mention stays the name people read."""
    return isinstance(parse(text), Assign)


def malformed(text: str) -> Usage | None:
    """A command in all but its arguments: a command word with nothing after it, with a theme
    or submission key but not in the command's shape, or (for commands without arguments) a
    word or two after it; or a key on its own. Longer prose that merely starts with a command
    word ("status of my refund is unclear") is friction, and is logged."""
    words = text.split()
    if len(words) == 1 and KEY.match(words[0]):
        key = words[0].upper()
        return Usage(
            f"“{words[0]}” on its own is not a command. Try: theme {key} (see it) or metoo {key} (add your "
            "voice); undo S-41 takes back your own submission. Nothing was logged."
        )
    word = command_word(words[0])
    if word is None:
        return None
    rest = words[1:]
    if words[0].lower() == "me" and rest and rest[0].lower() == "too":
        rest = rest[1:]
    _line, takes_key = USAGES[word]
    lead = "" if words[0].lower() in USAGES or words[0].lower() in ALIASES else f"Did you mean {word}? "
    if not rest:
        return usage(word, lead)
    if takes_key and any(KEY.match(token.strip(".,;:!?")) for token in rest):
        return usage(word, lead)
    if not takes_key and word != "anon" and len(rest) <= 2:
        return usage(word, lead)
    return None


def digest_here(rest: str) -> DigestHere | Usage:
    """`digest here`, `digest here off`, or a schedule: five crontab fields, a time zone, or both
    (`digest here 0 16 * * fri Europe/London`); `on` in front is allowed."""
    words = TRAILING.sub("", rest).split()
    if [word.lower() for word in words] == ["off"]:
        return DigestHere(False)
    if words and words[0].lower() == "on":
        words = words[1:]
    if len(words) in (5, 6):
        return DigestHere(True, " ".join(words[:5]), words[5] if len(words) == 6 else None)
    if len(words) <= 1:
        return DigestHere(True, None, words[0] if words else None)
    return Usage(
        f"“{' '.join(words)}” is not a schedule. Give five crontab fields (minute hour day-of-month month "
        "day-of-week) and a time zone, e.g. digest here 0 16 * * fri Europe/London; or only a time zone; "
        "or digest here off. Nothing was logged."
    )


def _build(kind: type, match: re.Match) -> Command:
    groups = match.groups()
    if kind is SetStatus:
        status = STATUS_ALIASES.get(groups[1].lower())
        if status is None:
            typed = ", ".join(s.replace("_", "-") for s in THEME_STATUSES)
            return Help(f"Unknown status “{groups[1]}”. Use one of: {typed}.")
        return SetStatus(int(groups[0]), status, (groups[2] or "").strip())
    if kind is Assign:
        return Assign(int(groups[0]), groups[1].lstrip("@"))
    if kind is Merge:
        return Merge(int(groups[0]), int(groups[1]))
    if kind is Rename:
        return Rename(int(groups[0]), groups[1].strip())
    if kind is Split:
        return Split(int(groups[0]), tuple(int(n) for n in re.findall(r"\d+", groups[1])))
    if kind is Due:
        return Due(int(groups[0]), groups[1].rstrip(".,;:!?"))
    if kind is Quiet:
        return Quiet((groups[0] or "on").lower() != "off")
    if kind is DigestHere:
        return digest_here(groups[0] or "")
    if kind in (ShowTheme, MeToo):
        return kind(int(groups[0]))
    if kind is Undo:
        return Undo(int(groups[0]))
    return kind()
