"""Sending to Slack for the outbox (bot.router.ChatPlatform): replies, direct messages, the
digest, and people's display names.

Retries are the outbox's: a 429 is handed back with its Retry-After, a 5xx, a timeout or a
connection dropped again after the client's one retry as transient, any other refusal
(channel_not_found, an expired response_url) as permanent.
"""

import asyncio
import logging
import time

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import blocks as bk
from bot.actions import ActionCodec
from bot.messages import Reply
from bot.router import ONE_GO, Parts, SendFailed, retry_after
from digests.blocks import render_slack
from digests.chart import alt_text, chart_png, charted
from digests.digest import Digest

log = logging.getLogger(__name__)
NAME_TTL = 3600.0
NAME_TRIES = 3  # users.info throttled: asked again after Retry-After, this many times in all
MAX_NAME_WAIT = 60.0
# Slack's own words for a failure that may pass: worth trying again later.
TRANSIENT_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}


def _failure(error: SlackApiError) -> SendFailed:
    response = error.response
    status = getattr(response, "status_code", 0) or 0
    code = str((response.data or {}).get("error", "")) if isinstance(response.data, dict) else ""
    reason = f"Slack answered {status}" + (f" {code}" if code else "")
    if status == 429:
        headers = response.headers or {}
        return SendFailed(reason, retry_after=retry_after(headers.get("Retry-After", headers.get("retry-after")), 1))
    if status >= 500 or code in TRANSIENT_ERRORS:
        return SendFailed(reason)
    return SendFailed(reason, permanent=True)


def _unreached(error: aiohttp.ClientError) -> SendFailed:
    # A reset or a closed connection (ServerDisconnectedError is no OSError): not Slack's refusal.
    return SendFailed(f"Slack could not be reached ({type(error).__name__})")


