"""The console adapter: type messages and commands exactly as in Slack, through the same core."""

from collections.abc import Callable
from itertools import count

from bot.messages import Button, Reply, Request
from bot.service import FrictionService


def format_reply(reply: Reply) -> str:
    lines = [reply.text]
    for section in reply.sections:
        lines.append("")
        if section.title:
            lines.append(f"  {section.title}")
        lines.extend(f"  {line}" for line in section.text.splitlines() if line)
        if section.fields:
            lines.append("  " + " · ".join(f"{name}: {value}" for name, value in section.fields))
    return "\n".join(lines)


class ConsoleChat:
    """One person's chat session; buttons become numbered actions (`!1`, `!2`, …)."""

    def __init__(self, service: FrictionService, user: str):
        self.service = service
        self.user = user
        self.buttons: list[Button] = []
        self._ids = count(1)

    def _request(self, text: str) -> Request:
        return Request(
            user=self.user,
            user_name=self.user,
            text=text,
            platform="console",
            channel="console",
            event_id=f"console-{self.user}-{id(self)}-{next(self._ids)}",
        )

    def send(self, line: str) -> str:
        line = line.strip()
        if line.startswith("!") and line[1:].isdigit():
            number = int(line[1:])
            if not 1 <= number <= len(self.buttons):
                return "No such action. Actions are listed under the last reply."
            button = self.buttons[number - 1]
            reply = self.service.press(self._request(line), button.action, button.value)
        else:
            reply = self.service.handle(self._request(line))
        self.buttons = list(reply.buttons) + [b for s in reply.sections for b in s.buttons]
        actions = "  ".join(f"!{i} {b.label}" for i, b in enumerate(self.buttons, 1))
        return format_reply(reply) + (f"\n\nActions: {actions}" if actions else "")


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
