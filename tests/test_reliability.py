"""Nothing acknowledged is lost, nothing is sent twice: tried with real processes.

`frictionlog serve` runs as its own process, receives signed Slack deliveries on loopback and
talks to a loopback fake of the Slack Web API. The tests kill it with SIGKILL right after the
acks, race three replicas on one PostgreSQL with the same deliveries, and take the database away
at ingest; then they count what was stored and what Slack was sent.
"""

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import ClientSession
from sqlmodel import Session, select

from bot.messages import Notification
from bot.outbox import enqueue_notification
from bot.people import Person
from bot.sealing import Sealer
from bot.settings import DEV_SECRET
from storage.db import make_engine, session_scope, upgrade
from storage.models import Delivery, OutboxMessage, Submission
from tests.fake_slack import FakeSlack, FakeSlackThread
from tests.test_slack import SECRET, dm_event, event_callback, sign

FRICTIONLOG = str(Path(sys.executable).parent / "frictionlog")
TEXTS = [
    "refunds over $50 need supervisor approval and it takes three days",
    "hold times on the phone line are over forty minutes every evening",
    "the android app crashes at checkout when a coupon is applied",
    "customers cannot change their delivery address after ordering",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Serve:
    """One `frictionlog serve` process on loopback."""

    def __init__(self, database_url: str, fake: FakeSlack, workdir: Path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"serve-{self.port}.log"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "FRICTIONLOG_EMBEDDINGS": "hashing",
            "FRICTIONLOG_RECLUSTER_HOURS": "0",
            "FRICTIONLOG_CLAIM_SECONDS": "1",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            **env,
        }
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    def start(self) -> "Serve":
        command = [FRICTIONLOG, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=self.env, cwd=self.workdir, stdout=log, stderr=log)
        return self

    async def ready(self, http: ClientSession, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serve exited: {self.log.read_text()[-3000:]}"
            try:
                async with http.get(f"{self.url}/healthz") as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serve did not start: {self.log.read_text()[-3000:]}"
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


async def deliver(http: ClientSession, serve: Serve, user: str, text: str, event_id: str, retry: int = 0):
    """One signed DM event delivered to one replica; returns (status, seconds to the answer)."""
    body = json.dumps(event_callback(dm_event(text, user), event_id)).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp),
    }
    if retry:
        headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"})
    started = time.monotonic()
    async with http.post(f"{serve.url}/slack/events", data=body, headers=headers) as response:
        await response.read()
        return response.status, time.monotonic() - started


def confirmations(fake: FakeSlack) -> Counter:
    """How many messages Slack accepted in each person's DM channel."""
    return Counter(body["channel"] for body in fake.of("chat.postMessage") if body["channel"].startswith("D-"))


def settled(database_url: str) -> bool:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            running = session.exec(select(Delivery).where(Delivery.state == "received")).first()
            waiting = session.exec(select(OutboxMessage).where(OutboxMessage.state == "pending")).first()
        return running is None and waiting is None
    finally:
        engine.dispose()


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def stored(database_url: str) -> list[Submission]:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.exec(select(Submission).order_by(Submission.id)))
    finally:
        engine.dispose()


@contextmanager
def serving(*replicas: Serve):
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


def test_sigkill_right_after_the_acks_loses_nothing_and_confirms_each_once(sqlite_url, tmp_path):
    """20 messages acknowledged, then SIGKILL: after a restart every one is stored and confirmed once."""
    count = 20

    async def main(fake: FakeSlack) -> None:
        fake.hold("chat.postMessage")  # nothing reaches Slack before the kill: what comes after counts
        first = Serve(sqlite_url, fake, tmp_path).start()
        try:
            async with ClientSession() as http:
                await first.ready(http)
                answers = await asyncio.gather(
                    *(
                        deliver(http, first, f"U{i}", TEXTS[i % 4] + f" (case {i})", f"Ev-kill-{i}")
                        for i in range(count)
                    )
                )
                first.kill()  # at once: processing and sending were still under way
                assert [status for status, _ in answers] == [200] * count
                assert max(seconds for _, seconds in answers) < 3
                fake.release("chat.postMessage")
                with serving(Serve(sqlite_url, fake, tmp_path)) as (second,):
                    await second.ready(http)
                    await until(lambda: sum(confirmations(fake).values()) >= count, 30, "the confirmations")
                    await until(lambda: settled(sqlite_url), 30, "the outbox to settle")
        finally:
            first.stop()
        kept = sorted(s.platform_event_id for s in stored(sqlite_url))
        assert kept == sorted(f"slack:event:Ev-kill-{i}" for i in range(count))
        assert confirmations(fake) == Counter({f"D-U{i}": 1 for i in range(count)})
        for body in fake.of("chat.postMessage"):
            assert body["text"].startswith("Logged as S-")

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))


