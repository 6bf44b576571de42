"""The daily DM budget on a clock the tests move: nobody gets more than FRICTIONLOG_DM_BUDGET
unprompted messages a local day, the rest come together in one, nothing is lost, replies to a
person's own acts never wait; racing workers keep it, on SQLite and PostgreSQL."""

import asyncio
import json
import os
import re
from datetime import timedelta

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from adapters.cli import app
from bot.actions import SetStatus
from bot.messages import Button, Notification
from bot.outbox import enqueue_notification
from bot.people import Person
from bot.pipeline import delivery_worker
from bot.router import ONE_GO, Parts, Router, SendFailed
from storage.db import session_scope
from storage.models import OutboxMessage
from tests.conftest import LEAD, ask
from tests.inbox import Inbox, deliver

PROBLEMS = [
    "refunds over $50 need supervisor approval",
    "the android app crashes at checkout",
    "hold times on the phone line are over forty minutes",
    "late fee waivers need a ticket to billing",
    "address changes in the CRM never reach invoices",
    "the returns portal rejects photos larger than 2MB",
    "customers cannot reset their password by SMS",
]


def notify(service, user: str, count: int, first: int = 1, platform: str = "test") -> None:
    """`count` unprompted messages to one person, written as the core writes them."""
    with session_scope(service.engine) as session:
        for n in range(first, first + count):
            note = Notification(
                to=Person(platform, user),
                text=f"notice {n}",
                buttons=(Button("In progress", SetStatus(n, "in_progress")),),
                label=f"notice {n}",
            )
            enqueue_notification(session, service.sealer, note)


def states(service) -> dict[str, str]:
    with Session(service.engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(OutboxMessage.id))
        return {row.label: row.state for row in rows}


def notices_in(inbox: Inbox, user: str = "dana") -> list[str]:
    """Each "notice N" the person read, in the order they read them, batches opened."""
    return [line for item in inbox.to(user) for line in item.text.splitlines() if line.startswith("notice ")]


def test_eight_in_a_day_are_five_messages_the_rest_together_and_none_lost(service, clock):
    inbox = Inbox()
    notify(service, "dana", 8)
    deliver(service, inbox)
    assert [item.text for item in inbox.to("dana")] == ["notice 1", "notice 2", "notice 3", "notice 4"]
    assert list(states(service).values()) == ["sent"] * 4 + ["held"] * 4
    # The last place of the day waits a little for company, then takes everything held at once.
    clock.advance(minutes=9)
    deliver(service, inbox)
    assert len(inbox.to("dana")) == 4
    clock.advance(minutes=1)
    deliver(service, inbox)
    *_, together = inbox.to("dana")
    assert len(inbox.to("dana")) == 5
    assert together.text.startswith("4 messages from frictionlog in one: you get at most 5 a day")
    assert notices_in(inbox) == [f"notice {n}" for n in range(1, 9)]
    assert together.buttons == ["In progress"] * 4  # each one's buttons still work
    assert states(service)["notice 5 · sent together in #9"] == "batched"
    assert states(service)["4 held messages, together: #5, #6, #7, #8"] == "sent"
    # More today waits for tomorrow (local time), and comes then, in one.
    clock.advance(hours=3)
    notify(service, "dana", 2, first=9)
    deliver(service, inbox)
    assert len(inbox.to("dana")) == 5
    clock.now = clock.now.replace(hour=23, minute=59)
    deliver(service, inbox)
    assert len(inbox.to("dana")) == 5
    clock.now = clock.now + timedelta(minutes=1)
    deliver(service, inbox)
    assert len(inbox.to("dana")) == 6 and notices_in(inbox)[-2:] == ["notice 9", "notice 10"]
    assert "held" not in states(service).values() and "pending" not in states(service).values()
    # The new day has its own budget, the batch counted in it: four more alone, then one waits.
    notify(service, "dana", 5, first=11)
    deliver(service, inbox)
    assert notices_in(inbox)[-3:] == ["notice 11", "notice 12", "notice 13"]
    assert [state for label, state in states(service).items() if label in ("notice 14", "notice 15")] == ["held"] * 2


def test_the_budget_is_each_persons_and_counts_only_unprompted_messages(service, clock):
    inbox = Inbox()
    notify(service, "dana", 6)
    notify(service, "lee", 2, first=20)
    for _ in range(12):  # replies to what someone just did never count, never wait
        assert ask(service, "dana", "mine").ok
    deliver(service, inbox)
    assert len(inbox.to("dana", "reply")) == 12
    assert [item.text for item in inbox.to("dana")] == ["notice 1", "notice 2", "notice 3", "notice 4"]
    assert [item.text for item in inbox.to("lee")] == ["notice 20", "notice 21"]
    # The same id on another platform is another person.
    notify(service, "dana", 1, first=30, platform="teams")
    teams = Inbox("teams")
    deliver(service, inbox, teams)
    assert [item.text for item in teams.to("dana")] == ["notice 30"]


