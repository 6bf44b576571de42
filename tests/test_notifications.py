"""Owners and reporters hear from the core: assignment DMs, "you said, we did", the App Home,
sealed reporters and digest claims, on SQLite and PostgreSQL."""

from datetime import timedelta

from sqlmodel import Session, select

from bot.messages import Person, Request
from bot.sealing import Sealer
from bot.service import FrictionService
from digests.embeddings import HashingEmbedder
from storage import queries
from storage.db import session_scope
from storage.models import DigestRun, Submission, Theme, Vote
from tests.conftest import LEAD, ask

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"
HOLD = "hold times on the phone line are over forty minutes every evening"


def press(service, user, action, value, **extra):
    return service.press(Request(user=user, text="", platform="test", **extra), action, value)


def test_assign_notifies_the_new_owner_with_quotes_trend_and_status_buttons(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    reply = ask(service, LEAD, "assign T-1 @dana")
    [note] = reply.notifications
    assert note.user == "dana" and note.platform == "test"
    assert "You now own T-1" in note.text and "2 submissions from 2 people" in note.text
    fields = dict(note.sections[0].fields)
    assert fields["Submissions"] == "2" and fields["Weekly trend"].startswith("0 · 0 · 0 · 0 · 0 · 2")
    assert note.sections[1].text.count("“") == 2
    assert [(b.label, b.value, b.needs_note) for b in note.buttons] == [
        ("Acknowledge", "1:acknowledged", False),
        ("In progress", "1:in_progress", False),
        ("Resolved", "1:resolved", True),
        ("Won't fix", "1:wont_fix", True),
    ]
    assert reply.sections[0].fields == (("Owner", "dana"),)
    assert isinstance(reply.sections[0].fields[0][1], Person)


def test_status_buttons_and_resolution_reaches_every_reporter_anonymous_ones_too(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", "anon " + REFUND_2)
    ask(service, "U3", "metoo T-1")
    ask(service, LEAD, "assign T-1 dana")
    assert press(service, "dana", "status", "1:acknowledged").ok
    refused = press(service, "dana", "status", "1:resolved")
    assert not refused.ok and "add a note" in refused.text
    assert not press(service, "U7", "status", "1:in_progress").ok  # neither owner nor lead
    assert press(service, "dana", "status", "1:bogus").text == "That button is no longer valid."
    reply = press(service, "dana", "status", "1:resolved:self-approval up to $150: from Monday")
    assert reply.ok and "3 reporters will hear about it" in reply.text
    assert sorted(n.user for n in reply.notifications) == ["U1", "U2", "U3"]
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
    assert press(service, "dana", "status", "1:in_progress").notifications == ()


def test_assign_button_takes_theme_and_user(service):
    ask(service, "U1", REFUND)
    assert not press(service, "U1", "assign", "1:U777").ok
    reply = press(service, LEAD, "assign", "1:U777")
    assert reply.ok and reply.notifications[0].user == "U777"
    assert press(service, LEAD, "assign", "1:").text == "That button is no longer valid."


def test_leads_by_group_membership_reported_by_the_adapter(engine, settings, clock):
    service = FrictionService(engine, replace_settings(settings, "@cx-leads"), HashingEmbedder(), clock=clock)
    ask(service, "U1", REFUND)
    assert not ask(service, "U5", "assign T-1 @dana").ok
    grouped = service.handle(
        Request(user="U5", text="assign T-1 @dana", platform="test", groups=frozenset({"cx-leads"}))
    )
    assert grouped.ok
    other = service.handle(Request(user="U6", text="assign T-1 @x", platform="test", groups=frozenset({"agents"})))
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
    agent = service.home(Request(user="U1", text="", platform="test"))
    assert agent.text.startswith("Your last 1 submissions") and "S-1" in agent.sections[0].title
    board = service.home(Request(user=LEAD, text="", platform="test"))
    assert board.text == "Theme board: 2 open themes, 1 without an owner."
    titles = [s.title for s in board.sections if s.title.startswith("T-")]
    assert titles[0].startswith("T-1") and titles[1].startswith("T-2")  # unowned first
    first = board.sections[0]
    assert first.buttons[0].action == "assign" and first.buttons[0].value == "1"
    assert dict(first.fields)["Last 7 days"] == "3 (+2)"  # 3 in the last 7 days, 1 the 7 before
    assert any(s.title == "Your own submissions" for s in board.sections)


def test_handle_submission_never_reads_text_as_a_command(service):
    reply = service.handle_submission(Request(user="U1", text="themes", platform="test"))
    assert reply.text.startswith("Logged as S-1")
    too_long = service.handle_submission(Request(user="U1", text="x" * 5000, platform="test"))
    assert not too_long.ok and "5,000 characters" in too_long.text


def test_retried_delivery_is_marked_duplicate(service):
    first = ask(service, "U1", REFUND, event_id="Ev1")
    again = ask(service, "U1", REFUND, event_id="Ev1")
    assert not first.duplicate and again.duplicate and again.text == first.text


def test_digest_claim_is_taken_once_and_a_dead_claim_is_taken_over(engine, clock):
    now = clock()

    def claim(at):
        with session_scope(engine) as session:
            return queries.claim_digest(
                session, target="slack:C1", period="2026-W46", at=at, stale_before=at - timedelta(minutes=30)
            )

    assert claim(now)
    assert not claim(now + timedelta(minutes=5))  # another replica, same week: refused
    assert claim(now + timedelta(minutes=31))  # the first claimant died before posting: taken over
    with session_scope(engine) as session:
        queries.finish_digest(session, target="slack:C1", period="2026-W46", at=now)
    assert not claim(now + timedelta(days=1))  # posted: never again
    with session_scope(engine) as session:
        assert queries.claim_digest(session, target="slack:C2", period="2026-W46", at=now, stale_before=now)
        queries.release_digest(session, target="slack:C2", period="2026-W46")  # a failed post gives it back
    assert claim(now) is False
    with Session(engine) as session:
        assert len(session.exec(select(DigestRun)).all()) == 1
