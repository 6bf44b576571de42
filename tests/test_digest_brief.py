"""The digest as a brief: three sentences that name themes, one set of numbers that adds up,
and the week's changes to themes with who made them."""

import json
import re
from datetime import timedelta

from sqlmodel import Session, select

from adapters.teams.cards import digest_cards
from bot.actions import DifferentIssue, MakeAnonymous
from bot.publish import compose_for
from digests.blocks import render_slack
from digests.digest import IsoWeek
from digests.render import _markdown_escape, growth_label, render_html, render_markdown, render_text
from storage.models import AuditEvent, Submission, Theme
from tests.conftest import LEAD, ask, press

REFUNDS = [
    "refunds over fifty dollars wait three days for supervisor approval",
    "supervisor approval for refunds takes days",
    "another refund stuck waiting on supervisor approval",
]
HOLDS = [
    "phone hold times over forty minutes in the evening",
    "callers on hold for forty minutes again tonight",
    "evening phone hold times are terrible, forty minutes",
    "forty minute phone hold times every evening",
]


def test_the_brief_names_what_is_new_growing_and_stuck_and_the_figures_add_up(service, clock):
    clock.advance(days=-7)
    ask(service, "U8", "refund waiting on supervisor approval again")  # last week: T-1 is known
    clock.advance(days=7)
    for n, text in enumerate(REFUNDS + HOLDS):
        ask(service, f"U{n}", text)
    ask(service, "U19", "the printer on floor two jams every morning")
    ask(service, "U4", "undo S-6")  # withdrawn by its sender
    with Session(service.engine) as session:  # hidden by a lead
        hidden = session.get(Submission, 9)
        hidden.hidden = True
        session.add(hidden)
        session.commit()
    service.theming.recluster(clock())
    ask(service, LEAD, "rename T-2 Evening hold times")
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))

    new, growing, stuck = digest.brief
    assert new == "New this week: T-2 Evening hold times."
    assert growing.startswith("Growing: T-1 ")  # from 1 last week to 3
    assert "T-1" not in new and "T-2" not in growing  # each named once
    assert stuck.startswith("Stuck: 2 themes need an owner (T-")
    accounting = digest.accounting
    assert (accounting.themed, accounting.hidden, accounting.withdrawn, accounting.unthemed) == (6, 1, 1, 0)
    assert accounting.total == digest.submissions == 8
    assert accounting.themes == digest.active_themes == len(digest.top) == 2
    assert sum(line.this_week for line in digest.top) == accounting.themed
    assert any(line.startswith(f"Rename by {LEAD}: ") for line in digest.curation)

    footer = "8 submissions this week: 6 in 2 themes, 1 hidden by a team lead, 1 withdrawn by their senders."
    for rendered in (render_text(digest), render_markdown(digest), render_html(digest)):
        assert "Stuck: 2 themes need an owner" in rendered
        assert footer in rendered.replace("\\", "")
        assert "Rename by" in rendered


def test_an_anonymous_sender_who_says_different_issue_is_not_named_in_the_digest(service, clock):
    for n, text in enumerate(REFUNDS):
        ask(service, f"U{n}", text)
    ask(service, "U-SECRET", "anon refund approval waits days on a supervisor again")  # S-4
    assert press(service, "U-SECRET", DifferentIssue(4)).ok
    names = {("test", "U-SECRET"): "Sam Secret", ("test", LEAD): "Lee Lead"}
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone), names)

    assert [line.split(" -> ")[0] for line in digest.curation] == ["Split by an anonymous sender: S-4 from T-1"]
    for rendered in (render_text(digest), render_markdown(digest), render_html(digest)):
        assert "Sam Secret" not in rendered and "U-SECRET" not in rendered
        assert "Split by an anonymous sender" in rendered.replace("\\", "")
    with Session(service.engine) as session:  # nor is the id in the database in clear
        assert "U-SECRET" not in [event.actor for event in session.exec(select(AuditEvent))]


def test_a_sender_who_moves_their_report_then_makes_it_anonymous_is_not_named_for_the_move(service, clock):
    for n, text in enumerate(REFUNDS):
        ask(service, f"U{n}", text)
    ask(service, "U-SECRET", "refund approval waits days on a supervisor again")  # S-4, signed
    assert press(service, "U-SECRET", DifferentIssue(4)).ok  # moved to a theme of its own, T-2
    assert press(service, "U-SECRET", MakeAnonymous(4)).ok  # then: "my name appears nowhere"
    names = {("test", "U-SECRET"): "Sam Secret"}
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone), names)
    assert [line.split(" -> ")[0] for line in digest.curation] == ["Split by an anonymous sender: S-4 from T-1"]
    with Session(service.engine) as session:
        assert "U-SECRET" not in [event.actor for event in session.exec(select(AuditEvent))]


def test_the_headers_figures_by_kind_add_up_to_its_total_withdrawn_ones_included(service, clock):
    for n, text in enumerate(REFUNDS + HOLDS[:1]):
        ask(service, f"U{n}", text)
    ask(service, "U3", "undo S-4")
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))

    assert digest.submissions == 4
    assert sum(n for _, n in digest.by_kind) == 4 and digest.by_kind[-1] == ("withdrawn", 1)
    assert " · withdrawn 1" in render_markdown(digest).splitlines()[2]
    assert " · withdrawn 1</p>" in render_html(digest)


