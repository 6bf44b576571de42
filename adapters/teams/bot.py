"""Teams activities in, core events out: botbuilder's TeamsActivityHandler, translation only.

Every activity's conversation reference is kept (per person for personal chats, per
conversation always), so the outbox can write first later: an owner on assignment, reporters on
a resolution, a channel with its digest. A message or a card button is handed to the core and
stored before the turn ends, so the Bot Connector hears 2xx only for what is stored; when it
cannot be stored the turn raises and the connector gets a 5xx and redelivers.
"""

import asyncio
import contextvars
import html
import json
import logging
import re

from botbuilder.core import CardFactory, InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler, TeamsInfo
from botbuilder.schema import Activity
from botbuilder.schema.teams import (
    MessagingExtensionAction,
    MessagingExtensionActionResponse,
    TaskModuleContinueResponse,
    TaskModuleTaskInfo,
)
from msrest.serialization import Model

from adapters.teams import cards
from bot import commands
from bot.actions import ForgedAction, asks_for_note, with_note
from bot.messages import Inbound
from bot.pipeline import Pipeline
from storage import queries
from storage.db import session_scope
from storage.models import utcnow

log = logging.getLogger(__name__)
TAG = re.compile(r"<[^>]+>")  # Teams sends message text as HTML
BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|li|h[1-6]|tr|blockquote|pre)\s*>", re.I)
BLANK_LINES = re.compile(r"\n\s*\n\s*")
PERSON_ID = re.compile(r"^(?:29|8:orgid):")  # a Teams user's id; a bot's starts 28:, a channel's 19:
# How long a roster lookup may hold the turn: it runs before the message is stored.
ROSTER_SECONDS = 3.0
# Set once a turn runs, i.e. once the request's token was accepted (adapters/teams/http.py).
TURN_STARTED: contextvars.ContextVar[bool] = contextvars.ContextVar("teams_turn_started", default=False)


def person_key(user_id: str) -> str:
    return f"user:{user_id}"


def conversation_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def channel_of(conversation_id: str) -> str:
    """A channel conversation without the thread it was typed in (`19:…@thread.tacv2;messageid=…`):
    a digest posted there starts a post of its own."""
    return conversation_id.split(";", 1)[0]


def html_text(content: str) -> str:
    """Text Teams sends as HTML, as it was typed: a line break for each <br> and each paragraph,
    list item or other block that ends, the other tags dropped, entities decoded (`&amp;` is `&`,
    `&nbsp;` a space). Decoded last, so that a `<` someone typed stays text."""
    text = TAG.sub("", BLOCK_END.sub("\n", content))
    text = html.unescape(text).replace("\xa0", " ")
    return BLANK_LINES.sub("\n\n", text).strip()


def _as_id(mentioned: dict, shown: str, object_ids: dict[str, str]) -> str:
    """A person's @mention as the core reads a Teams person (`assign T-12 @<id>`): their Entra
    object id, from the mention or the roster (`object_ids`), else the `29:` id it came with; a
    channel's or a tag's stays its name."""
    member = mentioned.get("id") or ""
    person = mentioned.get("aadObjectId") or object_ids.get(member) or (member if PERSON_ID.match(member) else None)
    return f"@{person}" if person else shown


def _mentioned(activity: Activity) -> list[tuple[str, dict]]:
    """Each @mention: the text it stands as in the message, and who it names."""
    found = []
    for mention in TurnContext.get_mentions(activity):
        properties = mention.additional_properties or {}
        mentioned = properties.get("mentioned") or {}
        found.append((properties.get("text") or f"<at>{mentioned.get('name') or ''}</at>", mentioned))
    return found


def without_object_id(activity: Activity) -> list[str]:
    """The people mentioned by their `29:` id alone, as Teams often sends them."""
    return [m["id"] for _, m in _mentioned(activity) if not m.get("aadObjectId") and PERSON_ID.match(m.get("id") or "")]


