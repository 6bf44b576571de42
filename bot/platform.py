"""The one interface every chat platform implements (Slack, Teams, the console).

Adapters translate; the core decides what to say and to whom. Methods are coroutines because
every platform SDK we use is asyncio-based.
"""

from typing import Protocol

from bot.messages import Notification, Reply
from digests.digest import Digest


class ChatPlatform(Protocol):
    name: str  # as in Request.platform: "slack", "teams", "console"

    async def reply(self, destination: object, reply: Reply) -> None:
        """Answer the sender where they asked (a platform-specific destination)."""

    async def notify(self, notification: Notification) -> None:
        """Message one person directly (a new owner, a reporter hearing about a resolution)."""

    async def post_digest(self, channel: str, digest: Digest) -> None:
        """Post the weekly digest to one channel, split as the platform needs."""
