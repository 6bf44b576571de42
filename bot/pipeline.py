"""The inbound pipeline and the delivery worker, running inside `frictionlog serve`.

An adapter calls `receive` after verifying a request and before answering the platform: it
returns once the event is stored (or raises NotStored, and the adapter answers non-2xx so the
platform redelivers). Running the event, and sending what it produced, happen after the ack in
background tasks here. A loop also takes up deliveries whose process died after the ack, and
sends outbox messages that are due (new ones, retries, ones whose sender died mid-send).
"""

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.messages import Inbound
from bot.outbox import Outbox
from bot.people import Person
from bot.router import Router
from bot.seen_by_leadership import hook
from bot.service import Accepted, FrictionService

log = logging.getLogger(__name__)
BATCH = 64  # deliveries run together: their submissions are embedded in one model call
# The ack has a deadline, running does not: while events are being stored, running waits, at most
# this long, so a burst is acknowledged first and then embedded as one batch.
YIELD_TO_ACKS = 0.2
NAMES_TIMEOUT = 10.0  # a platform slow to name people: the core shows them by id instead


def delivery_worker(service: FrictionService, router: Router, **options) -> Outbox:
    """The outbox worker as the service is configured: its DM budget, day and clock, and the
    "seen by leadership" notes once a digest went out."""
    settings = service.settings
    return Outbox(
        service.engine,
        router,
        service.sealer,
        **{
            "lease": settings.claim_seconds,
            "budget": settings.dm_budget,
            "zone": settings.zone,
            "clock": service.clock,
            "on_digest_sent": hook(service),
            **options,
        },
    )


class NotStored(Exception):
    """The event could not be stored in time: the platform must get a non-2xx and redeliver."""


class Pipeline:
    def __init__(self, service: FrictionService, router: Router, *, poll: float = 1.0, own_platforms_only=False):
        self.service = service
        self.router = router
        self.outbox = delivery_worker(service, router, platforms=router.names if own_platforms_only else None)
        self.poll = poll
        # The ack path has threads of its own: storing never waits behind embedding or sending.
        self._accepting = ThreadPoolExecutor(16, thread_name_prefix="frictionlog-accept")
        # Deliveries run one batch at a time (the theme lock serialises placement anyway).
        self._running = ThreadPoolExecutor(1, thread_name_prefix="frictionlog-run")
        self._ready: list[int] = []
        self._storing = 0  # events being stored right now
        self._runner: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None  # the one the router's clients run on
        service.display_names = self.display_names

    async def receive(self, event: Inbound) -> Accepted:
        """Store the event (de-duplicated in the database), then run it in the background."""
        timeout = self.service.settings.accept_timeout
        loop = asyncio.get_running_loop()
        self._storing += 1
        try:
            accepted = await asyncio.wait_for(
                loop.run_in_executor(self._accepting, self.service.accept, event), timeout
            )
        except TimeoutError:
            # The store may still finish: the platform's redelivery then meets it as a duplicate,
            # and the loop runs it once its claim runs out. Nothing is acknowledged unstored.
            log.warning(
                "storing a %s event took over %.1f s; asking %s to redeliver", event.kind, timeout, event.platform
            )
            raise NotStored("storing took too long") from None
        except Exception as error:
            log.warning(
                "cannot store a %s event (%s); asking %s to redeliver", event.kind, type(error).__name__, event.platform
            )
            raise NotStored(type(error).__name__) from None
        finally:
            self._storing -= 1
        if not accepted.duplicate:
            self._run_later([accepted.delivery])
        return accepted

    def _run_later(self, delivery_ids: list[int]) -> None:
        self._ready += delivery_ids
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run_ready())

    def display_names(self, people: list[Person]) -> Mapping[Person, str]:
        """Names from the platforms, for the core running in a worker thread: the router's clients
        live on the event loop, so the lookup runs there. Empty (people shown by id) when called
        on the loop itself, which would wait for itself, or when the platforms take too long."""
        loop = self._event_loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            return {}
        future = asyncio.run_coroutine_threadsafe(self.router.display_names(people), loop)
        try:
            return future.result(NAMES_TIMEOUT)
        except Exception as error:
            future.cancel()
            log.warning("no display names from the platforms (%s); showing ids", type(error).__name__)
            return {}

    async def _run_ready(self) -> None:
        loop = asyncio.get_running_loop()
        self._event_loop = loop
        while self._ready:
            waited = 0.0
            while self._storing and waited < YIELD_TO_ACKS:
                await asyncio.sleep(0.005)
                waited += 0.005
            batch, self._ready = self._ready[:BATCH], self._ready[BATCH:]
            try:
                await loop.run_in_executor(self._running, self.service.process_many, batch)
            except Exception:
                log.exception("running %s deliveries failed; their claims run out and they are run again", len(batch))
            self._wake.set()  # their messages are in the outbox

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> None:
        """Take up deliveries left by dead processes, and send what is due."""
        taken = await asyncio.to_thread(self.service.unclaimed)
        if taken:
            self._run_later(taken)
        while await self.outbox.send_due():
            pass

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:
                log.exception("the delivery loop failed; trying again")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except TimeoutError:
                pass

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            # Until the cancelled pass has marked what it sent (Outbox.send_due): the process must
            # not end before, or a restart sends those messages again.
            await asyncio.wait([self._loop_task], timeout=10)
        if self._runner is not None and not self._runner.done():
            await asyncio.wait([self._runner], timeout=10)
        self._accepting.shutdown(wait=False)
        self._running.shutdown(wait=False)

    async def drain(self, timeout: float = 30.0) -> None:
        """Until every received delivery has run and nothing is due (the console; tests)."""

        async def settle() -> None:
            while True:
                if self._runner is not None and not self._runner.done():
                    await self._runner
                await self.run_once()
                if not self._ready and (self._runner is None or self._runner.done()):
                    return

        await asyncio.wait_for(settle(), timeout)
