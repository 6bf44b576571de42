"""Engines for SQLite and PostgreSQL behind one interface, and schema upgrades through Alembic.

Schema changes run under a database-wide lock (see `_migration_lock`), so any number of replicas
may start at once on an empty database: one creates the schema, the others wait and find it there.
"""

import threading
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Let people write postgresql:// or postgres:// and still get psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_in_memory(url: str) -> bool:
    """An SQLite URL of a database that lives in memory, not in a file."""
    return make_url(normalise_url(url)).database in (None, "", ":memory:") or "mode=memory" in url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    # Parameters stay out of error messages: they may be a submission's text or a person's id.
    # Pools big enough for the ack path's threads, the run thread and the delivery worker at once.
    options = {"hide_parameters": True, "pool_size": 20, "max_overflow": 20}
    if parsed.get_backend_name() == "sqlite":
        in_memory = is_in_memory(url)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            **({"hide_parameters": True} if in_memory else options),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Zero deleted and overwritten content (a reporter's name after "make anonymous"), so it
            # does not linger in free space of the file; see scrub() for the write-ahead log.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # A pooled connection is checked before use: after a database restart the first message
    # would otherwise fail on a dead connection (a non-2xx to the platform, a failed outbox pass).
    return create_engine(url, pool_pre_ping=True, **options)


_SQLITE_WRITERS: "weakref.WeakKeyDictionary[Engine, threading.RLock]" = weakref.WeakKeyDictionary()


def _writer_lock(engine: Engine):
    """SQLite takes one writer at a time, and a writer that finds the file locked sleeps in
    growing steps (up to 100 ms) before it looks again: under load that puts whole sleeps on the
    ack path. Writers of one process queue on a lock instead and start the moment it is free.
    PostgreSQL locks rows, not the database: nothing to queue on."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return _SQLITE_WRITERS.setdefault(engine, threading.RLock())


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed on success, rolled back on error."""
    with _writer_lock(engine), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def scrub(engine: Engine) -> None:
    """Make deletions final on disk: on SQLite, copy the write-ahead log into the database file
    (where secure_delete has zeroed what was deleted) and truncate the log, so no earlier version
    of a row stays readable in the -wal file. Nothing to do on PostgreSQL (VACUUM is its business).

    The checkpoint is incomplete while another connection is still reading; call it after the
    unit of work that deleted, not inside one."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _alembic_config(engine: Engine, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    if connection is not None:
        # env.py migrates in this connection's transaction: the one holding the migration lock.
        config.attributes["connection"] = connection
    return config


# pg_advisory_xact_lock's key: any constant bigint that frictionlog alone uses ("frictlog" in ASCII).
# It locks migrations across the whole PostgreSQL database, whichever schema a replica uses.
ADVISORY_LOCK_KEY = 0x6672_6963_746C_6F67


def _sqlite_lock_path(url: URL, suffix: str = ".lock") -> Path | None:
    """The file to flock next to a SQLite database; None for an in-memory database (one process)."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    if database.startswith("file:") and url.query.get("uri") in ("true", "1", ("true",), ("1",)):
        parts = urlsplit(database)  # a URI filename: file:path?mode=...
        mode = url.query.get("mode", ())  # SQLAlchemy takes ?mode= as its own; a str, or a tuple if repeated
        modes = parse_qs(parts.query).get("mode", []) + ([mode] if isinstance(mode, str) else list(mode))
        if "memory" in modes or parts.path in ("", ":memory:"):
            return None
        database = parts.path
    return Path(database + suffix)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, through an open file of its own (so two holders in one process
    exclude each other too); the kernel releases it when the process dies."""
    import fcntl  # POSIX; imported here so that PostgreSQL deployments need it not

    with open(path, "a+b") as lock_file:
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the migration lock, committed on success.

    PostgreSQL: a transaction-level advisory lock, taken in the very transaction Alembic then
    migrates in; it is released when that transaction ends, also when the process dies.
    SQLite: an exclusive flock on `<database file>.lock`, held until the transaction committed;
    the kernel releases it when the process dies. In-memory SQLite lives in one process: no lock.
    Everything read inside (the current revision) is read after the lock was granted."""
    if engine.dialect.name == "postgresql":
        # Read committed (the default, made sure of here): each statement after the lock sees
        # what the replica that held the lock before committed.
        with engine.connect().execution_options(isolation_level="READ COMMITTED") as connection:
            with connection.begin():
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                yield connection
        return
    path = _sqlite_lock_path(engine.url) if engine.dialect.name == "sqlite" else None
    if path is None:
        with engine.begin() as connection:
            yield connection
        return
    with _file_lock(path), engine.begin() as connection:
        yield connection


# Session-level advisory lock keys of long jobs that one process at a time may run ("frictemb").
JOB_LOCK_KEYS = {"embedding": 0x6672_6963_7465_6D62}
_IN_MEMORY_JOBS: "weakref.WeakKeyDictionary[Engine, dict[str, threading.Lock]]" = weakref.WeakKeyDictionary()


@contextmanager
def job_lock(engine: Engine, name: str) -> Iterator[None]:
    """Run a long job (embedding stored submissions) in one process at a time, however many
    replicas share the database; a second one waits, then finds the work done.

    Unlike the migration lock, no transaction stays open while it is held: the job commits batch
    by batch, and every other writer goes on. PostgreSQL: a session-level advisory lock on a
    connection of its own in autocommit mode, released at the end, and by the server when the
    process dies. SQLite: an exclusive flock on `<database file>.<name>.lock` (a different open
    file for each holder, so two threads of one process exclude each other too), released by the
    kernel when the process dies. In-memory SQLite lives in one process: a lock in memory."""
    if engine.dialect.name == "postgresql":
        key = JOB_LOCK_KEYS[name]
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                try:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                except Exception:
                    connection.invalidate()  # closed, not pooled: the server releases the lock
                    raise
        return
    path = _sqlite_lock_path(engine.url, f".{name}.lock") if engine.dialect.name == "sqlite" else None
    if path is None:
        with _IN_MEMORY_JOBS.setdefault(engine, {}).setdefault(name, threading.Lock()):
            yield
        return
    with _file_lock(path):
        yield


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _head(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def _known(engine: Engine, revision: str) -> bool:
    """Whether this frictionlog's migrations hold the revision."""
    try:
        return ScriptDirectory.from_config(_alembic_config(engine)).get_revision(revision) is not None
    except CommandError:
        return False


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest migration (a no-op when it is already there), under the
    migration lock: replicas and `frictionlog db upgrade` may run at the same time."""
    with _migration_lock(engine) as connection:
        current = _current_revision(connection)
        if current is not None and not _known(engine, current):
            raise SchemaOutOfDate(_NEWER.format(current=current))
        command.upgrade(_alembic_config(engine, connection), revision)


class SchemaOutOfDate(RuntimeError):
    pass


_NEWER = (
    "the database schema is at revision {current}, newer than this frictionlog knows: "
    "a newer version upgraded it; run that version here"
)


def prepare(engine: Engine) -> None:
    """Create the schema in an empty database; refuse an old one rather than migrate it
    behind the admin's back (several replicas may start at once): `frictionlog db upgrade`.

    Checked and created under the migration lock, so of replicas starting together on an empty
    database one creates the schema and the others, once it is committed, find it current."""
    with _migration_lock(engine) as connection:
        current = _current_revision(connection)
        if current is None:
            command.upgrade(_alembic_config(engine, connection), "head")
        elif not _known(engine, current):
            # A newer frictionlog upgraded it (a rolling deploy, an old replica restarting):
            # upgrading cannot help this one, and downgrading would break the newer ones.
            raise SchemaOutOfDate(_NEWER.format(current=current))
        elif current != _head(engine):
            raise SchemaOutOfDate(
                f"the database schema is at revision {current}, older than this frictionlog: "
                "run `frictionlog db upgrade`"
            )


def schema_is_current(engine: Engine) -> bool:
    head = _head(engine)
    with engine.connect() as connection:
        return _current_revision(connection) == head


def database_exists(url: str) -> bool:
    """Whether a frictionlog schema is there: an SQLite file or a PostgreSQL database with
    frictionlog's tables (an unrelated database, or an empty file, is not one: a command that
    only reads must not write the schema into it). Never creates or writes anything."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database == ":memory:":
            return True
        return bool(parsed.database) and Path(parsed.database).is_file() and _sqlite_revision(Path(parsed.database))
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() is not None
    finally:
        engine.dispose()


def _sqlite_revision(path: Path) -> bool:
    """Whether this SQLite file has a frictionlog (Alembic) revision, read in read-only mode:
    not through make_engine, whose pragmas would turn an unrelated file to WAL."""
    import sqlite3

    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.DatabaseError:  # no such table, not a database at all
        return False


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
