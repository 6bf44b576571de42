"""Posting the weekly digest exactly once per (channel, ISO week), however many replicas run.

Each channel is claimed in the database before posting (storage.queries.claim_digest). If the
process dies between claim and post, the claim stays unposted; a run more than CLAIM_TIMEOUT
later takes it over and posts. A failed post gives its claim back at once, so the next run
(the scheduler's next firing or `frictionlog digest --post`) retries. The one gap left: a process
that dies after Slack accepted the post but before the claim is marked posted can, after
CLAIM_TIMEOUT, lead to a second post of that digest. A second copy is better than none.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.platform import ChatPlatform
from bot.service import FrictionService
from digests.compose import compose_digest
from digests.digest import Digest, IsoWeek
from storage import queries
from storage.db import session_scope

log = logging.getLogger(__name__)
CLAIM_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class PostOutcome:
    channel: str
    result: str  # "posted", "already posted", "failed"
    detail: str = ""


def compose_for(service: FrictionService, week: IsoWeek | None = None) -> Digest:
    settings = service.settings
    return compose_digest(
        service.engine, zone=settings.zone, now=service.clock(), week=week, ack_hours=settings.ack_hours
    )


def claim(service: FrictionService, target: str, period: str) -> bool:
    now = service.clock()
    with session_scope(service.engine) as session:
        return queries.claim_digest(session, target=target, period=period, at=now, stale_before=now - CLAIM_TIMEOUT)


def finish(service: FrictionService, target: str, period: str) -> None:
    with session_scope(service.engine) as session:
        queries.finish_digest(session, target=target, period=period, at=service.clock())


def release(service: FrictionService, target: str, period: str) -> None:
    with session_scope(service.engine) as session:
        queries.release_digest(session, target=target, period=period)


async def post_weekly_digest(
    service: FrictionService, platform: ChatPlatform, channels: list[str], week: IsoWeek | None = None
) -> list[PostOutcome]:
    """Compose the digest (the last complete week by default) and post it to each channel once."""
    digest = await asyncio.to_thread(compose_for, service, week)
    period = str(digest.week)
    outcomes = []
    for channel in channels:
        target = f"{platform.name}:{channel}"
        if not await asyncio.to_thread(claim, service, target, period):
            outcomes.append(PostOutcome(channel, "already posted"))
            continue
        try:
            await platform.post_digest(channel, digest)
        except Exception as error:
            log.exception("posting the %s digest to %s failed; the claim is released", period, target)
            await asyncio.to_thread(release, service, target, period)
            outcomes.append(PostOutcome(channel, "failed", _sentence(error)))
            continue
        await asyncio.to_thread(finish, service, target, period)
        outcomes.append(PostOutcome(channel, "posted"))
    return outcomes


def _sentence(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]
