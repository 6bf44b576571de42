"""Everything that goes out: written to the outbox in the same transaction as the change that
causes it, then sent once by the delivery worker through the recipient's platform.

Exactly once: each row is claimed in the database before it is sent (storage.queries.claim_message),
so replicas never send the same row twice; a claim whose process died mid-send runs out after
the lease and the row is sent again once. The one window left is a process killed after the
platform accepted a message and before the row was marked sent: that message may go out twice.

Retries: 429 waits `Retry-After`; 5xx, timeouts and connection errors back off exponentially with
jitter; any other refusal is recorded as failed with the platform's reason. A reply that cannot
be delivered where it was asked (an expired response_url) is sent once more as plain text to
the sender directly. Outbox times are the system's, not the service's (injectable) clock.
"""

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.messages import Notification, Reply
from bot.router import Router, SendFailed
from bot.sealing import Sealer
from digests.digest import Digest
from storage import queries
from storage.db import session_scope
from storage.models import OutboxMessage, utcnow

log = logging.getLogger(__name__)
REPLY = TypeAdapter(Reply)
DIGEST = TypeAdapter(Digest)
RECIPIENT = TypeAdapter(dict)
NOTIFICATION = TypeAdapter(Notification)


# Writing: always inside the caller's transaction --------------------------------------------


def _row(sealer: Sealer, *, platform: str, kind: str, recipient: dict, body: bytes, label: str) -> OutboxMessage:
    now = utcnow()
    return OutboxMessage(
        platform=platform,
        kind=kind,
        label=label[:200],
        recipient_sealed=sealer.seal_bytes(RECIPIENT.dump_json(recipient)),
        body_sealed=sealer.seal_bytes(body),
        next_attempt_at=now,
        created_at=now,
    )


def enqueue_reply(session: Session, sealer: Sealer, *, platform: str, to: dict, reply: Reply, label: str) -> None:
    """The answer to a sender; `to` holds "user" and what the adapter asked for in reply_to."""
    body = REPLY.dump_json(replace(reply, notifications=()))
    session.add(_row(sealer, platform=platform, kind="reply", recipient=to, body=body, label=label))


def enqueue_notification(session: Session, sealer: Sealer, notification: Notification) -> None:
    message = Reply(notification.text, notification.sections, notification.buttons)
    row = _row(
        sealer,
        platform=notification.to.platform,
        kind="notify",
        recipient={"user": notification.to.id},
        body=REPLY.dump_json(message),
        label=notification.label or "a direct message",
    )
    if notification.if_undeliverable is not None:
        row.if_undeliverable_sealed = sealer.seal_bytes(NOTIFICATION.dump_json(notification.if_undeliverable))
    session.add(row)


def enqueue_digest(session: Session, sealer: Sealer, *, platform: str, channel: str, digest: Digest) -> int:
    """Queue a digest for one channel; returns the outbox message's id."""
    row = _row(
        sealer,
        platform=platform,
        kind="digest",
        recipient={"channel": channel},
        body=DIGEST.dump_json(digest),
        label=f"digest {digest.week} to {platform}:{channel}",
    )
    session.add(row)
    session.flush()
    return row.id


# Sending --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    platform: str
    kind: str
    label: str
    recipient: dict
    body: bytes
    attempts: int
    parts_done: int
    if_undeliverable: bytes | None = None


