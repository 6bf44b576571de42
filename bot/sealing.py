"""Reaching people without storing who they are in clear.

Every submission and "me too" keeps its sender's platform and user id encrypted with a key derived
from FRICTIONLOG_SECRET_KEY (Fernet: AES-128-CBC with HMAC-SHA256). Only the core opens it, and
only to deliver a message through the bot (an owner's resolution note to anonymous reporters).
The value is never shown, logged or exported.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

SEPARATOR = "\x1f"


class Sealer:
    def __init__(self, secret_key: str):
        digest = hashlib.sha256(b"frictionlog-seal-v1:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, platform: str, user: str) -> str:
        return self._fernet.encrypt(f"{platform}{SEPARATOR}{user}".encode()).decode()

    def open(self, sealed: str | None) -> tuple[str, str] | None:
        """(platform, user), or None when absent or sealed with another key."""
        if not sealed:
            return None
        try:
            platform, _, user = self._fernet.decrypt(sealed.encode()).decode().partition(SEPARATOR)
        except (InvalidToken, ValueError):
            return None
        return (platform, user) if user else None

    def seal_bytes(self, data: bytes) -> str:
        """Anything that may name a person (an outbox recipient, an inbound event), sealed."""
        return self._fernet.encrypt(data).decode()

    def open_bytes(self, sealed: str | None) -> bytes | None:
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode())
        except InvalidToken:
            return None

    def __repr__(self) -> str:
        return "Sealer(<key hidden>)"