def test_an_owners_display_name_is_text_in_the_markdown_digest_wherever_it_appears(service, clock):
    clock.advance(days=-7)
    ask(service, "U8", "refund waiting on supervisor approval again")  # last week: T-1 grows from 1
    ask(service, LEAD, "assign T-1 @U0SAM")  # never acknowledged: overdue by this week
    clock.advance(days=7)
    for n, text in enumerate(REFUNDS + HOLDS):
        ask(service, f"U{n}", text)
    ask(service, LEAD, "assign T-2 @U0SAM")
    assert ask(service, "U0SAM", "status T-2 resolved evening rota has two more people").ok
    name = "Sam **<img src=x onerror=alert(1)>** [ops](http://evil)"
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone), {("test", "U0SAM"): name})
    assert digest.growing and digest.overdue and digest.resolved  # the name is in every section

    markdown = render_markdown(digest)
    assert not re.search(r"(?<!\\)(<img|\]\(http|\*\*<)", markdown)  # no tag, link or emphasis of theirs
    shown = [line for line in markdown.splitlines() if "Sam" in line]
    assert len(shown) == 5 and all(_markdown_escape(name) in line for line in shown), shown


def test_a_theme_first_reported_ten_weeks_ago_is_not_new_when_it_is_reported_again(service, clock):
    clock.advance(days=-70)  # before the eight weeks the trend shows
    for n, text in enumerate(REFUNDS):
        ask(service, f"U{n}", text)
    clock.advance(days=70)
    assert "joined T-1" in ask(service, "U5", "refund approval stuck with a supervisor for days").text
    for n, text in enumerate(HOLDS[:2]):
        ask(service, f"U{n}", text)
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))

    new, growing, _ = digest.brief
    assert new.startswith("New this week: T-2 ") and "T-1" not in new + growing
    assert [(line.key, growth_label(line)) for line in digest.top] == [
        ("T-2", "new this week"),
        ("T-1", "1 this week, none the week before"),
    ]
    assert "1 this week, none the week before" in render_text(digest)


def test_the_brief_counts_new_themes_and_those_back_after_being_resolved_over_the_whole_week(service, clock):
    now, weeks_ago = clock(), clock() - timedelta(weeks=3)
    with Session(service.engine) as session:
        themes = [Theme(title=f"Fresh problem {n}", created_at=now, updated_at=now) for n in range(5)]
        themes += [
            Theme(title=f"Old problem {n}", created_at=weeks_ago, updated_at=now, status="resolved") for n in range(2)
        ]
        session.add_all(themes)
        session.flush()
        for theme in themes:
            back = theme.status == "resolved"
            theme.status_changed_at = now - timedelta(weeks=2) if back else None
            reports = [(weeks_ago, "U9"), (now, "U8")] if back else [(now, f"U{n}") for n in range(3)]
            for n, (at, who) in enumerate(reports):
                session.add(Submission(text=f"{theme.title} {n}", created_at=at, theme_id=theme.id, author_hash=who))
            theme.size = len(reports)
        session.commit()
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))

    new = digest.brief[0]
    assert new == (
        "New this week: T-1 Fresh problem 0, T-2 Fresh problem 1, T-3 Fresh problem 2 and 2 more; "
        "T-6 Old problem 0 and T-7 Old problem 1 came back after being resolved."
    )


def test_top_themes_end_with_how_many_more_and_the_total_in_every_rendering(service, clock):
    now = clock()
    with Session(service.engine) as session:
        for n in range(9):  # nine themes this week; T-9 has the most reports
            theme = Theme(title=f"Problem number {n + 1}", created_at=now, updated_at=now, size=n + 1)
            session.add(theme)
            session.flush()
            for k in range(n + 1):
                session.add(
                    Submission(text=f"problem {n} report {k}", created_at=now, theme_id=theme.id, author_hash=f"U{k}")
                )
        session.commit()
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))

    assert [line.key for line in digest.top] == ["T-9", "T-8", "T-7", "T-6", "T-5", "T-4", "T-3"]
    slack = " ".join(block["text"]["text"] for m in render_slack(digest) for block in m["blocks"] if "text" in block)
    teams = json.dumps(digest_cards(digest), ensure_ascii=False)
    for rendered in (render_text(digest), render_markdown(digest), render_html(digest), slack, teams):
        assert "and 2 more (9 in all)" in rendered


def test_one_reporter_reads_one_person_in_every_rendering(service, clock):
    """A theme one person reported, resolved this week: "1 person", "told 1 person", never "1 people"."""
    ask(service, "U1", REFUNDS[0])
    assert ask(service, LEAD, "status T-1 resolved Self-approval up to $150 from Monday").ok
    digest = compose_for(service, IsoWeek.containing(clock(), service.settings.zone))
    slack = json.dumps(list(render_slack(digest, owner=str)))
    teams = json.dumps(digest_cards(digest))
    for rendered in (render_text(digest), render_markdown(digest), render_html(digest), slack, teams):
        assert "1 people" not in rendered and "1 person" in rendered
