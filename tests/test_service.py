"""The use cases through the one entry point every platform calls, on SQLite and PostgreSQL."""

from sqlmodel import Session, select

from bot.actions import DifferentIssue, MakeAnonymous
from bot.messages import Inbound
from bot.people import Person
from storage.models import AuditEvent, Submission, Theme
from tests.conftest import LEAD, ask, press

REFUND = "refunds over $50 need supervisor approval and it takes three days"
REFUND_2 = "supervisor approval for refunds over $50 takes days, customers furious"
HOLD = "hold times on the phone line are over forty minutes every evening"


def stored(service) -> list[Submission]:
    with Session(service.engine) as session:
        return list(session.exec(select(Submission).order_by(Submission.id)))


def test_submit_confirms_theme_and_redacts(service):
    reply = ask(service, "U1", "cx jane@example.com card 4111 1111 1111 1111 " + REFUND + " #refunds")
    assert reply.ok
    assert reply.text.startswith("Logged as S-1.") and "joined T-1" in reply.text
    assert "you are the first" in reply.text
    assert [b.label for b in reply.buttons] == ["Undo", "Make anonymous", "Different issue"]
    fields = dict(reply.sections[0].fields)
    assert fields == {"Reported by": "1 person", "Owner": "unowned", "Status": "new"}
    [submission] = stored(service)
    assert "jane@example.com" not in submission.text and "4111" not in submission.text
    assert "[email]" in submission.text and "[card]" in submission.text
    assert submission.tags == "refunds" and submission.kind == "policy"
    assert submission.author == "U1" and submission.embedding is not None


def test_second_similar_report_joins_the_same_theme(service):
    ask(service, "U1", REFUND)
    reply = ask(service, "U2", REFUND_2)
    assert "joined T-1" in reply.text and "2 people reported this" in reply.text
    reply = ask(service, "U3", HOLD)
    assert "joined T-2" in reply.text


def test_platform_retry_never_duplicates(service):
    first = ask(service, "U1", REFUND, delivery_id="Ev1")
    again = ask(service, "U1", REFUND, delivery_id="Ev1")
    assert first.text.startswith("Logged as S-1") and again.duplicate
    assert len(stored(service)) == 1


def test_anonymous_submission_keeps_no_name(service):
    reply = ask(service, "U1", "anon " + REFUND, channel="D-U1")
    assert "(anonymously)" in reply.text
    assert "Make anonymous" not in [b.label for b in reply.buttons]
    [submission] = stored(service)
    assert submission.author is None and submission.anonymous
    assert submission.channel is None  # a DM channel would name the sender
    assert "U1" not in (submission.author_hash or "")
    # The sender still finds it and can take it back.
    assert "S-1" in ask(service, "U1", "mine").sections[0].title


def test_make_anonymous_button(service):
    ask(service, "U1", REFUND, channel="D-U1")
    reply = press(service, "U1", MakeAnonymous(1))
    assert "now anonymous" in reply.text
    assert stored(service)[0].author is None and stored(service)[0].channel is None


def test_the_length_limit_counts_the_text_as_stored(service):
    # 800 short addresses are 4,000 characters typed and 5,600 once each becomes "[email]".
    text = " ".join(["a@b.c"] * 666) + " x"
    assert len(text) <= 4000
    reply = ask(service, "U1", text)
    assert not reply.ok and "frictionlog takes up to 4,000" in reply.text
    assert stored(service) == []


def test_undo_own_submission_within_24_hours(service, clock):
    ask(service, "U1", REFUND)
    assert not ask(service, "U2", "undo S-1").ok  # not theirs
    clock.advance(hours=23)
    assert ask(service, "U1", "undo S-1").text == "Done: S-1 is withdrawn."
    [withdrawn] = stored(service)
    assert withdrawn.withdrawn_at == clock() and withdrawn.text == "" and withdrawn.theme_id is None
    assert withdrawn.author is None and withdrawn.author_hash is None and withdrawn.reporter_sealed is None
    # Its id is never handed out again, and who withdrew it and when is on record.
    assert ask(service, "U2", REFUND_2).text.startswith("Logged as S-2")
    with Session(service.engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "withdraw")).all()
    assert (event.actor, event.actor_platform, event.created_at) == ("U1", "test", clock())
    assert event.detail == "S-1 withdrawn by its sender (text removed)"


def test_an_anonymous_withdrawal_is_recorded_without_the_id(service):
    ask(service, "U-SECRET", "anon " + REFUND)
    assert ask(service, "U-SECRET", "undo S-1").ok
    with Session(service.engine) as session:
        [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "withdraw")).all()
    assert event.actor == "an anonymous sender" and event.actor_platform is None


