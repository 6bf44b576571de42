"""Core replies (Reply, Section, Button) as Block Kit, and the modals and Home view.

Every piece of text from the core is escaped for mrkdwn: it may hold staff text, and staff text
never pings or links anyone. The only mentions we write are of people the core marks as such
(a Person in a field, e.g. a theme's owner). Button values are the core's signed action strings
(bot.actions.ActionCodec); nothing here builds or parses an action by hand.
"""

import json
import re

from bot.actions import ActionCodec, asks_for_person
from bot.messages import Button, Reply, Section
from bot.people import Person
from digests.blocks import MAX_BLOCKS, MAX_SECTION, clip, mrkdwn, mrkdwn_escape
from digests.digest import Owner

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTONS = 25
HOME_MAX_BLOCKS = 100
SUBMIT_VIEW = "log_friction"
NOTE_VIEW = "status_note"
SHORTCUT = "log_as_friction"


ACTION_PREFIX = "fl|"  # every action_id we draw starts so: one Bolt listener takes them all
PICKER_PREFIX = "fl|pick|"  # a person picker carries its action in the action_id (it has no value)


def person(user: str) -> str:
    """A mention for a Slack user id; anything else (a console name) as escaped text."""
    return f"<@{user}>" if SLACK_USER_ID.fullmatch(user) else mrkdwn_escape(user)


def owner(value: Owner) -> str:
    """A digest's owner: a mention on Slack (Slack shows the name), the name from elsewhere."""
    return person(value.id) if value.platform == "slack" else mrkdwn_escape(value.name)


def person_text(value: Person) -> str:
    """A Slack user as a mention (Slack shows the name); someone on another platform by id."""
    if value.platform == "slack":
        return person(value.id)
    return mrkdwn_escape(f"{value.id} ({value.platform.title()})")


def value_text(value) -> str:
    return person_text(value) if isinstance(value, Person) else mrkdwn_escape(value)


def _paragraphs(text: str) -> list[str]:
    """Text in pieces that fit a section, split at line ends where possible."""
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(line) > MAX_SECTION:
            pieces.append(line[:MAX_SECTION])
            line = line[MAX_SECTION:]
        if current and len(current) + 1 + len(line) > MAX_SECTION:
            pieces.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current.strip():
        pieces.append(current)
    return pieces


def _text_blocks(text: str) -> list[dict]:
    return [{"type": "section", "text": mrkdwn(piece)} for piece in _paragraphs(text)]


def _element(codec: ActionCodec, button: Button, index: int) -> dict:
    encoded = codec.encode(button.action)
    if asks_for_person(button.action):  # a person picker; its choice completes the action
        element = {
            "type": "users_select",
            "action_id": PICKER_PREFIX + encoded,
            "placeholder": {"type": "plain_text", "text": clip(button.label or "Owner", 150)},
        }
        chosen = button.preset
        if chosen and chosen.platform == "slack" and SLACK_USER_ID.fullmatch(chosen.id):
            element["initial_user"] = chosen.id
        return element
    element = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(button.label, 75)},
        "action_id": f"{ACTION_PREFIX}{index}",
        "value": encoded,
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    return element


def _actions(codec: ActionCodec, buttons: tuple[Button, ...]) -> list[dict]:
    if not buttons:
        return []
    elements = [_element(codec, b, i) for i, b in enumerate(buttons[:MAX_BUTTONS])]
    return [{"type": "actions", "elements": elements}]


def section_blocks(codec: ActionCodec, section: Section) -> list[dict]:
    head = f"*{mrkdwn_escape(section.title)}*" if section.title else ""
    body = mrkdwn_escape(section.text)
    text = clip("\n".join(filter(None, (head, body))), MAX_SECTION)
    block: dict = {"type": "section", "text": mrkdwn(text or " ")}
    if section.fields:
        block["fields"] = [
            mrkdwn(clip(f"*{mrkdwn_escape(name)}*\n{value_text(value)}", MAX_FIELD))
            for name, value in section.fields[:MAX_FIELDS]
        ]
    return [block, *_actions(codec, section.buttons)]


def fallback_text(text: str) -> str:
    return clip(mrkdwn_escape(text), 3000)


def message(codec: ActionCodec, reply: Reply, max_blocks: int = MAX_BLOCKS) -> dict:
    """chat.postMessage arguments (text and blocks) for a reply or a direct message."""
    blocks = _text_blocks(mrkdwn_escape(reply.text))
    blocks += _actions(codec, reply.buttons)
    sections = list(reply.sections)
    for number, section in enumerate(sections):
        more = section_blocks(codec, section)
        if len(blocks) + len(more) > max_blocks - 1:
            rest = len(sections) - number
            blocks.append({"type": "context", "elements": [mrkdwn(f"… and {rest} more not shown here.")]})
            break
        blocks += more
    return {"text": fallback_text(reply.text), "blocks": blocks[:max_blocks]}


def messages(codec: ActionCodec, reply: Reply) -> list[dict]:
    """A message to a person or a channel whole, in as many chat.postMessage calls as Slack's 50
    blocks take, each section with its buttons: a day's held messages sent together are four
    blocks each, and cut at 50 the rest were never read. Answers and views are cut (message())."""
    groups = [[block] for block in _text_blocks(mrkdwn_escape(reply.text))] or [[]]
    groups[-1] += _actions(codec, reply.buttons)
    groups += [section_blocks(codec, section) for section in reply.sections]
    chunks: list[list[dict]] = [[]]
    for group in groups:
        if chunks[-1] and len(chunks[-1]) + len(group) > MAX_BLOCKS:
            chunks.append([])
        chunks[-1] += group
    if len(chunks) == 1:
        return [{"text": fallback_text(reply.text), "blocks": chunks[0]}]
    return [
        {"text": fallback_text(f"{reply.text} (part {n} of {len(chunks)})"), "blocks": chunk}
        for n, chunk in enumerate(chunks, 1)
    ]


def home_view(codec: ActionCodec, reply: Reply) -> dict:
    return {"type": "home", "blocks": message(codec, reply, HOME_MAX_BLOCKS)["blocks"]}


def _modal(callback_id: str, metadata: dict, title: str, submit: str, blocks: list[dict]) -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": clip(title, 24)},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def submit_modal(text: str, channel: str, ts: str, own: bool = False) -> dict:
    """The "Log as friction" modal, prefilled with the message it was opened on (`own`: one the
    person logging it wrote)."""
    return _modal(
        SUBMIT_VIEW,
        {"channel": channel, "ts": ts, "own": own},
        "Log as friction",
        "Log it",
        [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "What got in the way"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "initial_value": clip(text, 3000),
                },
            },
            {
                "type": "input",
                "block_id": "anonymous",
                "optional": True,
                "label": {"type": "plain_text", "text": "Anonymity"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "anonymous",
                    "options": [{"text": {"type": "plain_text", "text": "Log it anonymously"}, "value": "yes"}],
                },
            },
        ],
    )


def note_modal(encoded_action: str, label: str) -> dict:
    """Asks for the note a status change needs; it goes back to every reporter of the theme."""
    return _modal(
        NOTE_VIEW,
        {"action": encoded_action},
        label,
        "Send",
        [
            {
                "type": "input",
                "block_id": "note",
                "label": {"type": "plain_text", "text": "What changed? Every reporter of this theme reads this."},
                "element": {"type": "plain_text_input", "action_id": "note", "multiline": True, "max_length": 1900},
            }
        ],
    )