def test_sigterm_in_the_middle_of_a_pass_does_not_send_again_what_went_out(sqlite_url, tmp_path):
    """A deploy stops `serve` (SIGTERM) while one pass is sending five messages: four went out,
    one is slow. After the restart Slack has each of the four once, and the slow one too."""
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with session_scope(engine) as session:  # waiting before the start: the first pass takes all five
        for n in range(5):
            note = Notification(to=Person("slack", f"U{n}"), text=f"note {n}", label=f"note {n}")
            enqueue_notification(session, Sealer(DEV_SECRET), note)
    engine.dispose()

    def posted(fake: FakeSlack) -> Counter:
        return Counter(body["channel"] for body in fake.of("chat.postMessage"))

    async def main(fake: FakeSlack) -> None:
        fake.slow("chat.postMessage", "U0", 3)
        first = Serve(sqlite_url, fake, tmp_path).start()
        try:
            async with ClientSession() as http:
                await first.ready(http)
                await until(lambda: len(posted(fake)) >= 4, 30, "the quick four")
                first.stop()  # SIGTERM, as docker stop and a rolling deploy send it
                with serving(Serve(sqlite_url, fake, tmp_path)) as (second,):
                    await second.ready(http)
                    await until(lambda: settled(sqlite_url), 30, "the outbox to settle")
        finally:
            first.stop()
        sent = posted(fake)
        assert {f"U{n}": sent[f"U{n}"] for n in range(1, 5)} == {f"U{n}": 1 for n in range(1, 5)}
        assert sent["U0"] >= 1  # cut off mid-send, it may have gone out: sent again rather than lost

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))


@pytest.mark.postgres
def test_three_replicas_started_at_once_handle_the_same_deliveries_once(postgres_url, tmp_path):
    """Three `serve` processes come up together on an empty PostgreSQL (migrations under a lock),
    every delivery reaches all three at once, and each is stored and answered exactly once."""
    count = 12

    async def main(fake: FakeSlack) -> None:
        with serving(*(Serve(postgres_url, fake, tmp_path) for _ in range(3))) as replicas:
            async with ClientSession() as http:
                for replica in replicas:
                    await replica.ready(http)
                answers = await asyncio.gather(
                    *(
                        deliver(http, replica, f"U{i}", TEXTS[i % 4] + f" (case {i})", f"Ev-race-{i}")
                        for i in range(count)
                        for replica in replicas
                    )
                )
                assert {status for status, _ in answers} == {200}
                await until(lambda: sum(confirmations(fake).values()) >= count, 30, "the confirmations")
                await until(lambda: settled(postgres_url), 30, "the outbox to settle")
        assert sorted(s.platform_event_id for s in stored(postgres_url)) == sorted(
            f"slack:event:Ev-race-{i}" for i in range(count)
        )
        assert confirmations(fake) == Counter({f"D-U{i}": 1 for i in range(count)})

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))


class Proxy:
    """A TCP proxy on loopback between `serve` and PostgreSQL that the test can cut: the
    database going away, as far as `serve` can tell."""

    def __init__(self, target_port: int = 5432):
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.AbstractServer | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)

    async def down(self) -> None:
        self._server.close()
        await self._server.wait_closed()
        for writer in list(self._links):
            writer.close()
        self._links.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._links |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


@pytest.mark.postgres
def test_database_down_at_ingest_is_a_non_2xx_and_the_redelivery_is_kept(postgres_url, tmp_path):
    async def main(fake: FakeSlack) -> None:
        proxy = Proxy()
        await proxy.up()
        through_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        with serving(Serve(through_proxy, fake, tmp_path)) as (serve,):
            async with ClientSession() as http:
                await serve.ready(http)
                assert (await deliver(http, serve, "U1", TEXTS[0], "Ev-before"))[0] == 200
                await proxy.down()
                status, seconds = await deliver(http, serve, "U2", TEXTS[1], "Ev-down")
                assert status >= 500 and seconds < 3  # Slack will redeliver it
                await proxy.up()
                status, _ = await deliver(http, serve, "U2", TEXTS[1], "Ev-down", retry=1)
                assert status == 200
                await until(lambda: sum(confirmations(fake).values()) >= 2, 30, "the confirmations")
                await until(lambda: settled(postgres_url), 30, "the outbox to settle")
        assert [s.platform_event_id for s in stored(postgres_url)] == ["slack:event:Ev-before", "slack:event:Ev-down"]
        assert confirmations(fake) == Counter({"D-U1": 1, "D-U2": 1})

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))


def test_sqlite_locked_past_the_bound_is_a_non_2xx_and_nothing_is_lost(sqlite_url, tmp_path):
    path = sqlite_url.removeprefix("sqlite:///")

    async def main(fake: FakeSlack) -> None:
        with serving(Serve(sqlite_url, fake, tmp_path)) as (serve,):
            async with ClientSession() as http:
                await serve.ready(http)
                blocker = sqlite3.connect(path, timeout=1)
                blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
                try:
                    status, seconds = await deliver(http, serve, "U1", TEXTS[0], "Ev-locked")
                finally:
                    blocker.rollback()
                    blocker.close()
                assert status >= 500 and seconds < 3
                status, _ = await deliver(http, serve, "U1", TEXTS[0], "Ev-locked", retry=1)
                assert status == 200
                await until(lambda: sum(confirmations(fake).values()) >= 1, 30, "the confirmation")
                await until(lambda: settled(sqlite_url), 30, "the outbox to settle")
        assert [s.platform_event_id for s in stored(sqlite_url)] == ["slack:event:Ev-locked"]
        assert confirmations(fake) == Counter({"D-U1": 1})

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))
