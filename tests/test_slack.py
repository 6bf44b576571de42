"""Slack end to end: the real Bolt app served by `frictionlog serve`'s aiohttp app on loopback,
requests signed as Slack signs them, payloads shaped as Slack sends them, and a loopback fake of
the Slack Web API that records every call and can answer 429 or 500."""

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import ClientSession
from sqlmodel import Session, select

import digests.theming
from adapters.web import make_web_app
from bot.clock import FrozenClock
from bot.service import FrictionService
from bot.settings import Settings
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, upgrade
from storage.models import Delivery, OutboxMessage, Submission, Theme
from tests.conftest import LEAD, START
from tests.fake_slack import FakeSlack, mrkdwn_objects
from tests.loopback import served
from tests.payloads import payload
from tests.test_themes import TOPICS, split_the_refunds

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Slack:
    """One running `frictionlog serve` app and the fake Web API it talks to."""

    fake: FakeSlack
    service: FrictionService
    url: str
    http: ClientSession

    async def post(self, body: bytes, content_type: str, headers: dict | None = None, timestamp: str | None = None):
        timestamp = str(int(time.time())) if timestamp is None else timestamp
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": sign(body, timestamp),
            **(headers or {}),
        }
        sent = {k: v for k, v in sent.items() if v is not None}
        started = time.monotonic()
        async with self.http.post(f"{self.url}/slack/events", data=body, headers=sent) as response:
            text = await response.text()
            return response.status, text, time.monotonic() - started

    async def event(self, event: dict, event_id: str = "Ev1", headers: dict | None = None):
        return await self.post(json.dumps(event_callback(event, event_id)).encode(), "application/json", headers)

    async def dm(self, text: str, user: str = "U1", event_id: str = "Ev1", headers: dict | None = None):
        return await self.event(dm_event(text, user), event_id, headers)

    async def command(self, text: str, user: str = "U1", trigger: str = "trig-1"):
        """A slash command; its response_url is named after the trigger id."""
        form = payload(
            "slack",
            "slash_command",
            user_id=user,
            user_name=user.lower(),
            text=text,
            response_url=self.fake.response_url(trigger),
            trigger_id=trigger,
        )
        return await self.post(urlencode(form).encode(), "application/x-www-form-urlencoded")

    async def interact(self, payload: dict):
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def click(self, button: dict, user: str = "U1", container: str = "message", hook: str = "click"):
        name = "block_actions_home" if container == "home" else "block_actions"
        pressed = payload("slack", name, trigger_id=f"trig-{time.monotonic_ns()}")
        pressed["user"] = {"id": user, "username": user.lower(), "team_id": "T1"}
        [action] = pressed["actions"]
        action.update(action_id=button["action_id"], type=button["type"])
        if button["type"] == "button":
            action.update(value=button["value"], text=button["text"])
        else:
            action.update(selected_user=button["selected_user"])
        action["action_ts"] = f"{time.time():.6f}"  # each action its own, as Slack sends them
        if container != "home":
            pressed["response_url"] = self.fake.response_url(hook)
        return await self.interact(pressed)

    async def submit_view(self, callback_id: str, values: dict, metadata: dict, user: str = "U1", view_id="V1"):
        submitted = payload("slack", "view_submission", user={"id": user, "username": user.lower(), "team_id": "T1"})
        submitted["view"].update(
            id=view_id, callback_id=callback_id, private_metadata=json.dumps(metadata), state={"values": values}
        )
        return await self.interact(submitted)

    async def settled(self, timeout: float = 15.0) -> None:
        """Until every stored delivery has run and nothing waits in the outbox: then what was
        sent is all that will be sent."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(nothing_in_flight, self.service.engine):
            if time.monotonic() > deadline:
                raise AssertionError("deliveries or outbox messages still in flight")
            await asyncio.sleep(0.02)

    def submissions(self) -> list[Submission]:
        with Session(self.service.engine) as session:
            return list(session.exec(select(Submission).order_by(Submission.id)))

    def theme(self, theme_id: int) -> Theme:
        with Session(self.service.engine) as session:
            return session.get(Theme, theme_id)


async def raw_post(url: str, body: bytes, headers: dict) -> int:
    """A POST written byte by byte (header values in UTF-8, as a forger may send them); the status."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


def nothing_in_flight(engine) -> bool:
    with Session(engine) as session:
        running = session.exec(select(Delivery).where(Delivery.state == "received")).first()
        waiting = session.exec(select(OutboxMessage).where(OutboxMessage.state == "pending")).first()
    return running is None and waiting is None


def event_callback(event: dict, event_id: str) -> dict:
    """An Events API envelope as Slack sends it, over HTTP or inside a Socket Mode envelope."""
    envelope = payload("slack", "event_callback", event_id=event_id)
    envelope["event"].update(event)
    return envelope


def dm_event(text: str, user: str = "U1") -> dict:
    return payload("slack", "message_im", channel=f"D-{user}", user=user, text=text)


def run_slack(url: str, scenario: Callable[[Slack], Awaitable[None]], **settings) -> None:
    async def main():
        fake = await FakeSlack().start()
        config = Settings(
            database_url=url,
            embeddings="hashing",
            team_leads=settings.pop("team_leads", LEAD),
            slack_bot_token="xoxb-test-token",
            slack_signing_secret=SECRET,
            slack_api_url=fake.api_url,
            digest_slack_channels="C-EXEC",
            _env_file=None,
            **settings,
        )
        engine = make_engine(url)
        upgrade(engine)
        service = FrictionService(engine, config, HashingEmbedder(), clock=FrozenClock(START))
        try:
            async with served(make_web_app(service)) as base, ClientSession() as http:
                await scenario(Slack(fake, service, base, http))
        finally:
            await fake.stop()
            engine.dispose()

    asyncio.run(main())


