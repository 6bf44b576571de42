"""Slack on the one aiohttp server: `POST /slack/events` over HTTP, or Socket Mode.

The timestamp header is checked before Bolt: slack-bolt 1.30.0 answers 500 when it is not a
number. Anything missing, malformed or more than five minutes away is a 401, and nothing runs.
"""

import logging
import time
from collections.abc import Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from adapters.slack.app import SlackAdapter

log = logging.getLogger(__name__)
MAX_SKEW = 300


def timestamp_ok(header: str | None, now: float) -> bool:
    value = (header or "").strip()
    return value.isdigit() and abs(now - int(value)) <= MAX_SKEW


def add_slack_routes(app: web.Application, adapter: SlackAdapter, now: Callable[[], float] = time.time) -> None:
    async def events(request: web.Request) -> web.Response:
        if not timestamp_ok(request.headers.get("X-Slack-Request-Timestamp"), now()):
            return web.json_response({"error": "invalid request"}, status=401)
        response = await adapter.bolt.async_dispatch(await to_bolt_request(request))
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
