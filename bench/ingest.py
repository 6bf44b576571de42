"""How fast `frictionlog serve` acknowledges Slack events, next to a bare slack-bolt app doing nothing.

Everything stays on 127.0.0.1. For each target, in one run:

1. a fresh in-process fake of the Slack Web API (tests/fake_slack.FakeSlack) that notes, for each
   `chat.postMessage`, its channel and monotonic arrival time;
2. the server as a subprocess: a bare Bolt app (this file in `--bare-bolt-server` mode: AsyncApp on
   aiohttp, a `message` listener that returns at once), then `frictionlog serve` on a fresh SQLite
   file, then on a fresh PostgreSQL schema (dropped afterwards);
3. a warm-up (not measured), then two loads of signed Events API deliveries, each a DM `message`
   event from its own user in its own channel `D-…`:
   - bursts: B bursts of C deliveries sent at the same instant (a peak), each after the last was
     confirmed: what a person waits at 50 concurrent requests;
   - sustained: N deliveries in a closed loop keeping C in flight: the server's saturation point,
     where acks queue behind its capacity (p50 ≈ C / throughput);
4. per request the ack latency (sent until the HTTP response is read), non-2xx answers, throughput,
   and for `serve` the time until the fake receives the `chat.postMessage` to the sender's DM
   channel (the confirmation), waited for with a bound.

    python bench/ingest.py [--bursts 10] [--requests 500] [--concurrency 50] [--embeddings local|hashing]
                           [--skip-postgres]
"""

import argparse
import asyncio
import atexit
import csv
import hashlib
import hmac
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLINC_TEST = ROOT.parent / "shared" / "data" / "clinc150" / "test.csv"
TOKEN = "xoxb-bench"
POSTGRES_URL = os.environ.get("FRICTIONLOG_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUEST_TIMEOUT = 30.0  # seconds, per HTTP request
STOP_TIMEOUT = 15.0  # seconds a server gets to exit after SIGTERM before it is killed
_children: list[subprocess.Popen] = []  # every server started, stopped again at exit whatever happens


# The bare Bolt server (a subprocess) -----------------------------------------------------------


def bare_bolt_server(port: int, api_url: str) -> None:
    """A slack-bolt app that does nothing, on aiohttp, served like `serve` serves Slack."""
    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    # auth.test (on the first request) goes to the loopback fake, like everything else.
    client = AsyncWebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=api_url)
    bolt = AsyncApp(signing_secret=os.environ["SLACK_SIGNING_SECRET"], client=client, process_before_response=False)

    @bolt.event("message")
    async def on_message() -> None:
        return None

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


# Load ------------------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_escape(text: str) -> str:
    """Slack sends &, < and > typed by people as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def envelope(user: str, text: str, event_id: str) -> dict:
    """An Events API `event_callback` with a DM `message` event, shaped as Slack sends it."""
    ts = f"{time.time():.6f}"
    return {
        "token": "legacy-token",
        "team_id": "T1",
        "api_app_id": "A1",
        "event": {
            "type": "message",
            "channel": f"D-{user}",
            "channel_type": "im",
            "user": user,
            "text": slack_escape(text),
            "ts": ts,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
            "team": "T1",
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


SUBJECTS = [
    "refunds over $50",
    "the new returns form",
    "password resets",
    "the loyalty points page",
    "evening phone queues",
    "address changes",
    "warranty claims",
    "the billing portal",
    "international orders",
    "gift card balances",
    "the chat widget",
    "delivery slot changes",
]
PROBLEMS = [
    "need supervisor approval and it takes days",
    "time out before the customer can finish",
    "send customers to the wrong team",
    "show a different price than the checkout",
    "cannot be done without a callback",
    "fail for customers with long names",
    "take three systems and twenty minutes",
    "keep getting escalated for no reason",
]
ENDINGS = [
    "",
    " customers are furious",
    " it happened four times today",
    " we lose sales over it",
    " and the macro for it is out of date",
    " #billing",
    " please fix",
]


def texts(count: int, seed: int) -> tuple[list[str], str]:
    """Varied, realistic message texts: CLINC150's test requests when present, else synthetic sentences."""
    rng = random.Random(seed)
    if CLINC_TEST.exists():
        with open(CLINC_TEST, newline="", encoding="utf-8") as handle:
            pool = [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]
        source = f"CLINC150 test requests ({CLINC_TEST})"
    else:
        pool = [f"{s} {p}{e}" for s in SUBJECTS for p in PROBLEMS for e in ENDINGS]
        source = "synthetic sentences (CLINC150 not found)"
    rng.shuffle(pool)
    return [pool[i % len(pool)] for i in range(count)], source


