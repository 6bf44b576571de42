"""Core replies (Reply, Section, Button) as Block Kit, and the modals and Home view.

Every piece of text from the core is escaped for mrkdwn: it may hold staff text, and staff text
never pings or links anyone. The only mentions we write are of people the core marks as such
(messages.Person, e.g. a theme's owner).
"""

import json
import re

from bot.messages import Button, Notification, Person, Reply, Section
from digests.blocks import MAX_BLOCKS, MAX_SECTION, clip, mrkdwn, mrkdwn_escape

SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
MAX_FIELD = 2000
MAX_FIELDS = 10
MAX_BUTTONS = 25
HOME_MAX_BLOCKS = 100
SUBMIT_VIEW = "log_friction"
NOTE_VIEW = "status_note"
SHORTCUT = "log_as_friction"


def person(user: str) -> str:
    """A mention for a Slack user id; anything else (a console name) as escaped text."""
    return f"<@{user}>" if SLACK_USER_ID.fullmatch(user) else mrkdwn_escape(user)


def value_text(value: str) -> str:
    return person(value) if isinstance(value, Person) else mrkdwn_escape(value)


def action_id(button: Button, index: int) -> str:
    """Unique within a block; the action name first, "|note" when a note must be asked for."""
    return f"{button.action}|{index}" + ("|note" if button.needs_note else "")


def parse_action_id(text: str) -> tuple[str, bool]:
    parts = text.split("|")
    return parts[0], "note" in parts[2:]


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


def _element(button: Button, index: int, owner: str | None = None) -> dict:
    if button.action == "assign":  # a person picker; pressed with "theme_id:user"
        element = {
            "type": "users_select",
            "action_id": f"assign|{button.value}",
            "placeholder": {"type": "plain_text", "text": clip(button.label or "Owner", 150)},
        }
        if owner and SLACK_USER_ID.fullmatch(owner):
            element["initial_user"] = owner
        return element
    element = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(button.label, 75)},
        "action_id": action_id(button, index),
        "value": button.value[:2000],
    }
    if button.style in ("primary", "danger"):
        element["style"] = button.style
    return element


def _actions(buttons: tuple[Button, ...], owner: str | None = None) -> list[dict]:
    if not buttons:
        return []
    return [{"type": "actions", "elements": [_element(b, i, owner) for i, b in enumerate(buttons[:MAX_BUTTONS])]}]


def section_blocks(section: Section) -> list[dict]:
    head = f"*{mrkdwn_escape(section.title)}*" if section.title else ""
    body = mrkdwn_escape(section.text)
    text = clip("\n".join(filter(None, (head, body))), MAX_SECTION)
    block: dict = {"type": "section", "text": mrkdwn(text or " ")}
    if section.fields:
        block["fields"] = [
            mrkdwn(clip(f"*{mrkdwn_escape(name)}*\n{value_text(value)}", MAX_FIELD))
            for name, value in section.fields[:MAX_FIELDS]
        ]
    owner = next((value for name, value in section.fields if name == "Owner" and isinstance(value, Person)), None)
    return [block, *_actions(section.buttons, owner)]


def fallback_text(text: str) -> str:
    return clip(mrkdwn_escape(text), 3000)


def message(reply: Reply | Notification, max_blocks: int = MAX_BLOCKS) -> dict:
    """chat.postMessage arguments (text and blocks) for a reply or notification."""
    blocks = _text_blocks(mrkdwn_escape(reply.text))
    blocks += _actions(reply.buttons)
    sections = list(reply.sections)
    for number, section in enumerate(sections):
        more = section_blocks(section)
        if len(blocks) + len(more) > max_blocks - 1:
            rest = len(sections) - number
            blocks.append({"type": "context", "elements": [mrkdwn(f"… and {rest} more not shown here.")]})
            break
        blocks += more
    return {"text": fallback_text(reply.text), "blocks": blocks[:max_blocks]}


def home_view(reply: Reply) -> dict:
    return {"type": "home", "blocks": message(reply, HOME_MAX_BLOCKS)["blocks"]}


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


def submit_modal(text: str, channel: str, ts: str) -> dict:
    """The "Log as friction" modal, prefilled with the message it was opened on."""
    return _modal(
        SUBMIT_VIEW,
        {"channel": channel, "ts": ts},
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


def note_modal(action: str, value: str, label: str) -> dict:
    """Asks for the note a status change needs; it goes back to every reporter of the theme."""
    return _modal(
        NOTE_VIEW,
        {"action": action, "value": value},
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
