"""The nouns of frictionlog as SQLModel tables (see DESIGN.md, "Data").

Timestamps are stored as UTC. Embeddings and centroids are float32 vectors stored as bytes,
so one schema serves SQLite and PostgreSQL without extensions.
"""

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

THEME_STATUSES = ("new", "acknowledged", "in_progress", "resolved", "wont_fix")
CLOSED_STATUSES = ("resolved", "wont_fix")
KINDS = ("policy", "customer", "other")
# The actor of an audit event an anonymous sender caused on their own report: no id is kept.
ANONYMOUS_SENDER = "an anonymous sender"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on the way in and out; SQLite alone would hand back naive values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime: frictionlog stores UTC-aware timestamps only")
        return None if value is None else value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _timestamp(nullable: bool = False, index: bool = False):
    column = Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


# Room for an embedder's name (`local:<model name or path>`); a longer name is cut to this.
EMBEDDER_CHARS = 200


def vector_bytes(dimension: int) -> int:
    """How many bytes a stored vector of this dimension takes (float32)."""
    return 4 * dimension


def vector_to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def bytes_to_vector(data: bytes | None) -> np.ndarray | None:
    return None if data is None else np.frombuffer(data, dtype=np.float32)


class Theme(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(default="", max_length=120)
    summary: str = Field(default="", max_length=500)
    status: str = Field(default="new", max_length=20, index=True)
    status_note: str = Field(default="", max_length=2000)
    owner: str | None = Field(default=None, max_length=120, index=True)  # the owner's id on owner_platform
    owner_platform: str | None = Field(default=None, max_length=20)
    owner_assigned_at: datetime | None = _timestamp(nullable=True)
    acknowledged_at: datetime | None = _timestamp(nullable=True)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp()
    status_changed_at: datetime | None = _timestamp(nullable=True)
    merged_into_id: int | None = Field(default=None, foreign_key="theme.id", index=True)
    # A team lead's rename wins over every automatic title from then on.
    title_locked: bool = Field(default=False)
    # Set when a lead merged another theme into this one: re-clustering may not split it again.
    curated: bool = Field(default=False)
    example_submission_id: int | None = Field(default=None)
    size: int = Field(default=0)
    # The size the current title was made for: titles change only when the theme does.
    named_size: int = Field(default=0)
    # The owner's own target for a fix (`/friction due T-12 2026-12-10`); reminders chase it.
    resolution_due_at: datetime | None = _timestamp(nullable=True)
    centroid: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # The embedder that made the centroid: after a switch, even to a model of the same size, new
    # vectors are never compared with another model's centre. None: stored before this was kept.
    embedded_by: str | None = Field(default=None, max_length=EMBEDDER_CHARS)

    @property
    def key(self) -> str:
        return theme_key(self.id)


def theme_key(theme_id: int | None) -> str:
    return f"T-{theme_id}" if theme_id is not None else ""


class Submission(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(max_length=4000)
    kind: str = Field(default="other", max_length=20, index=True)
    tags: str = Field(default="", max_length=500)
    platform: str = Field(default="console", max_length=20)
    # Shown and exported only when not anonymous.
    author: str | None = Field(default=None, max_length=120)
    # Keyed hash of platform:user, so "mine", undo and me-too work without storing who, in clear.
    author_hash: str | None = Field(default=None, max_length=64, index=True)
    # The sender's platform and id encrypted (bot/sealing.py), so a resolution can reach anonymous
    # reporters through the bot. Never shown, logged or exported.
    reporter_sealed: str | None = Field(default=None, max_length=500)
    anonymous: bool = Field(default=False)
    channel: str | None = Field(default=None, max_length=120)
    source_url: str | None = Field(default=None, max_length=500)
    platform_event_id: str | None = Field(default=None, max_length=200, unique=True)
    external_id: str | None = Field(default=None, max_length=200, unique=True)
    created_at: datetime = _timestamp(index=True)
    theme_id: int | None = Field(default=None, foreign_key="theme.id", index=True)
    # Placed by a team lead (split or "different issue"): re-clustering leaves it where it is.
    pinned: bool = Field(default=False)
    hidden: bool = Field(default=False)
    # Withdrawn by its sender: the row and its id stay (an id is never handed out again), its
    # words, sender and theme go; an audit event says who withdrew it and when.
    withdrawn_at: datetime | None = _timestamp(nullable=True)
    embedding: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # The embedder that made the embedding, so switching models embeds again what another one made
    # (digests/theming.py). None: stored before this was kept; its size alone tells then.
    embedded_by: str | None = Field(default=None, max_length=EMBEDDER_CHARS)


class Vote(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("theme_id", "voter_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    theme_id: int = Field(foreign_key="theme.id", index=True)
    voter_hash: str = Field(max_length=64)
    voter_sealed: str | None = Field(default=None, max_length=500)
    created_at: datetime = _timestamp()


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    theme_id: int | None = Field(default=None, foreign_key="theme.id", index=True)
    actor: str = Field(max_length=120)  # an id on actor_platform, "frictionlog" or ANONYMOUS_SENDER
    actor_platform: str | None = Field(default=None, max_length=20)
    action: str = Field(max_length=30)
    detail: str = Field(default="", max_length=2000)
    created_at: datetime = _timestamp(index=True)


class DigestRun(SQLModel, table=True):
    """A claim on posting one digest to one target for one period (see queries.claim_digest)."""

    __table_args__ = (UniqueConstraint("target", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(max_length=200)
    period: str = Field(max_length=20)
    created_at: datetime = _timestamp()
    posted_at: datetime | None = _timestamp(nullable=True)
    message_id: int | None = Field(default=None)  # the outbox message carrying it


class DigestTarget(SQLModel, table=True):
    """A channel a lead asked for the weekly digest in (`digest here`), besides the configured ones."""

    __table_args__ = (UniqueConstraint("platform", "channel"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    channel: str = Field(max_length=200)
    added_by: str = Field(max_length=200)
    created_at: datetime = _timestamp()
    # Its own schedule: crontab fields in its own time zone; empty means the defaults
    # (FRICTIONLOG_DIGEST_CRON in FRICTIONLOG_TIMEZONE).
    cron: str | None = Field(default=None, max_length=100)
    timezone: str | None = Field(default=None, max_length=64)


class Notice(SQLModel, table=True):
    """A claim on sending one notice once, however many replicas run: a deadline's reminder or
    escalation (kind, "T-12:acknowledge", the deadline), a reporter's "seen by leadership"
    (kind, person hash, ISO week). Inserted with the outbox message it causes."""

    __table_args__ = (UniqueConstraint("kind", "subject", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    subject: str = Field(max_length=200)
    period: str = Field(max_length=40)
    message_id: int | None = Field(default=None)
    created_at: datetime = _timestamp()


class QuietPerson(SQLModel, table=True):
    """Someone who said `/friction quiet`: no "seen by leadership" notices. Kept by keyed hash."""

    __table_args__ = (UniqueConstraint("person_hash"),)
    id: int | None = Field(default=None, primary_key=True)
    person_hash: str = Field(max_length=64)
    created_at: datetime = _timestamp()


class ThemePair(SQLModel, table=True):
    """Two themes re-clustering found linked enough to ask a lead "Same problem?" (`share`: the
    larger share of one's neighbour links that end in the other). A lead's "Not the same" is kept
    as `verdict`: never asked again, and re-clustering keeps the two apart."""

    __table_args__ = (UniqueConstraint("theme_id", "other_id"),)
    id: int | None = Field(default=None, primary_key=True)
    theme_id: int = Field(index=True)  # the smaller id of the two
    other_id: int
    share: float
    found_at: datetime = _timestamp()
    verdict: str | None = Field(default=None, max_length=20)  # "distinct"
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = _timestamp(nullable=True)


class EmbedderChoice(SQLModel, table=True):
    """A switch of the model stored vectors are embedded with, recorded by the process that made it
    (digests/theming.py, `Theming.newer_model`); the newest row is in force. `started_at`, when
    that process started, is what keeps an older replica still running the old model, in a rolling
    deploy, from embedding everything back."""

    id: int | None = Field(default=None, primary_key=True)
    embedder: str = Field(max_length=EMBEDDER_CHARS)
    started_at: datetime = _timestamp()
    chosen_at: datetime = _timestamp()


class ConversationRef(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "user_id"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=200)
    reference: str = Field(max_length=8000)
    updated_at: datetime = _timestamp()


class Role(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("platform", "user_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    user_id: str = Field(max_length=200)
    role: str = Field(max_length=20)


def _sealed_text():
    return Field(default=None, sa_column=Column(Text, nullable=True))


class Delivery(SQLModel, table=True):
    """One inbound delivery (a message, a command, a button press, a form), stored before the
    platform is acknowledged and unique by the platform's delivery id: a retried delivery, a
    redelivered activity, a double click or a second replica meets the first row and stops.

    The event itself is kept sealed until it has been run, then removed: what stays is the id."""

    __table_args__ = (
        UniqueConstraint("platform", "delivery_id"),
        Index("ix_delivery_pending", "state", "claimed_until"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    delivery_id: str = Field(max_length=200)
    state: str = Field(default="received", max_length=20)  # received, done, failed
    event_sealed: str | None = _sealed_text()
    submission_id: int | None = Field(default=None, foreign_key="submission.id")
    attempts: int = Field(default=0)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _timestamp(nullable=True)
    received_at: datetime = _timestamp()
    done_at: datetime | None = _timestamp(nullable=True)


# held: over the recipient's daily DM budget, waiting to go out with the others in one message;
# batched: went out inside that one message (a row of its own, which the label names).
OUTBOX_STATES = ("pending", "held", "sent", "batched", "failed", "undeliverable")


class OutboxMessage(SQLModel, table=True):
    """One message that must go out (a confirmation, an owner's DM, a reporter's notice, a
    digest), written in the same transaction as the change that causes it and sent once by the
    delivery worker (bot/outbox.py). Recipient and body are sealed: they may name a reporter."""

    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_recipient", "recipient_hash", "state"),
    )
    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    kind: str = Field(max_length=20)  # reply, notify, digest
    label: str = Field(default="", max_length=200)  # what it is, never who it is for
    recipient_sealed: str | None = _sealed_text()
    body_sealed: str | None = _sealed_text()
    # A notice to send instead when this message cannot be delivered for good (the lead who
    # assigned an owner the platform cannot reach), sealed.
    if_undeliverable_sealed: str | None = _sealed_text()
    # A keyed hash of the recipient, so the daily DM budget can be counted without unsealing;
    # budgeted: an unprompted message (reminder, notice) that the budget applies to.
    recipient_hash: str | None = Field(default=None, max_length=64)
    budgeted: bool = Field(default=False)
    state: str = Field(default="pending", max_length=20)
    attempts: int = Field(default=0)
    parts_done: int = Field(default=0)  # a digest sent in several messages: how many went out
    next_attempt_at: datetime = _timestamp()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = _timestamp(nullable=True)
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = _timestamp(index=True)
    sent_at: datetime | None = _timestamp(nullable=True)
