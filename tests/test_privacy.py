"""What must never leak: submission text, user ids, sealed columns, tokens and secrets stay out
of the logs; "Make anonymous" leaves no trace of the id in the database file; an anonymous
"Log as friction" from a direct message keeps no link that names it."""

import json
import logging
import re
from pathlib import Path

from tests.test_slack import SECRET, Slack, button, run_slack

WORD = "ZEBRACROSSING"  # a word only the submissions contain
TEXT = f"refunds over $50 need supervisor approval {WORD} and it takes three days"
TOKEN = "xoxb-test-token"


def leaked(records: list[logging.LogRecord], needles: list[str]) -> list[str]:
    formatter = logging.Formatter()
    found = []
    for record in records:
        if record.levelno < logging.INFO:
            continue
        shown = record.getMessage() + (formatter.formatException(record.exc_info) if record.exc_info else "")
        found += [f"{record.name}: {needle} in {shown[:200]!r}" for needle in needles if needle in shown]
        if re.search(r"gAAAAA[\w-]{20,}", shown):  # a sealed value (Fernet token)
            found.append(f"{record.name}: a sealed value in {shown[:200]!r}")
    return found


def test_no_log_record_at_info_or_above_carries_text_ids_sealed_values_or_secrets(sqlite_url, caplog):
    caplog.set_level(logging.DEBUG)

    async def scenario(slack: Slack):
        await slack.dm(TEXT, user="UPRIVATE1", event_id="Ev1")
        await slack.dm("anon " + TEXT, user="UPRIVATE2", event_id="Ev2")
        await slack.command("assign T-1 <@UOWNER9>", user="U-LEAD", trigger="t-assign")
        [owner_dm] = await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "UOWNER9")
        await slack.click(button(owner_dm, "Resolved"), user="UOWNER9")
        [modal] = await slack.fake.wait_for("views.open")
        note = {"note": {"note": {"type": "plain_text_input", "value": f"fixed {WORD}"}}}
        await slack.submit_view("status_note", note, json.loads(modal["view"]["private_metadata"]), user="UOWNER9")
        await slack.fake.wait_for("chat.postMessage", 2, where=lambda m: m["channel"] in ("UPRIVATE1", "UPRIVATE2"))
        # A forged request: its body is never logged.
        forged = json.dumps({"type": "event_callback", "event": {"text": WORD, "user": "UPRIVATE3"}}).encode()
        status, _, _ = await slack.post(forged, "application/json", {"X-Slack-Signature": "v0=" + "0" * 64})
        assert status == 401
        slack.fake.fail("chat.postMessage", 500, times=1)  # a failed send is logged, without the message
        await slack.dm(TEXT, user="UPRIVATE4", event_id="Ev4")
        await slack.fake.wait_for("chat.postMessage", where=lambda m: m["channel"] == "D-UPRIVATE4")
        await slack.settled()

    run_slack(sqlite_url, scenario)
    needles = [WORD, "UPRIVATE", "UOWNER9", TOKEN, SECRET, "D-UPRIVATE"]
    assert caplog.records, "the scenario logged nothing at all: the check would be empty"
    assert leaked(caplog.records, needles) == []


def test_make_anonymous_leaves_no_trace_of_the_id_in_the_database_file(sqlite_url):
    async def scenario(slack: Slack):
        await slack.dm(TEXT, user="UTRACE42", event_id="Ev1")
        [confirmation] = await slack.fake.wait_for("chat.postMessage")
        await slack.settled()
        files = database_files(sqlite_url)
        assert any(b"UTRACE42" in data for data in files.values())  # the name is there before
        await slack.click(button(confirmation, "Make anonymous"), user="UTRACE42", hook="anon")
        assert "now anonymous" in (await slack.fake.reply_to("anon"))["text"]
        await slack.settled()
        [stored] = slack.submissions()
        assert stored.anonymous and stored.author is None and stored.channel is None
        for name, data in database_files(sqlite_url).items():
            assert b"UTRACE42" not in data, f"the id is still in {name}"

    run_slack(sqlite_url, scenario)


def database_files(url: str) -> dict[str, bytes]:
    path = Path(url.removeprefix("sqlite:///"))
    files = [path, Path(f"{path}-wal")]
    return {str(p): p.read_bytes() for p in files if p.exists()}


def test_an_anonymous_log_as_friction_from_a_direct_message_keeps_no_link(sqlite_url):
    async def scenario(slack: Slack):
        values = {
            "text": {"text": {"type": "plain_text_input", "value": TEXT}},
            "anonymous": {"anonymous": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
        }
        status, _text, _ = await slack.submit_view("log_friction", values, {"channel": "D0PRIVATE", "ts": "17.5"})
        assert status == 200
        await slack.settled()
        [stored] = slack.submissions()
        assert stored.anonymous and stored.source_url is None and stored.channel is None
        assert slack.fake.of("chat.getPermalink") == []  # never even asked for

    run_slack(sqlite_url, scenario)
