"""which embedder made each stored embedding and centroid

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

Rows stored before this keep NULL: their vectors' size is all that tells whose they are (as
before), so an upgrade embeds nothing again by itself.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedded_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedded_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("theme", schema=None) as batch_op:
        batch_op.drop_column("embedded_by")
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("embedded_by")
