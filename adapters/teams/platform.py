"""Sending to Teams for the outbox (bot.router.ChatPlatform): every message is proactive, through
a conversation reference the bot stored when the person or channel last wrote to it or installed
it. Nobody can be written to cold: a person without a reference is undeliverable, with the reason.

Retries are the outbox's: 429 comes back with its Retry-After, 412, 502, 504 and other 5xx as
transient, any other refusal (403: the bot was removed) as permanent.
"""

import asyncio
import json
import logging
from dataclasses import replace

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ConversationReference
from msrest.exceptions import ClientRequestError, HttpOperationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from adapters.teams import cards
from adapters.teams.bot import conversation_key, person_key
from bot.actions import ActionCodec
from bot.messages import Reply
from bot.people import Person
from bot.router import ONE_GO, Parts, SendFailed, retry_after
from digests.digest import Digest
from storage import queries

log = logging.getLogger(__name__)
UNREACHABLE_PERSON = "unreachable: this person has not installed or messaged the frictionlog app in Teams"
UNREACHABLE_CONVERSATION = "unreachable: the conversation is unknown here (the bot was removed, or the data was reset)"


def _failure(error: HttpOperationError) -> SendFailed:
    response = error.response
    status = getattr(response, "status_code", 0) or 0
    reason = f"Teams answered {status}"
    if status == 429:
        return SendFailed(reason, retry_after=retry_after((response.headers or {}).get("Retry-After")))
    if status in (412, 502, 504) or status >= 500:
        return SendFailed(reason)
    return SendFailed(reason, permanent=True)


class TeamsPlatform:
    name = "teams"

    def __init__(self, adapter: CloudAdapter, app_id: str, engine: Engine, codec: ActionCodec):
        self.adapter = adapter
        self.app_id = app_id
        self.engine = engine
        self.codec = codec

    def _reference(self, key: str) -> ConversationReference | None:
        """A stored reference (a database read: call it in a thread)."""
        with Session(self.engine) as session:
            stored = queries.reference(session, platform="teams", key=key)
        return ConversationReference().deserialize(json.loads(stored)) if stored else None

    def _name(self, user_id: str) -> str | None:
        """The name Teams sent with the person's last activity (kept with their reference)."""
        reference = self._reference(person_key(user_id))
        return reference.user.name if reference is not None and reference.user is not None else None

    def _named(self, reply: Reply) -> Reply:
        """People in a card by the name Teams gave them, never by their object id."""

        def name(value):
            if isinstance(value, Person) and value.platform == "teams":
                return self._name(value.id) or value
            return value

        sections = tuple(
            replace(section, fields=tuple((label, name(value)) for label, value in section.fields))
            for section in reply.sections
        )
        return replace(reply, sections=sections)

    async def _send(self, key: str, activities: list, unreachable: str, parts: Parts = ONE_GO) -> None:
        """The activities in order, after the `parts.done` an earlier attempt sent."""
        reference = await asyncio.to_thread(self._reference, key)
        if reference is None:
            raise SendFailed(unreachable, permanent=True)

        async def write(turn_context: TurnContext) -> None:
            for number, activity in parts.rest(activities):
                await turn_context.send_activity(activity)
                if len(activities) > 1:
                    await parts.sent(number)

        try:
            await self.adapter.continue_conversation(reference, write, self.app_id)
        except HttpOperationError as error:
            raise _failure(error) from None
        except ClientRequestError as error:  # the connection itself failed
            raise SendFailed(f"Teams could not be reached ({type(error).__name__})") from None

    async def _send_card(self, key: str, message: Reply, unreachable: str, parts: Parts = ONE_GO) -> None:
        message = await asyncio.to_thread(self._named, message)
        contents = cards.reply_cards(self.codec, message)  # several when one would pass the card budget
        activities = [MessageFactory.attachment(CardFactory.adaptive_card(c)) for c in contents]
        await self._send(key, activities, unreachable, parts)

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        """In the conversation asked, or in the person's own chat: for the plain last resort,
        and for a channel @mention when the bot has that chat."""
        person = person_key(to["user"])
        if to.get("plain"):
            await self._send_card(person, Reply(reply.text), UNREACHABLE_PERSON)
        elif not to.get("conversation") or (
            to.get("privately") and await asyncio.to_thread(self._reference, person) is not None
        ):
            await self._send_card(person, reply, UNREACHABLE_PERSON, parts)
        else:
            await self._send_card(conversation_key(to["conversation"]), reply, UNREACHABLE_CONVERSATION, parts)

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        await self._send_card(person_key(user_id), message, UNREACHABLE_PERSON, parts)

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        unreachable = "unreachable: the channel is unknown here; add the app to it first"
        contents = await asyncio.to_thread(cards.digest_cards, digest)  # the chart: matplotlib, off the loop
        for number, content in parts.rest(contents):
            activity = MessageFactory.attachment(CardFactory.adaptive_card(content))
            await self._send(conversation_key(channel), [activity], unreachable)
            await parts.sent(number)

    async def display_name(self, user_id: str) -> str | None:
        return await asyncio.to_thread(self._name, user_id)
