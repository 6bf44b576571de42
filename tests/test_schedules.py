"""Each digest target on its own schedule: set in chat, checked every minute by `serve` against an
injectable clock, posted on time and once after a server was down, listed by `frictionlog
targets`, and previewed by `frictionlog digest --post --dry-run` without posting anything."""

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from adapters.cli import app
from adapters.console import ConsolePlatform
from bot import commands as c
from bot.cron import Schedule, when
from bot.pipeline import Pipeline
from bot.publish import Target, queue_digests, queue_weekly_digest
from bot.router import Router
from bot.schedule import digest_job
from bot.service import FrictionService
from bot.targets import due_digests
from digests.digest import IsoWeek
from digests.embeddings import HashingEmbedder
from storage.db import make_engine
from storage.models import DigestRun, OutboxMessage
from tests.conftest import LEAD, ask
from tests.fake_slack import FakeSlackThread

runner = CliRunner()
REFUND = "refund approvals over $50 take three days"


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


# The schedule itself ---------------------------------------------------------------------------


def test_a_schedule_is_five_crontab_fields_in_a_time_zone_and_reads_days_as_crontab_does():
    paris = Schedule.parse("0  9 * * mon", "Europe/Paris")
    assert paris.cron == "0 9 * * mon"
    wednesday = at(2026, 11, 18, 10)
    assert paris.next_fire(wednesday).isoformat() == "2026-11-23T09:00:00+01:00"
    assert paris.last_fire(wednesday).isoformat() == "2026-11-16T09:00:00+01:00"
    assert when(paris.next_fire(wednesday)) == "Mon 23 Nov 2026 09:00"
    # Crontab counts Sunday as 0 (and 7); APScheduler 3 alone would read 1 as Tuesday.
    assert Schedule.parse("0 9 * * 1", "UTC").next_fire(wednesday).strftime("%a") == "Mon"
    assert Schedule.parse("0 9 * * 0", "UTC").next_fire(wednesday).strftime("%a") == "Sun"
    assert Schedule.parse("0 9 * * 7", "UTC").next_fire(wednesday).strftime("%a") == "Sun"
    assert Schedule.parse("0 16 * * 5", "UTC").next_fire(wednesday).strftime("%a %H:%M") == "Fri 16:00"
    days = {Schedule.parse("0 9 * * 1-5", "UTC").next_fire(at(2026, 11, 21 + n, 10)).strftime("%a") for n in range(7)}
    assert days == {"Mon", "Tue", "Wed", "Thu", "Fri"}  # never the weekend
    # The latest fire of a rare schedule is found too: 29 February.
    assert Schedule.parse("0 9 29 2 *", "UTC").last_fire(wednesday) == at(2024, 2, 29, 9)
    # A time the spring-forward night skips happens an hour on, and is shown as clocks show it.
    night = Schedule.parse("30 2 * * *", "Europe/Paris")
    for now in (at(2026, 3, 28, 12), at(2026, 3, 29, 1, 10)):  # the day before; 03:10 that night
        assert night.next_fire(now).isoformat() == "2026-03-29T03:30:00+02:00"
    assert night.last_fire(at(2026, 3, 29, 2)).isoformat() == "2026-03-29T03:30:00+02:00"
    # Both day fields given: crontab fires on either, the 1st of the month and every Monday.
    either = Schedule.parse("0 9 1 * mon", "UTC")
    fires = [either.next_fire(at(2026, 11, 24, 10) + timedelta(days=n)).strftime("%a %d %b") for n in range(0, 14, 2)]
    assert fires == ["Mon 30 Nov", "Mon 30 Nov", "Mon 30 Nov", "Tue 01 Dec", "Mon 07 Dec", "Mon 07 Dec", "Mon 07 Dec"]
    assert either.last_fire(wednesday) == at(2026, 11, 16, 9)
    assert Schedule.parse("0 9 1 * mon", "UTC").last_fire(at(2026, 12, 1, 12)) == at(2026, 12, 1, 9)