@dataclass
class Job:
    user: str
    text: str
    event_id: str
    sent: float = 0.0
    acked: float = 0.0
    status: int | None = None
    error: str = ""

    @property
    def channel(self) -> str:
        return f"D-{self.user}"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


async def send_all(session, url: str, secret: str, jobs: list[Job], concurrency: int, timeout: float) -> float:
    """Send every job, `concurrency` at a time; the latency clock starts when a request goes out, not
    while it waits for a slot. Returns the wall time from the first send to the last response."""
    import aiohttp

    gate = asyncio.Semaphore(concurrency)

    async def one(job: Job) -> None:
        async with gate:
            body = json.dumps(envelope(job.user, job.text, job.event_id)).encode()
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": timestamp,
                "X-Slack-Signature": sign(secret, timestamp, body),
            }
            job.sent = time.monotonic()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    job.status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                job.error = type(error).__name__
            job.acked = time.monotonic()

    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(job) for job in jobs))
    except TimeoutError:
        for job in jobs:
            if job.status is None and not job.error:
                job.error, job.sent, job.acked = "load timeout", job.sent or started, time.monotonic()
    return max((job.acked for job in jobs), default=started) - min((job.sent for job in jobs), default=started)


# Servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(command: list[str], env: dict[str, str], folder: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = folder / f"{name}.log"
    with open(log, "wb") as out:  # the child keeps its own descriptor; a file never fills up like a pipe
        process = subprocess.Popen(
            command,
            env=env,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only this process, which stops the server itself
        )
    _children.append(process)
    return process, log


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)
    if process in _children:
        _children.remove(process)


@atexit.register
def _stop_children() -> None:
    for process in list(_children):
        stop_server(process)


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def wait_healthy(session, base: str, process: subprocess.Popen, log: Path, timeout: float) -> float:
    import aiohttp

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}:\n{log_tail(log)}")
        try:
            async with session.get(f"{base}/healthz", timeout=aiohttp.ClientTimeout(total=5)) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.25)
    raise RuntimeError(f"GET /healthz did not answer 200 within {timeout:.0f} s:\n{log_tail(log)}")


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without anything that configures frictionlog, Slack or a model endpoint,
    plus `extra`; the servers run in a temp dir, so no `.env` file is read either."""
    drop = ("FRICTIONLOG_", "SLACK_", "OPENAI_", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)
    return env


def serve_command(port: int) -> list[str]:
    script = Path(sys.executable).parent / "frictionlog"
    head = [str(script)] if script.exists() else [sys.executable, "-c", "from adapters.cli import app; app()"]
    return [*head, "serve", "--host", "127.0.0.1", "--port", str(port)]


def postgres_admin_url() -> str:
    return POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(postgres_admin_url(), connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except Exception as error:  # not installed, refused, auth: one reason, printed
        return f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(error).__name__}: {str(error).strip()[:120]})"
    return None


def postgres_schema(action: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(postgres_admin_url(), connect_timeout=5, autocommit=True) as connection:
        connection.execute(f'{action} SCHEMA "{schema}"' + (" CASCADE" if action == "DROP" else ""))


# One target ------------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    kind: str  # "bare" or "serve"
    database: str = ""  # for serve: "sqlite" or "postgres"


@dataclass
class Load:
    """One kind of load on one target: its requests and what came back."""

    name: str
    jobs: list[Job] = field(default_factory=list)
    wall: float = 0.0  # summed over the bursts, or the closed loop's whole time
    confirmed: dict[str, float] = field(default_factory=dict)  # channel -> seconds from send to postMessage
    logged: int = 0  # confirmations that say "Logged as"


@dataclass
class Outcome:
    target: Target
    loads: list[Load] = field(default_factory=list)
    startup: float = 0.0
    notes: list[str] = field(default_factory=list)


def make_fake():
    from tests.fake_slack import FakeSlack

    class RecordingSlack(FakeSlack):
        """FakeSlack that also notes each chat.postMessage's channel, arrival time and text."""

        def __init__(self):
            super().__init__()
            self.posts: list[tuple[str, float, str]] = []  # (channel, arrival, text) of every chat.postMessage
            self.posted: dict[str, tuple[float, str]] = {}  # the first one per channel

        def _answer(self, method: str, body: dict) -> dict:
            if method == "chat.postMessage":
                post = (str(body.get("channel")), time.monotonic(), str(body.get("text", "")))
                self.posts.append(post)
                self.posted.setdefault(post[0], post[1:])
            return super()._answer(method, body)

    return RecordingSlack()


