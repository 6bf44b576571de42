"""A real HTTP server on 127.0.0.1, port 0, in a thread: stands in for a remote API and
records every request it gets."""

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[["Recorded"], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class LoopbackServer:
    routes: dict[str, Handler]
    calls: list[Recorded] = field(default_factory=list)

    def __enter__(self) -> "LoopbackServer":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def dispatch(request: web.Request) -> web.StreamResponse:
            recorded = Recorded(request.method, request.path, dict(request.headers), await request.read())
            self.calls.append(recorded)
            handler = self.routes.get(request.path)
            if handler is None:
                return web.json_response({"error": f"no route {request.path}"}, status=404)
            return await handler(recorded)

        async def start() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", dispatch)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = self._runner.addresses[0][1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app (frictionlog's own) on 127.0.0.1, port 0, in the running loop; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
