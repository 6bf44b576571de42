"""The weekly digest in Slack: Block Kit within Slack's budgets, posted once per channel and week,
by `frictionlog digest --post` and by the scheduler inside `frictionlog serve`."""

import asyncio
import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import ClientSession
from typer.testing import CliRunner

from adapters.cli import app
from adapters.slack import blocks as bk
from adapters.slack.platform import SlackPlatform
from adapters.slack.web_api import make_client
from bot.pipeline import Pipeline
from bot.publish import Target
from bot.router import Router
from bot.schedule import digest_job, make_scheduler
from bot.settings import Settings
from digests.blocks import MAX_BLOCKS, MAX_SECTION, render_slack
from digests.chart import chart_png
from digests.digest import Closed, Digest, IsoWeek, Owner, ThemeLine
from tests.conftest import START, ask
from tests.fake_slack import FakeSlack, FakeSlackThread, mrkdwn_objects
from tests.test_slack import SECRET, Slack, run_slack

runner = CliRunner()
REFUNDS = [
    "refunds over fifty dollars wait three days for supervisor approval",
    "supervisor approval for refunds takes days",
    "another refund stuck waiting on supervisor approval",
]
HOSTILE = "<!channel> call <@U0BOSS> now <https://evil.example|here> & <!subteam^S1>"


def line(key: str, owner: str | None, quotes=(HOSTILE,)) -> ThemeLine:
    return ThemeLine(
        key=key,
        title=f"Title <!here> {key}",
        summary="",
        status="new",
        owner=Owner("slack", owner, owner) if owner else None,
        this_week=4,
        last_week=2,
        total=9,
        reporters=5,
        trend=(0, 1, 2, 2, 2, 4),
        first_seen=START,
        last_seen=START,
        quotes=quotes,
    )


def digest(resolved: int = 0, note: str = "fixed") -> Digest:
    week = IsoWeek(2026, 46)
    start, end = week.bounds(UTC)
    top = tuple(line(f"T-{n}", "U777" if n % 2 else None) for n in range(1, 8))
    return Digest(
        week=week,
        start=start,
        end=end,
        timezone="UTC",
        submissions=40,
        previous_submissions=30,
        by_kind=(("policy", 30), ("customer", 10)),
        active_themes=7,
        top=top,
        growing=top[:2],
        unowned=top[1::2],
        overdue=(replace(top[0], missed=("not acknowledged in time",)),),
        resolved=tuple(
            Closed(f"T-{n}", "Done <!channel>", "resolved", Owner("slack", "U777", "U777"), note, 3)
            for n in range(resolved)
        ),
        areas=(("refunds", 12),),
        curation=(),
    )


def mention(owner: str) -> str:
    return f"<@{owner}>"


def test_digest_blocks_escape_staff_text_and_mention_owners():
    [message] = render_slack(digest(), owner=mention)
    text = json.dumps(message, ensure_ascii=False)
    for control in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil", "<!subteam"):
        assert control not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text
    assert "Owner: <@U777> · Status: new" in text and "Owner: _unowned_" in text
    # Each theme in every list says who owns it and where it stands.
    # Growth on a small base in counts, not "+100%"; the week from Monday to Sunday.
    assert "T-1 Title &lt;!here&gt; T-1: +2 this week, from 2 · <@U777> · new" in text
    assert "Mon 09 Nov – Sun 15 Nov 2026" in text
    assert "T-2 Title &lt;!here&gt; T-2: 4 this week, 9 in all · _unowned_ · new" in text
    assert "T-1 Title &lt;!here&gt; T-1: not acknowledged in time · <@U777> · new" in text
    # Verbatim: Slack auto-links no bare URL or #channel in a quote (our own <@U777> still works).
    assert all(o.get("verbatim") is True for o in mrkdwn_objects(message["blocks"]))
    assert message["text"].startswith("frictionlog weekly digest · 2026-W46")
    assert len(message["blocks"]) <= MAX_BLOCKS


def test_capped_lists_end_with_how_many_more_and_the_total():
    from digests.render import render_html, render_markdown, render_text

    capped = replace(digest(), unowned_total=184, growing_total=1)
    assert f"and {184 - len(capped.unowned)} more (184 in all)" in json.dumps(render_slack(capped, owner=mention))
    for render in (render_markdown, render_html, render_text):
        assert f"and {184 - len(capped.unowned)} more (184 in all)" in render(capped)
    assert "more (" not in render_text(replace(capped, unowned_total=len(capped.unowned)))


