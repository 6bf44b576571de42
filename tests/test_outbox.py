"""The outbox on both engines: each message claimed and sent once however many workers race,
sent once after its worker died mid-send, retried as the platform asks, and never dropped."""

import asyncio
from datetime import timedelta

from sqlmodel import Session, select

from bot.messages import Inbound, Notification, Reply
from bot.outbox import Outbox, enqueue_notification
from bot.people import Person
from bot.router import ONE_GO, Parts, Router, SendFailed, retry_after
from bot.service import FrictionService
from digests.digest import Digest
from digests.embeddings import HashingEmbedder
from storage import queries
from storage.db import session_scope
from storage.models import Delivery, OutboxMessage, utcnow
from tests.conftest import LEAD, ask


class Recorder:
    """A platform that records what it was asked to send, and fails as told."""

    def __init__(self, name: str = "test", failures: list[SendFailed] | None = None, delay: float = 0.0):
        self.name = name
        self.sent: list[tuple[str, str]] = []
        self.failures = list(failures or [])
        self.delay = delay

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        await self._send(to["user"], reply.text)

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        await self._send(user_id, message.text)

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        await self._send(channel, str(digest.week))

    async def display_name(self, user_id: str) -> str | None:
        return None

    async def _send(self, to: str, text: str) -> None:
        await asyncio.sleep(self.delay)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((to, text))


def queue(service, count: int, platform: str = "test") -> None:
    with session_scope(service.engine) as session:
        for n in range(count):
            note = Notification(to=Person(platform, f"U{n}"), text=f"message {n}", label=f"note {n}")
            enqueue_notification(session, service.sealer, note)


def rows(service) -> list[OutboxMessage]:
    with Session(service.engine) as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_racing_workers_send_each_message_exactly_once(service):
    queue(service, 40)
    platforms = [Recorder(delay=0.001) for _ in range(4)]
    workers = [Outbox(service.engine, Router([p]), service.sealer) for p in platforms]

    async def race() -> None:
        for _ in range(3):  # several passes each, all at once
            await asyncio.gather(*(worker.send_due() for worker in workers))

    asyncio.run(race())
    sent = [item for platform in platforms for item in platform.sent]
    assert sorted(sent) == sorted((f"U{n}", f"message {n}") for n in range(40))
    assert {row.state for row in rows(service)} == {"sent"}