def all_text(message: dict) -> str:
    """Every string in a message or view, for assertions."""
    return json.dumps(message, ensure_ascii=False)


def buttons(message: dict) -> list[dict]:
    return [e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def button(message: dict, label: str) -> dict:
    return next(e for e in buttons(message) if e.get("text", {}).get("text") == label)


# Verification ---------------------------------------------------------------------------------


def test_unsigned_stale_or_malformed_requests_get_401_and_store_nothing(sqlite_url):
    async def scenario(slack: Slack):
        body = b"token=x&team_id=T1&user_id=U1&command=%2Ffriction&text=refunds+are+slow&trigger_id=t"
        form = "application/x-www-form-urlencoded"
        now = str(int(time.time()))
        cases = [
            {"X-Slack-Signature": "v0=" + "0" * 64},  # bad signature
            {"X-Slack-Signature": sign(body, now, "another-secret")},  # signed with the wrong secret
            {"X-Slack-Request-Timestamp": None},  # missing timestamp
            {"X-Slack-Request-Timestamp": "yesterday"},  # non-numeric: Bolt alone would answer 500
            {"X-Slack-Request-Timestamp": "-12"},
        ]
        for headers in cases:
            status, _text, _ = await slack.post(body, form, headers)
            assert status == 401, headers
        old = str(int(time.time()) - 301)  # more than five minutes old, correctly signed
        status, _text, _ = await slack.post(body, form, timestamp=old)
        assert status == 401
        # Digits Python's str.isdigit accepts but int() does not (Bolt alone: 500), sent as raw bytes.
        for stamp in ("²", "①", "¹⁷⁰⁰⁰⁰⁰⁰⁰⁰", "１７００００００００"):
            assert await raw_post(slack.url, body, {"Content-Type": form, "X-Slack-Request-Timestamp": stamp}) == 401
        # A fresh timestamp with a signature that is not ASCII, or a body that is not UTF-8 (slack_sdk's
        # verifier raises on both rather than saying no).
        fresh = {"Content-Type": form, "X-Slack-Request-Timestamp": now}
        assert await raw_post(slack.url, body, {**fresh, "X-Slack-Signature": "v0=é"}) == 401
        assert await raw_post(slack.url, body + b"\xff", {**fresh, "X-Slack-Signature": "v0=" + "0" * 64}) == 401
        assert slack.submissions() == []
        assert [name for name, _ in slack.fake.calls] == []

    run_slack(sqlite_url, scenario)


def test_a_signed_body_that_is_not_a_json_object_is_a_400(sqlite_url):
    async def scenario(slack: Slack):
        form, json_type = "application/x-www-form-urlencoded", "application/json"
        unreadable = {
            "payload not JSON": (urlencode({"payload": "{not json"}).encode(), form),
            "payload a list": (urlencode({"payload": "[1, 2]"}).encode(), form),
            "payload nested too deep": (urlencode({"payload": "[" * 100_000}).encode(), form),
            "body not JSON": (b"{not json", json_type),
            "body a string": (b'"hello"', json_type),
        }
        for case, (body, content_type) in unreadable.items():
            status, _text, _ = await slack.post(body, content_type)
            assert status == 400, case
        assert slack.submissions() == []
        # Slack sends UTF-8: a charset aiohttp does not know is not a reason to fail.
        body = json.dumps(event_callback(dm_event(REFUND), "Ev-charset")).encode()
        status, _text, _ = await slack.post(body, json_type + "; charset=x")
        assert status == 200 and len(slack.submissions()) == 1

    run_slack(sqlite_url, scenario)


def test_teams_route_says_not_configured_and_health_is_up(sqlite_url):
    async def scenario(slack: Slack):
        async with slack.http.post(f"{slack.url}/api/messages", json={}) as response:
            assert response.status == 501
            assert await response.json() == {"error": "Teams is not configured (set MICROSOFT_APP_ID)"}
        async with slack.http.get(f"{slack.url}/healthz") as response:
            assert response.status == 200

    run_slack(sqlite_url, scenario)


# Agents ---------------------------------------------------------------------------------------


def test_dm_is_a_submission_confirmed_with_theme_count_owner_status_and_buttons(sqlite_url):
    async def scenario(slack: Slack):
        status, _text, elapsed = await slack.dm(REFUND + " #refunds")
        assert status == 200 and elapsed < 3
        [message] = await slack.fake.wait_for("chat.postMessage")
        assert message["channel"] == "D-U1"
        assert message["text"].startswith("Logged as S-1. It joined T-1")
        text = all_text(message)
        for expected in ("*Reported by*", "1 person", "*Owner*", "unowned", "*Status*", "new"):
            assert expected in text
        assert [b["text"]["text"] for b in buttons(message)] == ["Undo", "Make anonymous", "Different issue", "Me too"]
        [stored] = slack.submissions()
        assert stored.platform == "slack" and stored.author == "U1" and stored.platform_event_id == "slack:event:Ev1"

    run_slack(sqlite_url, scenario)


def test_socket_mode_takes_events_over_the_websocket_without_signatures(sqlite_url):
    async def scenario(slack: Slack):
        await slack.fake.push("events_api", event_callback(dm_event(REFUND), "Ev-socket"), "env-1")
        [message] = await slack.fake.wait_for("chat.postMessage")
        assert message["channel"] == "D-U1" and message["text"].startswith("Logged as S-1.")
        assert "env-1" in slack.fake.socket_acks  # acknowledged on the socket, as Slack requires
        assert slack.fake.of("apps.connections.open")
        # The same event delivered again over the socket is still one submission.
        await slack.fake.push("events_api", event_callback(dm_event(REFUND), "Ev-socket"), "env-2")
        deadline = asyncio.get_running_loop().time() + 5
        while "env-2" not in slack.fake.socket_acks and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert "env-2" in slack.fake.socket_acks
        assert [s.platform_event_id for s in slack.submissions()] == ["slack:event:Ev-socket"]
        # No HTTP endpoint is exposed in Socket Mode.
        status, _text, _elapsed = await slack.dm(REFUND, event_id="Ev-http")
        assert status == 404

    run_slack(sqlite_url, scenario, slack_app_token="xapp-test-token")


def test_retried_event_delivery_never_creates_a_second_submission(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, event_id="Ev-retry")
        await slack.fake.wait_for("chat.postMessage")
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        for _ in range(2):
            status, _text, _ = await slack.dm(REFUND, event_id="Ev-retry", headers=retry)
            assert status == 200
        # Two deliveries at once (a retry racing the first) still make one submission.
        await asyncio.gather(*(slack.dm(REFUND_2, event_id="Ev-race") for _ in range(3)))
        await slack.fake.wait_for("chat.postMessage", 2)
        await slack.settled()
        assert [s.platform_event_id for s in slack.submissions()] == ["slack:event:Ev-retry", "slack:event:Ev-race"]
        assert len(slack.fake.of("chat.postMessage")) == 2  # a retry is not answered twice

    run_slack(sqlite_url, scenario)


def test_a_retried_command_runs_once(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, user="U1", event_id="Ev1")
        await slack.fake.wait_for("chat.postMessage")
        retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
        for headers in (None, retry, retry):
            await slack.dm("assign T-1 <@U777|dana>", user=LEAD, event_id="Ev-assign", headers=headers)
        await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "U777")
        await slack.settled()
        assert len([m for m in slack.fake.of("chat.postMessage") if m["channel"] == "U777"]) == 1
        assert len([m for m in slack.fake.of("chat.postMessage") if m["channel"] == f"D-{LEAD}"]) == 1

    run_slack(sqlite_url, scenario)


