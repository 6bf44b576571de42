"""The `frictionlog` command as an admin runs it."""

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.cli import app

CLINC = Path(__file__).resolve().parent / "data" / "clinc150_sample.csv"  # shipped: see tests/data/README.md
runner = CliRunner()


@pytest.fixture
def cli(tmp_path, monkeypatch, database_url):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRICTIONLOG_EMBEDDINGS", "hashing")

    def run(*args: str):
        result = runner.invoke(app, list(args), catch_exceptions=False)
        return result

    return run


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def exported(cli, fmt: str = "csv") -> list[dict]:
    result = cli("export", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "json":
        return json.loads(result.stdout)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_import_export_round_trip_with_bad_rows(cli, tmp_path):
    source = write_csv(
        tmp_path / "past.csv",
        ["external_id", "created_at", "author", "kind", "tags", "text", "label"],
        [
            ["c-1", "2026-10-01T09:30:00Z", "dana", "policy", "refunds;approvals", "refund approval takes days", "x"],
            ["c-2", "2026-10-02", "", "", "", "refund approval from a supervisor is slow, mail a@b.com", "x"],
            ["c-3", "yesterday", "luis", "", "", "tracking link broken", "y"],
            ["c-4", "2026-10-03", "luis", "complaint", "", "hold times are long", "y"],
            ["c-5", "2026-10-03", "luis", "", "", "", "y"],
            ["c-6", "2026-10-04T12:00:00+02:00", "priya", "customer", "#shipping", "tracking link gives 404", "y"],
        ],
    )
    result = cli("import", str(source))
    assert result.exit_code == 0, result.output
    assert "imported 3, already there 0, bad 3" in result.stdout
    assert "Ignored columns: label" in result.stdout and "No external_id column" not in result.stdout
    assert "line 4: created_at 'yesterday' is not an ISO 8601 date or time" in result.output
    assert "line 5: kind 'complaint' is not one of policy, customer, other" in result.output
    assert "line 6: the text is empty" in result.output

    rows = exported(cli)
    assert [r["external_id"] for r in rows] == ["c-1", "c-2", "c-6"]
    assert list(rows[0])[:8] == [
        "submission_id",
        "external_id",
        "created_at",
        "kind",
        "tags",
        "theme_key",
        "theme_title",
        "text",
    ]
    assert rows[0]["created_at"].startswith("2026-10-01T09:30:00")
    assert rows[2]["created_at"].startswith("2026-10-04T10:00:00")  # stored in UTC
    assert rows[0]["tags"] == "refunds;approvals" and rows[2]["tags"] == "shipping"
    assert rows[1]["text"].endswith("mail [email]") and rows[1]["author"] == ""
    assert rows[1]["kind"] in ("policy", "customer", "other")
    assert all(r["theme_key"].startswith("T-") and r["theme_title"] for r in rows)
    assert rows[0]["theme_key"] == rows[1]["theme_key"] != rows[2]["theme_key"]

    # The export imports back unchanged: nothing is added twice.
    (tmp_path / "export.csv").write_text(cli("export").stdout, encoding="utf-8")
    again = cli("import", str(tmp_path / "export.csv"))
    assert "imported 0, already there 3, bad 0" in again.stdout
    assert len(exported(cli)) == 3


def test_export_never_names_anonymous_authors(cli, tmp_path):
    from bot.settings import Settings

    assert cli("db", "upgrade").exit_code == 0
    from adapters.wiring import build_service
    from bot.messages import Inbound

    service = build_service(Settings())
    service.handle(Inbound(user="U1", user_name="dana", text="anon my lead blocks every waiver", platform="test"))
    service.handle(Inbound(user="U2", user_name="luis", text="waivers need a ticket to billing", platform="test"))
    records = exported(cli, "json")
    assert [r["author"] for r in records] == ["", "luis"]
    assert "dana" not in json.dumps(records) and "U1" not in json.dumps(records)
    out = tmp_path / "all.json"
    result = cli("export", "--format", "json", "--output", str(out))
    assert result.exit_code == 0 and len(json.loads(out.read_text())) == 2


def test_unreadable_lines_and_oversized_fields_are_bad_rows(cli, tmp_path):
    source = tmp_path / "messy.csv"
    source.write_text(
        "external_id,author,text\n"
        "m-1,dana,refund approval takes days\n"
        f'm-2,luis,"{"x" * 200_000}"\n'
        f"m-3,{'n' * 121},hold times are long\n"
        "m-4,priya,tracking link gives 404\n",
        encoding="utf-8",
    )
    result = cli("import", str(source))
    assert result.exit_code == 0, result.output
    assert "imported 2, already there 0, bad 2" in result.stdout
    assert "line 3: not a readable CSV line (field larger than field limit" in result.output
    assert "line 4: author is 121 characters; the limit is 120" in result.output
    assert [r["external_id"] for r in exported(cli)] == ["m-1", "m-4"]


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_stored(cli, tmp_path):
    source = tmp_path / "excel.csv"
    source.write_bytes("text\nrefund approval takes days\nle délai est trop long\n".encode("cp1252"))
    result = cli("import", str(source))
    assert result.exit_code == 1
    assert 'line 3 is not UTF-8 text; save the file as "CSV UTF-8"' in " ".join(result.output.split())
    assert exported(cli) == []


def test_missing_text_column_is_a_clear_error(cli, tmp_path):
    source = write_csv(tmp_path / "bad.csv", ["comment"], [["hello"]])
    result = cli("import", str(source))
    assert result.exit_code == 1
    assert "no `text` column" in result.output


def test_clinc_import_themes_every_row_and_reimport_adds_nothing(cli, tmp_path):
    with open(CLINC, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    source = write_csv(
        tmp_path / "clinc.csv",
        ["external_id", "text", "label"],
        [[f"q{n}", r["text"], r["label"]] for n, r in enumerate(rows)],
    )
    first = cli("import", str(source))
    assert "imported 1500, already there 0, bad 0" in first.stdout
    records = exported(cli)
    assert len(records) == 1500 and all(r["theme_key"].startswith("T-") for r in records)
    second = cli("import", str(source))
    assert "imported 0, already there 1500" in second.stdout
    assert len(exported(cli)) == 1500


def test_themes_cluster_and_digest_commands(cli, tmp_path, monkeypatch):
    source = write_csv(
        tmp_path / "past.csv",
        ["created_at", "text"],
        [["2026-11-10T10:00:00Z", "refund approval takes days"]] * 2
        + [["2026-11-11T10:00:00Z", "hold times are long"]],
    )
    imported = cli("import", str(source))
    assert imported.exit_code == 0 and "No external_id column: importing this file again" in imported.stdout
    table = cli("themes")
    assert "T-" in table.stdout and "unowned" not in table.stdout and "new" in table.stdout
    clustered = cli("cluster")
    assert clustered.exit_code == 0 and "kept their key" in clustered.stdout
    monkeypatch.setenv("FRICTIONLOG_RECLUSTER_DAYS", "7")  # the rows are older than a week
    assert "3 submissions stayed where they were (pinned by a lead, or older than 7 days)" in cli("cluster").stdout
    assert "stayed where they were" not in cli("cluster", "--all").stdout
    again = cli("cluster", "--embed-again")
    assert again.exit_code == 0 and "embedding again" in again.output and "kept their key" in again.stdout
    digest = cli("digest", "--week", "2026-W46", "--format", "markdown")
    assert digest.exit_code == 0
    assert "# frictionlog weekly digest · 2026-W46" in digest.stdout and "**3** submissions" in digest.stdout
    html = cli("digest", "--week", "2026-W46", "--format", "html")
    assert html.stdout.startswith("<!doctype html>")
    bad_week = cli("digest", "--week", "last week")
    assert bad_week.exit_code == 2 and "ISO week" in bad_week.output


def test_chat_shows_what_people_wrote_as_text(cli):
    result = runner.invoke(app, ["chat", "--user", "U1"], input="mail me at a@b.com [/b] it is [bold]broken\n")
    assert result.exit_code == 0, result.output
    assert "mail me at [email] [/b] it is [bold]broken" in result.output  # the theme's example, verbatim
    assert "Logged as S-1" in result.output and "Traceback" not in result.output


def test_db_upgrade_on_an_unreachable_database_is_one_sentence(cli, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://frictionlog:s3cret@127.0.0.1:1/nowhere")
    result = cli("db", "upgrade")
    assert result.exit_code == 1
    assert "Cannot upgrade postgresql+psycopg://frictionlog:***@127.0.0.1:1/nowhere" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_every_command_has_help(cli):
    for command in (
        ["demo"],
        ["import"],
        ["export"],
        ["cluster"],
        ["themes"],
        ["chat"],
        ["digest"],
        ["serve"],
        ["db", "upgrade"],
    ):
        result = cli(*command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
