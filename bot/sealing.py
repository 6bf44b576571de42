"""Reaching people without storing who they are in clear.

Every submission and "me too" keeps its sender's platform and user id encrypted with a key derived
from FRICTIONLOG_SECRET_KEY (Fernet: AES-128-CBC with HMAC-SHA256). Only the core opens it, and
only to deliver a message through the bot (an owner's resolution note to anonymous reporters).
The value is never shown, logged or exported.

Who someone is, without saying who: `person_hash` is a keyed hash of (platform, id), the same
for a submission's author, a "me too", a quiet person and an outbox recipient (the daily DM
budget is counted on it), and useless without the key.
"""

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

SEPARATOR = "\x1f"


class Sealer:
    def __init__(self, secret_key: str):
        digest = hashlib.sha256(b"frictionlog-seal-v1:" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._hash_key = secret_key.encode()

    def person_hash(self, platform: str, user: str) -> str:
        """A keyed hash of platform:user: "mine", undo, me-too and the DM budget work without storing who."""
        return hmac.new(self._hash_key, f"{platform}:{user}".encode(), hashlib.sha256).hexdigest()[:40]

    def token(self, *parts: str) -> str:
        """A keyed hash of any parts, for an id that is compared but must not be read back: a Teams
        delivery key made of a chat's id and a message's would lead an anonymous report to its chat."""
        text = SEPARATOR.join(("token", *parts))
        return hmac.new(self._hash_key, text.encode(), hashlib.sha256).hexdigest()[:40]

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