def test_a_dm_with_a_screenshot_is_logged_by_its_text(sqlite_url):
    async def scenario(slack: Slack):
        event = {**dm_event(REFUND), "subtype": "file_share", "files": [{"id": "F1", "name": "screen.png"}]}
        await slack.event(event, "Ev-file")
        [confirmation] = await slack.fake.wait_for("chat.postMessage")
        assert confirmation["text"].startswith("Logged as S-1")
        assert [s.text for s in slack.submissions()] == [REFUND]
        await slack.event({**dm_event("edited"), "subtype": "message_changed"}, "Ev-edit")
        await slack.settled()
        assert len(slack.submissions()) == 1  # edits and other subtypes are not new submissions

    run_slack(sqlite_url, scenario)


def test_slash_command_submission_and_a_double_submit(sqlite_url):
    async def scenario(slack: Slack):
        status, text, elapsed = await slack.command(REFUND, trigger="trig-42")
        assert status == 200 and text == "" and elapsed < 3
        reply = await slack.fake.reply_to("trig-42")
        assert reply["response_type"] == "ephemeral" and reply["text"].startswith("Logged as S-1")
        await slack.command(REFUND, trigger="trig-42")  # the same trigger: a double submit
        await slack.command("anon " + REFUND_2, trigger="trig-43")
        assert "(anonymously)" in (await slack.fake.reply_to("trig-43"))["text"]
        await slack.settled()
        assert len(slack.fake.of("respond")) == 2  # the double submit is not answered twice
        stored = slack.submissions()
        assert len(stored) == 2 and stored[1].author is None and stored[1].anonymous

    run_slack(sqlite_url, scenario)


def test_empty_and_too_long_messages_get_a_clear_reply(sqlite_url):
    async def scenario(slack: Slack):
        await slack.command("", trigger="t-empty")
        help_reply = await slack.fake.reply_to("t-empty")
        assert "How to use frictionlog" in help_reply["text"]
        await slack.dm("x" * 5000, event_id="Ev-long")
        [long_reply] = await slack.fake.wait_for("chat.postMessage")
        assert "5,000 characters" in long_reply["text"] and "4,000" in long_reply["text"]
        assert "Traceback" not in all_text(long_reply)
        assert slack.submissions() == []

    run_slack(sqlite_url, scenario)


def test_mention_in_a_channel_is_a_submission_answered_privately(sqlite_url):
    async def scenario(slack: Slack):
        event = {"type": "app_mention", "channel": "C-FLOOR", "user": "U2", "text": "<@UBOT> " + REFUND}
        status, _text, _ = await slack.event(event, "Ev-mention")
        assert status == 200
        [reply] = await slack.fake.wait_for("chat.postEphemeral")
        assert reply["channel"] == "C-FLOOR" and reply["user"] == "U2"
        assert reply["text"].startswith("Logged as S-1")
        assert slack.submissions()[0].text == REFUND

    run_slack(sqlite_url, scenario)