async def wait_confirmations(fake, jobs: list[Job], process: subprocess.Popen, timeout: float) -> bool:
    """Wait until every acknowledged job's DM channel got a chat.postMessage, at most `timeout` s."""
    wanted = {job.channel for job in jobs if job.ok}
    deadline = time.monotonic() + timeout
    while not wanted <= fake.posted.keys():
        if time.monotonic() > deadline or process.poll() is not None:
            return False
        await asyncio.sleep(0.05)
    return True


async def run_target(target: Target, args, corpus: list[str], folder: Path) -> Outcome:
    import aiohttp

    outcome = Outcome(target)
    secret = secrets.token_hex(16)
    fake = await make_fake().start()
    schema = ""
    process = None
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": secret, "SLACK_API_URL": fake.api_url}
        if target.kind == "bare":
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--bare-bolt-server",
                str(port),
                "--api-url",
                fake.api_url,
            ]
        else:
            if target.database == "postgres":
                schema = f"bench_{uuid.uuid4().hex[:12]}"
                postgres_schema("CREATE", schema)
                separator = "&" if "?" in POSTGRES_URL else "?"
                url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
            else:
                url = f"sqlite:///{folder / (target.database + '-' + uuid.uuid4().hex[:8] + '.db')}"
            env.update(DATABASE_URL=url, FRICTIONLOG_EMBEDDINGS=args.embeddings, FRICTIONLOG_RECLUSTER_HOURS="0")
            command = serve_command(port)
        process, log = start_server(command, child_env(env), folder, target.name.replace(" ", "-").replace(",", ""))

        connector = aiohttp.TCPConnector(limit=args.concurrency)
        client_timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
            outcome.startup = await wait_healthy(session, base, process, log, args.health_timeout)
            events = f"{base}/slack/events"
            run = uuid.uuid4().hex[:8]
            load_timeout = args.load_timeout

            warmup = [Job(f"UW{j}", corpus[j % len(corpus)], f"Ev{run}W{j}") for j in range(args.warmup)]
            await send_all(session, events, secret, warmup, args.concurrency, load_timeout)
            if target.kind == "serve" and warmup:
                if not await wait_confirmations(fake, warmup, process, args.confirm_timeout):
                    outcome.notes.append("not every warm-up confirmation arrived before the measured load")

            # Bursts: `concurrency` deliveries at the same instant, as at a peak; the next burst
            # once this one is confirmed (serve) or answered (bare Bolt).
            bursts = Load(f"bursts of {args.concurrency}")
            for b in range(args.bursts):
                batch = [
                    Job(f"UB{b}x{i}", corpus[(b * args.concurrency + i) % len(corpus)], f"Ev{run}B{b}x{i}")
                    for i in range(args.concurrency)
                ]
                bursts.jobs += batch
                bursts.wall += await send_all(session, events, secret, batch, args.concurrency, load_timeout)
                if target.kind == "serve":
                    await wait_confirmations(fake, batch, process, args.confirm_timeout)
            # Sustained: a closed loop keeping `concurrency` in flight: the server's saturation.
            sustained = Load(f"{args.requests} sustained")
            sustained.jobs = [Job(f"U{i}", corpus[i], f"Ev{run}M{i}") for i in range(args.requests)]
            print(
                f"  {target.name}: {args.bursts} bursts of {args.concurrency}, then {args.requests} requests "
                f"{args.concurrency} at a time",
                file=sys.stderr,
                flush=True,
            )
            sustained.wall = await send_all(session, events, secret, sustained.jobs, args.concurrency, load_timeout)
            outcome.loads = [bursts, sustained]
            if target.kind == "serve":
                await wait_confirmations(fake, sustained.jobs, process, args.confirm_timeout)
                for load in outcome.loads:
                    for job in load.jobs:
                        if job.channel in fake.posted:
                            arrived, text = fake.posted[job.channel]
                            load.confirmed[job.channel] = arrived - job.sent
                            load.logged += text.startswith("Logged as")
                expected = {job.channel for job in warmup + bursts.jobs + sustained.jobs}
                others = sorted({channel for channel, _, _ in fake.posts} - expected)
                if others:
                    outcome.notes.append(f"chat.postMessage also went to {len(others)} other channel(s): {others[0]}…")
                if len(fake.posts) > len(fake.posted):
                    outcome.notes.append(f"{len(fake.posts)} chat.postMessage calls to {len(fake.posted)} channels")
        if process.poll() is not None:
            outcome.notes.append(f"the server exited during the run (code {process.returncode})")
        lines = log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "ERROR" in line or "Traceback" in line]
        if errors:
            outcome.notes.append(f"{len(errors)} error line(s) in the server log, first: {errors[0][:200]}")
        failures = sorted({job.error for load in outcome.loads for job in load.jobs if job.error})
        if failures:
            outcome.notes.append(f"transport errors (counted as non-2xx): {', '.join(failures)}")
    finally:
        if process is not None:
            stop_server(process)
        await fake.stop()
        if schema:
            postgres_schema("DROP", schema)
    return outcome


