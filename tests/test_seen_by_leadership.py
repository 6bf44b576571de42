"""Seen by leadership: once a digest went out, each reporter of a theme it features hears once
that week on their own platform, anonymous ones too without being named; quiet people do not;
nobody hears about a digest that did not go out. On SQLite and PostgreSQL."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from bot.outbox import retry
from bot.publish import Due, Target, queue_digests, queue_weekly_digest
from bot.router import SendFailed
from digests.digest import IsoWeek
from storage.models import AuditEvent, Notice, OutboxMessage, Submission, Theme
from tests.conftest import LEAD, ask
from tests.inbox import Inbox, deliver

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"
REFUND_3 = "refunds need a supervisor and approval takes days"
HOLD = "hold times on the phone line are over forty minutes every evening"
TARGETS = [Target("test", "C-EXEC"), Target("test", "C-OPS")]


def reached(inbox: Inbox) -> dict[str, list[str]]:
    """Who was told their report reached leadership, and what they read."""
    told: dict[str, list[str]] = {}
    for item in inbox.seen:
        if item.kind == "notify" and "reached leadership" in item.text:
            told.setdefault(item.to, []).append(item.text)
    return told


def reported_week(service, clock) -> Inbox:
    """A week of reports (one anonymous, one from someone who asked for quiet), then its digest
    queued for two channels."""
    ask(service, "U1", REFUND)
    ask(service, "U-ANON", "anon " + REFUND_2)
    ask(service, "U3", REFUND_3)
    ask(service, "U4", HOLD, platform="teams")
    assert ask(service, "U3", "quiet").text.startswith("Done: you will not hear when the weekly digest features")
    assert ask(service, LEAD, "assign T-1 @dana").ok
    inbox = Inbox()
    deliver(service, inbox, Inbox("teams"))
    inbox.take()
    clock.advance(days=5)  # Monday: last week's digest goes out
    queue_weekly_digest(service, TARGETS, names={("test", "dana"): "Dana Reyes"})
    return inbox


def test_each_reporter_hears_once_on_their_own_platform_however_many_targets_and_runs(service, clock):
    inbox = reported_week(service, clock)
    teams = Inbox("teams")
    deliver(service, inbox, teams)
    assert sorted(item.to for item in inbox.seen if item.kind == "digest") == ["C-EXEC", "C-OPS"]
    told = reached(inbox)
    assert sorted(told) == ["U-ANON", "U1"]  # U3 asked for quiet
    [for_u1] = told["U1"]
    assert for_u1.startswith("Your report on T-1 · ")
    assert "reached leadership in this week's digest; owner: Dana Reyes." in for_u1
    assert "Rather not hear about this? /friction quiet" in for_u1
    [for_anonymous] = told["U-ANON"]
    assert "You reported anonymously: nobody was told who you are." in for_anonymous
    assert reached(teams)["U4"] == [
        f"Your report on T-2 · {title_of(service, 2)} reached leadership in this week's digest; no owner yet."
        "\nRather not hear about this? /friction quiet"
    ]
    # Again this week (the schedule firing twice, another replica, a target added later): nothing new.
    queue_weekly_digest(service, TARGETS + [Target("test", "C-LATE")])
    deliver(service, inbox, teams)
    assert [item.to for item in inbox.seen if item.kind == "digest"][-1] == "C-LATE"
    assert reached(inbox) == told and len(reached(teams)["U4"]) == 1


def test_one_weeks_digest_in_two_time_zones_tells_each_reporter_once(service, clock):
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    inbox = Inbox()
    deliver(service, inbox)
    week = IsoWeek.containing(clock(), service.settings.zone)  # the week reported in (UTC)
    auckland, london = ZoneInfo("Pacific/Auckland"), ZoneInfo("Europe/London")
    # Monday 09:00 in Auckland is still Sunday in UTC; Monday 09:00 in London is the next UTC week.
    monday = week.bounds(auckland)[1].date()  # the Monday after it
    clock.now = datetime.combine(monday, time(9), tzinfo=auckland)
    queue_digests(service, [Due(Target("test", "C-AKL"), week, auckland)])
    deliver(service, inbox)
    clock.now = datetime.combine(monday, time(9), tzinfo=london)
    queue_digests(service, [Due(Target("test", "C-LDN"), week, london)])
    deliver(service, inbox)
    assert sorted(item.to for item in inbox.seen if item.kind == "digest") == ["C-AKL", "C-LDN"]
    assert {who: len(notes) for who, notes in reached(inbox).items()} == {"U1": 1, "U2": 1}


def test_an_anonymous_reporter_is_reached_but_named_nowhere(service, clock):
    inbox = reported_week(service, clock)
    deliver(service, inbox, Inbox("teams"))
    assert "U-ANON" in reached(inbox)
    with Session(service.engine) as session:
        stored = [
            *(f"{n.kind} {n.subject} {n.period}" for n in session.exec(select(Notice))),
            *(f"{m.label} {m.recipient_hash} {m.last_error}" for m in session.exec(select(OutboxMessage))),
            *(f"{e.actor} {e.detail}" for e in session.exec(select(AuditEvent))),
            *(f"{s.author} {s.channel} {s.source_url}" for s in session.exec(select(Submission))),
        ]
        anonymous = session.exec(select(Submission).where(Submission.anonymous)).one()
        seen = session.exec(select(Notice).where(Notice.kind == "seen", Notice.subject == anonymous.author_hash)).one()
    assert not any("U-ANON" in text for text in stored)
    assert seen.period == "2026-W47"  # once per digest week: the one the digest covers
    digests = [item.message for item in inbox.seen if item.kind == "digest"]
    assert "U-ANON" not in repr(digests)


def test_quiet_people_are_skipped_until_they_say_quiet_off(service, clock):
    inbox = reported_week(service, clock)
    deliver(service, inbox, Inbox("teams"))
    assert "U3" not in reached(inbox)
    assert ask(service, "U3", "quiet").text.startswith("You are already quiet")
    assert ask(service, "U3", "quiet off").text.startswith("Done: when the weekly digest features what you reported")
    clock.advance(days=7)  # next week's digest features T-1 again (more reports)
    ask(service, "U5", REFUND)
    clock.advance(days=7)
    queue_weekly_digest(service, TARGETS)
    deliver(service, inbox, Inbox("teams"))
    assert reached(inbox)["U3"] and len(reached(inbox)["U1"]) == 2  # a new week: heard again


def test_nobody_hears_when_the_digest_did_not_go_out(service, clock):
    inbox = reported_week(service, clock)
    failing = Inbox(fail_digests=SendFailed("Slack answered 404 channel_not_found", permanent=True))
    deliver(service, failing, Inbox("teams"))
    assert reached(failing) == {} and not [item for item in failing.seen if item.kind == "digest"]
    with Session(service.engine) as session:
        assert {m.state for m in session.exec(select(OutboxMessage).where(OutboxMessage.kind == "digest"))} == {
            "failed"
        }
        assert session.exec(select(Notice).where(Notice.kind == "seen")).all() == []
    # Retried and sent: now they hear.
    with Session(service.engine) as session:
        failed = [m.id for m in session.exec(select(OutboxMessage).where(OutboxMessage.kind == "digest"))]
    assert all(retry(service.engine, message_id) for message_id in failed)
    deliver(service, inbox, Inbox("teams"))
    assert sorted(reached(inbox)) == ["U-ANON", "U1"]


def title_of(service, theme_id: int) -> str:
    with Session(service.engine) as session:
        return session.get(Theme, theme_id).title
