"""A loopback stand-in for the Slack Web API (and response_url webhooks) that records every call.

Fault injection: `fail("chat.postMessage", 429, times=1)` answers the next call(s) of a method
with 429 and `Retry-After: 1`, or with 500 (those calls are recorded); `after=2` lets the two
calls before them through; a word instead of a status (`fail("files.completeUploadExternal",
"missing_scope")`) answers 200 with that error, as Slack refuses a call for good. `hold("chat.postMessage")`
answers every call with 503 until `release`: nothing is posted, and the calls are kept apart in
`refused`, so `calls` is exactly what Slack accepted. `fail(method, DROP)` closes the connection
without an answer (a reset, a load balancer going away). `slow("chat.postMessage", "D-U0", 3)` answers
that method's calls to that channel only after 3 seconds (recorded then, as accepted).

Files go through Slack's upload flow: files.getUploadURLExternal hands out an upload URL on this
server, the bytes POSTed there are kept (`fail("upload", 500)` refuses them), and
files.completeUploadExternal shares them: `shared` lists each file shared, with its channel and bytes.
"""

import asyncio
import json
import time
from collections import defaultdict
from urllib.parse import parse_qsl

from aiohttp import web

DROP = -1  # a fault that answers nothing: the connection is closed


class FakeSlack:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.faults: dict[str, list[int | str | None]] = defaultdict(list)  # None: answer that call normally
        self.held: set[str] = set()
        self.delays: dict[tuple[str, str], float] = {}  # (method, channel): seconds before answering
        self.refused: list[tuple[str, dict]] = []
        self.faulted: list[tuple[str, dict]] = []  # the calls in `calls` a fault answered
        self.usergroups: list[dict] = []
        self.names: dict[str, str] = {}  # users.info display names by user id
        self.url = ""
        self._runner: web.AppRunner | None = None
        # Socket Mode: the websocket the app opened, and the envelope ids it acknowledged.
        self.socket: web.WebSocketResponse | None = None
        self.socket_acks: list[str] = []
        # The upload flow: what each upload URL was promised (files.getUploadURLExternal) and got.
        self.uploads: dict[str, dict] = {}
        self.shared: list[dict] = []  # {"channel", "file_id", "filename", "title", "alt_txt", "content"}

    def fail(self, method: str, status: int | str, times: int = 1, after: int = 0) -> None:
        self.faults[method].extend([None] * after + [status] * times)

    def _fault(self, method: str) -> int | str | None:
        return self.faults[method].pop(0) if self.faults[method] else None

    def hold(self, method: str) -> None:
        self.held.add(method)

    def release(self, method: str) -> None:
        self.held.discard(method)

    def slow(self, method: str, channel: str, seconds: float) -> None:
        self.delays[(method, channel)] = seconds

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{hook}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, hook: str = "hook") -> str:
        return f"{self.url}/respond/{hook}"

    async def _body(self, request: web.Request) -> dict:
        raw = await request.text()
        if request.content_type == "application/json" and raw:
            return json.loads(raw)
        data = dict(parse_qsl(raw)) if raw else {}
        data.update(request.query)
        return data

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await self._body(request)
        if method in self.held:
            self.refused.append((method, body))
            return web.Response(status=503, text="held")
        if delay := self.delays.get((method, body.get("channel", ""))):
            await asyncio.sleep(delay)
        self.calls.append((method, body))
        if status := self._fault(method):
            self.faulted.append((method, body))
            if status == DROP:
                request.transport.close()
                return web.Response()
            if isinstance(status, str):
                return web.json_response({"ok": False, "error": status})
            if status == 429:
                return web.json_response(
                    {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
                )
            return web.Response(status=status, text="server error")
        return web.json_response(self._answer(method, body))

    def _answer(self, method: str, body: dict) -> dict:
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "team": "Acme", "user": "bot"}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            return {"ok": True, "channel": body.get("channel"), "ts": f"{time.time():.6f}", "message_ts": "1.1"}
        if method == "chat.getPermalink":
            return {"ok": True, "permalink": f"https://acme.slack.com/archives/{body.get('channel')}/p1"}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http://", "ws://") + "/socket"}
        if method == "users.info":
            user = body.get("user", "")
            if user not in self.names:
                return {"ok": False, "error": "user_not_found"}
            return {
                "ok": True,
                "user": {"id": user, "name": user.lower(), "profile": {"display_name": self.names[user]}},
            }
        if method == "usergroups.list":
            return {"ok": True, "usergroups": self.usergroups}
        if method in ("views.open", "views.publish"):
            return {"ok": True, "view": {"id": "V-NEW"}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{len(self.uploads) + 1:04d}"
            self.uploads[file_id] = {**body, "content": None}
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/{file_id}"}
        if method == "files.completeUploadExternal":
            return self._complete(body)
        return {"ok": True}

    def _complete(self, body: dict) -> dict:
        files = json.loads(body.get("files") or "[]")
        if not files or any(self.uploads.get(f["id"], {}).get("content") is None for f in files):
            return {"ok": False, "error": "file_not_found"}  # never uploaded, or not this server's
        if not body.get("channel_id"):
            return {"ok": False, "error": "invalid_arguments"}  # frictionlog always shares into a channel
        for f in files:
            upload = self.uploads[f["id"]]
            self.shared.append(
                {
                    "channel": body["channel_id"],
                    "file_id": f["id"],
                    "filename": upload.get("filename"),
                    "title": f.get("title"),
                    "alt_txt": upload.get("alt_txt"),
                    "content": upload["content"],
                }
            )
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        content = await request.read()
        self.calls.append(("upload", {"file_id": file_id, "length": len(content)}))
        if status := self._fault("upload"):
            return web.Response(status=status, text="upload failed")
        upload = self.uploads.get(file_id)
        if upload is None or int(upload.get("length", -1)) != len(content):
            return web.Response(status=400, text="unknown upload, or not the length announced")
        upload["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    async def _respond(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        body["_hook"] = request.match_info["hook"]  # which response_url it was
        self.calls.append(("respond", body))
        status = self._fault("respond") or 200
        return web.Response(status=status, text="ok" if status == 200 else "error")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        self.socket = socket
        async for message in socket:
            if message.type.name == "TEXT":
                self.socket_acks.append(json.loads(message.data).get("envelope_id", ""))
        return socket

    async def push(self, envelope_type: str, payload: dict, envelope_id: str) -> None:
        """Deliver an envelope over Socket Mode, as Slack does, once the app has connected."""
        deadline = time.monotonic() + 10
        while self.socket is None:
            if time.monotonic() > deadline:
                raise AssertionError("the app never opened its Socket Mode connection")
            await asyncio.sleep(0.02)
        await self.socket.send_json(
            {"envelope_id": envelope_id, "type": envelope_type, "accepts_response_payload": False, "payload": payload}
        )

    def of(self, method: str) -> list[dict]:
        return [body for name, body in self.calls if name == method]

    def accepted(self, method: str) -> list[dict]:
        """The calls of `method` no fault answered: what Slack took."""
        return [body for body in self.of(method) if not any(body is f for _, f in self.faulted)]

    async def reply_to(self, hook: str, timeout: float = 10.0) -> dict:
        [reply] = await self.wait_for("respond", timeout=timeout, where=lambda b: b["_hook"] == hook)
        return reply

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0, where=None) -> list[dict]:
        """Bolt acks first and works after: wait for the calls rather than sleeping."""
        deadline = time.monotonic() + timeout
        while True:
            found = [b for b in self.of(method) if where is None or where(b)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} call(s); recorded: {[n for n, _ in self.calls]}")
            await asyncio.sleep(0.02)


class FakeSlackThread:
    """The fake on a loop of its own, for code under test that runs its own event loop (the CLI)."""

    def __init__(self):
        self.fake = FakeSlack()
        self._loop = asyncio.new_event_loop()
        self._thread = None

    def __enter__(self) -> FakeSlack:
        import threading

        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def mrkdwn_objects(node) -> list[dict]:
    """Every mrkdwn text object in a Block Kit structure."""
    if isinstance(node, list):
        return [o for item in node for o in mrkdwn_objects(item)]
    if isinstance(node, dict):
        own = [node] if node.get("type") == "mrkdwn" else []
        return own + [o for value in node.values() for o in mrkdwn_objects(value)]
    return []
