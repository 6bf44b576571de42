"""Scheduled work inside `frictionlog serve`: the weekly digest, periodic re-clustering, and
the chase of owners' deadlines (every CHASE_MINUTES; bot/deadlines.py claims each reminder and
escalation in the database, so every replica may chase).

APScheduler runs each job once per process; exactly-once across replicas comes from the claim
in the database (bot/publish.py), and the outbox sends what was queued. The digest job does not
follow any one target's cron: every minute, and once at start-up, it asks which targets' digests
are due (each has its own schedule), which also posts what was missed while no server ran. Re-clustering in two
replicas is safe (one at a time: the embedding job lock) but wasteful: run it in one (FRICTIONLOG_RECLUSTER_HOURS=0
elsewhere). Once at start-up, `catch_up` brings stored vectors to this process's model after a switch.
"""

import asyncio
import logging
import threading
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.deadlines import chase
from bot.pipeline import Pipeline
from bot.publish import Queued, Target, owner_names, queue_digests
from bot.service import FrictionService
from bot.targets import due_digests
from digests.theming import CatchUp, Progress

log = logging.getLogger(__name__)
CHASE_MINUTES = 5


async def digest_job(service: FrictionService, pipeline: Pipeline, configured: list[Target]) -> list[Queued]:
    """Queue the digests due now, for the configured targets and those leads added in chat
    (`digest here`), each on its own schedule (bot/targets.py). Owners' names are
    asked of the platforms only when something is due."""
    due = await asyncio.to_thread(due_digests, service, configured)
    if not due:
        return []
    names = await owner_names(service, pipeline.router)
    queued = await asyncio.to_thread(queue_digests, service, due, names)
    for item in queued:
        log.info("digest %s to %s: %s", item.week, item.target, item.result)
    pipeline.wake()
    return queued


def other_model_warning(service: FrictionService, newer_model: str) -> str:
    return (
        f"stored vectors are {newer_model}'s, chosen by a process started after this one; this one embeds with "
        f"{service.theming.embedder.name} and leaves them and re-clustering alone. Restart it with the "
        "FRICTIONLOG_EMBEDDING_MODEL (or FRICTIONLOG_EMBEDDINGS) every replica should use"
    )


async def recluster_job(service: FrictionService) -> None:
    result = await asyncio.to_thread(service.theming.recluster, service.clock())
    if result.newer_model:
        log.warning("re-clustering skipped: %s", other_model_warning(service, result.newer_model))
        return
    if result.embedded_again:
        log.info("embedded %s stored submissions again with %s", result.embedded_again, service.theming.embedder.name)
    log.info("re-clustered: %s submissions in %s themes", result.submissions, result.themes)


class Stopped(Exception):
    """`serve` is stopping: the start-up catch-up ends after the batch it committed."""


def logged_progress(name: str, stopping: threading.Event) -> Progress:
    """Progress as log lines (a bar is for terminals): a stage's start, each tenth and its end.
    Called after each committed batch, it is also where a stopping server stops the work."""
    shown: dict[str, int] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stopping.is_set():
            raise Stopped
        tenth = 10 * done // total if total else 10
        if shown.get(stage) != tenth:
            shown[stage] = tenth
            log.info("%s with %s: %s of %s (%s%%)", stage, name, done, total, 100 * done // total if total else 100)

    return report


def catch_up(service: FrictionService, stopping: threading.Event) -> CatchUp | None:
    """Once at start-up (a thread of its own, see adapters/web.py): bring stored vectors to this
    process's model after FRICTIONLOG_EMBEDDING_MODEL (or FRICTIONLOG_EMBEDDINGS) changed, and the
    themes' centres with them, logging progress. Without a switch it finds nothing to do at once."""
    name = service.theming.embedder.name
    try:
        result = service.theming.catch_up(logged_progress(name, stopping))
    except Stopped:
        log.info("stopping: embedding again with %s goes on at the next start or re-clustering", name)
        return None
    except Exception:
        log.exception("bringing stored vectors to %s failed; the next re-clustering tries again", name)
        return None
    if result.newer_model:
        log.warning("%s", other_model_warning(service, result.newer_model))
    elif result.embedded_again or result.centres:
        log.info(
            "stored vectors are %s's now: %s submissions embedded again, %s theme centres made again",
            name,
            result.embedded_again,
            result.centres,
        )
    return result


async def chase_job(service: FrictionService, pipeline: Pipeline) -> None:
    """Remind owners of missed deadlines and escalate to the leads on the platforms served here."""
    names = await owner_names(service, pipeline.router)
    chased = await asyncio.to_thread(chase, service, platforms=pipeline.router.names, names=names)
    if chased.reminders or chased.escalations:
        log.info("chased: %s reminders, %s escalations", len(chased.reminders), len(chased.escalations))
        pipeline.wake()


def make_scheduler(service: FrictionService, pipeline: Pipeline, targets: list[Target]) -> AsyncIOScheduler:
    """A scheduler with the digest check (every minute, and at once) and re-clustering (an interval)."""
    settings = service.settings
    scheduler = AsyncIOScheduler(timezone=settings.zone)
    # Always scheduled: leads may add targets in chat at any time; the job reads them when it runs.
    # A tick missed (a busy loop) is harmless: the next one finds the same digests due.
    scheduler.add_job(
        digest_job,
        CronTrigger(minute="*", timezone=settings.zone),
        args=(service, pipeline, targets),
        id="weekly-digest",
        next_run_time=datetime.now(settings.zone),
        coalesce=True,
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
