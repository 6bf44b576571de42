"""Slack on the one aiohttp server: `POST /slack/events` over HTTP, or Socket Mode.

Verification happens here, before Bolt: the timestamp must be plain ASCII digits within five
minutes (slack-bolt 1.30.0 answers 500 to `²` or `①`, which `str.isdigit` accepts but `int`
does not), and the signature must match, computed over the raw bytes (slack_sdk's verifier
raises, rather than refusing, on a body that is not UTF-8 or a signature that is not ASCII). A
refused request is a 401, nothing runs, and its body is never logged (Bolt's own check logs it at
INFO). Bolt verifies again behind this. A signed body Bolt cannot read (JSON, or a `payload` form
field, that is not an object) is a 400, not Bolt's 500.
"""

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body

from adapters.slack.app import SlackAdapter

log = logging.getLogger(__name__)
MAX_SKEW = 300
TIMESTAMP = re.compile(r"[0-9]{1,12}")


def timestamp_ok(header: str | None, now: float) -> bool:
    value = (header or "").strip()
    return TIMESTAMP.fullmatch(value) is not None and abs(now - int(value)) <= MAX_SKEW


def signed(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Slack's v0 signature of `v0:{timestamp}:{body}`, compared in constant time; any bytes compare."""
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def readable(body: bytes, content_type: str | None) -> str | None:
    """The body as text when Bolt can read it: UTF-8 (as Slack sends it, whatever the charset says)
    whose JSON, or `payload` form field, is an object. Bolt answers 500 to anything else."""
    try:
        text = body.decode("utf-8")
        parsed = parse_body(text, content_type)
    except (ValueError, RecursionError):
        return None
    return text if isinstance(parsed, dict) else None


def add_slack_routes(app: web.Application, adapter: SlackAdapter, now: Callable[[], float] = time.time) -> None:
    secret = adapter.settings.slack_signing_secret

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp_ok(timestamp, now()) or not signed(secret, body, timestamp, signature):
            log.warning("refused a Slack request with a bad or stale signature")
            return web.json_response({"error": "invalid request"}, status=401)
        text = readable(body, request.headers.get("Content-Type", "").split(";")[0] or None)  # as Bolt reads it
        if text is None:
            return web.json_response({"error": "not a JSON object"}, status=400)
        bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)
        response = await adapter.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    app.router.add_post("/slack/events", events)


def add_socket_mode(app: web.Application, adapter: SlackAdapter, app_token: str) -> None:
    """Slack over a websocket the app opens itself: no public URL, no signatures."""

    handlers = []

    async def start(_app: web.Application) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
        from slack_sdk.web.async_client import AsyncWebClient

        # apps.connections.open goes to the same Web API base URL as everything else.
        opener = AsyncWebClient(base_url=adapter.client.base_url)
        handler = AsyncSocketModeHandler(adapter.bolt, app_token, web_client=opener)
        await handler.connect_async()
        handlers.append(handler)

    async def stop(_app: web.Application) -> None:
        for handler in handlers:
            await handler.close_async()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
