"""Switching the embedding model: stored submissions embedded again once, batch by batch, by one
process at a time, at `serve`'s start-up in the background, and never flipped back and forth by a
replica still running the old model. On SQLite and PostgreSQL, with real threads and processes."""

import asyncio
import logging
import threading
import time

import numpy as np
import pytest
from sqlmodel import Session, select

from adapters.web import PIPELINE, make_web_app
from bot.messages import Inbound
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from digests.themes import HASHING
from storage import queries
from storage.db import make_engine
from storage.models import EmbedderChoice, Submission, Theme
from tests.conftest import TOPICS, ask
from tests.loopback import served

ALL = [text for texts in TOPICS.values() for text in texts]
WAIT = 20  # seconds: far more than any step here takes, so a failure is a hang, not a slow machine


class Counting:
    """The hashing embedder, or with `turned` another model of the same size (its vectors in
    reverse order: alike among themselves, strangers to the hashing ones). Counts the texts it
    embeds, can fail on one call, and can hold every call of more than one text (a batch, never a
    single report) until `release` is set, saying when one is held (`holding`)."""

    def __init__(self, turned: bool = False, fail_on_call: int | None = None, hold: bool = False):
        self.hashing = HashingEmbedder()
        self.name = "turned-hashing" if turned else "hashing"
        self.dimension = self.hashing.dimension
        self.turned, self.fail_on_call, self.hold = turned, fail_on_call, hold
        self.embedded, self.calls, self.seen = 0, 0, []
        self.holding, self.release = threading.Event(), threading.Event()

    def embed(self, texts):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("the model went away")
        if self.hold and len(texts) > 1:
            self.holding.set()
            assert self.release.wait(WAIT), "never released"
        self.embedded += len(texts)
        self.seen += texts
        vectors = self.hashing.embed(texts)
        return np.ascontiguousarray(vectors[:, ::-1]) if self.turned else vectors


class Down:
    """The model while it is down: every report is stored and confirmed without a theme."""

    name, dimension = "hashing", 1024

    def embed(self, texts):
        raise RuntimeError("the model is down")


def replica(engine, settings, clock, embedder) -> FrictionService:
    service = FrictionService(engine, settings, embedder, clock=clock)
    service.theming.thresholds = HASHING  # a turned space is the hashing space, turned
    return service


def log_all(service):
    for n, text in enumerate(ALL):
        ask(service, f"U{n}", text)


def rows(engine) -> list[Submission]:
    with Session(engine) as session:
        return list(session.exec(select(Submission).order_by(Submission.id)))


def unthemed_after_a_failed_embedding(engine, settings, clock) -> None:
    """Twelve reports logged while the model was down: stored and confirmed, without a theme."""
    down = replica(engine, settings, clock, Down())
    for n, text in enumerate(ALL):
        assert "could not match it to a theme" in ask(down, f"U{n}", text).text
    assert all(s.theme_id is None and s.embedding is None for s in rows(engine))


def theme_sizes_add_up(engine) -> None:
    """Every theme's stored size is its members: nothing was placed twice."""
    with Session(engine) as session:
        counted = queries.theme_sizes(session)
        assert {t.id: t.size for t in queries.live_themes(session)} == counted
    assert sum(counted.values()) == len([s for s in rows(engine) if s.theme_id is not None])


# 1. Embedding stored submissions: batch by batch, one process at a time ------------------------------


def test_embedding_what_waits_for_a_theme_commits_batch_by_batch_and_an_interrupted_run_goes_on(
    engine, settings, clock
):
    unthemed_after_a_failed_embedding(engine, settings, clock)
    broken = replica(engine, settings, clock, Counting(fail_on_call=2))
    with pytest.raises(RuntimeError, match="went away"):
        broken.theming.embed_missing(batch=5)
    assert sum(s.theme_id is not None for s in rows(engine)) == 5  # the first batch stayed

    counting, reported = Counting(), []
    again = replica(engine, settings, clock, counting)
    assert again.theming.embed_missing(lambda *stage: reported.append(stage), batch=5) == 7
    assert counting.embedded == 7  # the rest only, never the first batch again
    assert reported == [("embedding", 5, 7), ("embedding", 7, 7)]
    assert all(s.theme_id is not None and s.embedded_by == "hashing" for s in rows(engine))
    theme_sizes_add_up(engine)
    assert again.theming.embed_missing() == 0 and counting.embedded == 7


def test_a_report_whose_delivery_has_yet_to_run_is_left_to_it(engine, settings, clock):
    counting = Counting()
    service = replica(engine, settings, clock, counting)
    accepted = service.accept(Inbound(user="U1", user_name="U1", text=ALL[0], platform="test", delivery_id="d1"))
    assert service.theming.embed_missing() == 0 and counting.embedded == 0  # stored, its delivery not run yet
    assert "Logged as S-1" in service.process(accepted.delivery).text
    [submission] = rows(engine)
    assert submission.theme_id is not None and counting.embedded == 1
    theme_sizes_add_up(engine)


