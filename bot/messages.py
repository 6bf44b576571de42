"""Platform-neutral events in and replies out: what adapters translate to and from."""

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from bot.actions import Action
from bot.people import Person

EventKind = Literal["message", "submission", "action", "home"]


@dataclass(frozen=True)
class Inbound:
    """One inbound event, whatever platform it came from.

    kind: "message" (a DM, a mention, a slash command: text in the command grammar),
    "submission" (a form whose text is logged as it is, never read as a command),
    "action" (a button press or a completed form, as a typed action), "home" (the person opened
    their home page). `delivery_id` is the platform's id for this delivery; the core
    de-duplicates on it in the database. `reply_to` says where the platform wants the answer;
    only the adapter reads it."""

    user: str  # the platform's stable user id
    text: str = ""
    platform: str = "console"
    kind: EventKind = "message"
    action: Annotated[Action | None, Field(discriminator="kind")] = None
    user_name: str | None = None
    channel: str | None = None
    delivery_id: str | None = None
    anonymous: bool = False
    source_url: str | None = None  # a link to the original message (shortcuts)
    # Groups the platform says the user belongs to (e.g. Slack user group handles, without @).
    # The adapter only reports membership; whether a group makes someone a lead is the core's rule.
    groups: frozenset[str] = frozenset()
    reply_to: dict = field(default_factory=dict)
    # The person is looking at their home page: answer by drawing it again.
    from_home: bool = False

    @property
    def person(self) -> Person:
        return Person(self.platform, self.user)

    def __repr__(self) -> str:  # keeps ids and text out of logs and tracebacks
        return f"Inbound(platform={self.platform!r}, kind={self.kind!r})"


@dataclass(frozen=True)
class Button:
    label: str
    action: Annotated[Action, Field(discriminator="kind")]
    style: str | None = None  # "primary" or "danger"
    preset: Person | None = None  # a person picker's first choice (the current owner)


@dataclass(frozen=True)
class Section:
    """A block of a reply. Text is plain text: adapters escape it for their markup.
    A field's value is text, or a Person the platform shows as that person (a mention, a name)."""

    title: str = ""
    text: str = ""
    fields: tuple[tuple[str, str | Person], ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Notification:
    """A message to someone other than the sender (a new owner, the reporters of a theme).

    For anonymous reporters `to` comes out of the sealed column only for this delivery and is
    stored sealed in the outbox, never shown, logged or stored in clear."""

    to: Person
    text: str
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()
    label: str = ""  # what it is, for `frictionlog outbox` (never names the person)
    # Sent instead, with the reason added, when this one cannot be delivered for good.
    if_undeliverable: "Notification | None" = None
    # Unprompted (a reminder, a notice): counts against the recipient's daily DM budget
    # (FRICTIONLOG_DM_BUDGET; bot/outbox.py). False for what answers the person's own act.
    budgeted: bool = True

    def __repr__(self) -> str:
        return f"Notification({self.to!r}, text={self.text[:40]!r}…)"


@dataclass(frozen=True)
class Reply:
    text: str
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()
    ok: bool = True
    private: bool = True  # shown to the sender only where the platform allows it
    notifications: tuple[Notification, ...] = ()
    # True when this answers a delivery already handled (a platform retry, a double submit):
    # nothing is sent again.
    duplicate: bool = False
