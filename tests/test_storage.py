"""The schema comes from Alembic and matches the models on both databases."""

import asyncio
import json
from datetime import UTC, datetime

from aiohttp import ClientSession
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from adapters.console import ConsoleChat
from adapters.web import make_web_app
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, schema_is_current, upgrade
from tests.loopback import served


def test_migrations_build_the_schema_the_models_describe(database_url):
    engine = make_engine(database_url)
    assert not schema_is_current(engine)
    upgrade(engine)
    upgrade(engine)  # a second upgrade is a no-op
    assert schema_is_current(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"submission", "theme", "vote", "auditevent", "digestrun", "conversationref", "role"} <= tables
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []
    engine.dispose()


def test_the_upgrade_takes_the_message_id_out_of_stored_teams_references(database_url):
    """Kept beside a person's ids, the id of the message they last sent could be matched with an
    anonymous report's event id; references stored before it was left out lose it on upgrade."""
    engine = make_engine(database_url)
    upgrade(engine, "0007")
    stored = {"activityId": "1700000000777", "user": {"id": "29:1ann", "aadObjectId": "aad-ann"}, "bot": {"id": "28:x"}}
    with engine.begin() as connection:
        for platform in ("teams", "console"):
            connection.execute(
                text("INSERT INTO conversationref (platform, user_id, reference, updated_at) VALUES (:p, :u, :r, :t)"),
                {"p": platform, "u": "aad-ann", "r": json.dumps(stored), "t": datetime.now(UTC)},
            )
    upgrade(engine)
    with engine.connect() as connection:
        kept = dict(connection.execute(text("SELECT platform, reference FROM conversationref")).all())
    assert json.loads(kept["teams"]) == {"user": {"id": "29:1ann", "aadObjectId": "aad-ann"}, "bot": {"id": "28:x"}}
    assert json.loads(kept["console"]) == stored  # another platform's are not Teams references
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


async def _get_healthz(service) -> tuple[int, dict]:
    async with served(make_web_app(service)) as base, ClientSession() as http, http.get(f"{base}/healthz") as answer:
        return answer.status, await answer.json()


NONE = {"slack": "not configured", "teams": "not configured"}


def test_serve_keeps_what_lives_as_long_as_it_out_of_the_collectors_full_passes(service):
    # With the model loaded a full pass over every object takes about 0.25 s, and it came now
    # and then in the middle of a burst of requests (bench/ingest.py: ack p99 ~370 ms against ~60).
    import gc

    gc.unfreeze()
    assert asyncio.run(_get_healthz(service))[0] == 200
    assert gc.get_freeze_count() > 10_000  # everything loaded by the time it served


def test_healthz_reports_the_database(service, settings):
    assert asyncio.run(_get_healthz(service)) == (200, {"ok": True, "database": "up", "platforms": NONE})
    unreachable = FrictionService(make_engine("postgresql://postgres@127.0.0.1:1/none"), settings, HashingEmbedder())
    assert asyncio.run(_get_healthz(unreachable)) == (503, {"ok": False, "database": "down", "platforms": NONE})


def test_console_chat_buttons(service):
    chat = ConsoleChat(service, "dana")
    reply = chat.send("refund approval takes three days #refunds")
    assert "Logged as S-1" in reply and "!1 Undo" in reply and "!4 Me too" in reply
    other = ConsoleChat(service, "luis")
    other.send("themes")
    assert "2 people" in other.send("!1")  # the theme card's Me too
    assert chat.send("!2").endswith("your name appears nowhere.")
    assert chat.send("!9") == "No such action. Actions are listed under the last reply."


def test_an_older_schema_is_refused_not_migrated_behind_the_admins_back(database_url, settings):
    import pytest

    from adapters.wiring import build_service
    from storage.db import SchemaOutOfDate

    engine = make_engine(database_url)
    upgrade(engine, "0001")
    with pytest.raises(SchemaOutOfDate, match="frictionlog db upgrade"):
        build_service(settings)
    upgrade(engine)
    assert build_service(settings).engine is not None
    engine.dispose()


def test_a_schema_a_newer_frictionlog_made_is_refused_with_what_to_do(database_url, settings):
    # An old replica restarting after a newer one upgraded the database: "run db upgrade" would
    # be wrong advice, since this version has nothing to upgrade to.
    import pytest
    from sqlalchemy import text

    from adapters.wiring import build_service
    from storage.db import SchemaOutOfDate

    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    with pytest.raises(SchemaOutOfDate, match="newer than this frictionlog knows: a newer version upgraded it"):
        build_service(settings)
    # `frictionlog db upgrade` says the same (README), not Alembic's "Can't locate revision".
    with pytest.raises(SchemaOutOfDate, match="newer than this frictionlog knows: a newer version upgraded it"):
        upgrade(engine)
    engine.dispose()


def test_healthz_in_production_without_any_platform_is_not_healthy(service, settings):
    production = settings.model_copy(update={"environment": "production"})
    service.settings = production
    status, body = asyncio.run(_get_healthz(service))
    assert status == 503 and body == {"ok": False, "database": "up", "platforms": NONE}


def test_commands_that_read_say_which_database_and_refuse_one_that_is_not_there(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from adapters.cli import app

    missing = tmp_path / "nowhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{missing}")
    monkeypatch.setenv("FRICTIONLOG_EMBEDDINGS", "hashing")
    for command in (["digest"], ["themes"], ["export"], ["outbox"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1, command
        shown = " ".join(result.output.split())
        assert f"Database: sqlite:///{missing}" in shown and "There is no frictionlog database" in shown
    assert not missing.exists()  # nothing was created
    quiet = CliRunner().invoke(app, ["--quiet", "themes"])
    assert "Database:" not in quiet.output and "There is no frictionlog database" in quiet.output
    monkeypatch.setenv("DATABASE_URL", "postgresql://frictionlog:s3cret@127.0.0.1:1/none")
    masked = CliRunner().invoke(app, ["themes"])
    assert "s3cret" not in masked.output and "***" in masked.output


def test_the_model_is_loaded_at_start_up_not_on_the_first_message(service):
    """The first confirmation after a start must not wait for the model to load."""
    calls = []
    embed = service.theming.embedder.embed
    service.theming.embedder.embed = lambda texts: calls.append(list(texts)) or embed(texts)

    async def start_only() -> None:
        async with served(make_web_app(service)):
            assert calls, "the embedder was not used at start-up"

    asyncio.run(start_only())


def test_connections_postgresql_dropped_are_replaced_not_failed_on(postgres_url):
    """After PostgreSQL restarts (or a proxy drops idle links), the pool's connections are dead.
    The next unit of work must run on a fresh one, not fail once per replica and worker."""
    engine = make_engine(postgres_url)
    admin = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as connection:  # what a restart does to every connection
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
        admin.dispose()
