"""Bolt's AsyncApp and its listeners: Slack payloads in, core requests out, replies back.

Every listener acknowledges first (Slack allows 3 seconds) and does the slow work after, calling
the synchronous core in a thread so the event loop never blocks. No business rule lives here.
"""

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as bk
from adapters.slack.platform import Destination, SlackPlatform
from bot import commands
from bot.messages import Reply, Request
from bot.service import FrictionService

log = logging.getLogger(__name__)
ACTIONS = re.compile(r"^(undo|anonymous|different_issue|me_too|status|assign|merge)\|")
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
LEADING_MENTION = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
SORRY = "Sorry, something went wrong on our side. Please try again in a minute."
GROUP_TTL = 300.0
SEEN_KEYS = 10_000


def unescape(text: str) -> str:
    """Slack sends &, < and > typed by people as entities; the core keeps the characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def command_text(text: str) -> str:
    """`assign T-12 <@U123|dana>` becomes `assign T-12 @U123`, so owners are stored as user ids.
    Anything that is not an assign command is left exactly as typed."""
    converted = MENTION.sub(lambda m: "@" + m.group(1), text)
    return converted if isinstance(commands.parse(converted), commands.Assign) else text


class SlackAdapter:
    def __init__(self, service: FrictionService, client: AsyncWebClient, *, socket_mode: bool = False):
        self.service = service
        self.settings = service.settings
        self.client = client
        self.platform = SlackPlatform(client)
        self.bolt = AsyncApp(
            client=client,
            signing_secret=self.settings.slack_signing_secret or None,
            request_verification_enabled=not socket_mode,
            process_before_response=False,
        )
        self._members: dict[str, set[str]] = {}
        self._members_at = -GROUP_TTL
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._register()

    def first_time(self, key: str | None) -> bool:
        """False for a key met recently: a retried event delivery or a double-submitted form.
        (Submissions are also unique by event id in the database; this covers commands too.)"""
        if not key:
            return True
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > SEEN_KEYS:
            self._seen.popitem(last=False)
        return True

    # Translating in ------------------------------------------------------------------------

    async def groups_of(self, user: str) -> frozenset[str]:
        """The lead user groups (from FRICTIONLOG_TEAM_LEADS) this user belongs to."""
        handles = {h for h in self.settings.team_lead_groups if not bk.SLACK_USER_ID.fullmatch(h)}
        if not handles:
            return frozenset()
        if time.monotonic() - self._members_at > GROUP_TTL:
            try:
                response = await self.client.usergroups_list(include_users=True)
                self._members = {g["handle"]: set(g.get("users") or ()) for g in response.get("usergroups", [])}
                self._members_at = time.monotonic()
            except Exception:
                log.warning("cannot read user groups (is the usergroups:read scope granted?)", exc_info=True)
        return frozenset(h for h in handles if user in self._members.get(h, ()))

    async def request(self, user: str, text: str, **fields) -> Request:
        return Request(user=user, text=text, platform="slack", groups=await self.groups_of(user), **fields)

    # Translating out -----------------------------------------------------------------------

    async def deliver(self, destination: Destination, reply: Reply) -> None:
        if not reply.duplicate:  # a retried delivery was answered the first time
            await self.platform.reply(destination, reply)
        for notification in reply.notifications:
            await self.platform.notify(notification)

    async def run(self, destination: Destination, work) -> None:
        """Run one piece of core work in a thread and deliver its reply; never a stack trace."""
        try:
            reply = await asyncio.to_thread(work)
        except Exception:
            log.exception("slack request failed")
            reply = Reply(SORRY, ok=False)
        await self.deliver(destination, reply)

    async def publish_home(self, user: str) -> None:
        request = await self.request(user, "")
        reply = await asyncio.to_thread(self.service.home, request)
        await self.client.views_publish(user_id=user, view=bk.home_view(reply))

    async def permalink(self, channel: str | None, ts: str | None) -> str | None:
        if not channel or not ts:
            return None
        try:
            response = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
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
        bolt.action(ACTIONS)(self.on_action)

    async def on_message(self, event: dict, body: dict) -> None:
        """A direct message to the bot is a submission (or a command of the grammar); one with a
        file attached (a screenshot) is logged by its text."""
        if event.get("channel_type") != "im" or event.get("subtype") not in (None, "file_share"):
            return
        user, channel = event.get("user"), event.get("channel")
        if not user or event.get("bot_id") or not self.first_time(body.get("event_id")):
            return
        request = await self.request(
            user, command_text(unescape(event.get("text") or "")), channel=channel, event_id=body.get("event_id")
        )
        await self.run(Destination(user=user, channel=channel), lambda: self.service.handle(request))

    async def on_mention(self, event: dict, body: dict) -> None:
        """`@frictionlog <text>` in a channel; the answer is visible to the sender only."""
        user, channel = event.get("user"), event.get("channel")
        if not user or event.get("bot_id") or not self.first_time(body.get("event_id")):
            return
        text = LEADING_MENTION.sub("", unescape(event.get("text") or ""), count=1)
        request = await self.request(user, command_text(text), channel=channel, event_id=body.get("event_id"))
        await self.run(Destination(user=user, channel=channel, ephemeral=True), lambda: self.service.handle(request))

    async def on_home_opened(self, event: dict) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            try:
                await self.publish_home(event["user"])
            except Exception:
                log.exception("publishing the App Home failed")

    async def on_command(self, ack, command: dict) -> None:
        await ack()
        user = command["user_id"]
        request = await self.request(
            user,
            command_text(unescape(command.get("text") or "")),
            channel=command.get("channel_id"),
            # Slash commands carry no event id and are not redelivered, but people double-submit.
            event_id=f"slash:{command.get('team_id')}:{command.get('trigger_id')}",
        )
        destination = Destination(
            user=user, channel=command.get("channel_id"), response_url=command.get("response_url")
        )
        await self.run(destination, lambda: self.service.handle(request))

    async def on_shortcut(self, ack, shortcut: dict) -> None:
        """ "Log as friction" on any message: a modal prefilled with it, kept with a link to it."""
        await ack()
        message = shortcut.get("message") or {}
        channel = (shortcut.get("channel") or {}).get("id")
        ts = message.get("ts") or shortcut.get("message_ts")
        text = LEADING_MENTION.sub("", unescape(message.get("text") or ""), count=1)
        try:
            await self.client.views_open(trigger_id=shortcut["trigger_id"], view=bk.submit_modal(text, channel, ts))
        except Exception:
            log.exception("opening the shortcut modal failed")
            user = shortcut["user"]["id"]
            await self.platform.reply(
                Destination(user=user, response_url=shortcut.get("response_url")),
                Reply("Sorry, the form did not open. Send me the text in a direct message instead.", ok=False),
            )

    async def on_submit_view(self, ack, body: dict, view: dict) -> None:
        values = view.get("state", {}).get("values", {})
        text = ((values.get("text") or {}).get("text") or {}).get("value") or ""
        if not text.strip():
            await ack(response_action="errors", errors={"text": "Please write what got in the way."})
            return
        await ack()
        chosen = ((values.get("anonymous") or {}).get("anonymous") or {}).get("selected_options") or []
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        request = await self.request(
            user,
            text,
            channel=meta.get("channel"),
            anonymous=bool(chosen),
            source_url=await self.permalink(meta.get("channel"), meta.get("ts")),
            event_id=f"view:{view.get('id')}:{view.get('hash')}",
        )
        await self.run(Destination(user=user), lambda: self.service.handle_submission(request))

    async def on_action(self, ack, body: dict, action: dict) -> None:
        await ack()
        user = body["user"]["id"]
        name, needs_note = bk.parse_action_id(action["action_id"])
        if action.get("type") == "users_select":
            value = f"{action['action_id'].split('|', 1)[1]}:{action.get('selected_user') or ''}"
        else:
            value = action.get("value") or ""
        if needs_note:
            label = (action.get("text") or {}).get("text") or "Note"
            try:
                await self.client.views_open(trigger_id=body["trigger_id"], view=bk.note_modal(name, value, label))
            except Exception:
                log.exception("opening the note modal failed")
                await self.deliver(Destination(user=user), Reply(SORRY, ok=False))
            return
        request = await self.request(user, "", channel=(body.get("channel") or {}).get("id"))
        from_home = (body.get("view") or {}).get("type") == "home"
        destination = Destination(user=user, response_url=None if from_home else body.get("response_url"))
        await self.run(destination, lambda: self.service.press(request, name, value))
        if from_home:
            await self.on_home_opened({"user": user, "tab": "home"})

    async def on_note_view(self, ack, body: dict, view: dict) -> None:
        note = (((view.get("state", {}).get("values", {}).get("note") or {}).get("note") or {}).get("value")) or ""
        if not note.strip():
            await ack(response_action="errors", errors={"note": "A note is required: every reporter reads it."})
            return
        await ack()
        if not self.first_time(f"view:{view.get('id')}:{view.get('hash')}"):  # a double submit: told once
            return
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        request = await self.request(user, "")
        value = f"{meta.get('value', '')}:{' '.join(note.split())}"
        await self.run(Destination(user=user), lambda: self.service.press(request, meta.get("action", ""), value))