def test_a_lead_assigning_many_themes_to_one_owner_reaches_them_within_the_budget(service, clock):
    for n, text in enumerate(PROBLEMS):
        ask(service, f"U{n}", text)
    assigned = sum(ask(service, LEAD, f"assign T-{key} @dana").ok for key in range(1, 8))
    assert assigned == 7
    inbox = Inbox()
    deliver(service, inbox)
    clock.advance(minutes=10)
    deliver(service, inbox)
    owner_notes = inbox.to("dana")
    assert len(owner_notes) <= 5
    owned = [line for item in owner_notes for line in item.text.splitlines() if line.startswith("You now own")]
    assert len(owned) == assigned  # every assignment reached its owner
    assert len(inbox.to(LEAD, "reply")) == 7  # the lead's own replies are not budgeted


class Refusing(Inbox):
    """A platform on which one person cannot be written to (they blocked the bot)."""

    def __init__(self, refused: str):
        super().__init__()
        self.refused = refused

    async def notify(self, user_id: str, message, parts: Parts = ONE_GO) -> None:
        if user_id == self.refused:
            raise SendFailed("cannot_dm_bot", permanent=True)
        await super().notify(user_id, message, parts)


def test_a_lead_hears_of_every_assignment_that_could_not_reach_its_owner_batched_or_not(service, clock):
    for n, text in enumerate(PROBLEMS):
        ask(service, f"U{n}", text)
    assert all(ask(service, LEAD, f"assign T-{key} @dana").ok for key in range(1, 8))
    inbox = Refusing("dana")
    deliver(service, inbox)
    clock.advance(minutes=10)  # the rest go to dana together, and fail together
    deliver(service, inbox)
    deliver(service, inbox)
    told = [item.text for item in inbox.to(LEAD) if "could not be told" in item.text]
    assert sorted(text.split("'")[0] for text in told) == [f"T-{key}" for key in range(1, 8)]
    assert all(text.endswith("Reason: cannot_dm_bot.") for text in told)
    assert "batched" in states(service).values()


def test_racing_workers_keep_the_budget(service, clock):
    notify(service, "dana", 8)
    inboxes = [Inbox() for _ in range(4)]
    workers = [delivery_worker(service, Router([inbox])) for inbox in inboxes]

    async def race() -> None:
        for _ in range(3):
            await asyncio.gather(*(worker.send_due() for worker in workers))

    asyncio.run(race())
    clock.advance(minutes=10)
    asyncio.run(race())
    received = [item for inbox in inboxes for item in inbox.to("dana")]
    assert len(received) == 5
    assert sorted(line for item in received for line in item.text.splitlines() if line.startswith("notice ")) == sorted(
        f"notice {n}" for n in range(1, 9)
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the CLI's listing: one engine shows it
def test_frictionlog_outbox_shows_held_messages_and_when_they_go(service, clock, monkeypatch, database_url):
    notify(service, "dana", 6)
    deliver(service, Inbox())
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRICTIONLOG_EMBEDDINGS", "hashing")
    monkeypatch.chdir(os.path.dirname(database_url.removeprefix("sqlite:///")))
    result = CliRunner().invoke(app, ["--quiet", "outbox"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "0 pending, 2 held, 4 sent, 0 batched" in result.stdout
    assert "notice 6 — held until 2026-11-18 10:10 UTC (daily DM budget)" in result.stdout


@pytest.mark.parametrize("second_part_fails", [False, True])
def test_a_day_of_held_owner_messages_reaches_a_slack_owner_whole_within_50_blocks(service, clock, second_part_fails):
    """Twenty themes assigned to one Slack owner in a triage: four come alone, sixteen together. Each
    owner message is four blocks, so together they pass Slack's 50 blocks a message: they come
    in as many messages as that takes, none cut off with "… and 4 more not shown here". When Slack
    fails the second part once, the retry goes on from there: no part comes twice."""
    from adapters.slack.platform import SlackPlatform
    from adapters.slack.web_api import make_client
    from storage.models import Submission, Theme
    from tests.fake_slack import FakeSlack

    with session_scope(service.engine) as session:
        for n in range(20):
            theme = Theme(title=f"Problem number {n}", summary=f"problem number {n} again", size=1)
            session.add(theme)
            session.flush()
            session.add(Submission(text=f"problem number {n} again", author_hash=f"writer-{n}", theme_id=theme.id))
    assert all(ask(service, LEAD, f"assign T-{key} @U0DANA", platform="slack").ok for key in range(1, 21))

    async def scenario() -> list[dict]:
        fake = await FakeSlack().start()
        try:
            client = make_client(
                service.settings.model_copy(update={"slack_bot_token": "x", "slack_api_url": fake.api_url})
            )
            outbox = delivery_worker(service, Router([SlackPlatform(client, service.codec)]), backoff=0.01)
            while await outbox.send_due():  # the lead's answers, and Dana's first four
                pass
            if second_part_fails:  # the sixteen held ones come together: their second part
                fake.fail("chat.postMessage", 500, after=1)
            clock.advance(minutes=10)  # the held ones go out together
            for _ in range(3):  # a part that failed goes on after its backoff, not held again: half read
                await asyncio.sleep(0.05)
                while await outbox.send_due():
                    pass
            return fake.accepted("chat.postMessage")
        finally:
            await fake.stop()

    to_dana = [m for m in asyncio.run(scenario()) if m["channel"] == "U0DANA"]
    assert all(len(m["blocks"]) <= 50 for m in to_dana)
    read = json.dumps([m["blocks"] for m in to_dana])
    assert sorted(int(key) for key in re.findall(r"You now own T-(\d+)", read)) == list(range(1, 21))  # each once
    assert "not shown here" not in read