def test_staff_text_never_pings_or_links_anyone(sqlite_url):
    hostile = (
        "<!channel> <!here> <@U0BOSS> see <https://evil.example|this> or https://evil.example/x "
        "in #general &amp; refunds take days"
    )

    async def scenario(slack: Slack):
        await slack.dm(hostile)
        [confirmation] = await slack.fake.wait_for("chat.postMessage")
        await slack.command("mine", trigger="t-show")  # their own words, shown back to them
        shown = await slack.fake.reply_to("t-show")
        for message in (confirmation, shown):
            text = all_text(message)
            for control in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil"):
                assert control not in text
        assert "&lt;!channel&gt;" in all_text(shown) and "&amp;" in all_text(shown)
        # A bare URL or #channel is auto-linked by Slack unless the text object is verbatim.
        objects = mrkdwn_objects(confirmation["blocks"]) + mrkdwn_objects(shown["blocks"])
        assert any("https://evil.example/x" in o["text"] for o in objects)
        assert all(o.get("verbatim") is True for o in objects)
        assert slack.submissions()[0].text.startswith("<!channel> <!here> <@U0BOSS>")  # kept as typed

    run_slack(sqlite_url, scenario)


def test_buttons_undo_anonymous_different_issue_and_me_too(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, user="U1", event_id="Ev1")
        await slack.fake.wait_for("chat.postMessage", 1)  # U1's report is S-1: it came first
        await slack.dm(REFUND_2, user="U2", event_id="Ev2")
        messages = {m["channel"]: m for m in await slack.fake.wait_for("chat.postMessage", 2)}
        first, second = messages["D-U1"], messages["D-U2"]
        await slack.click(button(second, "Different issue"), user="U2", hook="c1")
        assert "Moved S-2 to a new theme, T-2" in (await slack.fake.reply_to("c1"))["text"]
        replies = []
        for user, label, hook in (("U1", "Make anonymous", "c2"), ("U3", "Me too", "c3"), ("U9", "Undo", "c4")):
            await slack.click(button(first, label), user=user, hook=hook)
            replies.append((await slack.fake.reply_to(hook))["text"])
        await slack.click(button(first, "Undo"), user="U1", hook="c5")
        replies = ["", *replies, (await slack.fake.reply_to("c5"))["text"]]
        assert "now anonymous" in replies[1] and "now has 2 people" in replies[2]
        assert "not one of your submissions" in replies[3] and replies[4] == "Done: S-1 is withdrawn."
        assert [(s.id, s.withdrawn_at is not None, s.text) for s in slack.submissions()] == [
            (1, True, ""),
            (2, False, REFUND_2),
        ]

    run_slack(sqlite_url, scenario)


def log_as_friction(slack: Slack, user: str, message: dict, trigger: str = "trig-shortcut") -> dict:
    """The "Log as friction" shortcut, chosen by `user` on a message in #floor."""
    return {
        "type": "message_action",
        "callback_id": "log_as_friction",
        "trigger_id": trigger,
        "team": {"id": "T1", "domain": "acme"},
        "channel": {"id": "C-FLOOR", "name": "floor"},
        "user": {"id": user, "username": user.lower(), "team_id": "T1"},
        "message": {"type": "message", "ts": "17.5", **message},
        "message_ts": "17.5",
        "response_url": slack.fake.response_url("shortcut"),
        "token": "legacy-token",
    }


