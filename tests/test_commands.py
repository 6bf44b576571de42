import pytest

from bot import commands as c


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/friction refunds over $50 need a supervisor", c.Submit("refunds over $50 need a supervisor")),
        ("the returns window is too short", c.Submit("the returns window is too short")),
        ("anon my manager blocks every waiver", c.Submit("my manager blocks every waiver", anonymous=True)),
        ("/friction themes", c.Themes()),
        ("theme T-12", c.ShowTheme(12)),
        ("theme 12", c.ShowTheme(12)),
        ("/friction assign T-12 @dana", c.Assign(12, "dana")),
        ("assign T-12 to dana", c.Assign(12, "dana")),
        ("status T-12 in-progress talking to billing", c.SetStatus(12, "in_progress", "talking to billing")),
        ("status T-3 resolved", c.SetStatus(3, "resolved", "")),
        ("status T-3 wont-fix legal requires it", c.SetStatus(3, "wont_fix", "legal requires it")),
        ("merge T-3 into T-12", c.Merge(3, 12)),
        ("rename T-12 Refund approvals take days", c.Rename(12, "Refund approvals take days")),
        ("split T-12 S-4 S-9", c.Split(12, (4, 9))),
        ("mine", c.Mine()),
        ("digest preview", c.DigestPreview()),
        ("help", c.Help()),
        ("", c.Help()),
        ("/friction", c.Help()),
        ("undo S-41", c.Undo(41)),
        ("metoo T-7", c.MeToo(7)),
        ("me too T-7", c.MeToo(7)),
        ("due T-12 2026-12-10", c.Due(12, "2026-12-10")),
        ("/friction due T-12 by 2026-12-10.", c.Due(12, "2026-12-10")),
        ("due T-12 off", c.Due(12, "off")),
        ("quiet", c.Quiet()),
        ("quiet off", c.Quiet(on=False)),
        ("quiet on", c.Quiet()),
    ],
)
def test_grammar(text, expected):
    assert c.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "status of my refund is unclear to customers",
        "themes in the billing area keep coming back",
        "assign more people to the callback queue please",
        "help! the tracking link is broken again",
        "due to the new policy refunds take five days",
        "quiet hours mean we cannot call customers back after six",
    ],
)
def test_friction_that_starts_with_a_command_word_is_logged(text):
    assert c.parse(text) == c.Submit(text)


def test_unknown_status_explains_the_choices():
    command = c.parse("status T-2 finished")
    assert isinstance(command, c.Help)
    # As they are typed (README and help), not as stored (in_progress, wont_fix).
    assert "finished" in command.reason
    assert "Use one of: new, acknowledged, in-progress, resolved, wont-fix." in command.reason


# How agents actually type: typos, capitals, trailing punctuation, mentions. A malformed command
# gets its usage and is never logged; prose that starts with a command word is logged.
COMMANDS = [
    ("undo S-41.", c.Undo(41)),
    ("Undo S-41!", c.Undo(41)),
    ("UNDO s-41", c.Undo(41)),
    ("undo 41", c.Undo(41)),
    ("metoo T-12?", c.MeToo(12)),
    ("Me too T-12", c.MeToo(12)),
    ("+1 T-12", c.MeToo(12)),
    ("Themes?", c.Themes()),
    ("themes.", c.Themes()),
    ("list", c.Themes()),
    ("Mine", c.Mine()),
    ("mine?", c.Mine()),
    ("Help!", c.Help()),
    ("?", c.Help()),
    ("theme t-12", c.ShowTheme(12)),
    ("<@U0BOT> undo S-41", c.Undo(41)),
    ("<@U0BOT|frictionlog> themes", c.Themes()),
    ("@frictionlog mine", c.Mine()),
    ("/friction   themes  ", c.Themes()),
    ("Assign T-12 @dana.", c.Assign(12, "dana.")),
    ("assign t12 to @dana", c.Assign(12, "dana")),
    ("merge T-3 -> T-12", c.Merge(3, 12)),
    ("Merge t-3 into t-12.", c.Merge(3, 12)),
    ("status T-12 done fixed the form.", c.SetStatus(12, "resolved", "fixed the form.")),
    ("digest here", c.DigestHere(True)),
    ("Digest here off.", c.DigestHere(False)),
    ("digest preview?", c.DigestPreview()),
    ("log undo button in the app is broken", c.Submit("undo button in the app is broken")),
    ("anon: the new returns policy confuses everyone", c.Submit("the new returns policy confuses everyone", True)),
    ("anonymously: my lead blocks every waiver", c.Submit("my lead blocks every waiver", True)),
    ("ANON my lead blocks every waiver", c.Submit("my lead blocks every waiver", True)),
]
MALFORMED = [
    "undo",
    "Undo.",
    "metoo",
    "me too",
    "anon",
    "anon.",
    "assign T-6",
    "assign T-6 to",
    "merge T-62 T-57",
    "rename T-57",
    "themes refund",
    "mine please",
    "T-11",
    "t-11.",
    "S-4",
    "status T-12",
    "split T-12",
    "theme",
    "digest now",
    "asign T-12 @dana",
    "stauts T-12 done",
    "renmae T-3 Refunds",
    "<@U0BOT> undo",
    "undo S-41 please",
]
PROSE = [
    "status of my refund is unclear to customers",
    "undo button in the app is broken",
    "Undo doesn't work on the returns screen!",
    "themes in the billing area keep coming back",
    "assign more people to the callback queue please",
    "help! the tracking link is broken again",
    "Mine is the third complaint about hold times today.",
    "merge of the two refund forms confused everyone",
    "split payments fail for customers with gift cards",
    "rename of the loyalty tiers left customers confused",
    "theme park tickets can't be refunded online",
    "list prices differ between the app and the website",
    "me and my team can't open the CRM before 9am",
    "anonymous callers cannot verify their identity without a pin",
    "statuses in the order tracker are always out of date",
    "digests of the returns policy are impossible to find",
    "assigned agents change every time the customer calls back",
    "The refund form times out after 5 minutes.",
]


@pytest.mark.parametrize(("text", "expected"), COMMANDS)
def test_commands_as_agents_type_them(text, expected):
    assert c.parse(text) == expected


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_command_gets_its_usage_and_is_not_logged(text):
    parsed = c.parse(text)
    assert isinstance(parsed, c.Usage), parsed
    assert "Nothing was logged" in parsed.text


@pytest.mark.parametrize("text", PROSE)
def test_prose_that_starts_with_a_command_word_is_logged(text):
    assert c.parse(text) == c.Submit(text)


def test_the_table_is_big_enough_to_mean_something():
    assert len(COMMANDS) + len(MALFORMED) + len(PROSE) >= 60


def test_help_about_one_command_shows_its_usage():
    parsed = c.parse("help assign")
    assert isinstance(parsed, c.Usage) and "assign T-12 @dana" in parsed.text
