"""Scheduled work inside `frictionlog serve`: the weekly digest and periodic re-clustering.

APScheduler runs each job once per process; exactly-once across replicas comes from the claim
in the database (bot/publish.py). Re-clustering in two replicas at once is safe but wasteful:
run the scheduler in one replica (FRICTIONLOG_RECLUSTER_HOURS=0 turns it off elsewhere).
"""

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.platform import ChatPlatform
from bot.publish import post_weekly_digest
from bot.service import FrictionService

log = logging.getLogger(__name__)


def digest_trigger(cron: str, timezone) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=timezone)


async def digest_job(service: FrictionService, targets: list[tuple[ChatPlatform, list[str]]]) -> None:
    for platform, channels in targets:
        if channels:
            outcomes = await post_weekly_digest(service, platform, channels)
            for outcome in outcomes:
                log.info("digest to %s:%s: %s %s", platform.name, outcome.channel, outcome.result, outcome.detail)


async def recluster_job(service: FrictionService) -> None:
    result = await asyncio.to_thread(service.theming.recluster, service.clock())
    log.info("re-clustered: %s submissions in %s themes", result.submissions, result.themes)


def make_scheduler(service: FrictionService, targets: list[tuple[ChatPlatform, list[str]]]) -> AsyncIOScheduler:
    """A scheduler with the digest (a cron in FRICTIONLOG_TIMEZONE) and re-clustering (an interval)."""
    settings = service.settings
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    if any(channels for _platform, channels in targets):
        scheduler.add_job(
            digest_job,
            digest_trigger(settings.digest_cron, settings.zone),
            args=(service, targets),
            id="weekly-digest",
            coalesce=True,
            misfire_grace_time=3600,
            max_instances=1,
        )
    if settings.recluster_hours > 0:
        scheduler.add_job(
            recluster_job,
            IntervalTrigger(hours=settings.recluster_hours, timezone=settings.zone),
            args=(service,),
            id="recluster",
            coalesce=True,
            max_instances=1,
        )
    return scheduler
