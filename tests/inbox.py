"""A platform that keeps what people were sent, to assert what they would see; and delivery of
the outbox through it, as `serve` does (the service's budget, day and clock)."""

import asyncio
from dataclasses import dataclass

from bot.messages import Reply
from bot.pipeline import delivery_worker
from bot.router import ONE_GO, Parts, Router, SendFailed
from bot.service import FrictionService
from digests.digest import Digest


@dataclass(frozen=True)
class Seen:
    kind: str  # reply, notify, digest
    to: str
    message: Reply | Digest

    @property
    def text(self) -> str:
        """Everything a person reads in it: the text, then each section's title, text and fields."""
        if isinstance(self.message, Digest):
            return str(self.message.week)
        parts = [self.message.text]
        for section in self.message.sections:
            parts += [section.title, section.text, *(f"{name}: {value}" for name, value in section.fields)]
        return "\n".join(part for part in parts if part)

    @property
    def buttons(self) -> list[str]:
        if isinstance(self.message, Digest):
            return []
        return [b.label for b in self.message.buttons] + [
            b.label for section in self.message.sections for b in section.buttons
        ]


class Inbox:
    def __init__(self, name: str = "test", fail_digests: SendFailed | None = None):
        self.name = name
        self.seen: list[Seen] = []
        self.fail_digests = fail_digests

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        self.seen.append(Seen("reply", to["user"], reply))

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        self.seen.append(Seen("notify", user_id, message))

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        if self.fail_digests is not None:
            raise self.fail_digests
        self.seen.append(Seen("digest", channel, digest))
        await parts.sent(1)

    async def display_name(self, user_id: str) -> str | None:
        return None

    def to(self, user: str, kind: str = "notify") -> list[Seen]:
        return [item for item in self.seen if item.to == user and item.kind == kind]

    def take(self) -> list[Seen]:
        taken, self.seen = self.seen, []
        return taken


def deliver(service: FrictionService, *platforms: Inbox, **options) -> None:
    """Send everything that is due now, as the delivery worker in `serve` would."""
    outbox = delivery_worker(service, Router(platforms), **options)

    async def drain() -> None:
        while await outbox.send_due():
            pass

    asyncio.run(drain())
