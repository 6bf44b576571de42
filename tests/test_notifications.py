"""Owners and reporters hear from the core: assignment DMs, "you said, we did", the App Home,
sealed reporters, the outbox and digest claims, on SQLite and PostgreSQL."""

import base64
import json

from sqlmodel import Session, select

from bot.actions import ActionCodec, AssignOwner, ForgedAction, SetStatus
from bot.messages import Inbound
from bot.people import Person
from bot.publish import Target, queue_weekly_digest
from bot.sealing import Sealer
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from storage import queries
from storage.models import DigestRun, Submission, Theme, Vote
from tests.conftest import LEAD, ask, press

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"
HOLD = "hold times on the phone line are over forty minutes every evening"


def test_assign_notifies_the_new_owner_with_quotes_trend_and_status_buttons(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    reply = ask(service, LEAD, "assign T-1 @dana")
    [note] = reply.notifications
    assert note.to == Person("test", "dana")
    assert "You now own T-1" in note.text and "2 submissions from 2 people" in note.text
    fields = dict(note.sections[0].fields)
    assert fields["Submissions"] == "2" and fields["Weekly trend"].startswith("0 · 0 · 0 · 0 · 0 · 2")
    # Two people: their words are not shown to the owner either (FRICTIONLOG_MIN_GROUP is 5).
    assert note.sections[1].text.count("“") == 0 and "once 5 people have reported it" in note.sections[1].text
    assert [(b.label, b.action) for b in note.buttons] == [
        ("Acknowledge", SetStatus(1, "acknowledged")),
        ("In progress", SetStatus(1, "in_progress")),
        ("Resolved", SetStatus(1, "resolved")),
        ("Won't fix", SetStatus(1, "wont_fix")),
    ]
    assert reply.sections[0].fields == (("Owner", Person("test", "dana")),)


def test_status_buttons_and_resolution_reaches_every_reporter_anonymous_ones_too(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", "anon " + REFUND_2)
    ask(service, "U3", "metoo T-1")
    ask(service, LEAD, "assign T-1 dana")
    assert press(service, "dana", SetStatus(1, "acknowledged")).ok
    refused = press(service, "dana", SetStatus(1, "resolved"))
    assert not refused.ok and "add a note" in refused.text
    assert not press(service, "U7", SetStatus(1, "in_progress")).ok  # neither owner nor lead
    assert not press(service, "dana", SetStatus(1, "acknowledged"), platform="slack").ok  # dana on another platform
    assert press(service, "dana", None).text == "That button is no longer valid."
    reply = press(service, "dana", SetStatus(1, "resolved", "self-approval up to $150: from Monday"))
    assert reply.ok and "3 reporters will hear about it" in reply.text
    assert sorted(n.to.id for n in reply.notifications) == ["U1", "U2", "U3"]
    for notification in reply.notifications:
        assert "T-1" in notification.text and "resolved" in notification.text
        assert notification.sections[0].text == "self-approval up to $150: from Monday"
        assert "U2" not in repr(notification)
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        anonymous = session.exec(select(Submission).where(Submission.anonymous)).one()
        vote = session.exec(select(Vote)).one()
    assert theme.status == "resolved" and theme.acknowledged_at is not None
    # Stored sealed, never in clear, and opened only with the key.
    assert anonymous.author is None and anonymous.reporter_sealed.startswith("gAAAAA")  # a Fernet token
    assert service.sealer.open(anonymous.reporter_sealed) == ("test", "U2")
    assert Sealer("another key").open(anonymous.reporter_sealed) is None
    assert service.sealer.open(vote.voter_sealed) == ("test", "U3")
    # Progress that is not a resolution tells nobody.
    assert press(service, "dana", SetStatus(1, "in_progress")).notifications == ()


def test_assign_button_takes_theme_and_a_person_on_any_platform(service):
    ask(service, "U1", REFUND)
    assert not press(service, "U1", AssignOwner(1, Person("test", "U777"))).ok
    reply = press(service, LEAD, AssignOwner(1, Person("teams", "29:aad-777")))
    assert reply.ok and reply.notifications[0].to == Person("teams", "29:aad-777")
    assert "on Teams" in reply.text
    assert press(service, LEAD, AssignOwner(1)).text == "Choose who should own the theme."


def test_actions_travel_signed_and_a_forged_one_is_refused(service):
    codec = service.codec
    encoded = codec.encode(SetStatus(12, "resolved", "fixed"))
    assert codec.decode(encoded) == SetStatus(12, "resolved", "fixed")
    version, body, signature = encoded.split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=="))
    data["theme_id"] = 13  # someone edits the value a button carries
    edited = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    other_key = ActionCodec("another key").encode(SetStatus(12, "resolved", "fixed"))
    forgeries = (f"{version}.{edited}.{signature}", f"{version}.{body}.AAAAAAAAAAAAAAAA", other_key)
    for forged in (*forgeries, "12:resolved:note", "", "fl1.e30.x", "fl1..", "fl2." + body + "." + signature):
        try:
            codec.decode(forged)
        except ForgedAction:
            continue
        raise AssertionError(f"accepted a forged action: {forged!r}")


def test_leads_by_group_membership_reported_by_the_adapter(engine, settings, clock):
    service = FrictionService(engine, replace_settings(settings, "@cx-leads"), HashingEmbedder(), clock=clock)
    ask(service, "U1", REFUND)
    assert not ask(service, "U5", "assign T-1 @dana").ok
    grouped = service.handle(
        Inbound(user="U5", text="assign T-1 @dana", platform="test", groups=frozenset({"cx-leads"}))
    )
    assert grouped.ok
    other = service.handle(Inbound(user="U6", text="assign T-1 @x", platform="test", groups=frozenset({"agents"})))
    assert not other.ok


def replace_settings(settings, team_leads):
    return settings.model_copy(update={"team_leads": team_leads})


def test_home_agents_see_their_own_and_leads_see_the_board_unowned_and_growing_first(service, clock):
    ask(service, "U1", REFUND)
    ask(service, "U2", HOLD)
    clock.advance(days=8)
    for user in ("U3", "U4", "U5"):
        ask(service, user, REFUND_2)
    ask(service, LEAD, "assign T-2 dana")
    agent = service.handle(Inbound(user="U1", kind="home", platform="test"))
    assert agent.text == "Your last submission:" and "S-1" in agent.sections[0].title
    board = service.handle(Inbound(user=LEAD, kind="home", platform="test"))
    assert board.text == "Theme board: 2 open themes, 1 without an owner."
    titles = [s.title for s in board.sections if s.title.startswith("T-")]
    assert titles[0].startswith("T-1") and titles[1].startswith("T-2")  # unowned first
    first = board.sections[0]
    assert first.buttons[0].action == AssignOwner(1) and first.buttons[0].preset is None
    assert dict(first.fields)["Last 7 days"] == "3 (+2)"  # 3 in the last 7 days, 1 the 7 before
    assert any(s.title == "Your own submissions" for s in board.sections)


def test_handle_submission_never_reads_text_as_a_command(service):
    reply = service.handle(Inbound(user="U1", text="themes", platform="test", kind="submission"))
    assert reply.text.startswith("Logged as S-1")
    too_long = service.handle(Inbound(user="U1", text="x" * 5000, platform="test", kind="submission"))
    assert not too_long.ok and "5,000 characters" in too_long.text


def test_a_retried_delivery_is_run_once_and_answered_once(service):
    first = ask(service, "U1", REFUND, delivery_id="Ev1")
    again = ask(service, "U1", REFUND, delivery_id="Ev1")
    assert not first.duplicate and again.duplicate
    with Session(service.engine) as session:
        assert len(session.exec(select(Submission)).all()) == 1
        assert [m.label for m in queries.outbox_messages(session, states=["pending"])] == ["confirmation of S-1"]


def test_digest_is_queued_once_per_target_and_week(service, clock):
    ask(service, "U1", REFUND)
    clock.advance(days=7)
    targets = [Target("slack", "C1"), Target("teams", "19:exec")]
    first = queue_weekly_digest(service, targets)
    assert [q.result for q in first] == ["queued", "queued"]
    again = queue_weekly_digest(service, targets)  # another replica, or the schedule firing twice
    assert [q.result for q in again] == ["already queued", "already queued"]
    with Session(service.engine) as session:
        assert len(session.exec(select(DigestRun)).all()) == 2
        labels = sorted(m.label for m in queries.outbox_messages(session, states=["pending"]) if m.kind == "digest")
    assert labels == ["digest 2026-W47 to slack:C1", "digest 2026-W47 to teams:19:exec"]
