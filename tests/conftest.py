"""Shared fixtures: a fresh database per test, on SQLite and on the real PostgreSQL."""

import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.actions import Action
from bot.clock import FrozenClock
from bot.messages import Inbound
from bot.service import FrictionService
from bot.settings import Settings
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, upgrade

POSTGRES_URL = os.environ.get("FRICTIONLOG_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LEAD = "U-LEAD"
# A Wednesday, so "this week" and "last week" both have room in tests.
START = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
# Three problems, four reports each, in the words agents use.
TOPICS = {
    "refund": [
        "refund approval from a supervisor takes three days",
        "supervisor approval for every refund over fifty dollars is slow",
        "refunds wait days for supervisor approval",
        "another refund stuck waiting for supervisor approval",
    ],
    "hold": [
        "phone hold times over forty minutes in the evening",
        "callers on hold for forty minutes again tonight",
        "evening phone hold times are terrible, forty minutes",
        "hold times on the phone queue hit forty minutes",
    ],
    "tracking": [
        "tracking link in the shipping email is broken",
        "the shipping email tracking link gives a 404",
        "broken tracking link in every shipping confirmation email",
        "customers cannot open the tracking link in the shipping email",
    ],
}


def _postgres_or_skip():
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        reason = f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(error).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: under CI=true the PostgreSQL tests must run")
        pytest.skip(f"{reason}; start it with pg_ctlcluster … main start")
    return engine


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'frictionlog.db'}"


@pytest.fixture
def postgres_url():
    """A schema of its own for each test, dropped afterwards."""
    admin = _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request):
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url, team_leads=LEAD, embeddings="hashing", _env_file=None)


@pytest.fixture
def service(engine, settings, clock):
    return FrictionService(engine, settings, HashingEmbedder(), clock=clock)


def ask(service: FrictionService, user: str, text: str, **extra):
    return service.handle(Inbound(user=user, user_name=user, text=text, **{"platform": "test", **extra}))


def press(service: FrictionService, user: str, action: Action | None, **extra):
    """A button press (or a completed form) as every platform hands it to the core."""
    return service.handle(Inbound(user=user, kind="action", action=action, **{"platform": "test", **extra}))