def test_a_withdrawn_report_leaves_no_words_behind(service):
    ask(service, "U1", REFUND + " at the Leeds branch")  # opens T-1: its words name the theme
    ask(service, "U2", REFUND_2)
    ask(service, "U1", "undo S-1")
    shown = ask(service, "U9", "theme T-1")
    assert "Leeds" not in shown.text + str(shown.sections)
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        assert (theme.size, theme.summary, theme.example_submission_id) == (1, REFUND_2, 2)
    ask(service, "U2", "undo S-2")  # the last one: nothing of it stays either
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        assert (theme.size, theme.title, theme.summary, theme.centroid) == (0, "Withdrawn", "", None)


def test_a_report_moved_to_its_own_theme_then_withdrawn_leaves_no_words_in_the_theme_it_left(service):
    """S-1 is T-1's example. Its sender says "Different issue", then takes it back: its words
    leave T-1's example too, not only the theme it was in when withdrawn."""
    service.settings = service.settings.model_copy(update={"min_group": 3})  # T-1's example is shown
    ask(service, "U1", REFUND + " at the Leeds branch")
    for n, text in enumerate((REFUND_2, REFUND_2 + " again", REFUND + " today")):
        assert "joined T-1" in ask(service, f"U{n + 2}", text).text
    assert press(service, "U1", DifferentIssue(1)).ok
    assert ask(service, "U1", "undo S-1").ok
    shown = ask(service, "U9", "theme T-1")
    assert "Leeds" not in shown.text + str(shown.sections)
    with Session(service.engine) as session:
        assert not [t.key for t in session.exec(select(Theme)) if "Leeds" in t.summary + t.title]


def test_undo_after_24_hours_is_refused(service, clock):
    ask(service, "U1", REFUND)
    clock.advance(hours=25)
    reply = ask(service, "U1", "undo S-1")
    assert not reply.ok and "older than 24 hours" in reply.text
    assert len(stored(service)) == 1


def test_me_too_counts_a_person_once(service):
    ask(service, "U1", REFUND)
    assert "2 people" in ask(service, "U2", "metoo T-1").text
    assert "already counted" in ask(service, "U2", "metoo T-1").text
    assert "2 people" in ask(service, "U9", "theme T-1").sections[0].fields[0][1]


def test_nobody_but_a_lead_moves_an_unowned_theme(service):
    ask(service, "U1", REFUND)
    # Chat platforms may send no display name: an unowned theme must not match a missing one.
    request = Inbound(user="U2", user_name=None, text="status T-1 resolved fixed it", platform="test")
    reply = service.handle(request)
    assert not reply.ok and reply.text.startswith("Only team leads can change the status")
    done = ask(service, LEAD, "status T-1 resolved fixed it")
    assert done.text.endswith("Note: fixed it. 1 reporter will hear about it.")


def test_non_lead_cannot_curate(service):
    ask(service, "U1", REFUND)
    for command in ("assign T-1 @dana", "rename T-1 Refunds", "merge T-1 into T-1", "split T-1 S-1"):
        reply = ask(service, "U1", command)
        assert not reply.ok and reply.text.startswith("Only team leads can")


def test_lead_assigns_and_owner_moves_status(service, clock):
    ask(service, "U1", REFUND)
    reply = ask(service, LEAD, "assign T-1 @dana")
    assert "has a new owner" in reply.text and "24 h" in reply.text
    assert dict(reply.sections[0].fields)["Owner"] == Person("test", "dana")
    refused = ask(service, "dana", "status T-1 resolved")
    assert not refused.ok and "add a note" in refused.text
    assert ask(service, "dana", "status T-1 in-progress talking to finance").ok
    assert ask(service, "dana", "status T-1 resolved self-approval up to $150 from Monday").ok
    assert not ask(service, "U7", "status T-1 new").ok  # neither owner nor lead
    with Session(service.engine) as session:
        theme = session.get(Theme, 1)
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert theme.status == "resolved" and theme.status_note.startswith("self-approval")
    assert theme.acknowledged_at is not None
    assert actions == ["assign", "status", "status"]
    # The fix did not hold: reopened without a word, the theme no longer shows its resolution note.
    assert "Latest note: self-approval" in ask(service, "U1", "theme T-1").text
    assert ask(service, "dana", "status T-1 in-progress").ok
    assert "Latest note" not in ask(service, "U1", "theme T-1").text
    assert ask(service, "dana", "status T-1 acknowledged finance is looking again").ok
    assert "Latest note: finance is looking again" in ask(service, "U1", "theme T-1").text