def test_message_shortcut_opens_a_prefilled_modal_and_logs_it_with_a_link(sqlite_url):
    async def scenario(slack: Slack):
        shortcut = log_as_friction(slack, "U4", {"user": "U8", "text": "customers wait 3 days &amp; more"})
        status, _text, elapsed = await slack.interact(shortcut)
        assert status == 200 and elapsed < 3
        [opened] = await slack.fake.wait_for("views.open")
        view = opened["view"]
        assert opened["trigger_id"] == "trig-shortcut" and view["callback_id"] == "log_friction"
        assert view["blocks"][0]["element"]["initial_value"] == "customers wait 3 days & more"
        values = {
            "text": {"text": {"type": "plain_text_input", "value": "themes"}},  # logged, never run as a command
            "anonymous": {"anonymous": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
        }
        metadata = json.loads(view["private_metadata"])
        status, _text, _ = await slack.submit_view("log_friction", values, metadata, user="U4")
        assert status == 200
        [confirmation] = await slack.fake.wait_for("chat.postMessage")
        assert confirmation["channel"] == "U4" and "Logged as S-1 (anonymously)" in confirmation["text"]
        status, _text, _ = await slack.submit_view("log_friction", values, metadata, user="U4")  # a double submit
        assert status == 200
        await slack.settled()
        [stored] = slack.submissions()
        assert stored.text == "themes" and stored.anonymous and stored.author is None
        # A channel's link is kept (it names the channel, not the reporter) …
        assert stored.source_url == "https://acme.slack.com/archives/C-FLOOR/p1"
        assert len(slack.fake.of("chat.postMessage")) == 1
        assert slack.fake.of("chat.getPermalink")[0]["message_ts"] == "17.5"

    run_slack(sqlite_url, scenario)


# Reliability ----------------------------------------------------------------------------------


def test_rate_limited_and_failing_web_api_calls_are_retried(sqlite_url):
    async def scenario(slack: Slack):
        slack.fake.fail("chat.postMessage", 429, times=1)
        await slack.dm(REFUND, event_id="Ev-429")
        messages = await slack.fake.wait_for("chat.postMessage", 2)
        assert messages[0] == messages[1]  # the same message, sent again after Retry-After
        slack.fake.fail("chat.postMessage", 500, times=2)
        await slack.dm(REFUND_2, user="U2", event_id="Ev-500")
        messages = await slack.fake.wait_for("chat.postMessage", 5)
        assert messages[-1]["text"].startswith("Logged as S-2")
        assert len(slack.submissions()) == 2

    run_slack(sqlite_url, scenario)


def test_a_connection_slack_drops_twice_is_tried_again_not_given_up_on(sqlite_url):
    """slack_sdk tries a dropped connection once more; a second drop reaches the outbox, which
    backs off and tries again as it does a 5xx, rather than failing the message for good."""
    from tests.fake_slack import DROP

    async def scenario(slack: Slack):
        slack.fake.fail("chat.postMessage", DROP, times=2)
        await slack.dm(REFUND, event_id="Ev-drop")
        messages = await slack.fake.wait_for("chat.postMessage", 3, timeout=15)
        assert messages[-1]["text"].startswith("Logged as S-1")
        await slack.settled()
        with Session(slack.service.engine) as session:
            assert {m.state for m in session.exec(select(OutboxMessage))} == {"sent"}

    run_slack(sqlite_url, scenario)


def test_when_the_rich_reply_cannot_be_delivered_the_sender_is_still_told(sqlite_url):
    async def scenario(slack: Slack):
        slack.fake.fail("respond", 404, times=1)  # the response_url expired (30 minutes, 5 uses)
        await slack.command(REFUND, trigger="t-lost")
        [told] = await slack.fake.wait_for("chat.postMessage", timeout=15)
        assert told["channel"] == "U1" and told["text"].startswith("Logged as S-1") and "blocks" not in told
        assert len(slack.submissions()) == 1

    run_slack(sqlite_url, scenario)


def test_an_app_home_that_cannot_be_published_is_not_sent_as_a_message_instead(sqlite_url):
    async def scenario(slack: Slack):
        slack.fake.fail("views.publish", "invalid_arguments")  # refused for good
        await slack.event({"type": "app_home_opened", "user": "U1", "channel": "D-1", "tab": "home"}, "Ev-home")
        await slack.settled()
        assert slack.fake.of("views.publish") and not slack.fake.of("chat.postMessage")
        with Session(slack.service.engine) as session:
            assert [m.state for m in session.exec(select(OutboxMessage))] == ["failed"]

    run_slack(sqlite_url, scenario)


# Team leads and owners ------------------------------------------------------------------------


def test_non_lead_cannot_assign_and_is_told_why(sqlite_url):
    async def scenario(slack: Slack):
        await slack.command(REFUND, trigger="t1")
        await slack.fake.reply_to("t1")
        await slack.command("assign T-1 <@U777|dana>", user="U2", trigger="t2")
        assert (await slack.fake.reply_to("t2"))["text"].startswith("Only team leads can assign owners.")
        assert slack.theme(1).owner is None
        assert slack.fake.of("chat.postMessage") == []

    run_slack(sqlite_url, scenario)


def test_lead_commands_and_the_owner_flow_to_reporters_anonymous_ones_too(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, user="U1", event_id="Ev1")
        await slack.dm("anon " + REFUND_2, user="U2", event_id="Ev2")
        await slack.fake.wait_for("chat.postMessage", 2)
        await slack.command("themes", user=LEAD, trigger="t-themes")
        assert (await slack.fake.reply_to("t-themes"))["text"].startswith("1 theme:")
        await slack.command("rename T-1 Refund approvals take days", user=LEAD, trigger="t-rename")
        assert "Re-clustering will keep this title" in (await slack.fake.reply_to("t-rename"))["text"]
        await slack.command("assign T-1 <@U777|dana>", user=LEAD, trigger="t-assign")
        assigned = await slack.fake.reply_to("t-assign")
        assert "has a new owner" in assigned["text"] and "<@U777>" in all_text(assigned)
        assert slack.theme(1).owner == "U777"
        [owner_dm] = await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "U777")
        assert "You now own T-1" in owner_dm["text"] and "Weekly trend" in all_text(owner_dm)
        labels = [b["text"]["text"] for b in buttons(owner_dm)]
        assert labels == ["Acknowledge", "In progress", "Resolved", "Won't fix"]

        await slack.click(button(owner_dm, "Acknowledge"), user="U777", hook="ack")
        assert "acknowledged" in (await slack.fake.reply_to("ack"))["text"]
        assert slack.theme(1).status == "acknowledged"
        await slack.click(button(owner_dm, "Resolved"), user="U777", hook="resolved")
        [modal] = await slack.fake.wait_for("views.open")
        assert modal["view"]["callback_id"] == "status_note"
        metadata = json.loads(modal["view"]["private_metadata"])
        empty = {"note": {"note": {"type": "plain_text_input", "value": "  "}}}
        status, text, _ = await slack.submit_view("status_note", empty, metadata, user="U777", view_id="VN0")
        assert status == 200 and json.loads(text)["response_action"] == "errors"
        note = {"note": {"note": {"type": "plain_text_input", "value": "Self-approval up to $150 <!channel>"}}}
        await slack.submit_view("status_note", note, metadata, user="U777", view_id="VN1")
        told = await slack.fake.wait_for("chat.postMessage", 2, where=lambda m: m["channel"] in ("U1", "U2"))
        assert sorted(m["channel"] for m in told) == ["U1", "U2"]  # the anonymous reporter too
        for message in told:
            assert "is resolved" in message["text"] and "Self-approval up to $150 &lt;!channel&gt;" in all_text(message)
        await slack.submit_view("status_note", note, metadata, user="U777", view_id="VN1")  # double submit
        await slack.settled()
        to_owner = [m["text"] for m in slack.fake.of("chat.postMessage") if m["channel"] == "U777"]
        assert to_owner[1] == (
            "T-1 “Refund approvals take days” is now resolved. Note: Self-approval up to $150 &lt;!channel&gt;. "
            "2 reporters will hear about it."
        )
        assert len(slack.fake.of("chat.postMessage")) == 6  # 2 confirmations, 2 to the owner, 2 reporters
        theme = slack.theme(1)
        assert theme.status == "resolved" and theme.status_note.startswith("Self-approval")

    run_slack(sqlite_url, scenario)