# Report ----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def ack_p99(load: Load | None) -> float:
    return percentile([1000 * (j.acked - j.sent) for j in load.jobs if j.ok], 99) if load else float("nan")


def row(outcome: Outcome, load: Load, bare_p99: float) -> str:
    jobs = load.jobs
    acks = [1000 * (job.acked - job.sent) for job in jobs if job.ok]
    p50, p95, p99 = (percentile(acks, q) for q in (50, 95, 99))
    non_2xx = sum(not job.ok for job in jobs)
    throughput = len(jobs) / load.wall if load.wall else float("nan")
    ratio = f"{p99 / bare_p99:.2f}×" if acks and bare_p99 == bare_p99 and bare_p99 > 0 else "—"
    if outcome.target.kind == "serve":
        waits = list(load.confirmed.values())
        confirmation = f"{percentile(waits, 50):.2f} / {percentile(waits, 99):.2f}" if waits else "—"
        arrived = f"{len(waits)}/{len(jobs)}"
    else:
        confirmation = arrived = "—"

    def ms(value: float) -> str:
        return f"{value:.1f}" if value == value else "—"

    cells = [
        outcome.target.name,
        load.name,
        ms(p50),
        ms(p95),
        ms(p99),
        f"{throughput:.0f}",
        str(non_2xx),
        ratio,
        confirmation,
        arrived,
    ]
    return "| " + " | ".join(cells) + " |"


