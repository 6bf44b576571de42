"""Starting up: replicas racing to create the schema, deleted bytes gone from disk, text any database stores."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlmodel import Session, select

from bot.redaction import clean_text, redact
from storage.db import MIGRATIONS, make_engine, prepare, schema_is_current, scrub, upgrade
from storage.models import Submission

ROOT = Path(__file__).resolve().parents[1]
REPLICAS = 3

# One replica: imports what `frictionlog serve` has imported by then (storage.models comes with
# bot.service), says it is ready, then waits for the start time the test sends once all are
# ready, so the three call prepare() within a millisecond or so of each other. Without the
# migration lock this fails every time, on PostgreSQL and SQLite alike.
REPLICA = """
import sys, time
from storage.db import make_engine, prepare
import storage.models  # noqa: F401  (as `frictionlog serve` has, through bot.service)
engine = make_engine(sys.argv[1])
print("ready", flush=True)
start = float(sys.stdin.readline())
time.sleep(max(0.0, start - time.time()))
prepare(engine)
print("prepared", flush=True)
"""


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def _start_replicas_at_once(url: str) -> list[tuple[int, str]]:
    replicas = [
        subprocess.Popen(
            [sys.executable, "-c", REPLICA, url],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    try:
        for replica in replicas:
            assert replica.stdout.readline().strip() == "ready", replica.communicate(timeout=60)[1]
        start = time.time() + 0.3
        for replica in replicas:
            replica.stdin.write(f"{start}\n")
            replica.stdin.flush()
        results = []
        for replica in replicas:
            out, err = replica.communicate(timeout=120)
            results.append((replica.returncode, out + err))
        return results
    finally:
        for replica in replicas:
            if replica.poll() is None:
                replica.kill()
                replica.wait()


def _assert_all_came_up_at_head(url: str, results: list[tuple[int, str]]) -> None:
    failures = [output for code, output in results if code != 0]
    assert not failures, f"{len(failures)} of {REPLICAS} replicas failed:\n" + "\n---\n".join(failures)
    engine = make_engine(url)
    try:
        assert schema_is_current(engine)
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == _head()
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_replicas_started_at_once_on_an_empty_postgres_all_come_up(postgres_url):
    _assert_all_came_up_at_head(postgres_url, _start_replicas_at_once(postgres_url))


def test_replicas_started_at_once_on_an_empty_sqlite_file_all_come_up(sqlite_url):
    _assert_all_came_up_at_head(sqlite_url, _start_replicas_at_once(sqlite_url))


def test_prepare_still_refuses_an_older_schema_and_leaves_a_current_one_alone(database_url):
    from storage.db import SchemaOutOfDate

    engine = make_engine(database_url)
    upgrade(engine, "0001")
    with pytest.raises(SchemaOutOfDate, match="frictionlog db upgrade"):
        prepare(engine)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == "0001"
    upgrade(engine)
    prepare(engine)
    assert schema_is_current(engine)
    engine.dispose()


def test_prepare_on_in_memory_sqlite():
    engine = make_engine("sqlite://")
    prepare(engine)
    assert schema_is_current(engine)
    engine.dispose()


SECRET = "reporter-U0SECRET7731-zq"
# Where the name was written, and what it was changed to.
MAKE_ANONYMOUS = ({"author": SECRET}, {"author": None})
EDIT_THE_NAME_OUT = (
    {"text": f"the refund form times out, says {SECRET}"},
    {"text": "the refund form times out; [name removed] said so, and it happened twice again today"},
)


def _overwrite_on_disk(engine, written_then_changed) -> tuple[bytes, bytes, bytes]:
    """Store a submission naming its reporter, then change the name away; the database file's
    bytes once the name reached it, and the database and -wal files' bytes after scrub()."""
    first, then = written_then_changed
    upgrade(engine)
    database = Path(engine.url.database)
    wal = database.with_name(database.name + "-wal")
    with Session(engine) as session:
        submission = Submission(**{"text": "the refund form times out", "author_hash": "h" * 64, **first})
        session.add(submission)
        session.add(Submission(text="a later report, stored after it on the same page"))
        session.commit()
        scrub(engine)
        written = database.read_bytes()
        for field, value in then.items():
            setattr(submission, field, value)
        session.add(submission)
        session.commit()
    scrub(engine)
    with Session(engine) as session:
        assert SECRET not in repr(session.exec(select(Submission)).all())
    return written, database.read_bytes(), wal.read_bytes() if wal.exists() else b""


@pytest.mark.parametrize("written_then_changed", [MAKE_ANONYMOUS, EDIT_THE_NAME_OUT], ids=["anonymous", "edit"])
def test_overwritten_text_is_gone_from_the_sqlite_files(sqlite_url, written_then_changed):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    written, database, wal = _overwrite_on_disk(engine, written_then_changed)
    engine.dispose()
    assert SECRET.encode() in written  # the name did reach the database file itself
    assert SECRET.encode() not in database
    assert SECRET.encode() not in wal


def test_without_secure_delete_the_old_name_would_stay_in_the_file(sqlite_url):
    """The check above can fail: with secure_delete off (the default of many SQLite builds, not
    of Debian's, which turns it on at compile time) a row that moved leaves its old bytes behind."""
    engine = make_engine(sqlite_url)

    @event.listens_for(engine, "connect")
    def _secure_delete_off(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA secure_delete=OFF")

    _, database, _ = _overwrite_on_disk(engine, EDIT_THE_NAME_OUT)
    engine.dispose()
    assert SECRET.encode() in database


@pytest.mark.postgres
def test_scrub_does_nothing_on_postgres(postgres_url):
    engine = make_engine(postgres_url)
    upgrade(engine)
    scrub(engine)
    engine.dispose()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain text, ünïcödé and 😀 stay", "plain text, ünïcödé and 😀 stay"),
        ("nul\x00byte", "nulbyte"),
        ("windows\r\nline\rends\nkept", "windows\nline\nends\nkept"),
        ("tab\tstays", "tab\tstays"),
        ("bell\x07 escape\x1b[31m del\x7f c1\x9f", "bell escape[31m del c1"),
        ("vertical\x0btab, form\x0cfeed and next\x85line", "vertical tab, form feed and next line"),
        ("lone \ud800 high", "lone \ufffd high"),
        ("lone \udc00 low", "lone \ufffd low"),
        ("two highs \ud800\ud800", "two highs \ufffd\ufffd"),
        ("ends high \ud83d", "ends high \ufffd"),
        ("a pair \ud83d\ude00 joins", "a pair \U0001f600 joins"),
        ("", ""),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean
    assert clean_text(clean) == clean
    clean.encode("utf-8")  # storable: no surrogates left


def test_redact_cleans_first_and_stays_idempotent():
    raw = "mail jane\x00.doe@example.com\r\nor call +1 415 555 0134 \ud800"
    once = redact(raw)
    assert once == "mail [email]\nor call [phone] \ufffd"
    assert redact(once) == once


def test_text_with_nul_and_a_lone_surrogate_is_stored_cleaned(engine):
    stored = redact("the POS\x00 shows \ud800 garbage\r\nagain")
    with Session(engine) as session:
        session.add(Submission(text=stored))
        session.commit()
    with Session(engine) as session:
        assert session.exec(select(Submission.text)).one() == "the POS shows \ufffd garbage\nagain"