def test_leads_from_a_user_group_handle(sqlite_url):
    async def scenario(slack: Slack):
        slack.fake.usergroups = [{"id": "S1", "handle": "cx-leads", "users": ["U5"]}]
        await slack.command(REFUND, trigger="t1")
        await slack.fake.reply_to("t1")
        await slack.command("assign T-1 <@U777>", user="U5", trigger="t2")
        assert "has a new owner" in (await slack.fake.reply_to("t2"))["text"]
        await slack.command("assign T-1 <@U777>", user="U6", trigger="t3")
        assert (await slack.fake.reply_to("t3"))["text"].startswith("Only team leads")
        assert len(slack.fake.of("usergroups.list")) == 1  # cached

    run_slack(sqlite_url, scenario, team_leads="@cx-leads")


def test_a_slow_user_group_read_never_holds_up_the_ack(sqlite_url, monkeypatch):
    calls = []
    original = FakeSlack._api

    async def slow(self, request):
        if request.match_info["method"] == "usergroups.list":
            calls.append(time.monotonic())
            await asyncio.sleep(4)
        return await original(self, request)

    monkeypatch.setattr(FakeSlack, "_api", slow)

    async def scenario(slack: Slack):
        slack.fake.usergroups = [{"id": "S1", "handle": "cx-leads", "users": ["U5"]}]
        for n in range(3):
            status, _, elapsed = await slack.dm(f"{REFUND} {n}", event_id=f"Ev-slow-{n}")
            assert status == 200 and elapsed < 1.5  # Slack wants it within 3 s, with room for the rest
        assert len(calls) == 1  # one read in flight at a time, not one per event
        await slack.settled()

    run_slack(sqlite_url, scenario, team_leads="@cx-leads")


def test_app_home_for_agents_and_the_lead_board_with_an_owner_picker(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, user="U1", event_id="Ev1")
        await slack.fake.wait_for("chat.postMessage")
        await slack.event({"type": "app_home_opened", "user": "U1", "channel": "D-U1", "tab": "home"}, "Ev-h1")
        [agent] = await slack.fake.wait_for("views.publish")
        assert agent["user_id"] == "U1" and "S-1" in all_text(agent["view"])
        assert "users_select" not in all_text(agent["view"])
        await slack.event({"type": "app_home_opened", "user": LEAD, "channel": "D-L", "tab": "home"}, "Ev-h2")
        board = (await slack.fake.wait_for("views.publish", 2))[1]["view"]
        assert board["type"] == "home" and "Theme board: 1 open themes, 1 without an owner" in all_text(board)
        [picker] = [e for e in buttons(board) if e["type"] == "users_select"]
        await slack.click({**picker, "selected_user": "U777"}, user=LEAD, container="home")
        [owner_dm] = await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "U777")
        assert "You now own T-1" in owner_dm["text"]
        republished = (await slack.fake.wait_for("views.publish", 3))[2]["view"]
        assert '"initial_user": "U777"' in all_text(republished)
        assert slack.theme(1).owner == "U777"

    run_slack(sqlite_url, scenario)


HOLD = "phone hold times are over forty minutes every evening"
HOLD_2 = "evening phone hold times over forty minutes again"


