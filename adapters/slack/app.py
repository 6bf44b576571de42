"""Bolt's AsyncApp and its listeners: Slack payloads in, core events out.

Every listener hands the core its event and acknowledges only once the core has stored it
(`process_before_response=True`: Slack hears back after the listener returns). When it cannot be
stored, the listener raises, Slack gets a non-2xx and redelivers. Answers go out through the
outbox (adapters/slack/platform.py). No business rule lives here.
"""

import asyncio
import json
import logging
import re
import time

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as bk
from bot import commands
from bot.actions import ForgedAction, asks_for_note, with_note, with_person
from bot.messages import Inbound
from bot.people import Person
from bot.pipeline import Pipeline

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
GROUP_TTL = 300.0
# How long an event waits for the lead user groups the first time; after that it never waits.
GROUP_WAIT = 1.0
GROUP_RETRY = 30.0  # after a failed read
PERMALINK_TIMEOUT = 0.8
FORM_FAILED = "Sorry, the form did not open. Send me the text in a direct message instead."


def unescape(text: str) -> str:
    """Slack sends &, < and > typed by people as entities; the core keeps the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command_text(text: str) -> str:
    """`assign T-12 <@U123|dana>` becomes `assign T-12 @U123`, so owners are stored as user ids.
    Anything that is not an assign command is left exactly as typed."""
    converted = MENTION.sub(lambda m: "@" + m.group(1), text)
    return converted if commands.names_an_owner(converted) else text


class SlackAdapter:
    def __init__(self, pipeline: Pipeline, client: AsyncWebClient, *, socket_mode: bool = False):
        self.pipeline = pipeline
        self.settings = pipeline.service.settings
        self.codec = pipeline.service.codec
        self.client = client
        self.bolt = AsyncApp(
            client=client,
            signing_secret=self.settings.slack_signing_secret or None,
            request_verification_enabled=not socket_mode,
            process_before_response=True,
        )
        # Bolt verifies again behind our edge (adapters/slack/http.py) and logs a request it refuses
        # whole at INFO: one that turned five minutes old in between would log an agent's words.
        logging.getLogger("slack_bolt.RequestVerification").setLevel(logging.WARNING)
        self._members: dict[str, set[str]] = {}
        self._members_at = -GROUP_TTL
        self._reading: asyncio.Task | None = None
        self._register()

    # Translating in ------------------------------------------------------------------------

    async def groups_of(self, user: str) -> frozenset[str]:
        """The lead user groups (from FRICTIONLOG_TEAM_LEADS) this user belongs to. Every event
        asks before it is acknowledged, so Slack is read in the background when the members are
        old, and waited for (GROUP_WAIT at most) only until they were read once."""
        handles = {h for h in self.settings.team_lead_groups if not bk.SLACK_USER_ID.fullmatch(h)}
        if not handles:
            return frozenset()
        if time.monotonic() - self._members_at > GROUP_TTL and (self._reading is None or self._reading.done()):
            self._members_at = time.monotonic()  # one read at a time, a failed one included
            self._reading = asyncio.create_task(self._read_groups())
        if not self._members and self._reading is not None:
            await asyncio.wait({self._reading}, timeout=GROUP_WAIT)
        return frozenset(h for h in handles if user in self._members.get(h, ()))

    async def _read_groups(self) -> None:
        try:
            response = await self.client.usergroups_list(include_users=True)
            self._members = {g["handle"]: set(g.get("users") or ()) for g in response.get("usergroups", [])}
        except Exception:
            log.warning("cannot read user groups (is the usergroups:read scope granted?)")
            self._members_at -= GROUP_TTL - GROUP_RETRY  # try again sooner than a good read's lifetime

    async def receive(self, user: str, delivery_id: str, **fields) -> None:
        """Hand the core one event; returns once it is stored (raises when it cannot be)."""
        event = Inbound(
            user=user, platform="slack", delivery_id=delivery_id, groups=await self.groups_of(user), **fields
        )
        await self.pipeline.receive(event)

    async def permalink(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        try:
            response = await asyncio.wait_for(
                self.client.chat_getPermalink(channel=channel, message_ts=ts), PERMALINK_TIMEOUT
            )
            return response.get("permalink")
        except Exception:
            log.warning("no permalink for a shortcut message; it is logged without the link")
            return None

    # Listeners -----------------------------------------------------------------------------

    def _register(self) -> None:
        bolt = self.bolt
        bolt.event("message")(self.on_message)
        bolt.event("app_mention")(self.on_mention)
        bolt.event("app_home_opened")(self.on_home_opened)
        bolt.command(re.compile(r"^/friction"))(self.on_command)
        bolt.shortcut(bk.SHORTCUT)(self.on_shortcut)
        bolt.view(bk.SUBMIT_VIEW)(self.on_submit_view)
        bolt.view(bk.NOTE_VIEW)(self.on_note_view)
        bolt.action(re.compile("^" + re.escape(bk.ACTION_PREFIX)))(self.on_action)

    async def on_message(self, event: dict, body: dict) -> None:
        """A direct message to the bot is a submission (or a command of the grammar); one with a
        file attached (a screenshot) is logged by its text."""
        if event.get("channel_type") != "im" or event.get("subtype") not in (None, "file_share", "thread_broadcast"):
            return
        user, channel = event.get("user"), event.get("channel")
        if not user or event.get("bot_id"):
            return
        await self.receive(
            user,
            f"event:{body.get('event_id')}",
            text=command_text(unescape(event.get("text") or "")),
            channel=channel,
            reply_to={"channel": channel},
        )

    async def on_mention(self, event: dict, body: dict) -> None:
        """`@frictionlog <text>` in a channel; the answer is visible to the sender only."""
        user, channel = event.get("user"), event.get("channel")
        # An edit comes again as app_mention, with a new event id: it is not a new report (in a
        # DM an edit is a message_changed, which is not one either).
        if not user or event.get("bot_id") or event.get("edited"):
            return
        text = LEADING_MENTION.sub("", unescape(event.get("text") or ""), count=1)
        await self.receive(
            user,
            f"event:{body.get('event_id')}",
            text=command_text(text),
            channel=channel,
            reply_to={"channel": channel, "ephemeral": True, "thread_ts": event.get("thread_ts")},
        )

    async def on_home_opened(self, event: dict, body: dict) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            await self.receive(event["user"], f"event:{body.get('event_id')}", kind="home", reply_to={"home": True})

    async def on_command(self, ack, command: dict) -> None:
        user = command["user_id"]
        await self.receive(
            user,
            # Slash commands carry no event id and are not redelivered, but people double-submit.
            f"slash:{command.get('team_id')}:{command.get('trigger_id')}",
            text=command_text(unescape(command.get("text") or "")),
            channel=command.get("channel_id"),
            reply_to={"response_url": command.get("response_url"), "channel": command.get("channel_id")},
        )
        await ack()

    async def on_shortcut(self, ack, shortcut: dict) -> None:
        """ "Log as friction" on any message: a modal prefilled with it, kept with a link to it."""
        await ack()
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id")
        ts = message.get("ts") or shortcut.get("message_ts")
        text = LEADING_MENTION.sub("", unescape(message.get("text") or ""), count=1)
        try:
            own = message.get("user") == (shortcut.get("user") or {}).get("id")
            view = bk.submit_modal(text, channel, ts, own)
            await self.client.views_open(trigger_id=shortcut["trigger_id"], view=view)
        except Exception:
            log.warning("opening the shortcut modal failed")
            await self._say(shortcut["user"]["id"], FORM_FAILED)

    async def on_submit_view(self, ack, body: dict, view: dict) -> None:
        values = view.get("state", {}).get("values", {})
        text = ((values.get("text") or {}).get("text") or {}).get("value") or ""
        if not text.strip():
            await ack(response_action="errors", errors={"text": "Please write what got in the way."})
            return
        chosen = ((values.get("anonymous") or {}).get("anonymous") or {}).get("selected_options") or []
        meta = json.loads(view.get("private_metadata") or "{}")
        # An anonymous report keeps no link to a direct message, nor to its reporter's own
        # message anywhere: either would name them.
        channel = meta.get("channel") or ""
        private = channel.startswith(("D", "G"))  # a DM, or a group DM
        link = None if chosen and (private or meta.get("own")) else await self.permalink(channel, meta.get("ts"))
        await self.receive(
            body["user"]["id"],
            f"view:{view.get('id')}:{view.get('hash')}",
            kind="submission",
            text=text,
            channel=meta.get("channel"),
            anonymous=bool(chosen),
            source_url=link,
        )
        await ack()

    async def on_action(self, ack, body: dict, action: dict) -> None:
        user = body["user"]["id"]
        try:
            if action.get("type") == "users_select":
                typed = self.codec.decode(action["action_id"].removeprefix(bk.PICKER_PREFIX))
                typed = with_person(typed, Person("slack", action.get("selected_user") or ""))
            else:
                typed = self.codec.decode(action.get("value") or "")
        except ForgedAction:  # the core answers "no longer valid" to an action it cannot read
            log.warning("a Slack action with a value frictionlog did not sign was refused")
            typed = None
        if typed is not None and asks_for_note(typed):
            await ack()
            label = (action.get("text") or {}).get("text") or "Note"
            try:
                await self.client.views_open(
                    trigger_id=body["trigger_id"], view=bk.note_modal(self.codec.encode(typed), label)
                )
            except Exception:
                log.warning("opening the note modal failed")
                await self._say(user, FORM_FAILED)
            return
        from_home = (body.get("view") or {}).get("type") == "home"
        # A button does its work once per message it sits on: a double click is one press. A
        # picker sends one event per change of choice, so each is new (back to an earlier one too).
        where = (body.get("container") or {}).get("message_ts") or (body.get("view") or {}).get("id")
        chosen = f"{action.get('selected_user')}:{action.get('action_ts')}" if action.get("selected_user") else ""
        pressed = f"{user}:{where}:{action.get('action_id')}:{action.get('value') or chosen}"
        await self.receive(
            user,
            "action:" + self.pipeline.service.sealer.token(pressed),  # keyed: it may be an anonymous report's
            kind="action",
            action=typed,
            channel=(body.get("channel") or {}).get("id"),
            from_home=from_home,
            reply_to={} if from_home else {"response_url": body.get("response_url")},
        )
        await ack()

    async def on_note_view(self, ack, body: dict, view: dict) -> None:
        note = (((view.get("state", {}).get("values", {}).get("note") or {}).get("note") or {}).get("value")) or ""
        if not note.strip():
            await ack(response_action="errors", errors={"note": "A note is required: every reporter reads it."})
            return
        meta = json.loads(view.get("private_metadata") or "{}")
        try:
            typed = with_note(self.codec.decode(meta.get("action", "")), note)
        except ForgedAction:
            await ack()
            return
        await self.receive(body["user"]["id"], f"view:{view.get('id')}:{view.get('hash')}", kind="action", action=typed)
        await ack()

    async def _say(self, user: str, text: str) -> None:
        """A plain answer about the form itself (it did not open): nothing to store or run."""
        try:
            await self.client.chat_postMessage(channel=user, text=bk.fallback_text(text))
        except Exception:
            log.warning("could not tell a Slack user that a form failed")
