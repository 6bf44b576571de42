"""deadlines, once-only notices, quiet people, the DM budget and per-target schedules

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _string(length: int):
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _string(30), nullable=False),
        sa.Column("subject", _string(200), nullable=False),
        sa.Column("period", _string(40), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "subject", "period"),
    )
    op.create_table(
        "quietperson",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_hash", _string(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_hash"),
    )
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_hash", _string(64), nullable=True))
        batch_op.add_column(sa.Column("budgeted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_outbox_recipient", ["recipient_hash", "state"], unique=False)
    with op.batch_alter_table("digesttarget", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cron", _string(100), nullable=True))
        batch_op.add_column(sa.Column("timezone", _string(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("digesttarget", schema=None) as batch_op:
        batch_op.drop_column("timezone")
        batch_op.drop_column("cron")
    with op.batch_alter_table("outboxmessage", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_recipient")
        batch_op.drop_column("budgeted")
        batch_op.drop_column("recipient_hash")
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.drop_column("resolution_due_at")
    op.drop_table("quietperson")
    op.drop_table("notice")
