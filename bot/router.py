"""The platforms frictionlog talks to, behind one interface, and the router that picks one.

Adapters implement ChatPlatform (Slack, Teams, the console); the core never knows which. A
message for a platform that is not configured is not dropped: the outbox keeps it as
undeliverable, with that reason, until the platform is configured and it is retried.
"""

import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from bot.messages import Reply
from bot.people import Person
from digests.digest import Digest

log = logging.getLogger(__name__)
PartsSent = Callable[[int], Awaitable[None]]
T = TypeVar("T")


async def _nowhere(_number: int) -> None:
    pass


@dataclass(frozen=True)
class Parts:
    """A message the platform takes in several parts (over Slack's 50 blocks, over a Teams card's
    size): how many an earlier attempt sent, to skip, and where to record each one sent, so that a
    retry goes on from there and sends no part twice."""

    done: int = 0
    sent: PartsSent = _nowhere

    def rest(self, parts: Sequence[T]) -> Iterator[tuple[int, T]]:
        """The parts an earlier attempt did not send, each with its number (from 1)."""
        return enumerate(parts[self.done :], self.done + 1)


ONE_GO = Parts()


def retry_after(header: str | None, default: float | None = None) -> float | None:
    """A Retry-After header's wait in seconds: it may be a number of seconds or an HTTP date
    (RFC 9110). `default` when it is absent or unreadable."""
    if not header:
        return default
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds()) if when.tzinfo else default


class SendFailed(Exception):
    """A send the platform refused or could not take. `permanent`: trying again cannot help
    (a 4xx other than 429, a channel that does not exist); otherwise it is retried, after
    `retry_after` seconds when the platform said so (429). `try_direct`: for a reply, a plain
    direct message to the sender may still work."""

    def __init__(
        self, reason: str, *, permanent: bool = False, retry_after: float | None = None, try_direct: bool = False
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        # A reply that failed where it was asked (an expired response_url) may still reach its
        # sender as plain text in a direct message; a person who blocked the bot may not.
        self.try_direct = try_direct


class ChatPlatform(Protocol):
    name: str  # as in Inbound.platform: "slack", "teams", "console"

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        """Answer a sender where they asked. `to` is what the adapter put in Inbound.reply_to, plus
        the core's keys: "user" (the sender's id), "home" (draw their home page with this),
        "direct" and "plain" (the last resort: text alone, in a direct message)."""

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        """Message one person directly (a new owner, a reporter hearing about a resolution)."""

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        """Post the weekly digest to one channel, split as the platform needs, skipping the parts
        an earlier attempt sent and recording each part sent (every one, even a single part: a
        digest must never go out twice)."""

    async def display_name(self, user_id: str) -> str | None:
        """The person's name as the platform shows it (cached by the adapter), or None."""


class Router:
    def __init__(self, platforms: Iterable[ChatPlatform] = ()):
        self._platforms = {platform.name: platform for platform in platforms}

    def add(self, platform: ChatPlatform) -> None:
        self._platforms[platform.name] = platform

    def platform(self, name: str) -> ChatPlatform | None:
        return self._platforms.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._platforms)

    async def display_name(self, person: Person) -> str:
        """A name for people to read; the id only when the platform cannot say."""
        platform = self._platforms.get(person.platform)
        if platform is not None:
            try:
                name = await platform.display_name(person.id)
            except Exception as error:
                log.warning("no display name from %s (%s)", person.platform, type(error).__name__)
                name = None
            if name:
                return name
        return person.id

    async def display_names(self, people: Iterable[Person]) -> dict[Person, str]:
        return {person: await self.display_name(person) for person in set(people)}
