import pytest

from bot.classify import infer_kind, tags_of
from bot.redaction import luhn_valid, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com today", "write to [email] today"),
        ("card 4111 1111 1111 1111 was declined", "card [card] was declined"),
        ("card 5500-0000-0000-0004 was declined", "card [card] was declined"),
        ("call her on +1 415 555 0134 after 5", "call her on [phone] after 5"),
        ("(212) 555-0199 keeps calling", "[phone] keeps calling"),
        ("acct #AB123456 is locked", "acct #[account id] is locked"),
    ],
)
def test_customer_data_is_redacted(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "refund of $45 after 14 days, order 12345",
        "waited 40 minutes on 3 calls",
        "app version 2.3.1 crashes",
        "since 2026-05-01 the form is broken",
        "card 4111 1111 1111 1112 is not a real card",  # fails Luhn: not a card number
        "the account settings page is broken",
    ],
)
def test_ordinary_numbers_are_kept(text):
    assert redact(text) == text


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_tags_and_kind():
    assert tags_of("refund stuck #Billing #refunds #billing") == ["billing", "refunds"]
    assert tags_of("order #12345 and a&#39;b") == []
    assert infer_kind("we need supervisor approval for every refund over $50, the policy is absurd") == "policy"
    assert infer_kind("customer says the app crashes at checkout and she is really upset") == "customer"
    assert infer_kind("lunch menu") == "other"


def test_kind_agrees_with_people_on_most_sample_messages():
    import csv
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "bot" / "sample_data" / "frontline_messages.csv"
    with open(sample, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    agree = sum(infer_kind(redact(row["text"])) == row["kind"] for row in rows)
    assert agree / len(rows) >= 0.7