class Outbox:
    """The delivery worker: claims due messages and sends them through the router."""

    def __init__(
        self,
        engine: Engine,
        router: Router,
        sealer: Sealer,
        *,
        lease: float = 60.0,
        max_attempts: int = 8,
        backoff: float = 2.0,
        max_backoff: float = 600.0,
        concurrency: int = 8,
        platforms: list[str] | None = None,
    ):
        self.engine = engine
        self.router = router
        self.sealer = sealer
        self.lease = timedelta(seconds=lease)
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        # None: every message (a platform not configured here is undeliverable); a list: only those
        # platforms' messages (`frictionlog chat` must not take Slack's messages from `serve`).
        self.platforms = platforms
        self.worker = f"outbox-{uuid.uuid4().hex[:12]}"
        self.concurrency = concurrency

    async def send_due(self, limit: int = 100) -> int:
        """Send what is due now (one pass); returns how many messages this worker claimed."""
        claimed = await asyncio.to_thread(self._claim_due, limit)
        limiter = asyncio.Semaphore(self.concurrency)
        outcomes = await asyncio.gather(*(self._send(message, limiter) for message in claimed))
        sent = [message.id for message, ok in zip(claimed, outcomes, strict=True) if ok]
        if sent:
            await asyncio.to_thread(self._mark_sent, sent)
        return len(claimed)

    def _mark_sent(self, message_ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            queries.mark_sent(session, message_ids=message_ids, worker=self.worker, at=utcnow())

    def _claim_due(self, limit: int) -> list[Claimed]:
        """Claim due messages in one statement: another replica's claims are skipped, not taken."""
        now = utcnow()
        claimed = []
        with session_scope(self.engine) as session:
            candidates = queries.due_messages(session, now=now, limit=limit, platforms=self.platforms)
            taken = queries.claim_messages(
                session, message_ids=candidates, worker=self.worker, now=now, until=now + self.lease
            )
            for row in queries.outbox_rows(session, message_ids=taken):
                recipient = self.sealer.open_bytes(row.recipient_sealed)
                body = self.sealer.open_bytes(row.body_sealed)
                if recipient is None or body is None:
                    queries.settle_message(
                        session,
                        message_id=row.id,
                        worker=self.worker,
                        state="failed",
                        at=now,
                        error="sealed with another FRICTIONLOG_SECRET_KEY",
                    )
                    continue
                claimed.append(
                    Claimed(
                        row.id,
                        row.platform,
                        row.kind,
                        row.label,
                        RECIPIENT.validate_json(recipient),
                        body,
                        row.attempts,
                        row.parts_done,
                        self.sealer.open_bytes(row.if_undeliverable_sealed),
                    )
                )
        return claimed

    async def _send(self, message: Claimed, limiter: asyncio.Semaphore) -> bool:
        """Send one claimed message; True when it went out (marked sent with the rest of the pass)."""
        async with limiter:
            platform = self.router.platform(message.platform)
            if platform is None:
                reason = f"{message.platform} is not configured here"
                await self._settle(message, "undeliverable", reason)
                await asyncio.to_thread(self._tell_instead, message, reason)
                return False
            try:
                if message.kind == "reply":
                    await platform.reply(message.recipient, REPLY.validate_json(message.body))
                elif message.kind == "notify":
                    await platform.notify(message.recipient["user"], REPLY.validate_json(message.body))
                else:

                    async def parts_sent(done: int) -> None:
                        await asyncio.to_thread(self._record_parts, message.id, done)

                    digest = DIGEST.validate_json(message.body)
                    await platform.post_digest(message.recipient["channel"], digest, message.parts_done, parts_sent)
            except SendFailed as failure:
                await self._failed(message, failure)
                return False
            except (TimeoutError, OSError) as error:  # timeouts and connection errors: transient
                await self._failed(message, SendFailed(f"{type(error).__name__}: {error}"[:300]))
                return False
            except Exception as error:
                log.exception("sending outbox message %s (%s) failed", message.id, message.label)
                await self._failed(message, SendFailed(f"{type(error).__name__}: {error}"[:300], permanent=True))
                return False
            return True

    async def _failed(self, message: Claimed, failure: SendFailed) -> None:
        if failure.permanent or message.attempts >= self.max_attempts:
            reason = (
                failure.reason if failure.permanent else f"gave up after {message.attempts} attempts: {failure.reason}"
            )
            log.warning("outbox message %s (%s) failed: %s", message.id, message.label, reason)
            await self._settle(message, "failed", reason)
            if message.kind == "reply" and failure.try_direct and not message.recipient.get("direct"):
                await asyncio.to_thread(self._plain_fallback, message)
            if failure.permanent:
                await asyncio.to_thread(self._tell_instead, message, reason)
            return
        if failure.retry_after is not None:
            delay = failure.retry_after
        else:
            delay = min(self.max_backoff, self.backoff * 2 ** (message.attempts - 1))
            delay *= random.uniform(0.8, 1.2)
        log.info("outbox message %s (%s): retrying in %.1f s (%s)", message.id, message.label, delay, failure.reason)
        await self._settle(message, "pending", failure.reason, utcnow() + timedelta(seconds=delay))

    async def _settle(self, message: Claimed, state: str, error: str = "", next_at: datetime | None = None) -> None:
        def settle() -> None:
            with session_scope(self.engine) as session:
                queries.settle_message(
                    session,
                    message_id=message.id,
                    worker=self.worker,
                    state=state,
                    at=utcnow(),
                    error=error,
                    next_attempt_at=next_at,
                )

        await asyncio.to_thread(settle)

    def _record_parts(self, message_id: int, done: int) -> None:
        with session_scope(self.engine) as session:
            queries.record_parts_sent(session, message_id=message_id, worker=self.worker, parts_done=done)

    def _tell_instead(self, message: Claimed, reason: str) -> None:
        """The message cannot reach its person: whoever it names (a lead) hears why."""
        if message.if_undeliverable is None:
            return
        notice = NOTIFICATION.validate_json(message.if_undeliverable)
        notice = replace(notice, text=f"{notice.text} Reason: {reason}.")
        with session_scope(self.engine) as session:
            enqueue_notification(session, self.sealer, notice)

    def _plain_fallback(self, message: Claimed) -> None:
        """The reply could not go where it was asked: tell the sender directly, in plain text."""
        reply = REPLY.validate_json(message.body)
        to = {"user": message.recipient["user"], "direct": True, "plain": True}
        with session_scope(self.engine) as session:
            enqueue_reply(
                session,
                self.sealer,
                platform=message.platform,
                to=to,
                reply=Reply(reply.text, ok=reply.ok),
                label=f"{message.label} (plain text, direct)",
            )


def list_messages(engine: Engine, states: tuple[str, ...], limit: int = 200) -> list[OutboxMessage]:
    with Session(engine) as session:
        return queries.outbox_messages(session, states=states, limit=limit)


def retry(engine: Engine, message_id: int) -> bool:
    with session_scope(engine) as session:
        return queries.retry_message(session, message_id=message_id, at=utcnow())
