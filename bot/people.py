"""A person is (platform, id) everywhere the core keeps one: reporter, voter, owner, lead, admin.

Ids are what is stored; display names come from the platform at the edge (bot.router).
"""

import re
from dataclasses import dataclass

# A platform name as written before a colon in commands and settings: "teams:29:1abc", "slack:U123".
PLATFORM_PREFIX = re.compile(r"^(slack|teams|console|test):(.+)$")


@dataclass(frozen=True)
class Person:
    platform: str
    id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.id}"

    def __repr__(self) -> str:  # keeps ids out of logs and tracebacks
        return f"Person({self.platform!r}, <id hidden>)"

    @classmethod
    def parse(cls, text: str, default_platform: str) -> "Person":
        """`@U123` or `U123` on the writer's own platform; `teams:29:1abc` names another one."""
        text = text.strip().lstrip("@")
        match = PLATFORM_PREFIX.match(text)
        if match:
            return cls(match.group(1), match.group(2).lstrip("@"))
        return cls(default_platform, text)

    @classmethod
    def stored(cls, platform: str | None, user_id: str | None) -> "Person | None":
        """A person from two stored columns; None when nobody is stored."""
        return cls(platform or "console", user_id) if user_id else None
