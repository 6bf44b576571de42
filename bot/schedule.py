"""Scheduled work inside `frictionlog serve`: the weekly digest, periodic re-clustering, and
the chase of owners' deadlines (every CHASE_MINUTES; bot/deadlines.py claims each reminder and
escalation in the database, so every replica may chase).

APScheduler runs each job once per process; exactly-once across replicas comes from the claim
in the database (bot/publish.py), and the outbox sends what was queued. Re-clustering in two
replicas at once is safe but wasteful: run it in one (FRICTIONLOG_RECLUSTER_HOURS=0 elsewhere).
"""

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.deadlines import chase
from bot.pipeline import Pipeline
from bot.publish import Target, owner_names, queue_weekly_digest, targets_now
from bot.service import FrictionService

log = logging.getLogger(__name__)
CHASE_MINUTES = 5


def digest_trigger(cron: str, timezone) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=timezone)


async def digest_job(service: FrictionService, pipeline: Pipeline, configured: list[Target]) -> None:
    """The configured targets and those leads added in chat (`digest here`), each once a week."""
    targets = await asyncio.to_thread(targets_now, service, configured)
    names = await owner_names(service, pipeline.router)
    for queued in await asyncio.to_thread(queue_weekly_digest, service, targets, None, names):
        log.info("digest to %s: %s", queued.target, queued.result)
    pipeline.wake()


async def recluster_job(service: FrictionService) -> None:
    result = await asyncio.to_thread(service.theming.recluster, service.clock())
    log.info("re-clustered: %s submissions in %s themes", result.submissions, result.themes)


async def chase_job(service: FrictionService, pipeline: Pipeline) -> None:
    """Remind owners of missed deadlines and escalate to the leads on the platforms served here."""
    names = await owner_names(service, pipeline.router)
    chased = await asyncio.to_thread(chase, service, platforms=pipeline.router.names, names=names)
    if chased.reminders or chased.escalations:
        log.info("chased: %s reminders, %s escalations", len(chased.reminders), len(chased.escalations))
        pipeline.wake()


def make_scheduler(service: FrictionService, pipeline: Pipeline, targets: list[Target]) -> AsyncIOScheduler:
    """A scheduler with the digest (a cron in FRICTIONLOG_TIMEZONE) and re-clustering (an interval)."""
    settings = service.settings
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    # Always scheduled: leads may add targets in chat at any time; the job reads them when it fires.
    scheduler.add_job(
        digest_job,
        digest_trigger(settings.digest_cron, settings.zone),
        args=(service, pipeline, targets),
        id="weekly-digest",
        coalesce=True,
        misfire_grace_time=3600,
        max_instances=1,
    )
    scheduler.add_job(
        chase_job,
        IntervalTrigger(minutes=CHASE_MINUTES, timezone=settings.zone),
        args=(service, pipeline),
        id="chase-deadlines",
        coalesce=True,
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
