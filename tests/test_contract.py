"""The contract every chat platform passes: one scenario, run through each adapter and its own
fake, checking the same outcomes by what each person actually received on their platform.

Submit, a retried delivery, me too, a lead assigns an owner, the owner acknowledges and resolves
with a note, every reporter (an anonymous one too) hears about it, the digest is posted once.
A platform joins by adding a harness here: it says things, presses buttons, and reads back what
its fake platform was sent.
"""

import asyncio
import json
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientSession, web
from sqlmodel import Session, select

from adapters.console import ConsolePlatform
from adapters.web import PIPELINE, make_web_app
from bot.actions import asks_for_note, with_note
from bot.clock import FrozenClock
from bot.messages import Inbound
from bot.pipeline import Pipeline
from bot.publish import Target, queue_weekly_digest
from bot.router import Router
from bot.service import FrictionService
from bot.settings import Settings
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, upgrade
from storage.models import Submission
from tests.conftest import START
from tests.fake_slack import FakeSlack
from tests.fake_teams import card_text, submit_data
from tests.loopback import served
from tests.test_slack import SECRET, Slack, all_text, button, nothing_in_flight

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"
NOTE = "Self-approval up to $150 from Monday"


@dataclass
class Seen:
    """One message as a person saw it: its text and the labels of its buttons."""

    text: str
    buttons: list[str] = field(default_factory=list)
    raw: object = None


class ConsoleHarness:
    name = "console"
    exec_channel = "exec"
    lead, owner = "lead", "owner"
    people = ("ann", "ben", "cat")

    def __init__(self, service: FrictionService):
        self.service = service
        self.platform = ConsolePlatform()
        self.pipeline = Pipeline(service, Router([self.platform]))
        self.seen: list = []

    async def say(self, user: str, text: str, delivery_id: str) -> None:
        event = Inbound(user=user, text=text, platform="console", delivery_id=delivery_id)
        await self.pipeline.receive(event)
        await self.settle()

    async def press(self, user: str, message: Seen, label: str, note: str = "") -> None:
        [action] = [b.action for b in message.raw if b.label == label]
        if asks_for_note(action):
            action = with_note(action, note)
        event = Inbound(user=user, platform="console", kind="action", action=action, delivery_id=f"press-{label}")
        await self.pipeline.receive(event)
        await self.settle()

    async def settle(self) -> None:
        await self.pipeline.drain()
        self.seen += self.platform.take()

    def received(self, user: str) -> list[Seen]:
        return [Seen(r.text, [b.label for b in r.buttons], r.buttons) for r in self.seen if r.to == user]

    async def post_digest(self, channel: str) -> None:
        for _ in range(2):  # the schedule firing twice, or two replicas
            await asyncio.to_thread(queue_weekly_digest, self.service, [Target("console", channel)])
        await self.settle()

    def digests(self, channel: str) -> list[str]:
        return [r.text for r in self.seen if r.kind == "digest" and r.to == channel]


class SlackHarness:
    name = "slack"
    exec_channel = "C-EXEC"
    lead, owner = "ULEAD", "UOWNER"
    people = ("UANN", "UBEN", "UCAT")

    def __init__(self, slack: Slack, app: web.Application):
        self.slack = slack
        self.app = app

    async def say(self, user: str, text: str, delivery_id: str) -> None:
        status, _text, elapsed = await self.slack.dm(text, user=user, event_id=delivery_id)
        assert status == 200 and elapsed < 3
        await self.settle()

    async def press(self, user: str, message: Seen, label: str, note: str = "") -> None:
        clicked = button(message.raw, label)
        await self.slack.click(clicked, user=user, hook=user)
        await self.settle()
        if note:
            [modal] = self.slack.fake.of("views.open")[-1:]
            metadata = json.loads(modal["view"]["private_metadata"])
            values = {"note": {"note": {"type": "plain_text_input", "value": note}}}
            await self.slack.submit_view("status_note", values, metadata, user=user, view_id=f"V-{label}")
            await self.settle()

    async def settle(self) -> None:
        self.app[PIPELINE].wake()
        await self.slack.settled()

    def received(self, user: str) -> list[Seen]:
        seen = []
        for method, body in self.slack.fake.calls:
            to_user = method == "chat.postMessage" and body.get("channel") in (user, f"D-{user}")
            if to_user or (method == "respond" and body.get("_hook") == user):
                labels = [
                    e["text"]["text"]
                    for b in body.get("blocks", [])
                    if b["type"] == "actions"
                    for e in b["elements"]
                    if e["type"] == "button"
                ]
                shown = body["text"] + "\n" + json.dumps(body.get("blocks", []), ensure_ascii=False)
                seen.append(Seen(shown, labels, body))
        return seen

    async def post_digest(self, channel: str) -> None:
        service = self.slack.service
        for _ in range(2):
            await asyncio.to_thread(queue_weekly_digest, service, [Target("slack", channel)])
        await self.settle()

    def digests(self, channel: str) -> list[str]:
        return [all_text(b) for m, b in self.slack.fake.calls if m == "chat.postMessage" and b["channel"] == channel]


