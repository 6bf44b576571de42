"""The one aiohttp server `frictionlog serve` runs; platforms add their routes here."""

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web

from bot.service import FrictionService
from storage.db import ping

log = logging.getLogger(__name__)
SLACK = web.AppKey("slack", object)


def make_web_app(
    service: FrictionService,
    *,
    schedule: bool = False,
    now: Callable[[], float] = time.time,
) -> web.Application:
    """Health check, Slack (when SLACK_BOT_TOKEN is set), the Teams route, and with `schedule`
    the weekly digest and re-clustering jobs."""
    settings = service.settings
    app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        # The database call runs in a thread: the event loop never blocks on it.
        healthy = await asyncio.to_thread(ping, service.engine)
        return web.json_response(
            {"ok": healthy, "database": "up" if healthy else "down"}, status=200 if healthy else 503
        )

    async def teams(_request: web.Request) -> web.Response:
        return web.json_response({"error": "Teams is not configured"}, status=501)

    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/messages", teams)

    targets = []
    if settings.slack_enabled:
        from adapters.slack.app import SlackAdapter
        from adapters.slack.http import add_slack_routes, add_socket_mode
        from adapters.slack.web_api import make_client

        slack = SlackAdapter(service, make_client(settings), socket_mode=settings.slack_socket_mode)
        app[SLACK] = slack
        if settings.slack_socket_mode:
            add_socket_mode(app, slack, settings.slack_app_token)
        else:
            add_slack_routes(app, slack, now)
        targets.append((slack.platform, settings.digest_slack_channel_list))
    if schedule:
        _add_scheduler(app, service, targets)
    return app


def _add_scheduler(app: web.Application, service: FrictionService, targets) -> None:
    from bot.schedule import make_scheduler

    schedulers = []

    async def start(_app: web.Application) -> None:
        scheduler = make_scheduler(service, targets)
        scheduler.start()
        schedulers.append(scheduler)
        for job in scheduler.get_jobs():
            log.info("scheduled %s: next run %s", job.id, job.next_run_time)

    async def stop(_app: web.Application) -> None:
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
