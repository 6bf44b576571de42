"""Platform-neutral requests and replies: what adapters translate to and from."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """One inbound message or command, whatever platform it came from."""

    user: str  # the platform's stable user id
    text: str
    platform: str = "console"
    user_name: str | None = None
    channel: str | None = None
    event_id: str | None = None  # the platform's delivery id, for de-duplication
    anonymous: bool = False
    source_url: str | None = None  # a link to the original message (shortcuts)
    # Groups the platform says the user belongs to (e.g. Slack user group handles, without @).
    # The adapter only reports membership; whether a group makes someone a lead is the core's rule.
    groups: frozenset[str] = frozenset()


class Person(str):
    """A user id shown as a person: adapters may render it as a mention (Slack `<@U…>`).
    Everywhere else it is the plain id, so text formatting keeps working unchanged."""

    __slots__ = ()


@dataclass(frozen=True)
class Button:
    label: str
    # undo, anonymous, different_issue, me_too, status ("theme_id:status"), assign (value: theme id;
    # adapters render it as a person picker and press it with "theme_id:user")
    action: str
    value: str
    style: str | None = None  # "primary" or "danger"
    # Ask for a note before pressing (resolved, won't fix); pressed with value + ":" + the note.
    needs_note: bool = False


@dataclass(frozen=True)
class Section:
    """A block of a reply. Text is plain text: adapters escape it for their markup."""

    title: str = ""
    text: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class Notification:
    """A message to someone other than the sender (a new owner, the reporters of a theme).

    `user` is that person's platform user id; for anonymous reporters it comes out of the sealed
    column only for this delivery and is never shown, logged or stored in clear."""

    user: str
    platform: str
    text: str
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()

    def __repr__(self) -> str:  # keeps ids out of logs and tracebacks
        return f"Notification(platform={self.platform!r}, text={self.text[:40]!r}…)"


@dataclass(frozen=True)
class Reply:
    text: str
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()
    ok: bool = True
    private: bool = True  # shown to the sender only where the platform allows it
    notifications: tuple[Notification, ...] = ()
    # True when this answers a delivery already handled (a platform retry, a double submit):
    # adapters need not post it again.
    duplicate: bool = False
