"""Deadlines that chase themselves, on a clock the tests move: the owner's reminder at a missed
deadline and not before, the leads' escalation a day later, each sent once however often and
from however many services the chase runs, on SQLite and PostgreSQL."""

import threading
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from bot.actions import SetStatus
from bot.deadlines import Chased, chase, missed_by_theme
from bot.messages import Notification
from bot.outbox import enqueue_notification
from bot.people import Person
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from storage.db import make_engine, session_scope
from storage.models import AuditEvent, Notice, OutboxMessage, Theme
from tests.conftest import LEAD, START, ask, press
from tests.inbox import Inbox, deliver

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"


def owned_theme(service, owner: str = "dana") -> str:
    """T-1, reported by two people, given to `owner` by the lead now; returns its title."""
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    assert ask(service, LEAD, f"assign T-1 @{owner}").ok
    with Session(service.engine) as session:
        return session.get(Theme, 1).title


def chased(service, inbox: Inbox, platforms=("test",), **extra):
    result = chase(service, platforms=platforms, **extra)
    deliver(service, inbox)
    return result


def test_reminder_at_the_acknowledge_deadline_and_not_before(service, clock):
    title = owned_theme(service)
    inbox = Inbox()
    deliver(service, inbox)
    inbox.take()  # the lead's reply and dana's "you now own T-1"
    clock.advance(hours=23, minutes=59)
    assert chased(service, inbox).reminders == () and inbox.seen == []
    clock.advance(minutes=1)
    assert chased(service, inbox).reminders == ("T-1:acknowledge",)
    [reminder] = inbox.to("dana")
    assert reminder.text.startswith(f"Reminder: please acknowledge T-1 “{title}”")
    assert "was due to be acknowledged by Thu 19 Nov 10:00 UTC" in reminder.text
    assert "/friction status T-1 acknowledged" in reminder.text
    assert "If it is still not acknowledged on Fri 20 Nov 10:00 UTC, the team leads hear about it" in reminder.text
    assert reminder.buttons == ["Acknowledge", "In progress"]
    assert reminder.message.buttons[0].action == SetStatus(1, "acknowledged")
    clock.advance(hours=3)
    assert chased(service, inbox) == chased(service, inbox)  # nothing more, however often it runs
    assert inbox.to("dana") == [reminder]


def test_no_reminder_when_acknowledged_in_time_and_the_first_update_is_chased_too(service, clock):
    owned_theme(service)
    clock.advance(hours=20)
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok
    inbox = Inbox()
    deliver(service, inbox)
    inbox.take()
    clock.advance(days=3)
    assert chased(service, inbox).reminders == () and inbox.to("dana") == []
    # Pressing Acknowledge again is no status update; seven days after the assignment it is due.
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok
    clock.now = START + timedelta(days=7)
    assert chased(service, inbox).reminders == ("T-1:update",)
    [reminder] = inbox.to("dana")
    assert "T-1" in reminder.text and "needs its first status update, due Wed 25 Nov 10:00 UTC" in reminder.text
    assert "/friction status T-1 in-progress <what is happening>" in reminder.text
    assert reminder.buttons == ["In progress", "Resolved", "Won't fix"]


def test_a_status_note_or_moving_it_on_is_the_first_update(service, clock):
    owned_theme(service)
    clock.advance(hours=2)
    assert ask(service, "dana", "status T-1 acknowledged waiting for finance to answer").ok
    clock.advance(days=10)
    inbox = Inbox()
    assert chased(service, inbox) == chased(service, inbox)
    assert not any(item.text.startswith("Reminder") for item in inbox.seen)


