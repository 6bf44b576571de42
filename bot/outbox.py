"""Everything that goes out: written to the outbox in the same transaction as the change that
causes it, then sent once by the delivery worker through the recipient's platform.

Exactly once: each row is claimed in the database before it is sent (storage.queries.claim_message),
so replicas never send the same row twice; a claim whose process died mid-send runs out after
the lease and the row is sent again once. The one window left is a process killed after the
platform accepted a message and before the row was marked sent: that message may go out twice.

Retries: 429 waits `Retry-After`; 5xx, timeouts and connection errors back off exponentially with
jitter; any other refusal is recorded as failed with the platform's reason. A reply that cannot
be delivered where it was asked (an expired response_url) is sent once more as plain text to
the sender directly. Claims, leases and retries run on the system's time, not the service's
(injectable) clock; the DM budget's day runs on the service's clock, like every deadline.

The daily DM budget (FRICTIONLOG_DM_BUDGET, per person and local day in FRICTIONLOG_TIMEZONE)
covers what a person did not ask for: reminders, escalations, owner and reporter notices. Replies
to what the person just did never count and never wait. A budgeted message passes the budget
when it is due, under a per-recipient lock (storage.queries.lock_recipients), so replicas cannot
both use the last place:
- while the person got fewer than budget - 1 today, it goes out at once;
- the last place of the day is kept for one message carrying everything that comes in the next
  BATCH_WAIT (the message that hits it waits that long for company);
- once that went out, what comes is held until the start of the next local day;
- held messages of one person go out together as ONE message (a row of its own, counted once;
  the held rows become "batched" and name it), or as themselves when there is just one.
So nobody gets more than the budget in a day, and nothing is dropped: it comes later, together.
"""

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta, tzinfo

from pydantic import TypeAdapter
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.clock import Clock, system_clock
from bot.messages import Notification, Reply, Section
from bot.router import Parts, Router, SendFailed
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
NOTIFICATIONS = TypeAdapter(list[Notification])  # a batch's: each held message's own notice
# How many times more often than max_attempts a message the platform keeps throttling is tried.
THROTTLED_ATTEMPTS = 5
# How long the message that takes a person's last place of the day waits for others to join it.
BATCH_WAIT = timedelta(minutes=10)
# Called in the transaction that marks a digest sent (bot/seen_by_leadership.py).
DigestSent = Callable[[Session, Digest], None]


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


def enqueue_notification(session: Session, sealer: Sealer, notification: Notification) -> OutboxMessage:
    """A direct message to one person; budgeted ones count against their daily DM budget, by
    the keyed hash of the recipient (never who it is)."""
    message = Reply(notification.text, notification.sections, notification.buttons)
    row = _row(
        sealer,
        platform=notification.to.platform,
        kind="notify",
        recipient={"user": notification.to.id},
        body=REPLY.dump_json(message),
        label=notification.label or "a direct message",
    )
    row.recipient_hash = sealer.person_hash(notification.to.platform, notification.to.id)
    row.budgeted = notification.budgeted
    if notification.if_undeliverable is not None:
        row.if_undeliverable_sealed = sealer.seal_bytes(NOTIFICATION.dump_json(notification.if_undeliverable))
    session.add(row)
    return row


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
    """A message this worker claimed, opened to send."""

    id: int
    platform: str
    kind: str
    label: str
    recipient: dict
    body: bytes
    attempts: int
    parts_done: int
    if_undeliverable: bytes | None = None