def report(outcomes: list[Outcome], args, source: str, skipped: list[str]) -> None:
    from common import machine

    bare = next((o for o in outcomes if o.target.kind == "bare"), None)
    print(f"\n## Slack ingest: {args.bursts} bursts of {args.concurrency}, then {args.requests} sustained\n")
    print(f"Machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.")
    print(f"Embeddings: {args.embeddings}; texts: {source}; warm-up: {args.warmup} requests (not measured).\n")
    print(
        "| target | load | acks p50 (ms) | p95 (ms) | p99 (ms) | throughput (req/s) | non-2xx | p99 / bare Bolt p99 "
        "| confirmation p50 / p99 (s) | confirmations arrived |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for index in range(2):
        bare_p99 = ack_p99(bare.loads[index] if bare and len(bare.loads) > index else None)
        for outcome in outcomes:
            if len(outcome.loads) > index:
                print(row(outcome, outcome.loads[index], bare_p99))
    print()
    for outcome in outcomes:
        line = f"- {outcome.target.name}: healthy {outcome.startup:.1f} s after start"
        if outcome.target.kind == "serve":
            confirmed = sum(len(load.confirmed) for load in outcome.loads)
            logged = sum(load.logged for load in outcome.loads)
            line += f"; {logged} of {confirmed} confirmations begin 'Logged as'"
        print(line + "".join(f"; {note}" for note in outcome.notes) + ".")
    for reason in skipped:
        print(f"- skipped: {reason}.")
    print(
        "\nBursts: all requests of a burst sent at once, the next burst once the last is confirmed (bare Bolt: "
        "answered); throughput is requests over the summed burst times. Sustained: a closed loop keeping the "
        "concurrency in flight, so acks queue behind the server's capacity (p50 ≈ concurrency / throughput). "
        "Ack: request sent until its HTTP response is read. Confirmation: request sent until the fake Web API "
        "receives the chat.postMessage to that sender's DM channel (waited for at most "
        f"{args.confirm_timeout:.0f} s)."
    )


# Main ------------------------------------------------------------------------------------------


async def bench(args) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # stop cleanly: servers, temp dirs, schemas

    corpus, source = texts(max(args.requests, args.warmup, args.bursts * args.concurrency), args.seed)
    targets = [Target("bare Bolt", "bare"), Target(f"serve, SQLite ({args.embeddings})", "serve", "sqlite")]
    skipped = []
    if args.skip_postgres:
        skipped.append("serve on PostgreSQL (--skip-postgres)")
    elif reason := postgres_reachable():
        skipped.append(f"serve on PostgreSQL: {reason}")
    else:
        targets.append(Target(f"serve, PostgreSQL ({args.embeddings})", "serve", "postgres"))
    for reason in skipped:
        print(f"Skipping {reason}", file=sys.stderr)

    outcomes = []
    with tempfile.TemporaryDirectory(prefix="frictionlog-ingest-") as folder:
        for target in targets:
            print(f"{target.name}: starting", file=sys.stderr, flush=True)
            outcomes.append(await run_target(target, args, corpus, Path(folder)))
    report(outcomes, args, source, skipped)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per target")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight at once")
    parser.add_argument("--bursts", type=int, default=10, help="bursts of --concurrency requests sent at once")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests first")
    parser.add_argument("--embeddings", choices=["local", "hashing"], default="local")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--health-timeout", type=float, default=120.0, help="seconds to wait for GET /healthz")
    parser.add_argument("--confirm-timeout", type=float, default=120.0, help="seconds to wait for confirmations")
    parser.add_argument("--load-timeout", type=float, default=300.0, help="seconds the sending may take at most")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--bare-bolt-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_bolt_server:
        bare_bolt_server(args.bare_bolt_server, args.api_url)
        return 0
    if not (1 <= args.concurrency <= 1000 and 1 <= args.requests <= 100_000 and 0 <= args.warmup <= 1000):
        parser.error("--requests 1..100000, --concurrency 1..1000, --warmup 0..1000")
    sys.path.insert(0, str(ROOT))  # for tests.fake_slack; bench/ (for common) is already there
    try:
        return asyncio.run(bench(args))
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("terminated; servers stopped", file=sys.stderr)
        return 143
    except RuntimeError as error:  # a server that would not start: its log says why
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
