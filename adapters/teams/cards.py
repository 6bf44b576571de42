"""Core replies, forms and the digest as Adaptive Cards (schema 1.4, which Teams renders).

Adaptive Cards show text as given (no markup is interpreted in a TextBlock but a small Markdown
subset), so staff text is escaped for that subset. Buttons are Action.Submit carrying the core's
signed action string under "fl"; a button that needs a note shows the note field on the card.
"""

import itertools
import json
import logging
import re
from collections.abc import Iterator

from bot.actions import ActionCodec, asks_for_note, asks_for_person
from bot.messages import Button, Reply, Section
from bot.people import Person
from digests.chart import COMPACT, alt_text, chart_png, data_uri
from digests.digest import Digest, people_count
from digests.render import STATUS, growth_label

log = logging.getLogger(__name__)

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.4"
MAX_CARD_BYTES = 25_000  # Teams takes about 28 KB a card: stay under it
TEXT_BYTES = MAX_CARD_BYTES - 2_000  # one text block's most: room for the card around it
ACTION_KEY = "fl"
NOTE_KEY = "note"
MARKDOWN = str.maketrans({c: "\\" + c for c in "\\*_~`[]"})
LINE_START = re.compile(r"^(\s*)([-+#>]|\d+\.)(?=\s)", re.M)


def plain(text: str) -> str:
    """Staff text shown as written: Teams' Markdown subset neither bolds, links nor lists it."""
    return LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text.translate(MARKDOWN))


def card(body: list[dict], actions: list[dict] | None = None) -> dict:
    content = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if actions:
        content["actions"] = actions
    return content


def attachment(content: dict) -> dict:
    return {"contentType": "application/vnd.microsoft.card.adaptive", "content": content}


def text_block(text: str, **style) -> dict:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _value(value: str | Person) -> str:
    return plain(value.id if isinstance(value, Person) else value)


def _section(section: Section) -> list[dict]:
    blocks = []
    if section.title:
        blocks.append(text_block(plain(section.title), weight="Bolder", spacing="Medium"))
    if section.text:
        blocks.append(text_block(plain(section.text)))
    if section.fields:
        blocks.append(
            {"type": "FactSet", "facts": [{"title": plain(k), "value": _value(v)} for k, v in section.fields]}
        )
    return blocks


def _action(codec: ActionCodec, button: Button, index: int) -> dict | None:
    if asks_for_person(button.action):
        return None  # Teams has no person picker on a card: leads type `assign T-12 @name`
    data = {ACTION_KEY: codec.encode(button.action)}
    action = {"type": "Action.Submit", "title": button.label[:40], "data": data}
    if button.style == "primary":
        action["style"] = "positive"
    elif button.style == "danger":
        action["style"] = "destructive"
    if asks_for_note(button.action):  # the note travels in the same submit, from the card's input
        action["associatedInputs"] = "auto"
        action["id"] = f"with-note-{index}"
    return action


def _actions(codec: ActionCodec, buttons: tuple[Button, ...], numbers: Iterator[int]) -> list[dict]:
    return [a for b in buttons if (a := _action(codec, b, next(numbers)))]


NOTE_FIELD = {
    "type": "Input.Text",
    "id": NOTE_KEY,
    "isMultiline": True,
    "maxLength": 1900,
    "label": "Note for Resolved or Won't fix: every reporter of this theme reads it",
}


def reply_cards(codec: ActionCodec, reply: Reply) -> list[dict]:
    """The reply's buttons at the bottom of its last card; a section's buttons right under it, so that
    a list of themes says which theme each "Me too" is for. One note field in each card, above the
    first buttons that read it (a card's inputs all go with every submit). Split between sections so
    that no card passes MAX_CARD_BYTES: outside ASCII a letter is six bytes of JSON (\\u0436), and
    twenty themes with Russian examples made one card of 80 KB."""
    numbers = itertools.count()  # ids of the buttons that take a note, unique in the reply
    parts = [[block] for block in _text_blocks(plain(reply.text))]  # the digest preview: long
    for section in reply.sections:  # a section is never split: it keeps its buttons
        part = _section(section)
        if actions := _actions(codec, section.buttons, numbers):
            part.append({"type": "ActionSet", "actions": actions})
        parts.append(part)
    bottom = _actions(codec, reply.buttons, numbers)
    contents, body = [], []
    for part in parts:
        if body and len(json.dumps(_noted(body + part, bottom))) > MAX_CARD_BYTES:
            contents.append(_noted(body, []))
            body = []
        body += part
    return [*contents, _noted(body, bottom)]


def _text_blocks(text: str) -> list[dict]:
    """Text in blocks that each leave room in a card for the rest, split at line ends (a line
    longer than that where it fits)."""
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(json.dumps(line)) > TEXT_BYTES:
            cut = len(line) * TEXT_BYTES // len(json.dumps(line))
            while len(json.dumps(line[:cut])) > TEXT_BYTES:
                cut = cut * 9 // 10
            pieces.append(line[:cut])
            line = line[cut:]
        if current and len(json.dumps(f"{current}\n{line}")) > TEXT_BYTES:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    return [text_block(piece) for piece in [*pieces, current]]


