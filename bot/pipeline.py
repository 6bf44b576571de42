"""The inbound pipeline and the delivery worker, running inside `frictionlog serve`.

An adapter calls `receive` after verifying a request and before answering the platform: it
returns once the event is stored (or raises NotStored, and the adapter answers non-2xx so the
platform redelivers). Running the event, and sending what it produced, happen after the ack in
background tasks here. A loop also takes up deliveries whose process died after the ack, and
sends outbox messages that are due (new ones, retries, ones whose sender died mid-send).
"""

import asyncio
import logging

from bot.messages import Inbound
from bot.outbox import Outbox
from bot.router import Router
from bot.service import Accepted, FrictionService

log = logging.getLogger(__name__)


class NotStored(Exception):
    """The event could not be stored in time: the platform must get a non-2xx and redeliver."""


class Pipeline:
    def __init__(self, service: FrictionService, router: Router, *, poll: float = 1.0, own_platforms_only=False):
        self.service = service
        self.router = router
        self.outbox = Outbox(
            service.engine,
            router,
            service.sealer,
            lease=service.settings.claim_seconds,
            platforms=router.names if own_platforms_only else None,
        )
        self.poll = poll
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None

    async def receive(self, event: Inbound) -> Accepted:
        """Store the event (de-duplicated in the database), then run it in the background."""
        timeout = self.service.settings.accept_timeout
        try:
            accepted = await asyncio.wait_for(asyncio.to_thread(self.service.accept, event), timeout)
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
        if not accepted.duplicate:
            self._spawn(self._process(accepted.delivery))
        return accepted

    def _spawn(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, delivery_id: int) -> None:
        await asyncio.to_thread(self.service.process, delivery_id)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> None:
        """Take up deliveries left by dead processes, and send what is due."""
        for delivery_id in await asyncio.to_thread(self.service.unclaimed):
            self._spawn(self._process(delivery_id))
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
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def drain(self, timeout: float = 30.0) -> None:
        """Until every task here is done and nothing is due (the console; tests)."""

        async def settle():
            while True:
                if self._tasks:
                    await asyncio.wait(self._tasks)
                await self.run_once()
                if not self._tasks:
                    return

        await asyncio.wait_for(settle(), timeout)
