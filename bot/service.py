"""The core's inbound pipeline, which every platform shares.

    adapter verifies → accept: de-duplicate and store (one transaction) → adapter acks
    → process: run it, write what must be sent to the outbox, mark the delivery done (one
    transaction) → the delivery worker sends (bot/outbox.py)

`accept` is all that runs before the platform hears back, so a crash after the ack loses
nothing: a delivery not processed within its claim is taken up again (`unclaimed`), and
`finish_delivery` lets exactly one process complete it. Which use case a command or a button
runs is bot/dispatch.py's table; the use cases live in modules named for them: submissions,
curation, owners, views.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import commands as c
from bot import dispatch, submissions, views
from bot.clock import Clock, system_clock
from bot.core import SORRY, Core, UserError, submission_key
from bot.messages import Inbound, Reply
from bot.outbox import enqueue_notification, enqueue_reply
from bot.redaction import clean_text
from bot.settings import Settings
from digests.embeddings import Embedder
from digests.naming import TitleModel
from digests.theming import Theming
from storage import queries
from storage.db import scrub, session_scope
from storage.models import Delivery, Submission, utcnow

log = logging.getLogger(__name__)
EVENT = TypeAdapter(Inbound)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Accepted:
    delivery: int | None  # the stored delivery's row id; None for a duplicate
    submission: int | None = None

    @property
    def duplicate(self) -> bool:
        return self.delivery is None


def _sender(event: Inbound) -> dict:
    """Where the answer to an event goes: what its adapter asked for, and who sent it."""
    return {**event.reply_to, "user": event.user}


class FrictionService(Core):
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        embedder: Embedder,
        clock: Clock = system_clock,
        title_model: TitleModel | None = None,
    ):
        theming = Theming(engine, embedder, title_model, window=settings.recluster_window, started=clock())
        super().__init__(engine, settings, theming, clock)
        self.worker = f"core-{uuid.uuid4().hex[:12]}"
        self.lease = timedelta(seconds=settings.claim_seconds)

    # Before the ack: store ---------------------------------------------------------------------

    def accept(self, event: Inbound) -> Accepted:
        """De-duplicate and store one inbound event; a submission is stored in the same
        transaction. Raises when it cannot be stored: the platform must then get a non-2xx."""
        event = replace(event, text=clean_text(event.text))
        command = self.command_of(event)
        submission = submissions.new_submission(self, event, command) if isinstance(command, c.Submit) else None
        kept = replace(event, text="") if submission is not None else event  # the row holds the text
        sealed = self.sealer.seal_bytes(EVENT.dump_json(kept))
        try:
            with session_scope(self.engine) as session:
                delivery_id, submission_id = queries.insert_delivery(
                    session,
                    platform=event.platform,
                    delivery_id=event.delivery_id or f"local-{uuid.uuid4().hex}",
                    event_sealed=sealed,
                    claimed_by=self.worker,
                    claimed_until=utcnow() + self.lease,
                    submission=submission,
                )
        except IntegrityError:  # delivered before (a retry, a double click, another replica)
            return Accepted(None)
        return Accepted(delivery_id, submission_id)

    def command_of(self, event: Inbound) -> c.Command | None:
        if event.kind == "message":
            return c.parse(event.text)
        if event.kind == "submission":
            return c.Submit(event.text.strip(), event.anonymous)
        return None

    # After the ack: run, and record what must be sent ------------------------------------------

    def process(self, delivery_id: int) -> Reply | None:
        """Run a stored delivery once; returns its reply, or None when it was run elsewhere."""
        return self.process_many([delivery_id]).get(delivery_id)

    def process_many(self, delivery_ids: list[int]) -> dict[int, Reply | None]:
        """Run stored deliveries, each once and in its own transaction; their submissions are
        embedded together first (one model call for the batch), outside any lock."""
        pending, unreadable = [], []
        with Session(self.engine) as session:
            for delivery_id in delivery_ids:
                delivery = session.get(Delivery, delivery_id)
                if delivery is None or delivery.state != "received":
                    continue
                event = self._opened(delivery)
                if event is None:
                    unreadable.append(delivery_id)
                    continue
                submission = session.get(Submission, delivery.submission_id) if delivery.submission_id else None
                text = submission.text if submission is not None and submission.theme_id is None else None
                pending.append((delivery_id, event, delivery.submission_id, text))
        for delivery_id in unreadable:  # never runs, and must not hold up the rest of its batch
            with session_scope(self.engine) as session:
                queries.finish_delivery(session, delivery_id=delivery_id, at=utcnow(), state="failed")
        vectors = iter(self._embed([text for *_, text in pending if text]))  # empty when embedding failed
        replies: dict[int, Reply | None] = {}
        for delivery_id, event, submission_id, text in pending:
            vector = next(vectors, None) if text else None
            replies[delivery_id] = self._run_once(delivery_id, event, submission_id, vector)
        return replies

    def _opened(self, delivery: Delivery) -> Inbound | None:
        """The stored event, or None when it cannot be read: sealed with another
        FRICTIONLOG_SECRET_KEY, or stored otherwise by another version."""
        try:
            return EVENT.validate_json(self.sealer.open_bytes(delivery.event_sealed) or b"")
        except ValidationError:
            log.error("delivery %s cannot be read (sealed with another key?): recorded as failed", delivery.id)
            return None

    def _run_once(self, delivery_id: int, event: Inbound, submission_id: int | None, vector) -> Reply | None:
        try:
            with self.theming.lock, session_scope(self.engine) as session:
                if not queries.finish_delivery(session, delivery_id=delivery_id, at=utcnow()):
                    return None  # another process ran it meanwhile
                reply = self._run_guarded(session, event, submission_id, vector)
                self._enqueue(session, event, reply, submission_id)
                wants_scrub = session.info.pop("scrub", False)
        except Exception:
            log.exception("running delivery %s (%s) failed", delivery_id, event.kind)
            self.theming.invalidate()  # the index may hold a theme whose insert was rolled back
            self._failed(delivery_id, event)
            return None
        if wants_scrub:
            scrub(self.engine)
        return reply

    def unclaimed(self) -> list[int]:
        """Deliveries whose process died after the ack, now claimed by this one to run."""
        now = utcnow()
        with Session(self.engine) as session:
            candidates = queries.unclaimed_deliveries(session, now=now)
        taken = []
        for delivery_id in candidates:
            with session_scope(self.engine) as session:
                if queries.claim_delivery(
                    session, delivery_id=delivery_id, worker=self.worker, now=now, until=now + self.lease
                ):
                    taken.append(delivery_id)
        return taken

    def handle(self, event: Inbound) -> Reply:
        """Accept and run at once: the console, the CLI and tests, where there is no ack to give."""
        accepted = self.accept(event)
        if accepted.duplicate:
            return Reply("Already received: nothing is done twice.", duplicate=True)
        reply = self.process(accepted.delivery)
        return reply if reply is not None else Reply(SORRY, ok=False)

    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        if not texts:
            return []
        try:
            return list(self.theming.embedder.embed(texts))
        except Exception:
            log.exception("embedding failed; %s submissions wait for the next re-clustering", len(texts))
            return []

    def _run_guarded(self, session: Session, event: Inbound, submission_id: int | None, vector) -> Reply:
        try:
            with session.begin_nested():  # a refusal undoes whatever the use case had written
                return self.run(session, event, submission_id, vector)
        except UserError as error:
            return Reply(str(error), ok=False)

    def _enqueue(self, session: Session, event: Inbound, reply: Reply, submission_id: int | None) -> None:
        article = "an" if event.kind[:1] in "aeiou" else "a"
        label = (
            f"confirmation of {submission_key(submission_id)}" if submission_id else f"reply to {article} {event.kind}"
        )
        enqueue_reply(session, self.sealer, platform=event.platform, to=_sender(event), reply=reply, label=label)
        if event.from_home and event.kind == "action":  # they are looking at it: draw it again
            page = views.home(self, session, event)
            home_to = {"user": event.user, "home": True}
            enqueue_reply(session, self.sealer, platform=event.platform, to=home_to, reply=page, label="home page")
        for notification in reply.notifications:
            enqueue_notification(session, self.sealer, notification)

    def _failed(self, delivery_id: int, event: Inbound) -> None:
        """Try again later; after MAX_ATTEMPTS, tell the sender it failed and stop."""
        try:
            with session_scope(self.engine) as session:
                attempts = queries.retry_delivery_later(
                    session, delivery_id=delivery_id, until=utcnow() + timedelta(seconds=5)
                )
                if attempts >= MAX_ATTEMPTS and queries.finish_delivery(
                    session, delivery_id=delivery_id, at=utcnow(), state="failed"
                ):
                    sorry = Reply(SORRY, ok=False)
                    to = _sender(event)
                    enqueue_reply(session, self.sealer, platform=event.platform, to=to, reply=sorry, label="failure")
        except Exception:
            log.exception("recording the failure of delivery %s failed too", delivery_id)

    # Running one event: a submission's confirmation, the App Home, or the use case it asks for -----

    def run(self, session: Session, event: Inbound, submission_id: int | None = None, vector=None) -> Reply:
        if submission_id is not None:
            return self._confirm(session, submission_id, vector)
        if event.kind == "home":
            return views.home(self, session, event)
        if event.kind == "action":
            if event.action is None:
                raise UserError("That button is no longer valid.")
            return dispatch.act(self, session, event, event.action)
        return dispatch.command(self, session, event, self.command_of(event))

    def _confirm(self, session: Session, submission_id: int, vector) -> Reply:
        submission = session.get(Submission, submission_id)
        if submission is None:
            return Reply(f"{submission_key(submission_id)} was withdrawn.")
        try:
            with session.begin_nested():
                submissions.place(self, session, submission, vector)
        except Exception:
            self.theming.invalidate()
            log.exception("theme assignment failed for %s; it will be themed on the next run", submission_id)
        return submissions.confirmation(self, session, submission_id)