def test_escalation_a_day_after_the_reminder_to_every_lead_naming_theme_and_owner(engine, settings, clock):
    settings = settings.model_copy(update={"team_leads": f"{LEAD},U-LEAD-2,@cx-leads", "team_leads_teams": "29:lead"})
    service = FrictionService(engine, settings, HashingEmbedder(), clock=clock)
    title = owned_theme(service)
    test, teams = Inbox(), Inbox("teams")
    names = {("test", "dana"): "Dana Reyes"}
    clock.advance(hours=24)
    assert chase(service, platforms=["test", "teams"], names=names).reminders == ("T-1:acknowledge",)
    deliver(service, test, teams)  # the reminder reaches dana: the leads' day counts from here
    clock.advance(hours=23, minutes=59)
    assert chase(service, platforms=["test", "teams"], names=names).escalations == ()
    clock.advance(minutes=1)
    assert chase(service, platforms=["test", "teams"], names=names).escalations == ("T-1:acknowledge",)
    assert chase(service, platforms=["test", "teams"], names=names).escalations == ()
    deliver(service, test, teams)
    escalated = [(inbox.name, item) for inbox in (test, teams) for item in inbox.seen if "Escalation" in item.text]
    # Every lead on every platform served; a user group is not a person.
    leads = sorted((name, item.to) for name, item in escalated)
    assert leads == [("teams", "29:lead"), ("test", LEAD), ("test", "U-LEAD-2")]
    for name, item in escalated:
        elsewhere = " on Test" if name == "teams" else ""  # the owner is on another platform than this lead
        assert item.text.startswith(f"Escalation: T-1 “{title}”: its owner, Dana Reyes{elsewhere}, has not ")
        assert "has not acknowledged it, due Thu 19 Nov 10:00 UTC. They were reminded 24 h ago." in item.text
        assert "Owner: test:dana" in item.text  # a person field: the platform shows the person
        assert item.buttons == ["Assign someone else"]
        assert REFUND not in item.text and "once 5 people have reported it" in item.text  # two reporters: no quote
    assert test.to("dana", "notify")[-1].text.startswith("Reminder")  # the owner is not escalated to


def test_the_escalation_counts_its_day_from_when_the_reminder_reached_the_owner(service, clock):
    owned_theme(service)
    inbox = Inbox()
    clock.advance(hours=24)  # the acknowledge deadline passes as dana's day fills up
    with session_scope(service.engine) as session:
        for n in range(5):
            note = Notification(to=Person("test", "dana"), text=f"notice {n}", label=f"notice {n}")
            enqueue_notification(session, service.sealer, note)
    deliver(service, inbox)
    clock.advance(minutes=10)
    deliver(service, inbox)  # her five places of the day are used
    assert chased(service, inbox).reminders == ("T-1:acknowledge",)
    assert not [seen for seen in inbox.to("dana") if seen.text.startswith("Reminder")]  # held till tomorrow
    clock.advance(hours=24)
    assert chased(service, inbox).escalations == ()  # a day after it was written, not after she read it
    assert [seen for seen in inbox.to("dana") if seen.text.startswith("Reminder")]  # reached her now
    clock.advance(hours=23, minutes=59)
    assert chased(service, inbox).escalations == ()
    clock.advance(minutes=1)
    assert chased(service, inbox).escalations == ("T-1:acknowledge",)


def test_a_reminder_acted_on_before_the_escalation_stops_it(service, clock):
    owned_theme(service)
    inbox = Inbox()
    clock.advance(hours=25)
    assert chased(service, inbox).reminders == ("T-1:acknowledge",)
    clock.advance(hours=3)
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok
    clock.advance(days=1)
    assert chased(service, inbox).escalations == ()
    assert inbox.to(LEAD) == []


