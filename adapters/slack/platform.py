"""Sending to Slack: replies, direct messages and the digest (bot.platform.ChatPlatform)."""

import logging
from dataclasses import dataclass

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import blocks as bk
from adapters.slack.web_api import retry_handlers
from bot.messages import Notification, Reply
from digests.blocks import render_slack
from digests.digest import Digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Destination:
    """Where a reply goes: a response_url (slash commands, buttons), else the channel."""

    user: str
    channel: str | None = None
    response_url: str | None = None
    ephemeral: bool = False


class SlackPlatform:
    name = "slack"

    def __init__(self, client: AsyncWebClient):
        self.client = client

    async def reply(self, destination: Destination, reply: Reply) -> None:
        """Answer the sender. If the full message cannot be delivered, the sender is still told in
        plain text what happened (the submission is stored before any of this)."""
        payload = bk.message(reply)
        try:
            await self._send(destination, payload, reply.private)
            return
        except Exception as error:
            # No traceback: the sender may be anonymous, and Slack's error carries the channel.
            log.warning("reply failed (%s); sending it as plain text to the sender's DM", type(error).__name__)
        try:
            await self.client.chat_postMessage(channel=destination.user, text=payload["text"])
        except Exception:
            log.error("could not reach the sender at all; what they sent is stored and listed under `mine`")

    async def _send(self, destination: Destination, payload: dict, private: bool) -> None:
        if destination.response_url:
            webhook = AsyncWebhookClient(destination.response_url, retry_handlers=retry_handlers())
            response = await webhook.send(
                text=payload["text"],
                blocks=payload["blocks"],
                response_type="ephemeral" if private else "in_channel",
                replace_original=False,
            )
            if response.status_code >= 300:
                raise RuntimeError(f"response_url answered {response.status_code}")
        elif destination.ephemeral and destination.channel:
            await self.client.chat_postEphemeral(channel=destination.channel, user=destination.user, **payload)
        else:
            await self.client.chat_postMessage(channel=destination.channel or destination.user, **payload)

    async def notify(self, notification: Notification) -> None:
        if notification.platform != self.name:
            return
        try:
            await self.client.chat_postMessage(channel=notification.user, **bk.message(notification))
        except Exception:
            # The id may be an anonymous reporter's: it is never logged.
            log.warning("a direct message (%s) could not be delivered", notification.text[:60])

    async def post_digest(self, channel: str, digest: Digest) -> None:
        for message in render_slack(digest, owner=bk.person):
            await self.client.chat_postMessage(channel=channel, unfurl_links=False, unfurl_media=False, **message)