def test_embedding_what_waits_never_holds_up_storing_or_running_a_new_report(engine, settings, clock):
    unthemed_after_a_failed_embedding(engine, settings, clock)
    held = Counting(hold=True)
    service = replica(engine, settings, clock, held)
    run = threading.Thread(target=service.theming.embed_missing)
    run.start()
    try:
        assert held.holding.wait(WAIT)  # in the middle of embedding a batch
        answers = []
        started = time.monotonic()
        reporter = threading.Thread(target=lambda: answers.append(ask(service, "U-new", "the chat widget logs me out")))
        reporter.start()
        reporter.join(WAIT)
        # Before, the whole run held the theme lock (and, on SQLite, the process's writer lock).
        assert answers and "Logged as S-13" in answers[0].text, "a new report waited for the embedding run"
        assert time.monotonic() - started < service.settings.accept_timeout
    finally:
        held.release.set()
        run.join(WAIT)
    assert all(s.theme_id is not None for s in rows(engine))
    theme_sizes_add_up(engine)


@pytest.mark.parametrize("job", ["embed_missing", "embed_again", "catch_up"])
def test_two_replicas_at_once_embed_each_submission_once(engine, database_url, settings, clock, job):
    if job == "embed_missing":
        unthemed_after_a_failed_embedding(engine, settings, clock)
        made = [Counting(hold=True), Counting()]
    else:
        log_all(replica(engine, settings, clock, HashingEmbedder()))
        made = [Counting(turned=True, hold=True), Counting(turned=True)]
    engines = [make_engine(database_url) for _ in made]  # a process each: connections of their own
    first, second = (replica(e, settings, clock, embedder) for e, embedder in zip(engines, made, strict=True))
    try:
        one = threading.Thread(target=getattr(first.theming, job))
        one.start()
        assert made[0].holding.wait(WAIT)  # the first is embedding its batch, nothing committed yet
        two = threading.Thread(target=getattr(second.theming, job))
        two.start()
        time.sleep(0.5)
        assert made[1].calls == 0 and two.is_alive()  # the second waits for the first
        made[0].release.set()
        one.join(WAIT)
        two.join(WAIT)
        assert not one.is_alive() and not two.is_alive()
    finally:
        made[0].release.set()
        for e in engines:
            e.dispose()
    assert made[0].embedded == 12 and made[1].embedded == 0  # the second found it done
    expected = "hashing" if job == "embed_missing" else "turned-hashing"
    assert {s.embedded_by for s in rows(engine)} == {expected}
    theme_sizes_add_up(engine)


# 2. serve brings stored vectors to its model at start-up -----------------------------------------


def test_serve_embeds_stored_submissions_again_once_at_start_up_while_new_reports_are_acknowledged(
    engine, settings, clock, caplog
):
    caplog.set_level(logging.INFO)
    old = replica(engine, settings, clock, HashingEmbedder())
    log_all(old)
    old.theming.recluster(clock())
    before = {s.id: s.theme_id for s in rows(engine)}
    turned = Counting(turned=True, hold=True)
    switched = replica(engine, settings, clock, turned)

    async def start_and_report() -> None:
        app = make_web_app(switched, schedule=True)
        async with served(app):
            try:
                assert await asyncio.to_thread(turned.holding.wait, WAIT)  # embedding again, in the background
                started = time.monotonic()
                event = Inbound(user="U-new", user_name="U-new", text="the chat widget logs me out", platform="test")
                accepted = await app[PIPELINE].receive(event)  # the ack path: stored, not waiting
                assert not accepted.duplicate and time.monotonic() - started < settings.accept_timeout
                await until(lambda: rows(engine)[-1].theme_id is not None)  # and run: placed meanwhile
                assert turned.holding.is_set() and not turned.release.is_set()
            finally:
                turned.release.set()
            await until(lambda: "theme centres made again" in caplog.text)

    asyncio.run(start_and_report())
    assert sorted(t for t in turned.seen if t in ALL) == sorted(ALL)  # the twelve stored ones, once each
    assert {s.embedded_by for s in rows(engine)} == {"turned-hashing"}
    assert {s.id: s.theme_id for s in rows(engine) if s.id in before} == before  # themes untouched
    with Session(engine) as session:
        assert {t.embedded_by for t in queries.live_themes(session) if t.id in before.values()} == {"turned-hashing"}
    assert "embedding again with turned-hashing: 0 of 12 (0%)" in caplog.text
    assert "embedding again with turned-hashing: 12 of 12 (100%)" in caplog.text
    assert "stored vectors are turned-hashing's now: 12 submissions embedded again, 3 theme centres made again" in (
        caplog.text
    )
    # The themes have this model's centres already: a new report joins one, before any re-clustering.
    assert "joined T-" in ask(switched, "U-later", TOPICS["refund"][0]).text

    caplog.clear()
    turned.seen.clear()
    asyncio.run(start_again(replica(engine, settings, clock, turned)))  # a restart: nothing left to do
    assert turned.seen == ["warming up"] and "embedding again" not in caplog.text


async def start_again(service) -> None:
    async with served(make_web_app(service, schedule=True)):
        await asyncio.sleep(0.5)