def test_rename_merge_and_pointer(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", HOLD)
    assert ask(service, LEAD, "rename T-2 Evening hold times").ok
    reply = ask(service, LEAD, "merge T-1 into T-2")
    assert "1 submission moved" in reply.text and "T-1 now points to T-2" in reply.text
    shown = ask(service, "U1", "theme T-1")
    assert shown.text.startswith("T-1 was merged into T-2.")
    assert "Evening hold times" in shown.text
    assert len(ask(service, "U1", "themes").sections) == 1


def test_a_rename_to_another_open_themes_title_is_refused(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", HOLD)
    assert ask(service, LEAD, "rename T-1 Refund approvals take days").ok
    refused = ask(service, LEAD, "rename T-2 refund approvals take days")
    assert not refused.ok and refused.text.startswith("T-1 is already called “Refund approvals take days”.")
    assert "/friction merge T-2 into T-1" in refused.text
    assert ask(service, LEAD, "rename T-1 Refund approvals take DAYS").ok  # its own title, recased


def test_a_rename_to_another_open_themes_title_in_other_case_is_refused_beyond_ascii(service):
    """SQLite's lower() folds only A to Z: "ÉCRAN" and "écran" must be one title on both databases."""
    ask(service, "U1", REFUND)
    ask(service, "U2", HOLD)
    assert ask(service, LEAD, "rename T-1 Écran de remboursement bloqué").ok
    refused = ask(service, LEAD, "rename T-2 ÉCRAN DE REMBOURSEMENT BLOQUÉ")
    assert not refused.ok and refused.text.startswith("T-1 is already called “Écran de remboursement bloqué”.")


def test_a_split_through_a_merged_key_names_the_theme_it_left(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", HOLD)
    ask(service, "U3", "callers on hold for forty minutes in the evening")
    assert ask(service, LEAD, "merge T-1 into T-2").ok  # T-1 now leads to T-2
    reply = ask(service, LEAD, "split T-1 S-1")  # the lead types the key they know
    assert reply.text.startswith("Split 1 submission off T-2 into T-3")
    with Session(service.engine) as session:
        [split] = session.exec(select(AuditEvent).where(AuditEvent.action == "split")).all()
    assert split.detail == "S-1 from T-2 -> T-3"  # what the digest's footer shows


def test_unknown_theme_and_bad_input_get_a_sentence(service):
    assert ask(service, "U1", "theme T-99").text == "There is no theme T-99. Try /friction themes."
    long = ask(service, "U1", "x" * 5000)
    assert not long.ok and "5,000 characters" in long.text and "4,000" in long.text
    assert "How to use frictionlog" in ask(service, "U1", "   ").text
    assert stored(service) == []


def test_different_issue_moves_it_to_its_own_theme(service):
    ask(service, "U1", REFUND)
    ask(service, "U2", REFUND_2)
    reply = press(service, "U2", DifferentIssue(2))
    assert "new theme, T-2" in reply.text
    moved = stored(service)[1]
    assert moved.theme_id == 2 and moved.pinned
    # The new theme has a centre at once: the same problem reported again joins it.
    assert "joined T-2" in ask(service, "U3", REFUND_2).text


def test_mistyped_commands_get_their_usage_and_store_nothing(service):
    for text in ("undo", "metoo", "anon", "assign T-6", "merge T-62 T-57", "rename T-57", "themes refund", "T-11"):
        reply = ask(service, "U1", text)
        assert not reply.ok and "Nothing was logged" in reply.text, text
    assert stored(service) == []
    assert ask(service, "U1", "undo button in the app is broken").text.startswith("Logged as S-1")


def test_imported_rows_without_an_author_count_as_nobody(service):
    from bot.transfer import import_rows
    from storage import queries

    rows = [(f"row {n}", {"text": REFUND + f" case {n}"}) for n in range(2, 6)]
    summary = import_rows(service, ["text"], rows, recluster=False)
    assert summary.imported == 4 and summary.undated == 4
    ask(service, "U1", REFUND)
    with Session(service.engine) as session:
        [theme] = queries.live_themes(session)
        assert theme.size == 5 and queries.reporter_count(session, theme_id=theme.id) == 1  # only U1 is someone


def test_a_status_that_needs_a_note_is_asked_for_as_it_is_typed(service):
    """The example in the refusal is a command the grammar reads: `wont-fix`, never the stored
    `wont_fix` (README: `new`, `acknowledged`, `in-progress`, `resolved`, `wont-fix`)."""
    ask(service, "U1", REFUND)
    refused = ask(service, LEAD, "status T-1 wont-fix")
    assert not refused.ok
    assert "Example: /friction status T-1 wont-fix <what changed>" in refused.text


def test_counts_of_one_read_in_the_singular(service):
    """ "1 people", "1 submissions": a lone reporter's chat reads as English."""
    ask(service, "U1", REFUND)
    assert ask(service, "U1", "mine").text == "Your last submission:"
    assert ask(service, "U1", "metoo T-1").text.endswith("now has 1 person behind it.")
    assert ask(service, "U1", "metoo T-1").text == "You are already counted on T-1 (1 person)."
