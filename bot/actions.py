"""Buttons and forms as small frozen values, and the one codec that turns them into the opaque
string a platform carries (a Slack button value, an Adaptive Card's data) and back.

The string is signed with a key derived from FRICTIONLOG_SECRET_KEY: a value someone edited or
made up is refused, never parsed into an action. Who may do what is still checked by the core
when the action runs; the signature only proves the button is one frictionlog drew.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from bot.people import Person

VERSION = "fl1"
SIGNATURE_BYTES = 12
THEME_STATUSES = ("new", "acknowledged", "in_progress", "resolved", "wont_fix")


@dataclass(frozen=True)
class Undo:
    submission_id: int
    kind: Literal["undo"] = "undo"


@dataclass(frozen=True)
class MakeAnonymous:
    submission_id: int
    kind: Literal["anonymous"] = "anonymous"


@dataclass(frozen=True)
class DifferentIssue:
    submission_id: int
    kind: Literal["different_issue"] = "different_issue"


@dataclass(frozen=True)
class MeToo:
    theme_id: int
    kind: Literal["me_too"] = "me_too"


@dataclass(frozen=True)
class SetStatus:
    """Set a theme's status; resolved and won't fix need a note, asked for by the platform."""

    theme_id: int
    status: str
    note: str = ""
    kind: Literal["status"] = "status"


@dataclass(frozen=True)
class AssignOwner:
    """Give a theme an owner; the platform asks who (a person picker) and fills `owner` in."""

    theme_id: int
    owner: Person | None = None
    kind: Literal["assign"] = "assign"


@dataclass(frozen=True)
class MergeThemes:
    source_id: int
    target_id: int
    kind: Literal["merge"] = "merge"


@dataclass(frozen=True)
class NotTheSame:
    """A lead's answer to "Same problem?": two themes to keep apart, and never to ask about again."""

    theme_id: int
    other_id: int
    kind: Literal["distinct"] = "distinct"


Action = Undo | MakeAnonymous | DifferentIssue | MeToo | SetStatus | AssignOwner | MergeThemes | NotTheSame
KINDS: dict[str, type] = {
    cls.kind: cls  # type: ignore[attr-defined]
    for cls in (Undo, MakeAnonymous, DifferentIssue, MeToo, SetStatus, AssignOwner, MergeThemes, NotTheSame)
}


def asks_for_note(action: Action) -> bool:
    return isinstance(action, SetStatus) and action.status in ("resolved", "wont_fix") and not action.note


def asks_for_person(action: Action) -> bool:
    return isinstance(action, AssignOwner) and action.owner is None


def with_note(action: Action, note: str) -> Action:
    """The action a note form completes (the note as the person typed it, whitespace folded)."""
    if not isinstance(action, SetStatus):
        raise ForgedAction("this action takes no note")
    return replace(action, note=" ".join(note.split()))


def with_person(action: Action, person: Person) -> Action:
    """The action a person picker completes."""
    if not isinstance(action, AssignOwner):
        raise ForgedAction("this action takes no person")
    return replace(action, owner=person)


class ForgedAction(ValueError):
    """A value that is not an action frictionlog signed: edited, made up, or from another key."""


class ActionCodec:
    def __init__(self, secret_key: str):
        self._key = hashlib.sha256(b"frictionlog-actions-v1:" + secret_key.encode()).digest()

    def _sign(self, body: bytes) -> str:
        digest = hmac.new(self._key, body, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def encode(self, action: Action) -> str:
        data = {k: v for k, v in asdict(action).items() if v not in (None, "")}
        if isinstance(action, AssignOwner) and action.owner is not None:
            data["owner"] = [action.owner.platform, action.owner.id]
        body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{VERSION}.{body}.{self._sign(body.encode())}"

    def decode(self, text: str) -> Action:
        try:
            version, body, signature = text.split(".")
        except (AttributeError, ValueError):
            raise ForgedAction("not an action") from None
        if version != VERSION or not hmac.compare_digest(signature, self._sign(body.encode())):
            raise ForgedAction("bad signature")
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            cls = KINDS[data["kind"]]
            if "owner" in data:
                data["owner"] = Person(*data["owner"])
            action = cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except (KeyError, TypeError, ValueError) as error:
            raise ForgedAction("malformed action") from error
        if isinstance(action, SetStatus) and action.status not in THEME_STATUSES:
            raise ForgedAction("unknown status")
        return action
