"""inbound deliveries and the outbox; people keep their platform

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _string(length: int):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(20), nullable=False),
        sa.Column("delivery_id", _string(200), nullable=False),
        sa.Column("state", _string(20), nullable=False),
        sa.Column("event_sealed", sa.Text(), nullable=True),
        sa.Column("submission_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", _string(64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["submission_id"], ["submission.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "delivery_id"),
    )
    op.create_index("ix_delivery_pending", "delivery", ["state", "claimed_until"], unique=False)
    op.create_table(
        "outboxmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(20), nullable=False),
        sa.Column("kind", _string(20), nullable=False),
        sa.Column("label", _string(200), nullable=False),
        sa.Column("recipient_sealed", sa.Text(), nullable=True),
        sa.Column("body_sealed", sa.Text(), nullable=True),
        sa.Column("if_undeliverable_sealed", sa.Text(), nullable=True),
        sa.Column("state", _string(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parts_done", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", _string(64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", _string(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outbox_due", "outboxmessage", ["state", "next_attempt_at"], unique=False)
    op.create_index(op.f("ix_outboxmessage_created_at"), "outboxmessage", ["created_at"], unique=False)
    op.create_table(
        "digesttarget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", _string(20), nullable=False),
        sa.Column("channel", _string(200), nullable=False),
        sa.Column("added_by", _string(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("platform", "channel"),
    )
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_platform", _string(20), nullable=True))
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_platform", _string(20), nullable=True))
    with op.batch_alter_table("digestrun", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
    with op.batch_alter_table("digestrun", schema=None) as batch_op:
        batch_op.drop_column("message_id")
    with op.batch_alter_table("auditevent", schema=None) as batch_op:
        batch_op.drop_column("actor_platform")
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.drop_column("owner_platform")
    op.drop_table("digesttarget")
    op.drop_index(op.f("ix_outboxmessage_created_at"), table_name="outboxmessage")
    op.drop_index("ix_outbox_due", table_name="outboxmessage")
    op.drop_table("outboxmessage")
    op.drop_index("ix_delivery_pending", table_name="delivery")
    op.drop_table("delivery")
