"""Teams conversation references stored without the id of the message they were taken from

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25

A reference kept beside a person's ids also kept the id of the message they last sent, which an
anonymous report's event id could be matched against. References stored from now on leave it
out (adapters/teams/bot.py); this takes it out of those stored before. A proactive send never
needs it: the adapter makes an activity id of its own.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

references = sa.table(
    "conversationref",
    sa.column("id", sa.Integer),
    sa.column("platform", sa.String),
    sa.column("reference", sa.String),
)


def upgrade() -> None:
    connection = op.get_bind()
    teams = sa.select(references.c.id, references.c.reference).where(references.c.platform == "teams")
    for row_id, stored in connection.execute(teams).all():
        reference = json.loads(stored)
        if reference.pop("activityId", None) is not None:
            connection.execute(
                references.update().where(references.c.id == row_id).values(reference=json.dumps(reference))
            )


def downgrade() -> None:
    pass  # the ids are gone, and nothing needs them back