def test_lead_grammar_owner_buttons_and_the_board_order(database_url):
    """The rest of the grammar through Slack, on SQLite and PostgreSQL alike."""

    async def scenario(slack: Slack):
        for n, (text, user) in enumerate(((REFUND, "U1"), (HOLD, "U2"), (HOLD_2, "U3")), 1):
            await slack.dm(text, user=user, event_id=f"Ev{n}")
            await slack.fake.wait_for("chat.postMessage", n)
        assert [s.theme_id for s in slack.submissions()] == [1, 2, 2]

        async def board_order() -> list[str]:
            """The lead's App Home, re-published: which theme comes first."""
            count = len(slack.fake.of("views.publish")) + 1
            await slack.event({"type": "app_home_opened", "user": LEAD, "tab": "home"}, f"Ev-home{count}")
            board = all_text((await slack.fake.wait_for("views.publish", count))[-1]["view"])
            return sorted(("T-1", "T-2"), key=lambda key: board.index(f"*{key} ·"))

        assert await board_order() == ["T-2", "T-1"]  # growing first
        await slack.command("assign T-2 <@U777|dana>", user=LEAD, trigger="t-assign")
        assert "<@U777>" in all_text(await slack.fake.reply_to("t-assign"))
        assert await board_order() == ["T-1", "T-2"]  # unowned before owned, however big

        [owner_dm] = await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "U777")
        await slack.click(button(owner_dm, "In progress"), user="U777", hook="progress")
        assert "in progress" in (await slack.fake.reply_to("progress"))["text"]
        assert slack.theme(2).status == "in_progress"
        await slack.click(button(owner_dm, "Won't fix"), user="U777", hook="wontfix")
        [modal] = await slack.fake.wait_for("views.open")
        metadata = json.loads(modal["view"]["private_metadata"])
        note = {"note": {"note": {"type": "plain_text_input", "value": "Staffing is fixed until March"}}}
        await slack.submit_view("status_note", note, metadata, user="U777", view_id="VW1")
        told = await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] in ("U2", "U3"), count=2)
        assert all("won't fix" in m["text"].lower() and "Staffing is fixed" in all_text(m) for m in told)
        assert slack.theme(2).status == "wont_fix"

        await slack.command("status T-1 in-progress checking the approval limit", user=LEAD, trigger="t-status")
        assert "in progress" in (await slack.fake.reply_to("t-status"))["text"]
        await slack.command("status T-1 resolved I fixed it", user="U1", trigger="t-agent-status")
        assert (await slack.fake.reply_to("t-agent-status"))["text"].startswith("Only team leads can change")
        await slack.command("merge T-2 into T-1", user=LEAD, trigger="t-merge")
        assert "T-2 now points to T-1" in (await slack.fake.reply_to("t-merge"))["text"]
        assert slack.theme(2).merged_into_id == 1

        await slack.command("mine", user="U2", trigger="t-mine")
        assert "S-2" in all_text(await slack.fake.reply_to("t-mine"))
        await slack.command("help", trigger="t-help")
        assert (await slack.fake.reply_to("t-help"))["text"].startswith("How to use frictionlog")
        await slack.command("", trigger="t-empty")
        assert (await slack.fake.reply_to("t-empty"))["text"].startswith("How to use frictionlog")
        await slack.command("digest preview", trigger="t-digest")
        assert "frictionlog weekly digest" in (await slack.fake.reply_to("t-digest"))["text"]

    run_slack(database_url, scenario)


def test_the_lead_board_asks_same_problem_and_merges_or_keeps_apart(sqlite_url, monkeypatch):
    monkeypatch.setattr(digests.theming, "cluster", split_the_refunds())  # refunds come back in two pieces
    texts = [text for topic in TOPICS.values() for text in topic]

    async def scenario(slack: Slack):
        for n, text in enumerate(texts):
            await slack.dm(text, user=f"U{n}", event_id=f"Ev{n}")
        await slack.fake.wait_for("chat.postMessage", len(texts))
        await asyncio.to_thread(slack.service.theming.recluster, slack.service.clock())

        async def board(count: int) -> dict:
            await slack.event({"type": "app_home_opened", "user": LEAD, "tab": "home"}, f"Ev-home{count}")
            return (await slack.fake.wait_for("views.publish", count))[-1]["view"]

        first = await board(1)
        [(small, big)] = re.findall(r"Same problem\? (T-\d+) and (T-\d+)", all_text(first))
        apart = next(e for e in buttons(first) if e.get("text", {}).get("text") == "Not the same")
        await slack.click(apart, user=LEAD, container="home")
        second = (await slack.fake.wait_for("views.publish", 2))[1]["view"]
        assert "Same problem?" not in all_text(second)

        # The same pieces again: a decided pair is never asked about again, and stays two themes.
        await asyncio.to_thread(slack.service.theming.recluster, slack.service.clock())
        assert "Same problem?" not in all_text(await board(3))
        assert {f"T-{s.theme_id}" for s in slack.submissions()[:4]} == {small, big}

    run_slack(sqlite_url, scenario)


def test_editing_a_message_that_mentions_the_bot_is_not_a_second_report(sqlite_url):
    async def scenario(slack: Slack):
        said = {"type": "app_mention", "channel": "C-FLOOR", "user": "U2", "ts": "17.1", "text": f"<@UBOT> {REFUND}"}
        await slack.event(said, "Ev-said")
        await slack.fake.wait_for("chat.postEphemeral")
        edited = {**said, "text": f"<@UBOT> {REFUND}, typo fixed", "edited": {"user": "U2", "ts": "17.9"}}
        assert (await slack.event(edited, "Ev-edited"))[0] == 200  # Slack sends an edit as a new event
        await slack.settled()
        assert [s.text for s in slack.submissions()] == [REFUND]
        assert len(slack.fake.of("chat.postEphemeral")) == 1

    run_slack(sqlite_url, scenario)


def test_a_mention_in_a_thread_is_answered_in_that_thread(sqlite_url):
    async def scenario(slack: Slack):
        said = {"type": "app_mention", "channel": "C-FLOOR", "user": "U2", "ts": "20.2", "thread_ts": "20.1"}
        await slack.event({**said, "text": f"<@UBOT> {REFUND}"}, "Ev-thread")
        [answer] = await slack.fake.wait_for("chat.postEphemeral")
        assert answer["thread_ts"] == "20.1"

    run_slack(sqlite_url, scenario)


