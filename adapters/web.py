"""The one aiohttp server `frictionlog serve` runs: the platforms' routes, the inbound pipeline
and delivery worker, the model warmed before the first message, and the schedule."""

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable

from aiohttp import web

from bot.pipeline import Pipeline
from bot.publish import Target
from bot.router import Router
from bot.service import FrictionService
from storage.db import ping

log = logging.getLogger(__name__)
SLACK = web.AppKey("slack", object)
PIPELINE = web.AppKey("pipeline", Pipeline)


def make_web_app(
    service: FrictionService,
    *,
    schedule: bool = False,
    now: Callable[[], float] = time.time,
    teams_credentials=None,
) -> web.Application:
    """Health check, Slack (when SLACK_BOT_TOKEN is set), the Teams route, the pipeline's
    background work, and with `schedule` (`frictionlog serve`) the weekly digest and
    re-clustering jobs, and stored vectors brought to the configured model once at start-up."""
    settings = service.settings
    app = web.Application()
    router = Router()
    pipeline = Pipeline(service, router)
    app[PIPELINE] = pipeline

    platforms = {
        "slack": ("socket mode" if settings.slack_socket_mode else "http")
        if settings.slack_enabled
        else "not configured",
        "teams": ("http" if settings.microsoft_app_id else "without an app id (development)")
        if settings.teams_enabled
        else "not configured",
    }
    # With no platform a server answers nobody: healthy only while developing.
    serving = any(state != "not configured" for state in platforms.values()) or settings.environment == "development"

    async def healthz(_request: web.Request) -> web.Response:
        # The database call runs in a thread: the event loop never blocks on it.
        database = await asyncio.to_thread(ping, service.engine)
        healthy = database and serving
        body = {"ok": healthy, "database": "up" if database else "down", "platforms": platforms}
        return web.json_response(body, status=200 if healthy else 503)

    app.router.add_get("/healthz", healthz)

    targets: list[Target] = []
    if settings.slack_enabled:
        from adapters.slack.app import SlackAdapter
        from adapters.slack.http import add_slack_routes, add_socket_mode
        from adapters.slack.platform import SlackPlatform
        from adapters.slack.web_api import make_client

        client = make_client(settings)
        router.add(SlackPlatform(client, service.codec))
        slack = SlackAdapter(pipeline, client, socket_mode=settings.slack_socket_mode)
        app[SLACK] = slack
        if settings.slack_socket_mode:
            add_socket_mode(app, slack, settings.slack_app_token)
        else:
            add_slack_routes(app, slack, now)
        targets += [Target("slack", channel) for channel in settings.digest_slack_channel_list]

    if settings.teams_enabled:
        from adapters.teams.bot import TeamsBot
        from adapters.teams.http import add_teams_routes
        from adapters.teams.platform import TeamsPlatform
        from adapters.teams.setup import make_adapter

        adapter = make_adapter(settings, teams_credentials)
        router.add(TeamsPlatform(adapter, settings.microsoft_app_id, service.engine, service.codec))
        add_teams_routes(app, adapter, TeamsBot(pipeline))
    else:

        async def teams(_request: web.Request) -> web.Response:
            return web.json_response({"error": "Teams is not configured (set MICROSOFT_APP_ID)"}, status=501)

        app.router.add_post("/api/messages", teams)

    async def start(_app: web.Application) -> None:
        # The model loads now, not on the first message after a start.
        await asyncio.to_thread(service.theming.embedder.embed, ["warming up"])
        # The model and libraries are hundreds of thousands of objects that live as long as the
        # process: kept out of the collector's full passes, which otherwise stall every request
        # in flight for a third of a second now and then (bench/ingest.py, bursts).
        gc.collect()
        gc.freeze()
        pipeline.start()

    async def stop(_app: web.Application) -> None:
        await pipeline.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    if schedule:
        _add_scheduler(app, service, pipeline, targets)
        _add_catch_up(app, service)
    return app


def _add_catch_up(app: web.Application, service: FrictionService) -> None:
    """After a switch of model, embed stored submissions again once, at start-up (bot/schedule.py).

    In the background, not before serving: over many submissions it takes minutes (about 25 for
    100,000 with mpnet), and a server not answering meanwhile would have Slack and Teams give up
    on their deliveries. The ack never waits for it: it embeds outside any transaction and lock,
    and holds the database only to commit each batch (milliseconds). Until it finishes, new
    reports are stored, acknowledged and confirmed; they cannot join an old theme until its
    centre is made again at the end, so they open themes of their own, which the next
    re-clustering joins to theirs. A daemon thread, not the event loop's executor: when `serve`
    stops it ends after the batch it is on, and while it waits for another replica's run (the
    embedding job lock) it does not hold the process up; an unfinished batch is rolled back."""
    stopping = threading.Event()

    async def start(_app: web.Application) -> None:
        from bot.schedule import catch_up

        threading.Thread(target=catch_up, args=(service, stopping), name="frictionlog-catch-up", daemon=True).start()

    async def stop(_app: web.Application) -> None:
        stopping.set()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)


def _add_scheduler(app: web.Application, service: FrictionService, pipeline: Pipeline, targets: list[Target]) -> None:
    from bot.schedule import make_scheduler

    schedulers = []

    async def start(_app: web.Application) -> None:
        scheduler = make_scheduler(service, pipeline, targets)
        scheduler.start()
        schedulers.append(scheduler)
        for job in scheduler.get_jobs():
            log.info("scheduled %s: next run %s", job.id, job.next_run_time)

    async def stop(_app: web.Application) -> None:
        for scheduler in schedulers:
            scheduler.shutdown(wait=False)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