class SlackPlatform:
    name = "slack"

    def __init__(self, client: AsyncWebClient, codec: ActionCodec):
        self.client = client
        self.codec = codec
        self._names: dict[str, tuple[float, str | None]] = {}

    async def reply(self, to: dict, reply: Reply, parts: Parts = ONE_GO) -> None:
        """Answer where the sender asked: a response_url (slash commands, buttons), ephemeral in
        a channel (mentions), their App Home, or else a direct message."""
        user = to["user"]
        try:
            if to.get("plain"):  # the outbox's last resort: text alone, straight to the person
                await self.client.chat_postMessage(channel=user, text=bk.fallback_text(reply.text))
            elif to.get("home"):
                await self.client.views_publish(user_id=user, view=bk.home_view(self.codec, reply))
            elif to.get("response_url"):
                await self._respond(to["response_url"], reply)
            elif to.get("ephemeral") and to.get("channel"):
                thread = {"thread_ts": to["thread_ts"]} if to.get("thread_ts") else {}
                await self.client.chat_postEphemeral(
                    channel=to["channel"], user=user, **thread, **bk.message(self.codec, reply)
                )
            else:
                await self._post(to.get("channel") or user, reply, parts)
        except SlackApiError as error:
            failure = _failure(error)
            # The rich reply or its channel was refused: plain words may still reach the person. Not
            # for their App Home, which is a board to look at, not a message.
            failure.try_direct = failure.permanent and not to.get("home")
            raise failure from None
        except aiohttp.ClientError as error:
            raise _unreached(error) from None

    async def _respond(self, url: str, reply: Reply) -> None:
        payload = bk.message(self.codec, reply)
        response = await AsyncWebhookClient(url, timeout=10).send(
            text=payload["text"],
            blocks=payload["blocks"],
            response_type="ephemeral" if reply.private else "in_channel",
            replace_original=False,
        )
        if response.status_code == 429:
            wait = retry_after(response.headers.get("Retry-After"), 1)
            raise SendFailed("response_url answered 429", retry_after=wait)
        if response.status_code >= 500:
            raise SendFailed(f"response_url answered {response.status_code}")
        if response.status_code >= 300:  # expired (30 minutes, 5 uses) or refused
            raise SendFailed(f"response_url answered {response.status_code}", permanent=True, try_direct=True)

    async def _post(self, channel: str, reply: Reply, parts: Parts) -> None:
        """More than 50 blocks come as several messages; a retry goes on after those sent."""
        messages = bk.messages(self.codec, reply)
        for number, message in parts.rest(messages):
            await self.client.chat_postMessage(channel=channel, **message)
            if len(messages) > 1:
                await parts.sent(number)

    async def notify(self, user_id: str, message: Reply, parts: Parts = ONE_GO) -> None:
        try:
            await self._post(user_id, message, parts)
        except SlackApiError as error:
            raise _failure(error) from None
        except aiohttp.ClientError as error:
            raise _unreached(error) from None

    async def post_digest(self, channel: str, digest: Digest, parts: Parts) -> None:
        """The digest's messages, and its chart uploaded right after the first one. The upload is
        a part like each message, so a retry continues after the parts already sent and never
        uploads the chart twice."""
        messages: list[dict | None] = list(render_slack(digest, owner=bk.owner))
        pieces = messages[:1] + ([None] if charted(digest) else []) + messages[1:]  # None: the chart
        for number, message in parts.rest(pieces):
            try:
                if message is None:
                    await self._upload_chart(channel, digest)
                else:
                    await self.client.chat_postMessage(
                        channel=channel, unfurl_links=False, unfurl_media=False, **message
                    )
            except SlackApiError as error:
                raise _failure(error) from None
            except aiohttp.ClientError as error:
                raise _unreached(error) from None
            await parts.sent(number)

    async def _upload_chart(self, channel: str, digest: Digest) -> None:
        """Slack's upload flow (files.getUploadURLExternal, the bytes to its upload URL,
        files.completeUploadExternal into the channel). Refused for good (most often the app lacks
        the files:write scope), the digest goes on without its chart rather than stopping half-posted."""
        png = await asyncio.to_thread(chart_png, digest)  # matplotlib: off the event loop
        if png is None:
            return
        try:
            await self.client.files_upload_v2(
                channel=channel,
                content=png,
                filename=f"frictionlog-digest-{digest.week}.png",
                title=f"Submissions per week, top themes · {digest.week}",
                alt_txt=alt_text(digest)[:1000],
            )
        except SlackRequestError as error:  # the upload URL answered other than 200: try again later
            raise SendFailed(f"Slack's upload URL refused the chart ({error})"[:300]) from None
        except SlackApiError as error:
            failure = _failure(error)
            if not failure.permanent:
                raise failure from None
            log.warning(
                "the digest's chart was not posted to %s: %s (is files:write granted?)", channel, failure.reason
            )

    async def display_name(self, user_id: str) -> str | None:
        """The name Slack shows for a user (users.info, cached for an hour). A digest asks once per
        owner, past users.info's 100 a minute in a large team: a 429 is waited out (Retry-After),
        as the client itself does not, and a throttled read is not cached."""
        cached = self._names.get(user_id)
        if cached and time.monotonic() - cached[0] < NAME_TTL:
            return cached[1]
        for attempt in range(1, NAME_TRIES + 1):
            try:
                response = await self.client.users_info(user=user_id)
            except SlackApiError as error:
                failure = _failure(error)
                if failure.retry_after is not None and attempt < NAME_TRIES:
                    await asyncio.sleep(min(failure.retry_after, MAX_NAME_WAIT))
                    continue
                log.warning("users.info failed (%s); showing the id", failure.reason)
                if failure.permanent:  # no such user: not asked again for an hour
                    self._names[user_id] = (time.monotonic(), None)
                return None
            user = response.get("user") or {}
            profile = user.get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
            self._names[user_id] = (time.monotonic(), name or None)
            return name or None
        return None
