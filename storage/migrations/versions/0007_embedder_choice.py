"""the switches of embedding model, so a replica still running the old model leaves stored vectors alone

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

Empty after the upgrade: the first process that embeds or re-clusters records its model.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embedderchoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("embedder", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("embedderchoice")