async def until(condition, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_an_interrupted_start_up_catch_up_goes_on_and_still_gives_the_themes_new_centres(engine, settings, clock):
    old = replica(engine, settings, clock, HashingEmbedder())
    log_all(old)
    old.theming.recluster(clock())
    broken = replica(engine, settings, clock, Counting(turned=True, fail_on_call=2))
    with pytest.raises(RuntimeError, match="went away"):
        broken.theming.catch_up(batch=5)
    assert sum(s.embedded_by == "turned-hashing" for s in rows(engine)) == 5
    turned = Counting(turned=True)
    done = replica(engine, settings, clock, turned).theming.catch_up(batch=5)
    assert (done.embedded_again, done.centres, turned.embedded) == (7, 3, 7)
    with Session(engine) as session:
        assert all(t.embedded_by == "turned-hashing" for t in session.exec(select(Theme)) if t.size)


def test_two_frictionlog_serve_replicas_started_together_embed_again_once_with_the_real_model(
    engine, database_url, settings, clock, tmp_path
):
    """The real command, twice at once, configured with MiniLM on a database the hashing embedder
    filled: both answer Slack at once; the stored submissions are embedded again once, by one."""
    from aiohttp import ClientSession

    from tests.fake_slack import FakeSlackThread
    from tests.test_reliability import Serve, deliver

    old = replica(engine, settings, clock, HashingEmbedder())
    log_all(old)
    old.theming.recluster(clock())
    minilm = "local:all-MiniLM-L6-v2"
    switched = f"stored vectors are {minilm}'s now: 12 submissions embedded again, 3 theme centres made again"

    async def main(fake) -> list[str]:
        env = {"FRICTIONLOG_EMBEDDINGS": "local", "FRICTIONLOG_EMBEDDING_MODEL": "minilm"}
        replicas = [Serve(database_url, fake, tmp_path, **env).start() for _ in range(2)]
        try:
            async with ClientSession() as http:
                for n, serve in enumerate(replicas):
                    await serve.ready(http)
                    status, _ = await deliver(http, serve, f"U-new{n}", "the chat widget logs me out", f"Ev-{n}")
                    assert status == 200
                await until(lambda: any(switched in serve.log.read_text() for serve in replicas), timeout=120)
        finally:
            for serve in replicas:
                serve.stop()
        return [serve.log.read_text() for serve in replicas]

    with FakeSlackThread() as fake:
        logs = asyncio.run(main(fake))
    assert sum(switched in log for log in logs) == 1  # one replica did it
    assert sum("embedding again with" in log for log in logs) == 1  # the other found nothing to do
    assert {s.embedded_by for s in rows(engine)} == {minilm}
    with Session(engine) as session:
        assert {t.embedded_by for t in queries.live_themes(session)} == {minilm}


# 3. A rolling deploy never flips stored vectors back and forth -------------------------------------


def test_a_replica_still_on_the_old_model_leaves_stored_vectors_alone_in_a_rolling_deploy(engine, settings, clock):
    old_model = Counting()
    old = replica(engine, settings, clock, old_model)
    log_all(old)
    assert old.theming.recluster(clock()).themes == 3

    clock.advance(minutes=10)  # the new replica starts later, with the new model
    new_model = Counting(turned=True)
    new = replica(engine, settings, clock, new_model)
    assert new.theming.catch_up().embedded_again == 12

    for _ in range(2):  # the old replica's re-clusterings, while both run
        old_model.embedded = 0
        skipped = old.theming.recluster(clock())
        assert skipped.newer_model == "turned-hashing" and skipped.embedded_again == 0 and skipped.themes == 0
        assert old_model.embedded == 0 and old.theming.embed_again() == 0
        assert old.theming.catch_up().newer_model == "turned-hashing"
        # The old replica still logs what it is sent, with its model; the new one brings that over.
        ask(old, "U-old", TOPICS["hold"][0])
        with Session(engine) as session:  # a re-clustering never mixes the old replica's vectors in
            ids, *_ = queries.embedding_matrix(session, embedder="turned-hashing", size=4 * new_model.dimension)
            assert len(ids) == len(rows(engine)) - 1
        result = new.theming.recluster(clock())
        assert result.newer_model is None and result.embedded_again == 1 and result.submissions == len(rows(engine))
    assert {s.embedded_by for s in rows(engine)} == {"turned-hashing"}
    # Each stored submission once, each of the old replica's once (the rest is naming's phrases).
    assert sum(text in ALL for text in new_model.seen) == 12 + 2

    clock.advance(minutes=10)  # a rollback: a replica started after the switch may switch again
    back = replica(engine, settings, clock, HashingEmbedder())
    assert back.theming.recluster(clock()).embedded_again == 14
    assert new.theming.recluster(clock()).newer_model == "hashing"
    with Session(engine) as session:
        choices = session.exec(select(EmbedderChoice).order_by(EmbedderChoice.id)).all()
        assert [c.embedder for c in choices] == ["hashing", "turned-hashing", "hashing"]
        assert choices[1].started_at > choices[0].started_at
