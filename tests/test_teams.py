"""Teams end to end: activities POSTed exactly as the Bot Connector sends them, with tokens its
authority signs, to `frictionlog serve`'s real CloudAdapter on loopback; replies and proactive
messages land on a loopback serviceUrl that records them and fails on demand."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import ClientSession, web
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session, select

from adapters.web import PIPELINE, make_web_app
from bot.clock import FrozenClock
from bot.service import FrictionService
from bot.settings import Settings
from digests.chart import COMPACT
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, upgrade
from storage.models import OutboxMessage, Submission
from tests.conftest import START
from tests.fake_teams import (
    APP_ID,
    APP_PASSWORD,
    ISSUER,
    Authority,
    Connector,
    LoopbackCredentialsFactory,
    card_of,
    card_text,
    submit_data,
)
from tests.loopback import served
from tests.payloads import payload
from tests.test_slack import nothing_in_flight

REFUND = "refunds over $50 need supervisor approval and it takes three days"
LEAD_AAD = "aad-lead"


@dataclass
class Teams:
    authority: Authority
    connector: Connector
    service: FrictionService
    app: web.Application
    url: str
    http: ClientSession

    def activity(self, user: str, *, conversation: str | None = None, kind: str = "message", **fields) -> dict:
        """An activity as the Bot Connector sends it, from a person in their personal chat."""
        defaults = {
            "type": kind,
            "id": f"act-{uuid.uuid4().hex[:10]}",
            "serviceUrl": self.connector.url,
            "recipient": {"id": f"28:{APP_ID}", "name": "frictionlog"},
        }
        activity = payload("teams", "message_personal", **{**defaults, **fields})
        activity["from"] = {"id": f"29:{user}", "name": user.replace("aad-", "").title(), "aadObjectId": user}
        activity["conversation"]["id"] = conversation or f"a:{user}"
        return activity

    async def post(self, activity: dict, token: str | None = "valid", headers: dict | None = None):
        sent = {"Content-Type": "application/json"}
        if token == "valid":
            sent["Authorization"] = f"Bearer {self.authority.token(activity['serviceUrl'])}"
        elif token is not None:
            sent["Authorization"] = token
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        data = json.dumps(activity).encode()
        async with self.http.post(f"{self.url}/api/messages", data=data, headers=sent) as response:
            body = await response.read()
            return response.status, body

    async def say(self, user: str, text: str, **fields):
        return await self.post(self.activity(user, text=text, textFormat="plain", **fields))

    async def settled(self, timeout: float = 15.0) -> None:
        self.app[PIPELINE].wake()
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(nothing_in_flight, self.service.engine):
            assert time.monotonic() < deadline, "deliveries or outbox messages still in flight"
            await asyncio.sleep(0.02)

    def submissions(self) -> list[Submission]:
        with Session(self.service.engine) as session:
            return list(session.exec(select(Submission).order_by(Submission.id)))

    def outbox(self) -> list[OutboxMessage]:
        with Session(self.service.engine) as session:
            return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


def run_teams(url: str, scenario: Callable[[Teams], Awaitable[None]], **settings) -> None:
    with Authority() as authority, Connector(authority) as connector:

        async def main():
            config = Settings(
                database_url=url,
                embeddings="hashing",
                team_leads_teams=settings.pop("team_leads_teams", LEAD_AAD),
                microsoft_app_id=APP_ID,
                microsoft_app_password=APP_PASSWORD,
                teams_openid_metadata_url=authority.metadata_url,
                teams_token_issuer=ISSUER,
                _env_file=None,
                **settings,
            )
            engine = make_engine(url)
            upgrade(engine)
            service = FrictionService(engine, config, HashingEmbedder(), clock=FrozenClock(START))
            app = make_web_app(service, teams_credentials=LoopbackCredentialsFactory(authority))
            try:
                async with served(app) as base, ClientSession() as http:
                    await scenario(Teams(authority, connector, service, app, base, http))
            finally:
                engine.dispose()

        asyncio.run(main())


def test_every_bad_token_is_a_401_and_nothing_is_stored_or_sent(sqlite_url):
    async def scenario(teams: Teams):
        activity = teams.activity("aad-ann", text=REFUND)
        service_url = activity["serviceUrl"]
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        refused = {
            "missing": None,
            "not a JWT": "Bearer abc.def.ghi",
            "no scheme": teams.authority.token(service_url),
            "expired": "Bearer " + teams.authority.token(service_url, expires_in=-3600),
            "wrong audience": "Bearer " + teams.authority.token(service_url, audience="someone-else"),
            "unknown key": "Bearer " + teams.authority.token(service_url, key=stranger),
            "other serviceUrl": "Bearer " + teams.authority.token("https://smba.example.net/amer/"),
            # JWT-shaped, but its header is JSON nested deeper than the parser goes
            "nested header": "Bearer " + base64.urlsafe_b64encode(b"[" * 3000).decode() + ".e30.c2ln",
        }
        for case, token in refused.items():
            status, _ = await teams.post(activity, token=token)
            assert status == 401, case
        status, _ = await teams.post(activity, headers={"Content-Type": None})
        assert status == 415  # no Content-Type (botbuilder alone raises): refused, never a 500
        assert teams.submissions() == [] and teams.connector.activities == []
        status, _ = await teams.post(activity)
        assert 200 <= status < 300
        [confirmation] = await teams.connector.wait_for("a:aad-ann")
        assert "Logged as S-1" in card_text(confirmation) and confirmation["_authorized"]

    run_teams(sqlite_url, scenario)


def test_a_body_that_cannot_be_read_is_a_400_before_any_token_is_checked(sqlite_url):
    async def scenario(teams: Teams):
        # The body is read before botbuilder checks the token: anyone can send these.
        bearer = "Bearer " + teams.authority.token(teams.connector.url)
        activity = json.dumps(teams.activity("aad-ann", text=REFUND)).encode()
        unreadable = {
            "nested arrays": (b"[" * 100_000, "application/json"),
            "nested objects": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "application/json"),
            "unknown charset": (activity, "application/json; charset=x"),
        }
        for case, (data, content_type) in unreadable.items():
            headers = {"Content-Type": content_type, "Authorization": bearer}
            async with teams.http.post(f"{teams.url}/api/messages", data=data, headers=headers) as response:
                assert response.status == 400, case
        assert teams.submissions() == [] and teams.connector.activities == []

    run_teams(sqlite_url, scenario)


def test_a_chat_message_is_stored_confirmed_with_a_card_and_a_redelivery_adds_nothing(sqlite_url):
    async def scenario(teams: Teams):
        activity = teams.activity("aad-ann", text=REFUND, id="act-1")
        for _ in range(2):  # the connector redelivers the same activity
            status, _ = await teams.post(activity)
            assert 200 <= status < 300
        await teams.settled()
        [stored] = teams.submissions()
        assert stored.platform == "teams" and stored.platform_event_id.startswith("teams:")
        [confirmation] = teams.connector.to("a:aad-ann")
        text = card_text(confirmation)
        assert "Logged as S-1" in text and "T-1" in text
        content = confirmation["attachments"][0]["content"]
        assert [a["title"] for a in content["actions"]] == ["Undo", "Make anonymous", "Different issue"]
        [theme_buttons] = [block for block in content["body"] if block["type"] == "ActionSet"]
        assert [a["title"] for a in theme_buttons["actions"]] == ["Me too"]  # under the theme it is for
        # Me too from a colleague's card, then Make anonymous from Ann's: typed actions through the core.
        await teams.say("aad-ben", REFUND + " again")
        await teams.settled()
        status, _ = await teams.post(teams.activity("aad-ann", value=submit_data(confirmation, "Make anonymous")))
        assert 200 <= status < 300
        await teams.settled()
        assert teams.submissions()[0].anonymous and teams.submissions()[0].author is None
        assert "now anonymous" in card_text(teams.connector.to("a:aad-ann")[-1])
        forged = {"fl": "fl1.eyJ0aGVtZV9pZCI6MX0.AAAAAAAAAAAAAAAA"}
        await teams.post(teams.activity("aad-ann", value=forged))
        await teams.settled()
        assert "no longer valid" in card_text(teams.connector.to("a:aad-ann")[-1])

    run_teams(sqlite_url, scenario)


def test_two_chats_sending_the_same_activity_id_are_two_reports(sqlite_url):
    """Teams activity ids are unique only within a conversation (epoch milliseconds): two people
    writing in their own chats in the same millisecond send the same id."""

    async def scenario(teams: Teams):
        same_ms = "1700000000001"
        await teams.post(teams.activity("aad-ann", text=REFUND, id=same_ms))
        await teams.post(
            teams.activity("aad-ben", text="hold times on the phone line are over forty minutes", id=same_ms)
        )
        await teams.settled()
        assert len(teams.submissions()) == 2
        assert "Logged as S-1" in card_text(teams.connector.to("a:aad-ann")[-1])
        assert "Logged as S-2" in card_text(teams.connector.to("a:aad-ben")[-1])

    run_teams(sqlite_url, scenario)


async def dana_owns_t1(teams: Teams) -> dict:
    """Dana installed the app, Ann reported, the lead gave T-1 to Dana: the card Dana got."""
    await teams.post(teams.activity("aad-dana", kind="installationUpdate", action="add"))
    await teams.say("aad-ann", REFUND)
    await teams.say(LEAD_AAD, "assign T-1 @aad-dana")
    await teams.settled()
    [owner_dm] = teams.connector.to("a:aad-dana")
    return owner_dm


def test_a_double_click_on_a_card_button_is_one_press(sqlite_url):
    async def scenario(teams: Teams):
        owner_dm = await dana_owns_t1(teams)
        resolved = {**submit_data(owner_dm, "Resolved"), "note": "Self-approval up to $150 from Monday"}
        for _ in range(2):  # the same button on the same card, clicked twice: two activities
            await teams.post(teams.activity("aad-dana", value=resolved, replyToId="card-1"))
        await teams.settled()
        told = [a for a in teams.connector.to("a:aad-ann") if "is resolved" in card_text(a)]
        assert len(told) == 1
        assert len([a for a in teams.connector.to("a:aad-dana") if "is now resolved" in card_text(a)]) == 1
        # The same button with another note is another press.
        await teams.post(
            teams.activity("aad-dana", value={**resolved, "note": "From Monday, really"}, replyToId="card-1")
        )
        await teams.settled()
        assert "From Monday, really" in card_text(teams.connector.to("a:aad-ann")[-1])

    run_teams(sqlite_url, scenario)


def to_the_bot_in_a_channel(teams: Teams, user: str, words: str) -> dict:
    """`@frictionlog <words>` posted in the floor's channel: the bot's mention as Teams sends it."""
    activity = teams.activity(
        user,
        conversation="19:floor@thread.tacv2",
        text=f"<at>frictionlog</at> {words}".strip(),
        entities=[
            {
                "type": "mention",
                "text": "<at>frictionlog</at>",
                "mentioned": {"id": f"28:{APP_ID}", "name": "frictionlog"},
            }
        ],
    )
    activity["conversation"]["conversationType"] = "channel"
    return activity


def test_a_channel_mention_is_a_submission_with_the_mention_stripped(sqlite_url):
    async def scenario(teams: Teams):
        activity = to_the_bot_in_a_channel(teams, "aad-ann", REFUND)
        status, _ = await teams.post(activity)
        assert 200 <= status < 300
        await teams.settled()
        [stored] = teams.submissions()
        assert stored.text == REFUND
        # Without a personal chat the answer stays in the thread; with one, it goes there instead.
        assert "Logged as S-1" in card_text(teams.connector.to("19:floor@thread.tacv2")[-1])
        await teams.post(teams.activity("aad-ann", kind="installationUpdate", action="add"))
        await teams.post({**activity, "id": "act-2", "text": "<at>frictionlog</at> hold times are too long"})
        await teams.settled()
        assert len(teams.connector.to("19:floor@thread.tacv2")) == 1
        assert "Logged as S-2" in card_text(teams.connector.to("a:aad-ann")[-1])

    run_teams(sqlite_url, scenario)


def log_as_friction(teams: Teams, user: str, message: dict) -> dict:
    """ "Log as friction" chosen on a message: the invoke that asks for the form."""
    return teams.activity(
        user,
        kind="invoke",
        name="composeExtension/fetchTask",
        value={"commandId": "logAsFriction", "commandContext": "message", "messagePayload": message},
    )


def test_log_as_friction_opens_a_prefilled_form_and_submits_it_anonymously(sqlite_url):
    async def scenario(teams: Teams):
        payload = {
            "body": {"content": "<p>customers wait 3 days &amp; more</p>"},
            "linkToMessage": "https://teams.microsoft.com/l/message/19:chat/1",
        }
        status, body = await teams.post(log_as_friction(teams, "aad-ann", payload))
        assert status == 200
        assert "customers wait 3 days" in body.decode() and "Log it anonymously" in body.decode()
        submit = teams.activity(
            "aad-ann",
            kind="invoke",
            name="composeExtension/submitAction",
            value={
                "commandId": "logAsFriction",
                "commandContext": "message",
                "messagePayload": payload,
                "data": {"text": "customers wait 3 days & more", "anonymous": "true", "link": payload["linkToMessage"]},
            },
        )
        status, _ = await teams.post(submit)
        assert status == 200
        await teams.settled()
        [stored] = teams.submissions()
        assert stored.text == "customers wait 3 days & more" and stored.anonymous and stored.author is None
        assert stored.source_url is None  # from a personal chat: a link would name it
        assert "(anonymously)" in card_text(teams.connector.to("a:aad-ann")[-1])

    run_teams(sqlite_url, scenario)


def test_logging_ones_own_channel_message_anonymously_keeps_no_link_to_it(sqlite_url):
    async def scenario(teams: Teams):
        message = {  # Ann's message in the floor's channel, as Teams sends it with the command
            "body": {"contentType": "html", "content": "<p>refunds wait 3 days</p>"},
            "from": {"user": {"userIdentityType": "aadUser", "id": "aad-ann", "displayName": "Ann"}},
            "linkToMessage": "https://teams.microsoft.com/l/message/19:floor@thread.tacv2/1",
        }
        for who in ("aad-ann", "aad-ben"):  # Ann logs her own message, Ben logs hers
            fetch = log_as_friction(teams, who, message)
            fetch["conversation"].update(id="19:floor@thread.tacv2", conversationType="channel")
            status, body = await teams.post(fetch)
            assert status == 200
            [action] = json.loads(body)["task"]["value"]["card"]["content"]["actions"]
            data = {**action["data"], "text": f"customers wait 3 days for refunds ({who})", "anonymous": "true"}
            value = {"commandId": "logAsFriction", "commandContext": "message", "messagePayload": message, "data": data}
            submit = teams.activity(who, kind="invoke", name="composeExtension/submitAction", value=value)
            submit["conversation"].update(id="19:floor@thread.tacv2", conversationType="channel")
            status, _ = await teams.post(submit)
            assert status == 200
            await teams.settled()
        own, other = teams.submissions()
        assert own.anonymous and own.source_url is None  # the link would open Ann's own message
        assert other.anonymous and other.source_url  # someone else's message does not name Ben

    run_teams(sqlite_url, scenario)


def test_an_anonymous_report_leaves_nothing_in_the_database_that_leads_to_its_reporter(sqlite_url):
    """The ids a Teams report arrives with (its activity id, the chat's id) are what the person's
    conversation reference holds in clear: the submission must keep neither."""
    from storage.models import ConversationRef

    async def scenario(teams: Teams):
        submit = teams.activity(
            "aad-ann",
            kind="invoke",
            name="composeExtension/submitAction",
            id="1700000000777",
            value={
                "commandId": "logAsFriction",
                "commandContext": "message",
                "data": {"text": REFUND, "anonymous": "true"},
            },
        )
        status, _ = await teams.post(submit)
        assert status == 200
        await teams.settled()
        [stored] = teams.submissions()
        assert stored.anonymous and stored.author is None
        assert "1700000000777" not in stored.platform_event_id and "a:aad-ann" not in stored.platform_event_id
        with Session(teams.service.engine) as session:
            references = [json.loads(r.reference) for r in session.exec(select(ConversationRef))]
        assert references and all(r.get("activityId") is None for r in references)
        assert "1700000000777" not in json.dumps(references)
        assert "(anonymously)" in card_text(teams.connector.to("a:aad-ann")[-1])  # and Ann still hears back

    run_teams(sqlite_url, scenario)


def test_a_themes_list_has_each_me_too_under_its_own_theme(sqlite_url):
    async def scenario(teams: Teams):
        await teams.say("aad-ann", REFUND)
        await teams.say("aad-ben", "the tracking link in the shipping email is broken for every customer")
        await teams.settled()
        await teams.say("aad-cat", "themes")
        await teams.settled()
        body = card_of(teams.connector.to("a:aad-cat")[-1])["body"]
        # Under each theme's title, before the next one: its own Me too.
        under = {}
        for block in body:
            if block["type"] == "TextBlock" and block.get("weight") == "Bolder":
                title = block["text"].split(" ·")[0]
            elif block["type"] == "ActionSet":
                under[title] = [a for a in block["actions"] if a["title"] == "Me too"]
        assert sorted(under) == ["T-1", "T-2"] and all(len(buttons) == 1 for buttons in under.values())
        await teams.post(teams.activity("aad-cat", value=dict(under["T-2"][0]["data"])))
        await teams.settled()
        assert "Counted: T-2" in card_text(teams.connector.to("a:aad-cat")[-1])

    run_teams(sqlite_url, scenario)


def test_teams_html_reads_as_typed_in_a_message_and_in_the_log_as_friction_form(sqlite_url):
    typed = "<p>returns &amp; exchanges need a manager</p><p>every time&nbsp;&#8212; &lt;sigh&gt;<br>still</p>"
    words = "returns & exchanges need a manager\nevery time — <sigh>\nstill"

    async def scenario(teams: Teams):
        status, _ = await teams.post(teams.activity("aad-ann", text=typed, textFormat="xml"))
        assert 200 <= status < 300
        await teams.settled()
        assert [s.text for s in teams.submissions()] == [words]
        message = {"body": {"contentType": "html", "content": typed}, "linkToMessage": "https://teams.example/l/1"}
        status, body = await teams.post(log_as_friction(teams, "aad-ann", message))
        assert status == 200
        form = json.loads(body)["task"]["value"]["card"]["content"]
        assert [b["value"] for b in form["body"] if b.get("id") == "text"] == [words]

    run_teams(sqlite_url, scenario)


def test_a_bare_mention_or_an_empty_message_is_answered_with_help(sqlite_url):
    async def scenario(teams: Teams):
        mention = to_the_bot_in_a_channel(teams, "aad-ann", "")
        status, _ = await teams.post(mention)
        assert 200 <= status < 300
        await teams.post(teams.activity("aad-ben", text=""))
        await teams.settled()
        assert "How to use frictionlog" in card_text(teams.connector.to("19:floor@thread.tacv2")[-1])
        assert "How to use frictionlog" in card_text(teams.connector.to("a:aad-ben")[-1])
        assert teams.submissions() == []

    run_teams(sqlite_url, scenario)


def assign_in_a_channel(teams: Teams, mentioned: dict) -> dict:
    """`@frictionlog assign T-1 @Dana Diaz` typed by the lead in a channel, Dana's mention as given."""
    typed = teams.activity(
        LEAD_AAD,
        conversation="19:leads@thread.tacv2;messageid=1700000000123",
        text="<p><at>frictionlog</at> assign T-1 <at>Dana Diaz</at></p>",
        textFormat="xml",
        entities=[
            {
                "type": "mention",
                "text": "<at>frictionlog</at>",
                "mentioned": {"id": f"28:{APP_ID}", "name": "frictionlog"},
            },
            {"type": "mention", "text": "<at>Dana Diaz</at>", "mentioned": mentioned},
        ],
    )
    typed["conversation"]["conversationType"] = "channel"
    return typed


def test_a_lead_assigns_an_owner_with_a_teams_mention(sqlite_url):
    """`@frictionlog assign T-1 @Dana` typed in a channel: each @mention arrives as <at>name</at>
    with an entity carrying the ids; Dana's names her, the bot's is not part of the command."""

    async def scenario(teams: Teams):
        await teams.post(teams.activity("aad-dana", kind="installationUpdate", action="add"))
        await teams.say("aad-ann", REFUND)
        await teams.settled()
        typed = assign_in_a_channel(teams, {"id": "29:1dana", "name": "Dana Diaz", "aadObjectId": "aad-dana"})
        await teams.post(typed)
        await teams.settled()
        [owner_dm] = teams.connector.to("a:aad-dana")
        assert "You now own T-1" in card_text(owner_dm)
        assert "has a new owner" in card_text(teams.connector.to(typed["conversation"]["id"])[-1])
        # In a report, a mention stays the name people read: only a command needs the id.
        report = teams.activity(
            "aad-ann",
            text="<p><at>Dana Diaz</at> says refunds over $50 still wait three days</p>",
            entities=[typed["entities"][1]],
        )
        await teams.post(report)
        await teams.settled()
        assert teams.submissions()[-1].text == "Dana Diaz says refunds over $50 still wait three days"

    run_teams(sqlite_url, scenario)


def test_a_mention_without_its_entra_id_is_looked_up_on_the_roster(sqlite_url):
    """Teams may send a mention with its `29:` id alone, while people are known by their Entra
    object id: the bot asks the conversation's roster, so the new owner is reached and is the one
    whose buttons count. Only an assign asks; a report's mention stays a name and asks nothing."""

    async def scenario(teams: Teams):
        await teams.post(teams.activity("aad-dana", kind="installationUpdate", action="add"))
        await teams.say("aad-ann", REFUND)
        await teams.settled()
        teams.connector.members["29:1dana"] = {"id": "29:1dana", "name": "Dana Diaz", "aadObjectId": "aad-dana"}
        await teams.post(assign_in_a_channel(teams, {"id": "29:1dana", "name": "Dana Diaz"}))
        await teams.settled()
        assert teams.connector.member_lookups == [("19:leads@thread.tacv2;messageid=1700000000123", "29:1dana")]
        [owner_dm] = teams.connector.to("a:aad-dana")
        assert "You now own T-1" in card_text(owner_dm)
        await teams.say("aad-ann", "<at>Dana Diaz</at> says refunds over $50 still wait three days")
        await teams.settled()
        assert len(teams.connector.member_lookups) == 1

    run_teams(sqlite_url, scenario)


def test_a_roster_that_cannot_answer_leaves_the_mention_as_sent(sqlite_url):
    """The roster does not know the person (404): the assign still goes through on the `29:` id,
    and the lead is told the owner cannot be reached, rather than the lead's message failing."""

    async def scenario(teams: Teams):
        await teams.post(teams.activity(LEAD_AAD, kind="installationUpdate", action="add"))
        await teams.say("aad-ann", REFUND)
        await teams.settled()
        typed = assign_in_a_channel(teams, {"id": "29:1dana", "name": "Dana Diaz"})
        status, _ = await teams.post(typed)
        assert 200 <= status < 300
        await teams.settled()
        assert len(teams.connector.member_lookups) == 1
        told = " ".join(card_text(a) for a in teams.connector.activities)
        assert "has a new owner" in told and "could not" in told.lower()

    run_teams(sqlite_url, scenario)


def test_owners_hear_proactively_and_a_person_without_a_reference_is_unreachable(sqlite_url):
    async def scenario(teams: Teams):
        owner_dm = await dana_owns_t1(teams)
        text = card_text(owner_dm)
        assert "You now own T-1" in text and owner_dm["_authorized"]
        assigned = card_text(teams.connector.to(f"a:{LEAD_AAD}")[-1])
        assert '"Owner", "value": "Dana"' in assigned and "aad-dana" not in assigned  # by name, not object id
        # The owner acknowledges from the card, then resolves with the note typed on it.
        await teams.post(teams.activity("aad-dana", value=submit_data(owner_dm, "Acknowledge")))
        resolved = {**submit_data(owner_dm, "Resolved"), "note": "Self-approval up to $150 from Monday"}
        await teams.post(teams.activity("aad-dana", value=resolved))
        await teams.settled()
        update = card_text(teams.connector.to("a:aad-ann")[-1])
        assert "is resolved" in update and "Self-approval up to $150 from Monday" in update
        # Nobody can be written to cold: an owner who never installed the app is unreachable.
        await teams.say(LEAD_AAD, "assign T-1 @aad-nobody")
        await teams.settled()
        [lost] = [m for m in teams.outbox() if m.label == "T-1 to its new owner" and m.state == "failed"]
        assert lost.last_error.startswith("unreachable: this person has not installed")
        told = card_text(teams.connector.to(f"a:{LEAD_AAD}")[-1])  # the lead who assigned hears why
        assert "T-1's new owner could not be told on Teams" in told and "has not installed" in told

    run_teams(sqlite_url, scenario)


def test_429_is_retried_after_retry_after_and_403_is_recorded_not_retried(sqlite_url):
    async def scenario(teams: Teams):
        teams.connector.fail("a:aad-ann", 429)
        teams.connector.fail("a:aad-ben", 403)
        await teams.say("aad-ann", REFUND)
        await teams.say("aad-ben", "hold times on the phone line are over forty minutes every evening")
        [confirmation] = await teams.connector.wait_for("a:aad-ann", timeout=15)
        assert "Logged as" in card_text(confirmation)
        await teams.settled()
        states = {m.label: (m.state, m.attempts, m.last_error) for m in teams.outbox()}
        assert states["confirmation of S-1"][:2] == ("sent", 2)
        assert states["confirmation of S-2"] == ("failed", 1, "Teams answered 403")
        assert teams.connector.to("a:aad-ben") == []

    run_teams(sqlite_url, scenario)


def test_a_connection_dropped_while_sending_is_tried_again_not_given_up_on(sqlite_url):
    """A connection closed under a send is a blip: the outbox tries again, as on Slack (where
    slack_sdk's ServerDisconnectedError, no OSError, had failed messages for good)."""
    from tests.fake_teams import DROP

    async def scenario(teams: Teams):
        teams.connector.fail("a:aad-ann", DROP)
        await teams.say("aad-ann", REFUND)
        [confirmation] = await teams.connector.wait_for("a:aad-ann", timeout=15)
        assert "Logged as" in card_text(confirmation)
        await teams.settled()
        assert [(m.state, m.attempts) for m in teams.outbox() if m.label == "confirmation of S-1"] == [("sent", 2)]

    run_teams(sqlite_url, scenario)


def test_teams_package_writes_a_zip_whose_manifest_validates_against_its_schema(tmp_path, monkeypatch):
    import zipfile
    from pathlib import Path

    import jsonschema
    from typer.testing import CliRunner

    from adapters.cli import app

    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    output = tmp_path / "frictionlog-teams.zip"
    result = CliRunner().invoke(
        app, ["teams-package", "--endpoint", "https://bot.example.com/api/messages", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(output) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        sizes = {name: struct_size(package.read(name)) for name in ("color.png", "outline.png")}
    schema = json.loads((Path(__file__).parent / "fixtures" / "teams" / "MicrosoftTeams.schema.json").read_text())
    assert manifest["manifestVersion"] == schema["properties"]["manifestVersion"]["const"]  # the version it declares
    jsonschema.Draft7Validator(schema).validate(manifest)
    assert manifest["id"] == APP_ID and manifest["bots"][0]["botId"] == APP_ID
    assert {"personal", "team"} <= set(manifest["bots"][0]["scopes"])
    [command] = manifest["composeExtensions"][0]["commands"]
    assert (command["type"], command["context"], command["title"]) == ("action", ["message"], "Log as friction")
    assert manifest["validDomains"] == ["bot.example.com"]
    assert sizes == {"color.png": (192, 192), "outline.png": (32, 32)}
    refused = CliRunner().invoke(app, ["teams-package", "--endpoint", "http://bot.example.com/api/messages"])
    assert refused.exit_code == 2 and "must be an https URL" in refused.output


def struct_size(png: bytes) -> tuple[int, int]:
    import struct

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_the_digest_cards_carry_the_chart_as_a_png_image_and_each_stays_under_the_card_budget():
    from adapters.teams.cards import MAX_CARD_BYTES, digest_cards
    from tests.test_chart import themed_digest

    contents = digest_cards(themed_digest())
    images = [(n, b) for n, content in enumerate(contents) for b in content["body"] if b["type"] == "Image"]
    [(where, image)] = images
    assert where == 0 and image["altText"].startswith("Line chart of submissions per week for the top 5 themes")
    png = base64.b64decode(image["url"].removeprefix("data:image/png;base64,"), validate=True)
    assert struct_size(png) == COMPACT.pixels
    assert all(len(json.dumps(content)) <= MAX_CARD_BYTES for content in contents)
    assert "T-7" in json.dumps(contents)  # every top theme still in the cards
    assert digest_cards(themed_digest()) == contents  # the same split on a retry


def test_a_lead_makes_a_channel_a_digest_target_and_it_gets_the_digest_once_a_week(sqlite_url):
    from bot.schedule import digest_job

    async def scenario(teams: Teams):
        channel = "19:exec@thread.tacv2"
        typed = teams.activity(
            LEAD_AAD,
            conversation=f"{channel};messageid=1700000000000",
            text="<at>frictionlog</at> digest here",
            entities=[{"type": "mention", "text": "<at>frictionlog</at>", "mentioned": {"id": f"28:{APP_ID}"}}],
        )
        typed["conversation"]["conversationType"] = "channel"
        not_a_lead = {**typed, "id": "act-x", "from": {"id": "29:ann", "name": "Ann", "aadObjectId": "aad-ann"}}
        await teams.post(not_a_lead)
        await teams.post(typed)
        await teams.settled()
        replies = " ".join(card_text(a) for a in teams.connector.to(f"{channel};messageid=1700000000000"))
        assert "Only team leads" in replies and "This channel will get the weekly digest" in replies  # either order
        await teams.say("aad-ann", REFUND)
        await teams.settled()  # themed before the week closes: the digest has a top theme, and a chart
        teams.service.clock.advance(days=7)
        for _ in range(2):  # the schedule firing twice, or two replicas
            await digest_job(teams.service, teams.app[PIPELINE], [])
        await teams.settled()
        [digest] = teams.connector.to(channel)
        assert "frictionlog weekly digest" in card_text(digest) and len(json.dumps(digest)) < 28_000
        [image] = [block for block in card_of(digest)["body"] if block["type"] == "Image"]
        assert image["url"].startswith("data:image/png;base64,") and "T-1" in image["altText"]
        assert struct_size(base64.b64decode(image["url"].split(",", 1)[1])) == COMPACT.pixels
        off = {**typed, "id": "act-off", "text": "<at>frictionlog</at> digest here off"}
        await teams.post(off)
        await teams.settled()
        assert "will no longer get the weekly digest" in card_text(teams.connector.to(off["conversation"]["id"])[-1])

    run_teams(sqlite_url, scenario)


def test_slack_and_teams_share_one_theme_and_each_reporter_hears_on_their_own_platform(sqlite_url):
    from tests.fake_slack import FakeSlackThread
    from tests.test_slack import SECRET, Slack

    with FakeSlackThread() as fake:

        async def scenario(teams: Teams):
            slack = Slack(fake, teams.service, teams.url, teams.http)
            await teams.post(teams.activity("aad-dana", kind="installationUpdate", action="add"))
            await teams.say("aad-ann", REFUND)
            status, _, _ = await slack.dm("supervisor approval for refunds over $50 takes days", user="U1")
            assert status == 200
            await teams.settled()
            themes = {(s.platform, s.theme_id) for s in teams.submissions()}
            assert themes == {("teams", 1), ("slack", 1)}  # one problem, one theme, whichever the platform
            # A Slack lead gives the theme to a Teams user, who hears on Teams.
            await slack.command("assign T-1 teams:aad-dana", user="U-SLACKLEAD", trigger="t-assign")
            await teams.settled()
            [owner_dm] = teams.connector.to("a:aad-dana")
            assert "You now own T-1" in card_text(owner_dm)
            note = "Self-approval up to $150 from Monday"
            await teams.post(teams.activity("aad-dana", value={**submit_data(owner_dm, "Resolved"), "note": note}))
            await teams.settled()
            assert note in card_text(teams.connector.to("a:aad-ann")[-1])  # the Teams reporter, on Teams
            [told] = [m for m in fake.of("chat.postMessage") if m["channel"] == "U1" and "resolved" in m["text"]]
            assert note in json.dumps(told)  # the Slack reporter, on Slack

        run_teams(
            sqlite_url,
            scenario,
            team_leads="U-SLACKLEAD",
            slack_bot_token="xoxb-test-token",
            slack_signing_secret=SECRET,
            slack_api_url=fake.api_url,
        )


def test_without_an_app_id_production_refuses_and_development_answers_only_loopback(sqlite_url, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from adapters.cli import app

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "FRICTIONLOG_ENV": "production",
        "FRICTIONLOG_TEAMS_WITHOUT_APP_ID": "true",
        "FRICTIONLOG_SECRET_KEY": "s" * 32,
        "DATABASE_URL": "postgresql://x@db/frictionlog",
    }.items():
        monkeypatch.setenv(name, value)
    refused = CliRunner().invoke(app, ["serve"])
    assert refused.exit_code == 2
    assert "turns Teams authentication off: set MICROSOFT_APP_ID" in " ".join(refused.output.split())
    monkeypatch.delenv("FRICTIONLOG_TEAMS_WITHOUT_APP_ID")
    monkeypatch.setenv("MICROSOFT_APP_ID", APP_ID)
    no_password = CliRunner().invoke(app, ["serve"])
    assert no_password.exit_code == 2 and "MICROSOFT_APP_PASSWORD is not" in " ".join(no_password.output.split())
    for name in ("FRICTIONLOG_ENV", "MICROSOFT_APP_ID", "FRICTIONLOG_SECRET_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name)

    with Authority() as authority, Connector(authority) as connector:

        async def main():
            config = Settings(database_url=sqlite_url, embeddings="hashing", teams_without_app_id=True, _env_file=None)
            engine = make_engine(sqlite_url)
            upgrade(engine)
            service = FrictionService(engine, config, HashingEmbedder(), clock=FrozenClock(START))
            web_app = make_web_app(service)
            try:
                async with served(web_app) as base, ClientSession() as http:
                    teams = Teams(authority, connector, service, web_app, base, http)
                    forged = teams.activity("aad-ann", text=REFUND, serviceUrl="https://attacker.example.net/")
                    assert (await teams.post(forged, token=None))[0] == 403
                    assert teams.submissions() == []
                    status, _ = await teams.post(teams.activity("aad-ann", text=REFUND), token=None)
                    assert 200 <= status < 300
                    [confirmation] = await connector.wait_for("a:aad-ann")
                    assert "Logged as S-1" in card_text(confirmation)
            finally:
                engine.dispose()

        asyncio.run(main())


@pytest.mark.parametrize("second_card_fails", [False, True])
def test_a_themes_list_in_cyrillic_comes_in_cards_each_under_the_card_budget(sqlite_url, second_card_fails):
    """Outside ASCII each letter is six bytes of JSON (\\u0436): twenty themes with their examples in
    Russian make a card of some 80 KB, which Teams refuses; it comes as several, each theme whole.
    When Teams fails the second card once, the retry goes on from there: no card comes twice."""
    from adapters.teams.cards import MAX_CARD_BYTES
    from storage.db import session_scope
    from storage.models import Theme

    example = ("Возврат свыше пятидесяти долларов ждёт одобрения супервайзера три дня, клиенты звонят. " * 6)[:500]

    async def scenario(teams: Teams):
        with session_scope(teams.service.engine) as session:
            for n in range(20):
                theme = Theme(title=f"Возвраты ждут одобрения супервайзера {n}", summary=example, size=5)
                session.add(theme)
                session.flush()
                for writer in range(5):
                    session.add(Submission(text=example, author_hash=f"writer-{n}-{writer}", theme_id=theme.id))
        if second_card_fails:
            teams.connector.fail("a:aad-cat", 412, after=1)
        await teams.say("aad-cat", "themes")
        await teams.settled()
        sent = teams.connector.to("a:aad-cat")
        assert all(len(json.dumps(card_of(activity))) <= MAX_CARD_BYTES for activity in sent)
        blocks = [b for activity in sent for b in card_of(activity)["body"]]
        assert len([b for b in blocks if b["type"] == "ActionSet"]) == 20 and "20 themes" in card_text(sent[0])

    run_teams(sqlite_url, scenario)


def test_a_long_text_in_cyrillic_such_as_the_digest_preview_is_split_at_line_ends():
    from adapters.teams.cards import MAX_CARD_BYTES, reply_cards
    from bot.actions import ActionCodec
    from bot.messages import Reply

    lines = [f"• T-{n} Возвраты ждут одобрения супервайзера три дня, клиенты звонят снова" for n in range(200)]
    contents = reply_cards(ActionCodec("k"), Reply("\n".join(lines)))
    assert len(contents) > 1 and all(len(json.dumps(content)) <= MAX_CARD_BYTES for content in contents)
    assert "\n".join(b["text"] for c in contents for b in c["body"]) == "\n".join(lines)  # every line, once
