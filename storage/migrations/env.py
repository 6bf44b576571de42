"""Alembic environment: runs on what frictionlog hands in (see storage.db.upgrade).

With `config.attributes["connection"]` (storage.db passes one holding the migration lock), the
migrations run in that connection's open transaction and the caller commits. With only
`config.attributes["engine"]`, they run on a connection of their own, committed here.
"""

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    # In a transaction the caller began, Alembic begins none of its own: the caller commits.
    with context.begin_transaction():
        context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    with context.config.attributes["engine"].connect() as connection:
        run_migrations(connection)
        connection.commit()
