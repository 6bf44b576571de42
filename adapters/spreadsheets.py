"""Reading the files people keep their complaints in, and writing exports they open in Excel.

CSV: UTF-8 (with or without a byte-order mark), UTF-16 with one, or Windows-1252; comma,
semicolon or tab, whichever the header line uses (a header with none is one column: each line
one value, commas included; a row with more values than the header has columns is a bad row).
Excel: every sheet of an .xlsx (or one), the first non-empty row as its header. Rows are numbered
as the spreadsheet shows them (a cell with line breaks is still one row), blank rows are skipped,
and each row says where it came from.
A CSV with a submission_id column is frictionlog's export: its cells lose the quote that kept
them from being formulas (bot/transfer.py, `quote_cell`).
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from bot.transfer import UnreadableFile, unquote_cell

DELIMITERS = ",;\t"


@dataclass
class Table:
    """One sheet (a CSV file is one): its header, and its rows as (where, values)."""

    name: str  # "complaints.csv", or "2025.xlsx › March"
    columns: list[str]
    rows: Iterator[tuple[str, dict | ValueError]]
    encoding: str = ""  # for CSV: how it was read
    modified: datetime | None = None  # the file's own date: the date of rows that have none


def read_tables(path: Path, sheet: str | None = None) -> list[Table]:
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _excel(path, sheet, modified)
    if path.suffix.lower() == ".xls":
        raise UnreadableFile(f"{path.name} is an old .xls workbook: save it as .xlsx (or CSV) and import that")
    return [_csv(path, modified)]


def _csv(path: Path, modified: datetime) -> Table:
    raw = path.read_bytes()
    if raw[:4] == b"PK\x03\x04":  # before decoding: a zip is no text in any encoding
        raise UnreadableFile(f"{path.name} is a zip (an Excel workbook?): name it .xlsx")
    try:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode Text": UTF-16 and its byte-order mark
            text, encoding = raw.decode("utf-16"), "UTF-16"
        else:
            text, encoding = raw.decode("utf-8-sig"), "UTF-8"
    except UnicodeDecodeError:
        try:  # what Excel writes as "CSV" on Windows
            text, encoding = raw.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError as error:
            line = raw[: error.start].count(b"\n") + 1
            raise UnreadableFile(f"{path.name} line {line} is neither UTF-8 nor Windows-1252 text") from None
    header = text.split("\n", 1)[0]
    # A header without any delimiter is a one-column file: each line is one value, commas and all.
    delimiter = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else "\0"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        columns = [name.strip() for name in next(reader)]
    except StopIteration:
        raise UnreadableFile(f"{path.name} is empty") from None
    except csv.Error as error:
        raise UnreadableFile(f"{path.name}: the header line is not CSV ({error})") from None

    exported = "submission_id" in columns  # frictionlog's own CSV export

    def rows() -> Iterator[tuple[str, dict | ValueError]]:
        number = 1  # the header is row 1, as a spreadsheet shows it
        while True:
            number += 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield f"{path.name} row {number}", ValueError(f"not a readable CSV row ({error})")
                continue
            if not any(value.strip() for value in values):
                continue  # a blank row is no row
            extra = [value for value in values[len(columns) :] if value.strip()]
            if extra:  # values past the header's columns belong to no field: not cut silently
                yield (
                    f"{path.name} row {number}",
                    ValueError(f"{len(columns) + len(extra)} values for {len(columns)} columns: {extra[0][:40]!r} …"),
                )
                continue
            if exported:  # its cells were quoted where a spreadsheet would see a formula
                values = [unquote_cell(value) for value in values]
            yield f"{path.name} row {number}", dict(zip(columns, values, strict=False))

    return Table(path.name, columns, rows(), encoding, modified)


def _excel(path: Path, chosen: str | None, modified: datetime) -> list[Table]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:
        raise UnreadableFile(f"{path.name} is not a readable Excel workbook ({type(error).__name__})") from None
    names = workbook.sheetnames
    if chosen is not None and chosen not in names:
        raise UnreadableFile(f"{path.name} has no sheet {chosen!r}; its sheets: {', '.join(names)}")
    tables = []
    for name in [chosen] if chosen else names:
        rows = workbook[name].iter_rows(values_only=True)
        header, number = None, 0
        for number, values in enumerate(rows, 1):  # noqa: B007 (the header row number is kept)
            if any(_cell(v) for v in values):
                header = [_cell(v).strip() for v in values]
                break
        if header is None:
            continue  # an empty sheet
        tables.append(
            Table(f"{path.name} › {name}", header, _sheet_rows(path.name, name, header, rows, number), "", modified)
        )
    return tables


def _sheet_rows(file: str, sheet: str, header: list[str], rows, header_row: int):
    for number, values in enumerate(rows, header_row + 1):
        cells = [_cell(v) for v in values]
        if not any(cell.strip() for cell in cells):
            continue
        yield f"{file} › {sheet} row {number}", {column: cell for column, cell in zip(header, cells, strict=False)}


def _cell(value) -> str:
    """A cell as text; a date or time cell in ISO form, so no format is guessed."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def write_xlsx(path: Path, columns: list[str], records: Iterator[dict]) -> int:
    """Every value a text cell: staff text that starts with "=" is never a formula. Control
    characters a worksheet cannot hold (in an author imported before they were cleaned) are left
    out, rather than the whole export refused."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("frictionlog")
    sheet.append(columns)
    count = 0
    for record in records:
        cells = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", str(record.get(column, ""))))
            cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
        count += 1
    workbook.save(path)
    return count