def test_a_thread_reply_also_sent_to_the_dm_is_a_report(sqlite_url):
    async def scenario(slack: Slack):
        broadcast = {**dm_event(REFUND), "subtype": "thread_broadcast", "thread_ts": "10.1", "ts": "10.5"}
        assert (await slack.event(broadcast, "Ev-broadcast"))[0] == 200
        await slack.settled()
        assert [s.text for s in slack.submissions()] == [REFUND]
        assert "Logged as S-1" in slack.fake.of("chat.postMessage")[-1]["text"]

    run_slack(sqlite_url, scenario)


def test_a_lead_choosing_an_earlier_owner_again_is_heard(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, user="U1", event_id="Ev1")
        await slack.fake.wait_for("chat.postMessage")
        await slack.event({"type": "app_home_opened", "user": LEAD, "channel": "D-L", "tab": "home"}, "Ev-h")
        board = (await slack.fake.wait_for("views.publish"))[0]["view"]
        [picker] = [element for element in buttons(board) if element["type"] == "users_select"]
        for owner in ("U777", "U888", "U777"):  # a change of mind, and back
            await slack.click({**picker, "selected_user": owner}, user=LEAD, container="home")
            await slack.settled()
        assert slack.theme(1).owner == "U777"

    run_slack(sqlite_url, scenario)


def test_logging_ones_own_channel_message_anonymously_keeps_no_link_to_it(sqlite_url):
    async def scenario(slack: Slack):
        for who, trigger in (("U4", "trig-own"), ("U5", "trig-other")):  # U4 wrote the message
            await slack.interact(log_as_friction(slack, who, {"user": "U4", "text": "refunds wait 3 days"}, trigger))
            opened = (await slack.fake.wait_for("views.open", count=1 if who == "U4" else 2))[-1]
            values = {
                "text": {"text": {"type": "plain_text_input", "value": f"customers wait 3 days for refunds ({who})"}},
                "anonymous": {"anonymous": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
            }
            metadata = json.loads(opened["view"]["private_metadata"])
            await slack.submit_view("log_friction", values, metadata, user=who, view_id=f"V-{who}")
            await slack.settled()
        own, other = slack.submissions()
        assert own.anonymous and own.source_url is None  # the link would open U4's own message
        assert other.anonymous and other.source_url  # someone else's message does not name U5

    run_slack(sqlite_url, scenario)


def test_a_dm_that_starts_by_mentioning_the_bot_is_read_without_the_mention(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(REFUND, event_id="Ev-1")
        await slack.dm("<@UBOT> themes", event_id="Ev-2")  # a command, as in a channel
        await slack.settled()
        assert [s.text for s in slack.submissions()] == [REFUND]
        [logged, themes] = slack.fake.of("chat.postMessage")
        assert "Logged as S-1" in logged["text"] and themes["text"] == "1 theme:"  # the list, not a report

    run_slack(sqlite_url, scenario)


def test_a_request_bolt_refuses_after_ours_accepted_is_not_logged_with_its_words(sqlite_url, monkeypatch, caplog):
    """Bolt checks the signature again behind ours and logs a refused request's whole body at INFO.
    A request that crosses the five-minute mark between the two checks would put an agent's words,
    and who wrote them, in the log."""
    import slack_sdk.signature

    real = time.time
    monkeypatch.setattr(slack_sdk.signature.Clock, "now", lambda self: real() + 2)  # Bolt's check, later
    caplog.set_level(logging.INFO)

    async def scenario(slack: Slack):
        body = json.dumps(event_callback(dm_event("my manager Pat shouts at callers", "U77"), "Ev9")).encode()
        status, _text, _ = await slack.post(body, "application/json", timestamp=str(int(real()) - 299))
        assert status == 401  # Bolt's verdict
        assert "Pat shouts" not in caplog.text and "U77" not in caplog.text

    run_slack(sqlite_url, scenario)


# The bot-token scope each Slack Web API method the adapter calls needs (api.slack.com/methods;
# "" for none). A call added without its scope here fails the test below until it is weighed.
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": "",
    "files_upload_v2": "files:write",
    "usergroups_list": "usergroups:read",
    "users_info": "users:read",
    "views_open": "",
    "views_publish": "",
}


def test_the_manifest_grants_every_scope_the_adapter_calls_need():
    """The README's set-up pastes slack/manifest.yml as it is: a method whose scope it lacks
    fails with missing_scope (users.info: owners shown by id, not by the name Slack shows)."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sources = "\n".join(p.read_text() for p in sorted((root / "adapters" / "slack").glob("*.py")))
    called = set(re.findall(r"client\.(\w+)\(", sources))
    assert called and called <= SCOPE_OF_METHOD.keys(), called - SCOPE_OF_METHOD.keys()
    manifest = (root / "slack" / "manifest.yml").read_text()
    bot_scopes = manifest.split("    bot:\n", 1)[1].split("\nsettings:", 1)[0]
    granted = set(re.findall(r"^\s+- ([a-z_.]+:[a-z_.]+)", bot_scopes, re.M))
    needed = {SCOPE_OF_METHOD[method] for method in called} - {""}
    assert needed <= granted, f"slack/manifest.yml lacks {sorted(needed - granted)}"