def _noted(body: list[dict], actions: list[dict]) -> dict:
    """A card of `body` and `actions`, with the note field above the first buttons that read it."""

    def reads(actions: list[dict]) -> bool:
        return any("associatedInputs" in a for a in actions)

    first = next((i for i, b in enumerate(body) if b["type"] == "ActionSet" and reads(b["actions"])), None)
    if first is not None:
        body = [*body[:first], dict(NOTE_FIELD), *body[first:]]
    elif reads(actions):
        body = [*body, dict(NOTE_FIELD)]
    return card(body, actions)


def submit_form(text: str, link: str | None, own: bool = False) -> dict:
    """The "Log as friction" task module, prefilled with the message it was opened on (`own`: one the
    person logging it wrote)."""
    return card(
        [
            {
                "type": "Input.Text",
                "id": "text",
                "label": "What got in the way",
                "isMultiline": True,
                "value": text[:3000],
                "isRequired": True,
                "errorMessage": "Please write what got in the way.",
            },
            {"type": "Input.Toggle", "id": "anonymous", "title": "Log it anonymously", "value": "false"},
        ],
        [{"type": "Action.Submit", "title": "Log it", "data": {"link": link or "", "own": own}}],
    )


def digest_cards(digest: Digest) -> list[dict]:
    """The weekly digest as cards, split so that none passes MAX_CARD_BYTES."""
    head = [
        text_block(plain(digest.title), weight="Bolder", size="Large"),
        text_block(
            f"{digest.start:%a %d %b} – {digest.last_day:%a %d %b %Y} ({plain(digest.timezone)}) · "
            f"{digest.submissions} submissions ({digest.previous_submissions} the week before) · "
            f"{digest.active_themes} active themes"
        ),
    ]
    brief = text_block(plain(" ".join(digest.brief)), spacing="Medium")
    blocks = [*head, brief, *chart_blocks(digest), text_block("Top themes", weight="Bolder", spacing="Medium")]
    if not digest.top:
        blocks.append(text_block("Nothing was logged this week."))
    for rank, line in enumerate(digest.top, 1):
        owner = plain(str(line.owner)) if line.owner else "unowned"
        back = " · came back after being resolved" if line.came_back else ""
        blocks.append(text_block(f"**{rank}. {line.key} · {plain(line.title)}**{back}", spacing="Medium"))
        blocks.append(
            text_block(
                f"{line.this_week} this week · {line.total} in all · {people_count(line.reporters)} · "
                f"{plain(growth_label(line))} · owner {owner} · {STATUS.get(line.status, line.status)}"
                + (f" · **{', '.join(line.missed)}**" if line.overdue else "")
            )
        )
        blocks += [text_block(f"“{plain(quote)}”", isSubtle=True) for quote in line.quotes]
    blocks += [text_block(more, spacing="Medium") for more in [digest.more(digest.top, digest.active_themes)] if more]
    for title, lines in (
        (
            "Growing",
            [f"{t.key} {plain(t.title)}: {plain(growth_label(t))}" for t in digest.growing]
            + [m for m in [digest.more(digest.growing, digest.growing_total)] if m],
        ),
        (
            "Needs an owner",
            [f"{t.key} {plain(t.title)}: {t.this_week} this week" for t in digest.unowned]
            + [m for m in [digest.more(digest.unowned, digest.unowned_total)] if m],
        ),
        (
            "Overdue",
            [f"{t.key} {plain(t.title)}: {', '.join(t.missed)} · owner {plain(str(t.owner))}" for t in digest.overdue],
        ),
        ("Resolved this week", [f"{r.key} {plain(r.title)}: {plain(r.note)}" for r in digest.resolved]),
        ("Every submission", [plain(f"{digest.accounted} {digest.quotes_rule}")] + [plain(c) for c in digest.curation]),
    ):
        blocks.append(text_block(title, weight="Bolder", spacing="Medium"))
        blocks += [text_block(f"• {line}") for line in lines] or [text_block("• None.")]
    return _split(blocks)


def chart_blocks(digest: Digest) -> list[dict]:
    """The digest's chart as an Image in the card itself: a data URI of the compact palette PNG
    (digests/chart.py COMPACT, 540 × 405). Measured: 11 KB of PNG for a usual week, 13 KB for five
    themes with the longest titles and the busiest lines, so 15–17 KB of base64 in a card that
    holds 25 KB; it rides in the digest's first card, and needs no activity of its own. The same
    digest gives the same bytes, so a retry splits the cards as the first try did.
    Rendering it takes matplotlib: call digest_cards off the event loop."""
    png = chart_png(digest, COMPACT)
    if png is None:
        return []
    block = {"type": "Image", "url": data_uri(png), "altText": alt_text(digest), "size": "Stretch"}
    if len(json.dumps(card([block]))) > MAX_CARD_BYTES:  # cannot happen at the sizes measured; never a refused card
        log.warning("the digest's chart (%d bytes) does not fit a Teams card: sent without it", len(png))
        return []
    return [block]


def _split(blocks: list[dict]) -> list[dict]:
    cards, current = [], []
    for block in blocks:
        if current and len(json.dumps(card([*current, block]))) > MAX_CARD_BYTES:
            cards.append(card(current))
            current = []
        current.append(block)
    if current:
        cards.append(card(current))
    return cards
