"""sealed reporters: reach anonymous reporters through the bot

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reporter_sealed", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))

    with op.batch_alter_table("vote", schema=None) as batch_op:
        batch_op.add_column(sa.Column("voter_sealed", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vote", schema=None) as batch_op:
        batch_op.drop_column("voter_sealed")

    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("reporter_sealed")