@dataclass
class Claims:
    """How long one pass holds its claims, as last renewed, and the ones it lost meanwhile."""

    until: datetime
    margin: timedelta  # a third of the lease: renewed in time, a claim never comes this close to its end
    lost: set[int] = field(default_factory=set)

    def hold(self, message_id: int) -> bool:
        return message_id not in self.lost and utcnow() + self.margin < self.until


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
        budget: int = 5,
        zone: tzinfo = UTC,
        clock: Clock = system_clock,
        on_digest_sent: DigestSent | None = None,
        batch_wait: timedelta = BATCH_WAIT,
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
        self.budget = budget
        self.zone = zone
        self.clock = clock
        self.on_digest_sent = on_digest_sent
        self.batch_wait = batch_wait

    async def send_due(self, limit: int = 100) -> int:
        """Send what is due now (one pass); returns how many messages this worker claimed."""
        claimed = await asyncio.to_thread(self._claim_due, limit)
        if not claimed:
            return 0
        limiter = asyncio.Semaphore(self.concurrency)
        claims = Claims(utcnow() + self.lease, self.lease / 3)
        renewing = asyncio.create_task(self._renew(claims, [message.id for message in claimed]))
        sent: list[Claimed] = []

        async def send(message: Claimed) -> None:
            if await self._send(message, limiter, claims):
                sent.append(message)

        try:
            await asyncio.gather(*(send(message) for message in claimed))
        finally:
            renewing.cancel()
            # Also when the pass is cancelled (`serve` stopping): what went out is marked sent, or
            # the next replica to claim it once the lease runs out would send it again.
            await asyncio.shield(asyncio.to_thread(self._sent, sent))
        return len(claimed)

    def _sent(self, sent: list[Claimed]) -> None:
        others = [message.id for message in sent if message.kind != "digest"]
        if others:
            self._mark_sent(others)
        for message in sent:
            if message.kind == "digest":
                self._digest_sent(message)

    async def _renew(self, claims: Claims, message_ids: list[int]) -> None:
        """Renew the pass's claims every third of the lease while it runs. Sent messages are marked
        when the whole pass ends: one slow send must not let another replica take, and send again,
        what this one already sent."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            until = utcnow() + self.lease
            try:
                held = await asyncio.to_thread(self._renew_claims, message_ids, until)
            except Exception:  # the database is away: the claims run out when they run out
                log.exception("renewing the outbox's claims failed")
                continue
            claims.until, claims.lost = until, set(message_ids) - set(held)

    def _renew_claims(self, message_ids: list[int], until: datetime) -> list[int]:
        with session_scope(self.engine) as session:
            return queries.renew_claims(session, message_ids=message_ids, worker=self.worker, until=until)

    def _mark_sent(self, message_ids: list[int]) -> None:
        with session_scope(self.engine) as session:
            queries.mark_sent(session, message_ids=message_ids, worker=self.worker, at=self.clock())

    def _digest_sent(self, message: Claimed) -> None:
        """Mark a digest sent and, in that transaction, tell the reporters it features: nobody
        hears that their report reached leadership unless the digest did."""
        with session_scope(self.engine) as session:
            if not queries.mark_sent(session, message_ids=[message.id], worker=self.worker, at=self.clock()):
                return
            if self.on_digest_sent is None:
                return
            try:  # a fault here must not undo "sent": the digest would go out twice
                with session.begin_nested():
                    self.on_digest_sent(session, DIGEST.validate_json(message.body))
            except Exception:
                log.exception("telling reporters that %s reached leadership failed", message.label)

    def _claim_due(self, limit: int) -> list[Claimed]:
        """Claim due messages in one statement: another replica's claims are skipped, not taken.
        Budgeted messages pass the daily budget first; held ones that are due go out together."""
        now = utcnow()
        with session_scope(self.engine) as session:
            candidates = queries.due_messages(session, now=now, limit=limit, platforms=self.platforms)
            taken = queries.claim_messages(
                session, message_ids=candidates, worker=self.worker, now=now, until=now + self.lease
            )
            claimed = self._opened(session, taken, now)
        return claimed + self._pass_budget(limit, now) + self._release_held(limit, now)

    def _opened(self, session: Session, message_ids: list[int], now: datetime) -> list[Claimed]:
        """Claimed rows, opened; one sealed with another key is recorded as failed."""
        claimed = []
        for row in queries.outbox_rows(session, message_ids=message_ids):
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

    # The daily DM budget (see the module's docstring) --------------------------------------------

    def _day(self) -> tuple[datetime, datetime]:
        """Today and the start of tomorrow, local time, by the service's clock."""
        today = self.clock().astimezone(self.zone).date()
        return (
            datetime.combine(today, time(0), tzinfo=self.zone),
            datetime.combine(today + timedelta(days=1), time(0), tzinfo=self.zone),
        )

    def _pass_budget(self, limit: int, now: datetime) -> list[Claimed]:
        """Due budgeted messages: claimed to send while the person has room today, else held."""
        with Session(self.engine) as session:
            due = queries.due_budgeted(session, now=now, limit=limit, platforms=self.platforms)
            recipients = {recipient for _, recipient in due}
        if not recipients:
            return []
        today, tomorrow = self._day()
        with session_scope(self.engine) as session:
            queries.lock_recipients(session, recipient_hashes=recipients)
            # Read again under the lock: what another worker took meanwhile is gone from the list.
            due = queries.due_budgeted(session, now=now, limit=limit, platforms=self.platforms)
            due = [(message_id, recipient) for message_id, recipient in due if recipient in recipients]
            spent = queries.budget_spent(session, recipient_hashes=recipients, since=today, until=tomorrow, now=now)
            release = queries.held_release_times(session, recipient_hashes=recipients)
            send: list[int] = []
            hold: dict[datetime, list[int]] = defaultdict(list)
            for message_id, recipient in due:
                used = spent.get(recipient, 0)
                if recipient not in release and used < self.budget - 1:
                    send.append(message_id)
                    spent[recipient] = used + 1
                    continue
                if recipient not in release:  # the first one held: the last place today, or tomorrow
                    release[recipient] = self.clock() + self.batch_wait if used < self.budget else tomorrow
                hold[release[recipient]].append(message_id)
            for until, message_ids in hold.items():
                queries.hold_messages(session, message_ids=message_ids, until=until, now=now)
            taken = queries.claim_messages(
                session, message_ids=send, worker=self.worker, now=now, until=now + self.lease
            )
            return self._opened(session, taken, now)

    def _release_held(self, limit: int, now: datetime) -> list[Claimed]:
        """Each person's held messages that are due, out together as one message (one place of
        the day), or held until tomorrow when today's places are gone."""
        with Session(self.engine) as session:
            recipients = queries.due_held(session, until=self.clock(), limit=limit, platforms=self.platforms)
        today, tomorrow = self._day()
        claimed = []
        for recipient in recipients:
            with session_scope(self.engine) as session:
                queries.lock_recipients(session, recipient_hashes=[recipient])
                held = queries.held_messages(session, recipient_hash=recipient)
                if not held or min(row.next_attempt_at for row in held) > self.clock():
                    continue  # another worker sent them meanwhile
                ids = [row.id for row in held]
                spent = queries.budget_spent(
                    session, recipient_hashes=[recipient], since=today, until=tomorrow, now=now
                ).get(recipient, 0)
                if spent >= self.budget:
                    queries.hold_messages(session, message_ids=ids, until=tomorrow, now=now)
                elif len(held) == 1:
                    taken = queries.claim_held(session, message_ids=ids, worker=self.worker, until=now + self.lease)
                    claimed += self._opened(session, taken, now)
                else:
                    claimed += self._together(session, held, now)
        return claimed

    def _together(self, session: Session, held: list[OutboxMessage], now: datetime) -> list[Claimed]:
        """One new message carrying the held ones, claimed by this worker; they become "batched"."""
        replies = []
        for row in held:
            body = self.sealer.open_bytes(row.body_sealed)
            if body is None:
                row.state, row.last_error = "failed", "sealed with another FRICTIONLOG_SECRET_KEY"
                session.add(row)
                continue
            replies.append((row, REPLY.validate_json(body)))
        if not replies:
            return []
        first = replies[0][0]
        numbers = ", ".join(f"#{row.id}" for row, _ in replies)
        # Whoever a held message would have told, had it not reached its person, still hears.
        notices = [
            NOTIFICATION.validate_json(raw)
            for row, _ in replies
            if (raw := self.sealer.open_bytes(row.if_undeliverable_sealed)) is not None
        ]
        batch = OutboxMessage(
            platform=first.platform,
            kind="notify",
            label=f"{len(replies)} held messages, together: {numbers}"[:200],
            recipient_sealed=first.recipient_sealed,
            body_sealed=self.sealer.seal_bytes(REPLY.dump_json(together([r for _, r in replies], self.budget))),
            recipient_hash=first.recipient_hash,
            if_undeliverable_sealed=self.sealer.seal_bytes(NOTIFICATIONS.dump_json(notices)) if notices else None,
            budgeted=True,
            state="pending",
            attempts=1,
            claimed_by=self.worker,
            claimed_until=now + self.lease,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(batch)
        session.flush()
        for row, _ in replies:
            row.state = "batched"
            row.label = f"{row.label} · sent together in #{batch.id}"[:200]
            session.add(row)
        return self._opened(session, [batch.id], now)

    async def _send(self, message: Claimed, limiter: asyncio.Semaphore, claims: Claims) -> bool:
        """Send one claimed message; True when it went out (marked sent with the rest of the pass)."""
        async with limiter:
            if not claims.hold(message.id):
                return False  # the claim ran out: another replica may be sending it now
            platform = self.router.platform(message.platform)
            if platform is None:
                reason = f"{message.platform} is not configured here"
                await self._settle(message, "undeliverable", reason)
                await asyncio.to_thread(self._tell_instead, message, reason)
                return False

            async def parts_sent(done: int) -> None:
                await asyncio.to_thread(self._record_parts, message.id, done)

            parts = Parts(message.parts_done, parts_sent)
            try:
                if message.kind == "reply":
                    await platform.reply(message.recipient, REPLY.validate_json(message.body), parts)
                elif message.kind == "notify":
                    await platform.notify(message.recipient["user"], REPLY.validate_json(message.body), parts)
                else:
                    digest = DIGEST.validate_json(message.body)
                    await platform.post_digest(message.recipient["channel"], digest, parts)
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
        # A 429 is the platform asking for patience, not a failure: a long fan-out under throttling
        # gets THROTTLED_ATTEMPTS times as many tries before it is given up on.
        throttled = failure.retry_after is not None
        limit = self.max_attempts * THROTTLED_ATTEMPTS if throttled else self.max_attempts
        if failure.permanent or message.attempts >= limit:
            reason = (
                failure.reason if failure.permanent else f"gave up after {message.attempts} attempts: {failure.reason}"
            )
            log.warning("outbox message %s (%s) failed: %s", message.id, message.label, reason)
            await self._settle(message, "failed", reason)
            if message.kind == "reply" and failure.try_direct and not message.recipient.get("direct"):
                await asyncio.to_thread(self._plain_fallback, message)
            await asyncio.to_thread(self._tell_instead, message, reason)  # refused or given up on: for good
            return
        if failure.retry_after is not None:  # a little later than asked: throttled replicas must not return as one
            delay = failure.retry_after * random.uniform(1.0, 1.05)
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
        """The message cannot reach its person: whoever it names (a lead) hears why; for a batch,
        whoever each of its held messages names."""
        raw = message.if_undeliverable
        if raw is None:
            return
        notices = (
            NOTIFICATIONS.validate_json(raw) if raw.lstrip().startswith(b"[") else [NOTIFICATION.validate_json(raw)]
        )
        with session_scope(self.engine) as session:
            for notice in notices:
                enqueue_notification(session, self.sealer, replace(notice, text=f"{notice.text} Reason: {reason}."))

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


def together(messages: list[Reply], budget: int) -> Reply:
    """Held messages as one: each one's words and buttons, then its sections."""
    sections: list[Section] = []
    for message in messages:
        sections.append(Section(text=message.text, buttons=message.buttons))
        sections.extend(message.sections)
    return Reply(
        f"{len(messages)} messages from frictionlog in one: you get at most {budget} a day, and these came after that.",
        sections=tuple(sections),
    )


def list_messages(engine: Engine, states: tuple[str, ...], limit: int = 200) -> list[OutboxMessage]:
    with Session(engine) as session:
        return queries.outbox_messages(session, states=states, limit=limit)


def retry(engine: Engine, message_id: int) -> bool:
    with session_scope(engine) as session:
        return queries.retry_message(session, message_id=message_id, at=utcnow())