class TeamsHarness:
    name = "teams"
    exec_channel = "19:exec@thread.tacv2"
    lead, owner = "aad-lead", "aad-owner"
    people = ("aad-ann", "aad-ben", "aad-cat")

    def __init__(self, teams):
        self.teams = teams

    async def install(self) -> None:
        """Everyone has the app (personal scope), and it is in the exec channel."""
        for user in (*self.people, self.lead, self.owner):
            await self.teams.post(self.teams.activity(user, kind="installationUpdate", action="add"))
        channel = self.teams.activity(self.lead, conversation="19:exec@thread.tacv2", kind="conversationUpdate")
        channel["conversation"]["conversationType"] = "channel"
        await self.teams.post(channel)

    async def say(self, user: str, text: str, delivery_id: str) -> None:
        status, _ = await self.teams.post(self.teams.activity(user, text=text, id=delivery_id))
        assert 200 <= status < 300
        await self.settle()

    async def press(self, user: str, message: Seen, label: str, note: str = "") -> None:
        value = submit_data(message.raw, label)
        if note:
            value["note"] = note
        status, _ = await self.teams.post(self.teams.activity(user, value=value))
        assert 200 <= status < 300
        await self.settle()

    async def settle(self) -> None:
        await self.teams.settled()

    def received(self, user: str) -> list[Seen]:
        seen = []
        for activity in self.teams.connector.to(f"a:{user}"):
            actions = activity["attachments"][0]["content"].get("actions", [])
            seen.append(Seen(card_text(activity), [a["title"] for a in actions], activity))
        return seen

    async def post_digest(self, channel: str) -> None:
        for _ in range(2):
            await asyncio.to_thread(queue_weekly_digest, self.teams.service, [Target("teams", channel)])
        await self.settle()

    def digests(self, channel: str) -> list[str]:
        return [card_text(a) for a in self.teams.connector.to(channel)]


async def scenario(harness, clock: FrozenClock) -> None:
    ann, ben, cat = harness.people
    lead, owner = harness.lead, harness.owner

    # Submit, and a retried delivery of the same message.
    await harness.say(ann, REFUND, "delivery-1")
    await harness.say(ann, REFUND, "delivery-1")
    [confirmation] = harness.received(ann)
    assert "Logged as S-1" in confirmation.text and "T-1" in confirmation.text
    assert confirmation.buttons[:3] == ["Undo", "Make anonymous", "Different issue"]

    # An anonymous report of the same problem joins the theme; a colleague says "me too".
    await harness.say(ben, "anon " + REFUND_2, "delivery-2")
    [ben_confirmation] = harness.received(ben)
    assert "(anonymously)" in ben_confirmation.text and "T-1" in ben_confirmation.text
    await harness.say(cat, "metoo T-1", "delivery-3")
    assert "3 people behind it" in harness.received(cat)[-1].text

    # A lead assigns an owner, who hears at once with the status buttons.
    await harness.say(lead, f"assign T-1 @{owner}", "delivery-4")
    assert "has a new owner" in harness.received(lead)[-1].text
    [owner_dm] = harness.received(owner)
    assert "You now own T-1" in owner_dm.text
    assert owner_dm.buttons == ["Acknowledge", "In progress", "Resolved", "Won't fix"]

    # The owner acknowledges, then resolves with a note that goes to every reporter.
    await harness.press(owner, owner_dm, "Acknowledge")
    assert "is now acknowledged" in harness.received(owner)[-1].text
    await harness.press(owner, owner_dm, "Resolved", note=NOTE)
    assert "is now resolved" in harness.received(owner)[-1].text
    for person in (ann, ben, cat):
        [update] = [m for m in harness.received(person) if "Update on something you reported" in m.text]
        assert "T-1" in update.text and "resolved" in update.text and NOTE in update.text
        assert ben not in update.text or person == ben  # the anonymous reporter is never named

    # The weekly digest is posted once, however often it is queued.
    clock.advance(days=7)
    await harness.post_digest(harness.exec_channel)
    [digest] = harness.digests(harness.exec_channel)
    assert "2026-W47" in digest and "T-1" in digest


def _settings(url: str, **extra) -> Settings:
    return Settings(database_url=url, embeddings="hashing", _env_file=None, **extra)


@pytest.mark.parametrize("platform", ["console", "slack", "teams"])
def test_every_platform_passes_the_contract(platform, sqlite_url):
    clock = FrozenClock(START)
    engine = make_engine(sqlite_url)
    upgrade(engine)

    async def run_console() -> None:
        settings = _settings(sqlite_url, team_leads=ConsoleHarness.lead)
        service = FrictionService(engine, settings, HashingEmbedder(), clock=clock)
        await scenario(ConsoleHarness(service), clock)

    async def run_slack() -> None:
        fake = await FakeSlack().start()
        settings = _settings(
            sqlite_url,
            team_leads=SlackHarness.lead,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET,
            slack_api_url=fake.api_url,
        )
        service = FrictionService(engine, settings, HashingEmbedder(), clock=clock)
        app = make_web_app(service)
        try:
            async with served(app) as url, ClientSession() as http:
                await scenario(SlackHarness(Slack(fake, service, url, http), app), clock)
                assert nothing_in_flight(engine)
        finally:
            await fake.stop()

    if platform == "teams":
        run_teams_contract(sqlite_url, clock)
    else:
        asyncio.run(run_console() if platform == "console" else run_slack())
    with Session(engine) as session:
        assert len(session.exec(select(Submission)).all()) == 2  # the retried delivery added nothing
    engine.dispose()


def run_teams_contract(url: str, clock: FrozenClock) -> None:
    from tests.test_teams import run_teams

    async def contract(teams) -> None:
        teams.service.clock = clock
        harness = TeamsHarness(teams)
        await harness.install()
        await scenario(harness, clock)

    run_teams(url, contract, team_leads_teams=TeamsHarness.lead)
