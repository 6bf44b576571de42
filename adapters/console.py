"""The console adapter: type messages and commands exactly as in Slack, through the same core,
the same inbound pipeline and the same outbox (`frictionlog chat`)."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.actions import asks_for_note, asks_for_person, with_note, with_person
from bot.messages import Button, Inbound, Reply
from bot.people import Person
from bot.pipeline import Pipeline
from bot.router import ONE_GO, Parts, Router
from bot.service import FrictionService
from digests.digest import Digest
from digests.render import render_text


def format_reply(reply: Reply) -> str:
    lines = [reply.text]
    for section in reply.sections:
        lines.append("")
        if section.title:
            lines.append(f"  {section.title}")
        lines.extend(f"  {line}" for line in section.text.splitlines() if line)
        if section.fields:
            lines.append("  " + " · ".join(f"{name}: {_value(value)}" for name, value in section.fields))
    return "\n".join(lines)


def _value(value) -> str:
    return value.id if isinstance(value, Person) else str(value)


@dataclass
class Received:
    """What the console platform was asked to show someone."""

    kind: str  # reply, notify, digest
    to: str  # the user, or the digest's channel
    text: str
    buttons: list[Button] = field(default_factory=list)


class ConsolePlatform:
    """Messages for console users land here, to be printed (or read by tests)."""

    name = "console"

    def __init__(self):
        self.received: list[Received] = []

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        self._keep("reply", to["user"], reply)

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        self._keep("notify", user_id, message)

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        if parts.done == 0:
            self.received.append(Received("digest", channel, render_text(digest)))
            await parts.sent(1)

    async def display_name(self, user_id: str) -> str | None:
        return user_id  # console people are called what they typed

    def _keep(self, kind: str, user: str, reply: Reply) -> None:
        buttons = list(reply.buttons) + [b for s in reply.sections for b in s.buttons]
        self.received.append(Received(kind, user, format_reply(reply), buttons))

    def take(self) -> list[Received]:
        taken, self.received = self.received, []
        return taken


class ConsoleChat:
    """One person's chat session; buttons become numbered actions (`!1`, `!2`, …), and a button
    that needs a note or a person takes it after the number (`!3 fixed on Monday`, `!1 dana`)."""

    def __init__(self, service: FrictionService, user: str):
        self.service = service
        self.user = user
        self.platform = ConsolePlatform()
        self.pipeline = Pipeline(service, Router([self.platform]), own_platforms_only=True)
        self.buttons: list[Button] = []

    def _event(self, **fields) -> Inbound:
        return Inbound(
            user=self.user,
            user_name=self.user,
            platform="console",
            channel="console",
            delivery_id=f"console-{uuid.uuid4().hex}",
            **fields,
        )

    def send(self, line: str) -> str:
        line = line.strip()
        if line.startswith("!") and line[1:].split(" ", 1)[0].isdigit():
            number, _, extra = line[1:].partition(" ")
            if not 1 <= int(number) <= len(self.buttons):
                return "No such action. Actions are listed under the last reply."
            action = self.buttons[int(number) - 1].action
            if asks_for_note(action):
                if not extra.strip():
                    return f"Add a note after the number: !{number} <what changed>"
                action = with_note(action, extra)
            elif asks_for_person(action):
                if not extra.strip():
                    return f"Name the owner after the number: !{number} <user>"
                action = with_person(action, Person.parse(extra, "console"))
            event = self._event(kind="action", action=action)
        else:
            event = self._event(text=line)
        asyncio.run(self._run(event))
        shown = []
        for received in self.platform.take():
            if received.kind == "reply" and received.to == self.user:
                self.buttons = received.buttons
                actions = "  ".join(f"!{i} {b.label}" for i, b in enumerate(self.buttons, 1))
                shown.append(received.text + (f"\n\nActions: {actions}" if actions else ""))
            else:
                shown.append(f"[to {received.to}] {received.text}")
        return "\n\n".join(shown)

    async def _run(self, event: Inbound) -> None:
        await self.pipeline.receive(event)
        await self.pipeline.drain()


def run_console(service: FrictionService, user: str, read: Callable[[str], str], write: Callable[[str], None]) -> None:
    chat = ConsoleChat(service, user)
    write(f"frictionlog chat as {user}. Type what got in your way, or `help`. Ctrl-D to leave.")
    while True:
        try:
            line = read("> ")
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if line.strip().lower() in {"quit", "exit"}:
            return
        if line.strip():
            write(chat.send(line))
