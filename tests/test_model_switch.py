"""Switching the embedding model: stored submissions embedded again once, batch by batch, by one
process at a time, and never flipped back and forth by a replica still running the old model. On SQLite
and PostgreSQL, with real threads."""

import threading
import time

import numpy as np
import pytest
from sqlmodel import Session, select

from bot.messages import Inbound
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from digests.themes import HASHING
from storage import queries
from storage.db import make_engine
from storage.models import EmbedderChoice, Submission
from tests.conftest import ask

TEXTS = {
    "refund": [
        "refund approval from a supervisor takes three days",
        "supervisor approval for every refund over fifty dollars is slow",
        "refunds wait days for supervisor approval",
        "another refund stuck waiting for supervisor approval",
    ],
    "hold": [
        "phone hold times over forty minutes in the evening",
        "callers on hold for forty minutes again tonight",
        "evening phone hold times are terrible, forty minutes",
        "hold times on the phone queue hit forty minutes",
    ],
    "tracking": [
        "tracking link in the shipping email is broken",
        "the shipping email tracking link gives a 404",
        "broken tracking link in every shipping confirmation email",
        "customers cannot open the tracking link in the shipping email",
    ],
}
ALL = [text for texts in TEXTS.values() for text in texts]
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


# 1. What waits for a theme is embedded batch by batch --------------------------------------------


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


@pytest.mark.parametrize("job", ["embed_missing", "embed_again"])
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
    expected = "turned-hashing" if job == "embed_again" else "hashing"
    assert {s.embedded_by for s in rows(engine)} == {expected}
    theme_sizes_add_up(engine)


# 2. A rolling deploy never flips stored vectors back and forth -------------------------------------


def test_a_replica_still_on_the_old_model_leaves_stored_vectors_alone_in_a_rolling_deploy(engine, settings, clock):
    old_model = Counting()
    old = replica(engine, settings, clock, old_model)
    log_all(old)
    assert old.theming.recluster(clock()).themes == 3

    clock.advance(minutes=10)  # the new replica starts later, with the new model
    new_model = Counting(turned=True)
    new = replica(engine, settings, clock, new_model)
    assert new.theming.embed_again() == 12

    for _ in range(2):  # the old replica's re-clusterings, while both run
        old_model.embedded = 0
        skipped = old.theming.recluster(clock())
        assert skipped.newer_model == "turned-hashing" and skipped.embedded_again == 0 and skipped.themes == 0
        assert old_model.embedded == 0 and old.theming.embed_again() == 0
        assert old.theming.newer_model() == "turned-hashing"
        # The old replica still logs what it is sent, with its model; the new one brings that over.
        ask(old, "U-old", TEXTS["hold"][0])
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