def test_a_message_whose_worker_died_mid_send_is_sent_once_after_the_claim_runs_out(service):
    queue(service, 2)
    now = utcnow()
    with session_scope(service.engine) as session:
        first, second = (row.id for row in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
        # One worker claimed both and died; its claim on the first ran out, on the second it has not.
        assert queries.claim_message(
            session, message_id=first, worker="dead", now=now, until=now - timedelta(seconds=1)
        )
        assert queries.claim_message(session, message_id=second, worker="busy", now=now, until=now + timedelta(hours=1))
    platform = Recorder()
    outbox = Outbox(service.engine, Router([platform]), service.sealer)
    assert asyncio.run(outbox.send_due()) == 1
    assert asyncio.run(outbox.send_due()) == 0
    assert platform.sent == [("U0", "message 0")]
    states = {row.id: row.state for row in rows(service)}
    assert states == {first: "sent", second: "pending"}
    with session_scope(service.engine) as session:  # the dead worker cannot settle what it lost
        assert not queries.settle_message(session, message_id=first, worker="dead", state="failed", at=now)


class OneSlow(Recorder):
    """Quick to everyone but U0, where a send hangs for 1.5 s (a connection near its timeout)."""

    async def _send(self, to: str, text: str) -> None:
        await asyncio.sleep(1.5 if to == "U0" else 0.0)
        self.sent.append((to, text))


def test_a_slow_send_does_not_let_another_replica_send_again_what_the_pass_already_sent(service):
    queue(service, 4)
    first, second = OneSlow(), Recorder()
    a = Outbox(service.engine, Router([first]), service.sealer, lease=1.0)
    b = Outbox(service.engine, Router([second]), service.sealer, lease=1.0)

    async def race() -> None:
        pass_a = asyncio.create_task(a.send_due())
        await asyncio.sleep(1.2)  # past the lease A's pass began with, while A still waits on U0
        assert await b.send_due() == 0
        await pass_a

    asyncio.run(race())
    assert sorted(first.sent) == [(f"U{n}", f"message {n}") for n in range(4)]
    assert second.sent == []
    assert {row.state for row in rows(service)} == {"sent"}


def test_a_pass_does_not_send_what_it_lost_its_claim_on(service):
    queue(service, 1)
    platform = Recorder(delay=0.5)
    outbox = Outbox(service.engine, Router([platform]), service.sealer, lease=0.6, concurrency=1)
    queue(service, 1)  # a second message waits behind the first one's send

    async def steal() -> None:
        await asyncio.sleep(0.1)
        with session_scope(service.engine) as session:  # another replica took the second one meanwhile
            session.get(OutboxMessage, 2).claimed_by = "other"

    async def run() -> None:
        await asyncio.gather(outbox.send_due(), steal())

    asyncio.run(run())
    assert platform.sent == [("U0", "message 0")]
    assert [(row.state, row.claimed_by) for row in rows(service)] == [("sent", None), ("pending", "other")]


def test_retry_after_is_honoured_5xx_retried_and_other_4xx_recorded_as_failed(service):
    queue(service, 3)
    platform = Recorder(
        failures=[
            SendFailed("Slack answered 429", retry_after=30),
            SendFailed("Slack answered 502"),
            SendFailed("Slack answered 403 not_in_channel", permanent=True),
        ]
    )
    outbox = Outbox(service.engine, Router([platform]), service.sealer, backoff=10)
    before = utcnow()
    asyncio.run(outbox.send_due())
    by_label = {row.label: row for row in rows(service)}
    limited, flaky, refused = by_label["note 0"], by_label["note 1"], by_label["note 2"]
    assert limited.state == "pending" and limited.last_error == "Slack answered 429"
    assert timedelta(seconds=29) < limited.next_attempt_at - before < timedelta(seconds=32)
    assert flaky.state == "pending" and timedelta(seconds=7) < flaky.next_attempt_at - before < timedelta(seconds=13)
    assert refused.state == "failed" and refused.last_error == "Slack answered 403 not_in_channel"
    assert platform.sent == []
    assert asyncio.run(outbox.send_due()) == 0  # nothing is due before its time
    with session_scope(service.engine) as session:  # time passes
        for row in (limited, flaky):
            session.get(OutboxMessage, row.id).next_attempt_at = utcnow()
    asyncio.run(outbox.send_due())
    assert sorted(platform.sent) == [("U0", "message 0"), ("U1", "message 1")]
    assert [row.state for row in rows(service)] == ["sent", "sent", "failed"]


def keep_sending(outbox: Outbox, passes: int) -> None:
    """The delivery worker's loop, `passes` times, 20 ms apart: long enough for quick retries."""

    async def run() -> None:
        for _ in range(passes):
            await outbox.send_due()
            await asyncio.sleep(0.02)

    asyncio.run(run())


def test_throttling_does_not_use_up_a_messages_attempts(service):
    queue(service, 1)
    platform = Recorder(failures=[SendFailed("Teams answered 429", retry_after=0.01)] * 6)
    keep_sending(Outbox(service.engine, Router([platform]), service.sealer, max_attempts=3, backoff=0.01), 60)
    assert platform.sent == [("U0", "message 0")]  # the seventh try, though three is the limit for failures
    assert [(row.state, row.attempts) for row in rows(service)] == [("sent", 7)]


def test_a_notice_given_up_on_after_its_retries_tells_whoever_it_names(service):
    note = Notification(
        to=Person("test", "U-OWNER"),
        text="You now own T-1",
        label="T-1 to its new owner",
        if_undeliverable=Notification(
            to=Person("test", LEAD), text="T-1's owner could not be told.", label="unreached"
        ),
    )
    with session_scope(service.engine) as session:
        enqueue_notification(session, service.sealer, note)
    platform = Recorder(failures=[SendFailed("Teams answered 502")] * 3)
    keep_sending(Outbox(service.engine, Router([platform]), service.sealer, max_attempts=3, backoff=0.01), 40)
    assert [(row.label, row.state) for row in rows(service)] == [
        ("T-1 to its new owner", "failed"),
        ("unreached", "sent"),
    ]
    assert platform.sent == [
        (LEAD, "T-1's owner could not be told. Reason: gave up after 3 attempts: Teams answered 502.")
    ]


def test_retry_after_as_seconds_or_as_an_http_date_is_a_wait_not_a_refusal():
    from email.utils import format_datetime
    from types import SimpleNamespace

    from msrest.exceptions import HttpOperationError

    from adapters.teams.platform import _failure

    in_a_minute = format_datetime(utcnow() + timedelta(seconds=60), usegmt=True)
    assert retry_after("30") == 30.0
    assert 55 < retry_after(in_a_minute) <= 60
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date gone by: now
    assert retry_after("soon", 1) == 1 and retry_after(None) is None
    error = HttpOperationError.__new__(HttpOperationError)
    error.response = SimpleNamespace(status_code=429, headers={"Retry-After": in_a_minute})
    failure = _failure(error)
    assert not failure.permanent and 55 < failure.retry_after <= 60


def test_a_message_for_a_platform_not_configured_is_kept_as_undeliverable(service):
    ask(service, "U1", "refunds over $50 need supervisor approval and it takes three days")
    reply = ask(service, LEAD, "assign T-1 teams:29:aad-dana")
    assert reply.ok and "on Teams" in reply.text
    slack_only = Outbox(service.engine, Router([Recorder("test")]), service.sealer)
    asyncio.run(slack_only.send_due())
    [owner_dm] = [row for row in rows(service) if row.platform == "teams"]
    assert owner_dm.state == "undeliverable" and owner_dm.last_error == "teams is not configured here"
    # Once Teams is there, the message is retried and goes out.
    with session_scope(service.engine) as session:
        assert queries.retry_message(session, message_id=owner_dm.id, at=utcnow())
    teams = Recorder("teams")
    asyncio.run(Outbox(service.engine, Router([teams]), service.sealer).send_due())
    assert teams.sent and teams.sent[0][0] == "29:aad-dana" and "You now own T-1" in teams.sent[0][1]


def test_recipients_and_bodies_are_sealed_in_the_outbox(service):
    ask(service, "U-SECRET-7", "anon refunds over $50 need supervisor approval")
    [row] = rows(service)
    assert "U-SECRET-7" not in (row.recipient_sealed or "") and "refunds" not in (row.body_sealed or "")
    assert row.label == "confirmation of S-1"


def test_a_delivery_that_keeps_failing_is_tried_three_times_then_the_sender_is_told(service, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the theme engine is broken")

    monkeypatch.setattr(service, "run", broken)
    accepted = service.accept(Inbound(user="U1", text="themes", platform="test", delivery_id="d1"))
    for attempt in (1, 2, 3):
        assert service.process(accepted.delivery) is None
        with Session(service.engine) as session:
            delivery = session.get(Delivery, accepted.delivery)
            assert delivery.attempts == attempt
    assert delivery.state == "failed" and delivery.event_sealed is None
    [told] = rows(service)
    assert told.label == "failure" and told.state == "pending"
    platform = Recorder()
    asyncio.run(Outbox(service.engine, Router([platform]), service.sealer).send_due())
    assert platform.sent == [("U1", "Sorry, something went wrong on our side. Please try again in a minute.")]


def test_an_event_stored_under_another_key_fails_alone_and_its_batch_runs(engine, settings, clock, service):
    other_key = settings.model_copy(update={"secret_key": "a-key-this-replica-does-not-have"})
    stranger = FrictionService(engine, other_key, HashingEmbedder(), clock=clock)
    sealed_away = stranger.accept(Inbound(user="U1", text="refunds take days", platform="test", delivery_id="d1"))
    readable = service.accept(Inbound(user="U2", text="hold times are long", platform="test", delivery_id="d2"))
    replies = service.process_many([sealed_away.delivery, readable.delivery])
    assert replies[readable.delivery].text.startswith("Logged as S-2")
    assert sealed_away.delivery not in replies
    with Session(service.engine) as session:
        assert session.get(Delivery, sealed_away.delivery).state == "failed"


def test_the_pipeline_counts_the_events_it_is_storing(service):
    """Running waits for stores in flight (a burst is acknowledged first); the count must come
    back to zero, or every batch would wait its full bound."""
    from bot.pipeline import Pipeline

    pipeline = Pipeline(service, Router([Recorder()]))

    async def burst() -> None:
        events = [Inbound(user=f"U{n}", text=f"refunds are slow, case {n}", platform="test") for n in range(5)]
        await asyncio.gather(*(pipeline.receive(event) for event in events))
        assert pipeline._storing == 0
        await pipeline.drain()
        await pipeline.stop()

    asyncio.run(burst())