def plain_text(activity: Activity, object_ids: dict[str, str] | None = None) -> str:
    """The words typed, the HTML undone and the bot's own @mention dropped. In an assign command a
    person's @mention is their id (_as_id), so the owner can be reached; anywhere else it stays the
    name people read (as on Slack)."""
    typed = with_ids = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    for shown, mentioned in _mentioned(activity):
        bot = mentioned.get("id") == bot_id
        with_ids = with_ids.replace(shown, "" if bot else _as_id(mentioned, shown, object_ids or {}), 1)
        typed = typed.replace(shown, "" if bot else shown, 1)
    converted = html_text(with_ids)
    return converted if commands.names_an_owner(converted) else html_text(typed)


class _AlreadySerialized(Model):
    """An invoke response body botbuilder already turned into a dict. Its aiohttp CloudAdapter
    (4.17) serialises the body again and fails on a dict; this passes the dict through as is."""

    def __init__(self, data: dict):
        super().__init__()
        self._attribute_map = {key: {"key": key, "type": "object"} for key in data}
        for key, value in data.items():
            setattr(self, key, value)


class TeamsBot(TeamsActivityHandler):
    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.service = pipeline.service
        self.codec = pipeline.service.codec

    async def on_turn(self, turn_context: TurnContext) -> None:
        TURN_STARTED.set(True)  # past authentication: a failure from here on is ours, not the caller's
        await asyncio.to_thread(self._remember, turn_context.activity)
        await super().on_turn(turn_context)

    def _remember(self, activity: Activity) -> None:
        """Where this person and this conversation can be written to later."""
        if not activity.conversation or not activity.service_url:
            return
        reference = TurnContext.get_conversation_reference(activity)
        # Not the message it was taken from: a proactive send needs only the conversation, the bot
        # and the person (CloudAdapter.continue_conversation makes an activity id of its own), and
        # that message's id kept beside the person would tie them to what they sent, an anonymous
        # report included.
        reference.activity_id = None
        stored = {conversation_key(activity.conversation.id): json.dumps(reference.serialize())}
        channel = channel_of(activity.conversation.id)
        if channel != activity.conversation.id:  # the channel itself, for its digest
            reference.conversation.id = channel
            stored[conversation_key(channel)] = json.dumps(reference.serialize())
        personal = (activity.conversation.conversation_type or "personal") == "personal"
        user = activity.from_property
        if personal and user is not None and (user.aad_object_id or user.id):
            stored[person_key(user.aad_object_id or user.id)] = stored[conversation_key(activity.conversation.id)]
        with session_scope(self.service.engine) as session:
            for key, value in stored.items():
                queries.save_reference(session, platform="teams", key=key, reference=value, at=utcnow())

    @staticmethod
    def _personal(activity: Activity) -> bool:
        return (activity.conversation.conversation_type or "personal") == "personal"

    def _delivery_id(self, activity: Activity, user: str) -> str:
        """The delivery's key, unique across Teams and naming nobody. An activity id is unique only
        in its conversation (epoch milliseconds: two chats send the same one), so the conversation is
        part of it. A card button is keyed on who pressed which action on which card, as on Slack:
        each click of a double click is a new activity, but it is one press (a different note is
        another). The key is a keyed hash: the submission keeps it, and in clear it would lead an
        anonymous report back to the chat it was written in."""
        value = activity.value if isinstance(activity.value, dict) else {}
        conversation = activity.conversation.id
        if cards.ACTION_KEY in value:
            card = activity.reply_to_id or activity.id  # no card named: every click counts
            pressed = (user, conversation, card, str(value.get(cards.ACTION_KEY)), str(value.get(cards.NOTE_KEY) or ""))
            return "press:" + self.service.sealer.token(*pressed)
        return "activity:" + self.service.sealer.token(conversation, activity.id or "")

    async def _receive(self, activity: Activity, **fields) -> None:
        user = activity.from_property
        user_id = user.aad_object_id or user.id
        event = Inbound(
            user=user_id,
            user_name=user.name,
            platform="teams",
            delivery_id=self._delivery_id(activity, user_id),
            channel=channel_of(activity.conversation.id),
            # In a channel the answer goes to the person's own chat when the bot has one: a
            # confirmation is theirs, not the channel's (Teams has no ephemeral messages).
            reply_to={"conversation": activity.conversation.id, "privately": not self._personal(activity)},
            **fields,
        )
        await self.pipeline.receive(event)  # raises when it cannot be stored: the turn fails, 5xx

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        response = await super().on_invoke_activity(turn_context)
        if response is not None and isinstance(response.body, dict):
            response.body = _AlreadySerialized(response.body)
        return response

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        if isinstance(activity.value, dict) and cards.ACTION_KEY in activity.value:
            await self._button(activity)
            return
        # Even empty (a bare @mention, an attachment alone): the core answers with help.
        text = plain_text(activity)
        if commands.names_an_owner(text) and (missing := without_object_id(activity)):
            text = plain_text(activity, await self._object_ids(turn_context, missing))
        await self._receive(activity, text=text)

    async def _object_ids(self, turn_context: TurnContext, members: list[str]) -> dict[str, str]:
        """Entra object ids of mentioned people, from the conversation's roster: frictionlog knows
        people by them (their chats, their buttons), so an owner named by a `29:` id alone could
        never be reached. A roster that cannot answer leaves the id as sent; the lead then hears
        that the owner cannot be reached."""
        found = {}
        for member in members:
            try:
                account = await asyncio.wait_for(TeamsInfo.get_member(turn_context, member), ROSTER_SECONDS)
            except Exception as error:  # HTTP errors, timeouts: the command still goes through
                log.warning("Teams roster lookup of a mentioned person failed (%s)", type(error).__name__)
                continue
            if account.aad_object_id:
                found[member] = account.aad_object_id
        return found

    async def _button(self, activity: Activity) -> None:
        """An Action.Submit from one of our cards: the signed action, with the card's note."""
        try:
            action = self.codec.decode(str(activity.value.get(cards.ACTION_KEY)))
            if asks_for_note(action):
                action = with_note(action, str(activity.value.get(cards.NOTE_KEY) or ""))
        except ForgedAction:
            log.warning("a Teams card action frictionlog did not sign was refused")
            action = None  # the core answers that the button is no longer valid
        await self._receive(activity, kind="action", action=action)

    async def on_teams_messaging_extension_fetch_task(
        self, turn_context: TurnContext, action: MessagingExtensionAction
    ) -> MessagingExtensionActionResponse:
        """ "Log as friction" on a message: a form prefilled with it."""
        message = action.message_payload
        body = message.body if message else None
        content = (body.content if body else "") or ""
        text = content.strip() if body and body.content_type == "text" else html_text(content)
        link = message.link_to_message if message else None
        author = message.from_property.user if message and message.from_property else None
        sender = turn_context.activity.from_property
        own = bool(author and author.id and sender and author.id in (sender.aad_object_id, sender.id))
        form = CardFactory.adaptive_card(cards.submit_form(text, link, own))
        info = TaskModuleTaskInfo(card=form, title="Log as friction", height="medium", width="medium")
        return MessagingExtensionActionResponse(task=TaskModuleContinueResponse(value=info))

    async def on_teams_messaging_extension_submit_action(
        self, turn_context: TurnContext, action: MessagingExtensionAction
    ) -> MessagingExtensionActionResponse:
        data = action.data or {}
        text = str(data.get("text") or "")
        anonymous = str(data.get("anonymous", "false")).lower() == "true"
        link = str(data.get("link") or "") or None
        activity = turn_context.activity
        private = activity.conversation.conversation_type in (None, "personal", "groupChat")
        own = data.get("own") is True
        await self._receive(
            activity,
            kind="submission",
            text=text,
            anonymous=anonymous,
            # An anonymous report keeps no link to a chat, nor to its reporter's own message
            # anywhere: either would name them.
            source_url=None if anonymous and (private or own) else link,
        )
        return MessagingExtensionActionResponse()
