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
    ],
)
def test_friction_that_starts_with_a_command_word_is_logged(text):
    assert c.parse(text) == c.Submit(text)


def test_unknown_status_explains_the_choices():
    command = c.parse("status T-2 finished")
    assert isinstance(command, c.Help)
    assert "finished" in command.reason and "in_progress" in command.reason