def test_each_reminder_and_escalation_is_sent_once_by_two_services_chasing_at_once(
    engine, settings, clock, database_url
):
    owned_theme(FrictionService(engine, settings, HashingEmbedder(), clock=clock))
    other_engine = make_engine(database_url)
    services = [
        FrictionService(engine, settings, HashingEmbedder(), clock=clock),
        FrictionService(other_engine, settings, HashingEmbedder(), clock=clock),
    ]

    def race() -> list:
        barrier = threading.Barrier(len(services) * 2)
        results = []

        def run(service) -> None:
            barrier.wait()
            results.append(chase(service, platforms=["test"]))

        threads = [threading.Thread(target=run, args=(s,)) for s in services * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    try:
        clock.advance(hours=24)
        assert sorted(r.reminders for r in race()) == [(), (), (), ("T-1:acknowledge",)]
        inbox = Inbox()
        deliver(services[0], inbox)
        clock.advance(hours=24)
        assert sorted(r.escalations for r in race()) == [(), (), (), ("T-1:acknowledge",)]
    finally:
        other_engine.dispose()
    deliver(services[0], inbox)
    assert [item.to for item in inbox.seen if item.text.startswith("Reminder")] == ["dana"]
    assert [item.to for item in inbox.seen if item.text.startswith("Escalation")] == [LEAD]
    with Session(engine) as session:
        notices = session.exec(select(Notice).order_by(Notice.id)).all()
        assert [(n.kind, n.subject) for n in notices] == [
            ("reminder", "T-1:acknowledge"),
            ("escalation", "T-1:acknowledge"),
        ]
        assert all(session.get(OutboxMessage, n.message_id) is not None for n in notices)


def test_reassigning_the_owner_restarts_the_clock(service, clock):
    owned_theme(service)
    clock.advance(hours=20)
    assert ask(service, LEAD, "assign T-1 @lee").ok
    inbox = Inbox()
    clock.advance(hours=5)  # 25 h after dana's assignment, 5 h after lee's
    assert chased(service, inbox).reminders == ()
    clock.advance(hours=19)
    assert chased(service, inbox).reminders == ("T-1:acknowledge",)
    assert [item.to for item in inbox.seen if item.text.startswith("Reminder")] == ["lee"]
    assert "assigned to you on Thu 19 Nov 06:00 UTC" in inbox.to("lee")[-1].text


def test_assigning_the_same_owner_again_leaves_their_deadlines_alone(service, clock):
    owned_theme(service)
    clock.advance(hours=2)
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok
    assert ask(service, "dana", "status T-1 in-progress talking to finance").ok
    clock.advance(hours=1)
    again = ask(service, LEAD, "assign T-1 @dana")  # typed once more
    assert again.ok and again.text.endswith("already has this owner; their deadlines stand.")
    assert again.sections[0].fields == (("Owner", Person("test", "dana")),)  # each platform shows the person
    clock.advance(hours=25)
    inbox = Inbox()
    assert chased(service, inbox).reminders == ()
    assert not [seen for seen in inbox.to("dana") if seen.text.startswith("Reminder")]  # she is on it
    assert missed_by_theme(service, clock()) == {}


def test_an_owned_theme_merged_into_an_unowned_one_keeps_its_owners_deadlines(service, clock):
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    ask(service, "U3", "hold times on the phone line are over forty minutes every evening")
    assert ask(service, LEAD, "assign T-2 @dana").ok
    assert ask(service, "dana", "due T-2 2026-11-25").ok
    clock.advance(hours=1)
    assert ask(service, LEAD, "merge T-2 into T-1").ok
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        assert (theme.owner, theme.resolution_due_at) == ("dana", datetime(2026, 11, 26, tzinfo=UTC))  # its end
    clock.advance(hours=24)  # 25 h after dana was given T-2, never acknowledged
    inbox = Inbox()
    assert chased(service, inbox).reminders == ("T-1:acknowledge",)
    assert inbox.to("dana")[-1].text.startswith("Reminder")
    assert missed_by_theme(service, clock()) == {1: ("not acknowledged in time",)}


def test_a_theme_whose_only_report_was_withdrawn_chases_nobody(service, clock):
    ask(service, "U1", REFUND)
    assert ask(service, LEAD, "assign T-1 @dana").ok
    assert ask(service, "U1", "undo S-1").ok  # its only report, withdrawn
    clock.advance(hours=25)
    assert chased(service, Inbox()).reminders == ()
    assert missed_by_theme(service, clock()) == {}


def test_the_owner_sets_a_fix_date_and_is_reminded_when_it_passes(service, clock):
    title = owned_theme(service)
    reply = ask(service, "dana", "due T-1 2026-12-10")
    assert reply.ok and reply.notifications == ()
    assert reply.text == (
        f"T-1 “{title}” is due to be fixed by Thu 10 Dec 2026 (the end of that day, UTC). If it is not "
        "resolved by then, you get a reminder, and 24 h later the team leads hear about it."
    )
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        assert theme.resolution_due_at == datetime(2026, 12, 11, tzinfo=UTC)
        [audit] = session.exec(select(AuditEvent).where(AuditEvent.action == "due")).all()
        assert (audit.actor, audit.detail) == ("dana", "fix date 2026-12-10")
    assert press(service, "dana", SetStatus(1, "in_progress")).ok  # acknowledged and updated: only the date is due
    inbox = Inbox()
    clock.now = datetime(2026, 12, 10, 23, 59, tzinfo=UTC)
    assert chased(service, inbox).reminders == ()
    clock.now = datetime(2026, 12, 11, 0, 0, tzinfo=UTC)
    assert chased(service, inbox).reminders == ("T-1:resolve",)
    [reminder] = [item for item in inbox.to("dana") if item.text.startswith("Reminder")]
    assert f"T-1 “{title}” was due to be fixed by Thu 10 Dec 2026, the date you set" in reminder.text
    assert "/friction status T-1 resolved <what changed>" in reminder.text and "/friction due T-1" in reminder.text
    # A new date is a new deadline; resolving it ends the chase.
    assert ask(service, "dana", "due T-1 2026-12-14").ok
    clock.now = datetime(2026, 12, 15, 0, 0, tzinfo=UTC)
    assert press(service, "dana", SetStatus(1, "resolved", "self-approval up to $150")).ok
    assert chased(service, inbox) == Chased()
    assert not any(item.text.startswith("Escalation") for item in inbox.seen)


def test_the_digest_lists_every_missed_deadline_the_chase_counts(service, clock):
    from bot.publish import compose_for
    from digests.digest import IsoWeek
    from digests.render import render_markdown

    owned_theme(service)
    assert ask(service, "dana", "due T-1 2026-11-20").ok
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok  # on time, but never updated
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # past the fix date, not yet 7 days in
    digest = compose_for(service, IsoWeek(2026, 47))
    [late] = digest.overdue
    assert (late.key, late.missed) == ("T-1", ("past its fix date",))
    clock.now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # and now the first update is late too
    [late] = compose_for(service, IsoWeek(2026, 47)).overdue
    assert late.missed == ("no update in time", "past its fix date")
    assert "**T-1**" in render_markdown(compose_for(service, IsoWeek(2026, 47))).split("Overdue")[-1]
    assert press(service, "dana", SetStatus(1, "resolved", "self-approval up to $150")).ok
    assert compose_for(service, IsoWeek(2026, 47)).overdue == ()


def test_the_fix_date_command_explains_what_is_wrong(service, clock):
    ask(service, "U1", REFUND)
    assert ask(service, LEAD, "due T-1 2026-12-10").text.startswith("T-1 has no owner yet: assign one first")
    assert ask(service, LEAD, "assign T-1 @dana").ok
    cases = {
        ("dana", "due T-1 10/12/2026"): "“10/12/2026” is not a date. Write it as year-month-day: "
        "/friction due T-1 2026-12-02",
        ("dana", "due T-1 2026-02-30"): "“2026-02-30” is not a date.",
        ("dana", "due T-1 2026-11-17"): "Tue 17 Nov 2026 is in the past. Pick today or a later day",
        ("dana", "due T-9 2026-12-10"): "There is no theme T-9.",
        ("U7", "due T-1 2026-12-10"): "Only team leads can set the fix date of a theme they do not own.",
        ("dana", "due T-1"): "Usage: due T-12 2026-12-10",
    }
    for (user, text), expected in cases.items():
        reply = ask(service, user, text)
        assert not reply.ok and reply.text.startswith(expected), (text, reply.text)
    assert ask(service, "dana", "due T-1 2026-11-18").ok  # today is fine: due at its end
    # A lead may set it too; the owner hears.
    reply = ask(service, LEAD, "due T-1 by 2026-12-01")
    assert reply.ok and "its owner gets a reminder" in reply.text
    [told] = reply.notifications
    assert told.to.id == "dana" and "due to be fixed by Tue 01 Dec 2026 (set by a team lead)" in told.text
    assert ask(service, "dana", "due T-1 off").text.endswith("has no fix date now.")
    assert ask(service, LEAD, "due T-1 2026-12-01").ok
    assert ask(service, LEAD, "assign T-1 @lee").ok  # a new owner makes their own promise
    with Session(service.engine) as session:
        assert session.get(Theme, 1).resolution_due_at is None
    assert press(service, "lee", SetStatus(1, "resolved", "done")).ok
    assert ask(service, "lee", "due T-1 2026-12-10").text == "T-1 is already resolved: it needs no fix date."