def test_a_long_digest_is_split_within_slack_budgets():
    messages = render_slack(digest(resolved=80, note="n" * 1500), owner=mention)
    assert len(messages) >= 2
    assert messages[0]["text"].startswith("frictionlog weekly digest · 2026-W46 (part 1 of")
    for message in messages:
        assert 0 < len(message["blocks"]) <= MAX_BLOCKS
        assert message["text"] and len(message["text"]) <= 3000
        for block in message["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION
    everything = json.dumps(messages)
    assert all(f"T-{n} Done" in everything for n in range(80))  # nothing dropped


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def send_digest_through_the_outbox(service, fake: FakeSlack, value: Digest, channel: str = "C-EXEC") -> None:
    """Queue `value` for `channel` and let the outbox send it, retries included (no backoff)."""
    from bot.outbox import Outbox, enqueue_digest
    from storage.db import session_scope

    with session_scope(service.engine) as session:
        enqueue_digest(session, service.sealer, platform="slack", channel=channel, digest=value)
    client = make_client(service.settings.model_copy(update={"slack_bot_token": "xoxb", "slack_api_url": fake.api_url}))
    outbox = Outbox(service.engine, Router([SlackPlatform(client, service.codec)]), service.sealer, backoff=0.0)

    async def send() -> None:
        for _ in range(10):
            await outbox.send_due()

    return send()


def test_the_digest_uploads_its_chart_once_into_its_channel_after_the_first_message(service):
    async def scenario():
        fake = await FakeSlack().start()
        try:
            await send_digest_through_the_outbox(service, fake, digest())
        finally:
            await fake.stop()
        [chart] = fake.shared
        assert chart["channel"] == "C-EXEC" and chart["filename"] == "frictionlog-digest-2026-W46.png"
        assert png_size(chart["content"]) == (800, 500) and chart["content"] == chart_png(digest())
        assert chart["alt_txt"].startswith("Line chart of submissions per week for the top 5 themes")
        order = [name for name, _ in fake.calls]
        assert order == [
            "chat.postMessage",
            "files.getUploadURLExternal",
            "upload",
            "files.completeUploadExternal",
        ]

    asyncio.run(scenario())


def test_a_digest_retried_mid_way_uploads_its_chart_once_and_posts_each_message_once(service):
    value = digest(resolved=80, note="n" * 1500)
    messages = render_slack(value, owner=bk.owner)
    assert len(messages) >= 2

    async def scenario():
        fake = await FakeSlack().start()
        try:
            fake.fail("upload", 500)  # the upload URL refuses the bytes: nothing was shared
            fake.fail("files.completeUploadExternal", 500)  # uploaded, but not shared
            fake.fail("chat.postMessage", 500, after=1)  # the second message, after the chart went out
            await send_digest_through_the_outbox(service, fake, value)
        finally:
            await fake.stop()
        [chart] = fake.shared
        assert chart["channel"] == "C-EXEC" and png_size(chart["content"]) == (800, 500)
        assert len(fake.uploads) == 3  # three tries at the upload flow, one file shared
        posted = [body["text"] for body in fake.of("chat.postMessage")]
        assert posted == [messages[0]["text"], messages[1]["text"], *(m["text"] for m in messages[1:])]
        first_shared = [name for name, _ in fake.calls].index("files.completeUploadExternal")
        assert [name for name, _ in fake.calls][:first_shared].count("chat.postMessage") == 1

    asyncio.run(scenario())


def test_without_files_write_the_digest_goes_out_without_its_chart_and_an_empty_week_has_none(service, caplog):
    from dataclasses import replace

    async def scenario():
        fake = await FakeSlack().start()
        try:
            fake.fail("files.getUploadURLExternal", "missing_scope")
            await send_digest_through_the_outbox(service, fake, digest(resolved=80, note="n" * 1500))
            assert fake.shared == [] and len(fake.of("chat.postMessage")) == 2  # both parts, after the chart
            assert "is files:write granted?" in caplog.text
            fake.calls.clear()
            empty = replace(digest(), week=IsoWeek(2026, 47), top=(), growing=(), unowned=(), overdue=())
            await send_digest_through_the_outbox(service, fake, empty, channel="C-OPS")
            assert [name for name, _ in fake.calls] == ["chat.postMessage"] and fake.shared == []
        finally:
            await fake.stop()

    asyncio.run(scenario())


def seeded_cli(monkeypatch, tmp_path, fake: FakeSlack, channels: str = "C-EXEC,C-OPS"):
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    env = {
        "DATABASE_URL": url,
        "FRICTIONLOG_EMBEDDINGS": "hashing",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "FRICTIONLOG_DIGEST_SLACK_CHANNELS": channels,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return url


def seed(url: str) -> None:
    from adapters.wiring import build_service

    service = build_service(Settings(database_url=url, embeddings="hashing", _env_file=None))
    ask(service, "U1", "refunds over $50 need supervisor approval " + HOSTILE)
    ask(service, "U2", "refund approval by a supervisor takes three days")


def test_digest_post_posts_once_per_channel_and_week(monkeypatch, tmp_path):
    with FakeSlackThread() as fake:
        url = seeded_cli(monkeypatch, tmp_path, fake)
        seed(url)
        week = IsoWeek.containing(datetime.now(UTC), UTC)
        result = runner.invoke(app, ["digest", "--post", "--week", str(week)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "C-EXEC: posted" in result.stdout and "C-OPS: posted" in result.stdout
        posted = fake.of("chat.postMessage")
        assert sorted(m["channel"] for m in posted) == ["C-EXEC", "C-OPS"]
        assert "<!channel>" not in json.dumps(posted) and posted[0]["blocks"]
        again = runner.invoke(app, ["digest", "--post", "--week", str(week)], catch_exceptions=False)
        assert "C-EXEC: already queued this week (posted)" in again.stdout
        assert len(fake.of("chat.postMessage")) == 2


def test_a_failed_digest_post_says_why_and_is_retried_from_the_outbox(monkeypatch, tmp_path):
    with FakeSlackThread() as fake:
        url = seeded_cli(monkeypatch, tmp_path, fake, channels="C-EXEC")
        seed(url)
        fake.fail("chat.postMessage", 500, times=2)  # transient: retried, then posted
        posted = runner.invoke(app, ["digest", "--post"], catch_exceptions=False)
        assert posted.exit_code == 0 and "C-EXEC: posted" in posted.stdout
        assert len(fake.of("chat.postMessage")) == 3

    (tmp_path / "second").mkdir()
    with FakeSlackThread() as fake:
        url = seeded_cli(monkeypatch, tmp_path / "second", fake, channels="C-GONE")
        seed(url)
        fake.fail("chat.postMessage", 404, times=1)  # refused for good: recorded, not retried
        failed = runner.invoke(app, ["digest", "--post"], catch_exceptions=False)
        assert failed.exit_code == 1 and "C-GONE: failed: Slack answered 404" in failed.stdout
        assert "frictionlog outbox --retry 3" in failed.stdout
        listed = runner.invoke(app, ["outbox"], catch_exceptions=False)
        assert "failed" in listed.stdout and "Slack answered 404" in listed.stdout
        retry = runner.invoke(app, ["outbox", "--retry", "3"], catch_exceptions=False)
        assert "Back in line: 1 of 1" in retry.stdout
        again = runner.invoke(app, ["digest", "--post"], catch_exceptions=False)
        assert again.exit_code == 0 and "C-GONE: already queued this week (posted)" in again.stdout
        nothing = runner.invoke(app, ["outbox", "--retry", "3", "--retry", "99"], catch_exceptions=False)
        assert nothing.exit_code == 1 and "Back in line: 0 of 2" in nothing.stdout
        assert "#3: sent, not failed: left as it is" in nothing.stdout and "#99: no such message" in nothing.stdout


def dana_owns_t1(monkeypatch, tmp_path, fake) -> None:
    """The seeded database, with T-1 assigned to Slack's U0456EFGH, whom Slack calls Dana Reyes."""
    from adapters.wiring import build_service

    fake.names = {"U0456EFGH": "Dana Reyes"}
    url = seeded_cli(monkeypatch, tmp_path, fake)
    seed(url)
    service = build_service(Settings(database_url=url, embeddings="hashing", team_leads="U-LEAD", _env_file=None))
    assert ask(service, "U-LEAD", "assign T-1 @U0456EFGH", platform="slack").ok


def test_digests_and_lists_name_owners_as_slack_shows_them(monkeypatch, tmp_path):
    with FakeSlackThread() as fake:
        dana_owns_t1(monkeypatch, tmp_path, fake)
        week = IsoWeek.containing(datetime.now(UTC), UTC)
        for command in (["digest", "--format", "markdown", "--week", str(week)], ["themes"]):
            result = runner.invoke(app, command, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            assert "Dana Reyes" in result.stdout and "U0456EFGH" not in result.stdout, command
        assert len(fake.of("users.info")) == 2  # once for each command, however often the owner appears


def test_an_owner_is_named_when_slack_rate_limits_users_info(monkeypatch, tmp_path):
    """users.info is about 100 calls a minute, one per owner: a 429 is waited out (Retry-After), not
    the owner's id in the markdown digest, nor an id cached for the next hour."""
    with FakeSlackThread() as fake:
        dana_owns_t1(monkeypatch, tmp_path, fake)
        fake.fail("users.info", 429)
        week = IsoWeek.containing(datetime.now(UTC), UTC)
        result = runner.invoke(app, ["digest", "--format", "markdown", "--week", str(week)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "Dana Reyes" in result.stdout and "U0456EFGH" not in result.stdout
        assert len(fake.of("users.info")) == 2  # throttled once, then answered


def test_digest_post_without_channels_says_what_to_set(monkeypatch, tmp_path):
    with FakeSlackThread() as fake:
        seeded_cli(monkeypatch, tmp_path, fake, channels="")
        result = runner.invoke(app, ["digest", "--post"])
        assert result.exit_code == 2 and "FRICTIONLOG_DIGEST_SLACK_CHANNELS" in result.output
        assert fake.calls == []


def test_scheduler_checks_digests_every_minute_posts_mondays_at_nine_local_and_reclusters(service, clock):
    settings = service.settings.model_copy(update={"timezone": "Europe/Paris"})
    settings.__dict__.pop("zone", None)
    service.settings = settings

    async def scenario():
        fake = await FakeSlack().start()
        try:
            slack = service.settings.model_copy(update={"slack_bot_token": "xoxb", "slack_api_url": fake.api_url})
            pipeline = Pipeline(service, Router([SlackPlatform(make_client(slack), service.codec)]))
            targets = [Target("slack", "C-EXEC")]
            scheduler = make_scheduler(service, pipeline, targets)
            jobs = {job.id: job for job in scheduler.get_jobs()}
            assert set(jobs) == {"weekly-digest", "recluster", "chase-deadlines"}
            # The digest check runs at start-up (a run missed while down goes out at once), then every minute.
            assert jobs["weekly-digest"].next_run_time <= datetime.now(UTC)
            after = datetime(2026, 11, 18, 12, 0, 30, tzinfo=UTC)
            assert jobs["weekly-digest"].trigger.get_next_fire_time(None, after) == after.replace(minute=1, second=0)
            assert jobs["chase-deadlines"].trigger.interval == timedelta(minutes=5)
            assert jobs["recluster"].trigger.interval == timedelta(hours=6)
            ask(service, "U1", "refund approvals take three days")
            clock.now = datetime(2026, 11, 23, 8, 0, 20, tzinfo=UTC)  # Monday 09:00 in Paris
            await digest_job(service, pipeline, targets)
            await digest_job(service, pipeline, targets)  # a second replica firing too
            await pipeline.drain()
            [posted] = fake.of("chat.postMessage")
            assert "2026-W47" in posted["text"]
        finally:
            await fake.stop()

    asyncio.run(scenario())


def test_production_refuses_slack_without_a_signing_secret():
    with pytest.raises(ValueError, match="SLACK_SIGNING_SECRET"):
        Settings(
            environment="production",
            secret_key="s" * 32,
            database_url="postgresql://x@db/frictionlog",
            slack_bot_token="xoxb-1",
            _env_file=None,
        )


def test_frictionlog_serve_answers_slack_end_to_end(tmp_path):
    """The real command: `frictionlog serve` in its own process, a signed DM, a confirmation, and
    it says what it serves."""
    from tests.test_reliability import TEXTS, Serve, confirmations, deliver

    async def main(fake) -> None:
        serve = Serve(f"sqlite:///{tmp_path / 'serve.db'}", fake, tmp_path, FRICTIONLOG_RECLUSTER_HOURS="6").start()
        try:
            async with ClientSession() as http:
                await serve.ready(http)
                status, _ = await deliver(http, serve, "U1", TEXTS[0], "Ev-serve")
                assert status == 200
                deadline = time.monotonic() + 15
                while not confirmations(fake):
                    assert time.monotonic() < deadline, fake.calls
                    await asyncio.sleep(0.1)
        finally:
            serve.stop()
        assert fake.of("chat.postMessage")[0]["text"].startswith("Logged as S-1")
        output = serve.log.read_text()
        assert "Slack: HTTP at" in output and "Teams: not configured" in output and "scheduled recluster" in output

    with FakeSlackThread() as fake:
        asyncio.run(main(fake))


def test_the_chat_digest_preview_names_people_as_the_posted_digest_does(sqlite_url):
    async def scenario(slack: Slack):
        slack.fake.names = {"U777": "Dana Reyes", "U-LEAD": "Lee Lead"}
        for n, text in enumerate(REFUNDS):
            await slack.dm(text, user=f"U{n}", event_id=f"Ev{n}")
        await slack.fake.wait_for("chat.postMessage", len(REFUNDS))
        await slack.command("assign T-1 <@U777|dana>", user="U-LEAD", trigger="t-assign")
        await slack.command("rename T-1 Refund approvals", user="U-LEAD", trigger="t-rename")
        await slack.fake.reply_to("t-rename")
        slack.service.clock.advance(days=7)  # the preview shows the last complete week
        await slack.command("digest preview", user="U2", trigger="t-digest")
        preview = (await slack.fake.reply_to("t-digest"))["text"]
        assert "T-1 Refund approvals" in preview
        assert "owner: Dana Reyes" in preview and "Rename by Lee Lead" in preview
        assert "U777" not in preview and "U-LEAD" not in preview

    run_slack(sqlite_url, scenario)
