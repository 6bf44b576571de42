"""Nobody singled out: quotes, examples and breakdowns only for groups of FRICTIONLOG_MIN_GROUP
distinct reporters, in the digest, on theme cards, in `/friction theme` and the owner's DM."""

import pytest
from pydantic import ValidationError

from bot.publish import compose_for
from bot.settings import Settings
from digests.digest import IsoWeek
from digests.render import render_markdown
from tests.conftest import LEAD, ask

REPORTS = [
    "refunds over fifty dollars wait three days for supervisor approval",
    "supervisor approval for refunds takes days, customer furious",
    "another refund stuck waiting on supervisor approval",
    "refund approval by a supervisor is far too slow",
    "customer waited a week for refund approval from the supervisor",
]


def week_of(service) -> IsoWeek:
    return IsoWeek.containing(service.clock(), service.settings.zone)


def test_below_the_minimum_group_a_theme_shows_by_title_and_count_only(service, clock):
    for n, text in enumerate(REPORTS[:4]):
        ask(service, f"U{n}", text)
    service.theming.recluster(clock())
    digest = compose_for(service, week_of(service))
    [line] = digest.top
    assert line.reporters == 4 and line.quotes == ()
    markdown = render_markdown(digest)
    assert "waited" not in markdown and "furious" not in markdown
    assert "at least 5 people" in markdown
    card = ask(service, "U9", f"theme {line.key}")
    shown = card.text + str(card.sections)
    assert "furious" not in shown and "once 5 people have reported it in their own words (4 people so far)" in shown
    owner_dm = ask(service, LEAD, f"assign {line.key} @dana").notifications[0]
    assert "furious" not in owner_dm.text + str(owner_dm.sections)


def test_at_the_minimum_group_quotes_appear(service, clock):
    for n, text in enumerate(REPORTS):
        ask(service, f"U{n}", text)
    service.theming.recluster(clock())
    digest = compose_for(service, week_of(service))
    [line] = digest.top
    assert line.reporters == 5 and len(line.quotes) == 2
    card = ask(service, "U9", f"theme {line.key}")
    assert "Recent reports" in str(card.sections) and "supervisor" in str(card.sections)


def test_me_too_votes_count_as_people_but_never_unlock_one_writers_words(service, clock):
    ask(service, "U1", REPORTS[0] + " anon")  # one writer, anonymous
    for n in range(2, 6):
        assert ask(service, f"U{n}", "metoo T-1").ok  # four colleagues agree, in no words of their own
    card = ask(service, "U9", "theme T-1")
    shown = card.text + str(card.sections)
    assert "Reported by" in shown and "5 people" in shown  # they count behind it
    assert "Recent reports" not in shown and "fifty dollars" not in shown  # the only words are one person's
    assert "(1 person so far)" in shown
    digest = compose_for(service, week_of(service))
    assert [line.quotes for line in digest.top] == [()]
    owner_dm = ask(service, LEAD, "assign T-1 @dana").notifications[0]
    assert "fifty dollars" not in owner_dm.text + str(owner_dm.sections)


def test_one_person_saying_it_five_times_is_one_reporter(service, clock):
    for text in REPORTS:
        ask(service, "U1", text)
    clock.advance(minutes=1)
    digest = compose_for(service, week_of(service))
    assert all(line.quotes == () for line in digest.top)


def test_unsigned_imported_rows_add_nobody_so_they_unlock_no_area_breakdown(service, clock):
    from bot.transfer import import_rows

    # A spreadsheet's rows, one an hour on Tuesday of this week, none saying who sent it.
    rows = [(f"row {n}", {"text": f"{text} #billing", "date": f"2026-11-17 0{n}:00"}) for n, text in enumerate(REPORTS)]
    assert import_rows(service, ["text", "date"], rows, recluster=False).imported == 5
    digest = compose_for(service, week_of(service))
    assert digest.submissions == 5 and digest.areas == ()  # five rows without an author are nobody
    assert "By area" not in render_markdown(digest)
    for n, text in enumerate(REPORTS):  # five people who say who they are do make a group
        ask(service, f"U{n}", f"{text} #billing")
    digest = compose_for(service, week_of(service))
    assert digest.areas == (("billing", 10),)
    assert "billing: 10" in render_markdown(digest)


@pytest.mark.parametrize("value", ["2", "0"])
def test_a_minimum_group_below_three_is_refused_at_start_up(value, monkeypatch):
    monkeypatch.setenv("FRICTIONLOG_MIN_GROUP", value)
    with pytest.raises(ValidationError, match="single out one or two people"):
        Settings(_env_file=None)