@pytest.mark.parametrize(
    ("cron", "zone", "problem"),
    [
        ("0 25 * * mon", "UTC", "the hour field `25`"),
        ("0 9 * * funday", "UTC", "`funday` is not a day of the week"),
        ("0 9 * *", "UTC", "`0 9 * *` has 4 fields"),
        ("0 9 31 2 *", "UTC", "`0 9 31 2 *` never happens"),
        ("0 9 * * 5-2", "UTC", "`5-2` runs backwards"),
        ("0 9 * * mon", "Mars/Olympus", "unknown time zone `Mars/Olympus`"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_problem(cron, zone, problem):
    with pytest.raises(ValueError, match="^.*" + problem.replace("*", r"\*")):
        Schedule.parse(cron, zone)


def test_the_grammar_reads_a_schedule_after_digest_here():
    assert c.parse("digest here") == c.DigestHere(True)
    assert c.parse("/friction digest here 0 16 * * fri Europe/London") == c.DigestHere(
        True, "0 16 * * fri", "Europe/London"
    )
    assert c.parse("digest here on 0 16 * * fri") == c.DigestHere(True, "0 16 * * fri", None)
    assert c.parse("digest here Asia/Tokyo.") == c.DigestHere(True, None, "Asia/Tokyo")
    assert c.parse("digest here off") == c.DigestHere(False)
    usage = c.parse("digest here 0 16 * fri")
    assert isinstance(usage, c.Usage) and "is not a schedule" in usage.text and "Nothing was logged" in usage.text


# Setting it in chat ----------------------------------------------------------------------------


def test_a_lead_gives_a_channel_its_own_schedule_and_bad_ones_are_refused(service):
    def here(text: str, channel: str = "C-LONDON", user: str = LEAD):
        return ask(service, user, f"digest here{text}", channel=channel)

    set_up = here(" 0 16 * * fri Europe/London")
    assert set_up.text.startswith("This channel will get the weekly digest: `0 16 * * fri` in Europe/London")
    assert "next on Fri 20 Nov 2026 16:00" in set_up.text
    plain = here("", channel="C-EXEC")
    assert "`0 9 * * mon` in UTC, next on Mon 23 Nov 2026 09:00" in plain.text
    assert "already gets the weekly digest: `0 16 * * fri` in Europe/London" in here("").text

    hour = here(" 0 25 * * fri Europe/London")
    assert hour.text.startswith("Nothing changed: the hour field `25` of `0 25 * * fri`")
    assert "e.g. `digest here 0 16 * * fri Europe/London`" in hour.text
    assert "unknown time zone `Europe/Londn`" in here(" 0 16 * * fri Europe/Londn").text
    assert "`funday` is not a day of the week" in here(" 0 16 * * funday").text
    assert "Only team leads" in here(" 0 8 * * mon", user="U-AGENT").text

    moved = here(" Asia/Tokyo")  # only the zone: the lead's own cron stays
    assert moved.text.startswith("This channel's weekly digest has a new schedule: `0 16 * * fri` in Asia/Tokyo")
    assert "next on Fri 20 Nov 2026 16:00" in moved.text


def test_digest_here_off_in_a_configured_channel_says_the_digest_goes_on(engine, settings, clock):
    settings = settings.model_copy(update={"digest_slack_channels": "C-EXEC"})
    service = FrictionService(engine, settings, HashingEmbedder(), clock=clock)
    configured = [Target("slack", "C-EXEC")]
    assert ask(service, LEAD, "digest here 0 16 * * fri", platform="slack", channel="C-EXEC").ok
    off = ask(service, LEAD, "digest here off", platform="slack", channel="C-EXEC")
    assert off.text.startswith("Its own schedule is gone. This channel still gets the weekly digest")
    assert "FRICTIONLOG_DIGEST_SLACK_CHANNELS" in off.text
    assert "no longer" not in ask(service, LEAD, "digest here off", platform="slack", channel="C-EXEC").text
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # the default schedule, Monday 09:00
    assert [str(due.target) for due in due_digests(service, configured)] == ["slack:C-EXEC"]


# The due-check, with a clock the tests move -----------------------------------------------------


class Server:
    """One `serve` process: its digest job and pipeline, delivering to console channels."""

    def __init__(self, service: FrictionService, configured: tuple[Target, ...] = ()):
        self.service = service
        self.platform = ConsolePlatform()
        self.configured = list(configured)

    def tick(self) -> list[str]:
        """The job firing once: what it queued, as `digest 2026-W47 to console:exec`."""

        async def run():
            pipeline = Pipeline(self.service, Router([self.platform]))
            queued = await digest_job(self.service, pipeline, self.configured)
            await pipeline.drain()
            return [f"digest {q.week} to {q.target}" for q in queued if q.result == "queued"]

        return asyncio.run(run())

    def channel(self, name: str) -> list[str]:
        return [r.text for r in self.platform.received if r.kind == "digest" and r.to == name]


def outbox_digests(service: FrictionService) -> list[str]:
    """What `frictionlog outbox --sent` lists for digests."""
    with Session(service.engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.kind == "digest").order_by(OutboxMessage.id))
        return [row.label for row in rows]


def add_here(service: FrictionService, channel: str, schedule: str = "") -> None:
    reply = ask(service, LEAD, f"digest here {schedule}".strip(), platform="console", channel=channel)
    assert "weekly digest" in reply.text, reply.text


def test_an_on_time_run_queues_once_however_often_and_wherever_it_is_checked(service, clock, database_url):
    add_here(service, "exec")  # Wednesday 18 November; the default is Mondays 09:00 UTC
    ask(service, "U1", REFUND)
    server = Server(service)
    clock.now = at(2026, 11, 23, 8, 59)
    assert server.tick() == []
    clock.now = at(2026, 11, 23, 9, 0)
    assert server.tick() == ["digest 2026-W47 to console:exec"]
    [posted] = server.channel("exec")
    assert "2026-W47" in posted and "Mon 16 Nov – Sun 22 Nov 2026 (UTC)" in posted
    clock.advance(minutes=1)
    assert server.tick() == []  # the next minute, and every one after
    # A second replica on the same database, its own scheduler firing too: nothing more.
    engine = make_engine(database_url)
    try:
        replica = Server(FrictionService(engine, service.settings, HashingEmbedder(), clock=clock))
        assert replica.tick() == []
        # Two replicas that both saw it due before either queued it: the claim lets one in.
        clock.now = at(2026, 11, 30, 9, 0)
        seen = [due_digests(server.service, []), due_digests(replica.service, [])]
        results = [q.result for due in seen for q in queue_digests(service, due)]
        assert sorted(results) == ["already queued", "queued"]
    finally:
        engine.dispose()
    assert outbox_digests(service) == ["digest 2026-W47 to console:exec", "digest 2026-W48 to console:exec"]


def test_a_run_missed_while_the_server_was_down_is_posted_once_when_it_is_back(service, clock):
    add_here(service, "exec")
    ask(service, "U1", REFUND)
    server = Server(service)
    clock.now = at(2026, 11, 23, 8, 0)
    assert server.tick() == []
    # Down from Monday 08:00 to Tuesday 14:00: Monday 09:00 passed without a server.
    clock.now = at(2026, 11, 24, 14, 0)
    assert server.tick() == ["digest 2026-W47 to console:exec"]
    for later in (at(2026, 11, 24, 14, 1), at(2026, 11, 27, 12, 0)):
        clock.now = later
        assert server.tick() == []
    assert len(server.channel("exec")) == 1
    clock.now = at(2026, 11, 30, 9, 0)  # and the next Monday as usual
    assert server.tick() == ["digest 2026-W48 to console:exec"]


def test_after_three_weeks_down_only_the_latest_week_is_posted(service, clock):
    add_here(service, "exec")
    ask(service, "U1", REFUND)
    server = Server(service)
    clock.now = at(2026, 11, 23, 9, 0)
    assert server.tick() == ["digest 2026-W47 to console:exec"]
    clock.now = at(2026, 12, 16, 11, 0)  # down since; three Mondays passed
    assert server.tick() == ["digest 2026-W50 to console:exec"]
    assert server.tick() == []
    assert outbox_digests(service) == ["digest 2026-W47 to console:exec", "digest 2026-W50 to console:exec"]


def test_a_target_added_after_a_scheduled_time_does_not_get_that_old_week(service, clock):
    ask(service, "U1", REFUND)
    clock.now = at(2026, 11, 18, 10, 0)  # Wednesday: the last fire was Monday 16 November, 09:00
    add_here(service, "new-channel")
    # A configured channel has always been there: it gets the week it missed (once).
    server = Server(service, configured=(Target("console", "configured"),))
    assert server.tick() == ["digest 2026-W46 to console:configured"]
    clock.advance(minutes=1)
    assert server.tick() == []
    clock.now = at(2026, 11, 23, 9, 0)
    assert server.tick() == ["digest 2026-W47 to console:configured", "digest 2026-W47 to console:new-channel"]


def test_a_new_schedule_does_not_bring_back_an_older_week(service, clock):
    add_here(service, "exec")
    server = Server(service)
    clock.now = at(2026, 11, 23, 9, 0)
    assert server.tick() == ["digest 2026-W47 to console:exec"]
    clock.now = at(2026, 11, 25, 10, 0)
    # Fridays now: the latest Friday (20 November) asks for W46, older than W47, which went out.
    add_here(service, "exec", "0 16 * * fri")
    assert server.tick() == []
    clock.now = at(2026, 11, 27, 16, 0)  # Friday: the last complete week is still W47
    assert server.tick() == []
    clock.now = at(2026, 12, 4, 16, 0)
    assert server.tick() == ["digest 2026-W48 to console:exec"]


def test_targets_in_different_time_zones_fire_at_their_own_local_times_with_their_own_weeks(service, clock):
    clock.now = at(2026, 11, 16, 15, 0)  # Monday, after 09:00 in Tokyo and in New York
    add_here(service, "tokyo", "0 9 * * mon Asia/Tokyo")
    add_here(service, "new-york", "0 9 * * mon America/New_York")
    clock.now = at(2026, 11, 18, 10, 0)
    ask(service, "U1", REFUND)
    # Sunday 22 November, 20:00 UTC: Sunday afternoon in New York, Monday morning (next week) in Tokyo.
    clock.now = at(2026, 11, 22, 20, 0)
    ask(service, "U2", "supervisor approval for refunds takes days")
    server = Server(service)
    clock.now = at(2026, 11, 22, 23, 59)
    assert server.tick() == []
    clock.now = at(2026, 11, 23, 0, 0)  # 09:00 in Tokyo
    assert server.tick() == ["digest 2026-W47 to console:tokyo"]
    clock.now = at(2026, 11, 23, 13, 59)  # 08:59 in New York
    assert server.tick() == []
    clock.now = at(2026, 11, 23, 14, 0)  # 09:00 in New York
    assert server.tick() == ["digest 2026-W47 to console:new-york"]
    [tokyo] = server.channel("tokyo")
    [new_york] = server.channel("new-york")
    assert re.search(r"Mon 16 Nov – Sun 22 Nov 2026 \(Asia/Tokyo\): 1 submission", tokyo)
    assert re.search(r"Mon 16 Nov – Sun 22 Nov 2026 \(America/New_York\): 2 submissions", new_york)


# The command line -------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch, database_url):
    monkeypatch.chdir(tmp_path)
    for key in ("SLACK_BOT_TOKEN", "MICROSOFT_APP_ID", "FRICTIONLOG_DIGEST_SLACK_CHANNELS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRICTIONLOG_EMBEDDINGS", "hashing")
    monkeypatch.setenv("FRICTIONLOG_TEAM_LEADS", LEAD)

    def run(*args: str):
        result = runner.invoke(app, ["--quiet", *args], catch_exceptions=False)
        return result

    return run


def test_targets_lists_every_target_with_its_schedule_next_run_and_last_week(cli, service, monkeypatch):
    assert cli("targets").stdout.strip() == (
        "No digest targets yet: set FRICTIONLOG_DIGEST_SLACK_CHANNELS or type `/friction digest here` in a channel."
    )
    monkeypatch.setenv("FRICTIONLOG_DIGEST_SLACK_CHANNELS", "C-EXEC")
    ask(service, LEAD, "digest here 0 16 * * fri Europe/London", platform="slack", channel="C-LONDON")
    ask(service, "U1", REFUND)
    queue_weekly_digest(service, [Target("slack", "C-EXEC")], IsoWeek(2026, 46))
    london = Schedule("0 16 * * fri", "Europe/London")
    monday = Schedule("0 9 * * mon", "UTC")
    before = datetime.now(UTC)
    result = cli("targets")
    after = datetime.now(UTC)
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if "│ slack:" in line
    }
    assert set(rows) == {"slack:C-EXEC", "slack:C-LONDON"}
    exec_row, london_row = rows["slack:C-EXEC"], rows["slack:C-LONDON"]
    assert exec_row[:3] == ["configured", "0 9 * * mon", "UTC"]
    assert exec_row[3] in {when(monday.next_fire(before)), when(monday.next_fire(after))}
    assert exec_row[4] == "2026-W46 (pending)"
    assert london_row[:3] == ["added in chat by slack:U-LEAD", "0 16 * * fri", "Europe/London"]
    assert london_row[3] in {when(london.next_fire(before)), when(london.next_fire(after))}
    assert london_row[3].startswith("Fri ") and london_row[4] == "—"
    assert "Slack is not configured here" in result.stdout


def test_digest_post_dry_run_shows_each_target_its_digest_and_posts_nothing(cli, service, monkeypatch):
    ask(service, "U1", REFUND)
    service.settings = service.settings.model_copy(update={"team_leads_teams": LEAD})
    ask(service, LEAD, "digest here", platform="teams", channel="19:exec@thread.tacv2")
    with FakeSlackThread() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_SIGNING_SECRET", "secret")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)
        monkeypatch.setenv("FRICTIONLOG_DIGEST_SLACK_CHANNELS", "C-OPS")
        posted = cli("digest", "--post", "--week", "2026-W47")
        assert posted.exit_code == 0 and "C-OPS: posted" in posted.stdout, posted.output
        ask(service, LEAD, "digest here 0 16 * * fri Europe/London", platform="slack", channel="C-LONDON")
        monkeypatch.setenv("FRICTIONLOG_DIGEST_SLACK_CHANNELS", "C-EXEC,C-OPS")
        with Session(service.engine) as session:
            runs_before = len(session.exec(select(DigestRun)).all())
        outbox_before = outbox_digests(service)

        result = cli("digest", "--post", "--dry-run", "--week", "2026-W47")

        assert result.exit_code == 0, result.output
        out = result.stdout
        assert out.startswith("Dry run of `frictionlog digest --post`: nothing will be posted or queued.")
        assert "slack:C-EXEC: 2026-W47 (UTC): would be posted" in out
        assert "slack:C-OPS: 2026-W47 (UTC): already posted" in out
        assert "slack:C-LONDON: 2026-W47 (Europe/London): would be posted" in out
        assert "teams:19:exec@thread.tacv2: not posted from the command line" in out
        assert "── 2026-W47 (UTC), as slack:C-EXEC would get it ──" in out
        assert "── 2026-W47 (Europe/London), as slack:C-LONDON would get it ──" in out
        assert "Mon 16 Nov – Sun 22 Nov 2026 (Europe/London)" in out and "TOP THEMES" in out
        assert out.rstrip().endswith("Dry run: nothing was posted or queued.")
        assert len(fake.of("chat.postMessage")) == 1  # the one real post, before
    assert outbox_digests(service) == outbox_before == ["digest 2026-W47 to slack:C-OPS"]
    with Session(service.engine) as session:
        assert len(session.exec(select(DigestRun)).all()) == runs_before == 1
    refused = cli("digest", "--dry-run")
    assert refused.exit_code == 2 and "--dry-run goes with --post" in refused.output
