"""Bulk import of past complaints (rows from any table: adapters/spreadsheets.py reads the
files) and export of everything, with owner, status and resolution, that imports back as is."""

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import IO

from sqlmodel import Session

from bot.classify import infer_kind, tags_of
from bot.core import submission_key
from bot.people import Person
from bot.redaction import clean_text, redact
from bot.service import FrictionService
from digests.theming import Progress, ReclusterResult, no_progress
from storage import queries
from storage.db import session_scope
from storage.models import KINDS, Submission, theme_key

FIELDS = ("text", "external_id", "created_at", "author", "kind", "tags", "submission_id")
# Headers people use for each field, recognised without being told (lower case, spaces folded).
SYNONYMS = {
    "text": (
        "text",
        "complaint",
        "comment",
        "comments",
        "feedback",
        "description",
        "message",
        "issue",
        "details",
        "problem",
        "what happened",
        "verbatim",
        "note",
        "notes",
    ),
    "external_id": (
        "external_id",
        "external id",
        "id",
        "ticket",
        "ticket id",
        "ticket number",
        "case",
        "case id",
        "case number",
        "reference",
        "ref",
    ),
    "created_at": (
        "created_at",
        "created at",
        "date",
        "created",
        "timestamp",
        "submitted",
        "submitted at",
        "reported",
        "reported at",
        "date reported",
        "time",
        "when",
        "day",
    ),
    "author": ("author", "agent", "reported by", "submitted by", "name", "employee", "staff"),
    "kind": ("kind", "type"),
    "tags": ("tags", "tag", "area", "areas", "category", "categories", "topic"),
    "submission_id": ("submission_id",),
}
EXPORT_COLUMNS = (
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
)
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d %b %Y %H:%M",
    "%b %d %Y",
)
SLASHED = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


@dataclass
class ImportSummary:
    read: int = 0
    imported: int = 0
    already_there: int = 0
    undated: int = 0  # dated by the file (or --date) instead
    bad_rows: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    had_external_ids: bool = True  # without them (or submission ids), a second import adds rows again
    imported_ids: list[int] = field(default_factory=list)
    # External ids read so far in this run, every table: a dry run stores none, yet must count a
    # second file's repeat as "already there", as the real import finds it stored by the first.
    seen_ids: set[str] = field(default_factory=set)
    recluster: ReclusterResult | None = None


class UnreadableFile(ValueError):
    """A file or sheet that cannot be imported as a whole (not CSV or Excel, no text column)."""


def map_columns(columns: list[str], chosen: dict[str, str] | None = None) -> dict[str, str]:
    """Which column holds each field: the ones named with --text-column and friends, else a
    column whose header is a usual name for it (Complaint, Comment, Date, …)."""
    chosen = {k: v for k, v in (chosen or {}).items() if v}
    missing = [v for v in chosen.values() if v not in columns]
    if missing:
        raise UnreadableFile(f"no column {missing[0]!r}; the columns are: {', '.join(columns)}")
    mapping = dict(chosen)
    folded = {" ".join(c.lower().replace("_", " ").split()): c for c in columns}
    for name, usual in SYNONYMS.items():
        if name in mapping:
            continue
        for candidate in usual:
            column = folded.get(" ".join(candidate.replace("_", " ").split()))
            if column is not None and column not in mapping.values():
                mapping[name] = column
                break
    if "text" not in mapping:
        raise UnreadableFile(
            f"no column holds the text (looked for {', '.join(SYNONYMS['text'][:6])}, …); name it with "
            f"--text-column, one of: {', '.join(columns)}"
        )
    return mapping


def parse_time(value: str, *, day_first: bool = False, zone: tzinfo = UTC) -> datetime:
    """ISO 8601, or the usual spreadsheet forms: 03/11/2026 14:05 (month first unless
    `day_first`; a first number over 12 settles it), 3 Nov 2026, Nov 3, 2026. A date, or a time
    without an offset, is the team's wall clock (`zone`, FRICTIONLOG_TIMEZONE): 23 November is
    that day in the digest's weeks, not midnight UTC, which is the day before in New York."""
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = _spreadsheet_time(value, day_first)
    return (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).astimezone(UTC)


def _spreadsheet_time(value: str, day_first: bool) -> datetime:
    slashed = SLASHED.fullmatch(value)
    if slashed:
        first, second, year, hour, minute, secs = slashed.groups()
        day, month = (int(first), int(second)) if day_first else (int(second), int(first))
        if month > 12 and day <= 12:  # 25/11/2026 is the 25th whatever the order
            day, month = month, day
        year = int(year) + (2000 if len(year) == 2 else 0)
        return datetime(year, month, day, int(hour or 0), int(minute or 0), int(secs or 0))
    for form in DATE_FORMATS:
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    raise ValueError(value)


@dataclass(frozen=True)
class ImportOptions:
    columns: dict[str, str] | None = None  # field -> column, from --text-column and friends
    day_first: bool = False
    date: datetime | None = None  # for rows without one; else the file's own date
    dry_run: bool = False


def _row_to_submission(
    service: FrictionService,
    row: dict | ValueError,
    mapping: dict[str, str],
    options: ImportOptions,
    file_date: datetime,
    warn,
) -> tuple[Submission, bool]:
    """The submission a row makes, and whether it had a date of its own."""
    if isinstance(row, ValueError):
        raise row

    def get(name: str) -> str:
        return (row.get(mapping[name]) or "").strip() if name in mapping else ""

    text = get("text")
    if not text:
        raise ValueError("the text is empty")
    clean = redact(text)
    limit = service.settings.max_message_chars
    if len(clean) > limit:  # counted as stored, redacted
        raise ValueError(f"the text is {len(clean):,} characters; the limit is {limit:,}")
    # Cleaned as the text is: PostgreSQL refuses a NUL, a worksheet the other control characters.
    author, external_id = clean_text(get("author")).strip() or None, clean_text(get("external_id")).strip() or None
    for name, value, most in (("author", author, 120), ("external_id", external_id, 200)):
        if value and len(value) > most:
            raise ValueError(f"{name} is {len(value)} characters; the limit is {most}")
    created = get("created_at")
    try:
        created_at = (
            parse_time(created, day_first=options.day_first, zone=service.settings.zone)
            if created
            else (options.date or file_date)
        )
    except ValueError:
        hint = "" if options.day_first else " (try --day-first for 03/11)"  # given, it cannot help
        raise ValueError(f"{mapping['created_at']} {created!r} is not a date{hint}") from None
    kind = get("kind").lower()
    if kind and kind not in KINDS:
        warn(f"kind {kind!r} is not one of {', '.join(KINDS)}: logged as other")
        kind = "other"
    tags = [t.strip().lstrip("#").lower() for t in get("tags").replace(";", ",").split(",")]
    tags = list(dict.fromkeys([t for t in tags if t] + tags_of(clean)))
    submission = Submission(
        text=clean,
        kind=kind or infer_kind(clean),
        tags=",".join(tags)[:500],
        platform="import",
        author=author,
        author_hash=service.person_hash(Person("import", author)) if author else None,
        external_id=external_id or _exported_key(get("submission_id")),
        created_at=created_at,
    )
    return submission, bool(created)


EXPORTED = "frictionlog:S-"  # the external id of a row frictionlog exported without one


def _exported_key(submission_key_text: str) -> str | None:
    """A row frictionlog exported carries its submission id; imported back it is recognised.
    One beyond any database's integers (a typo, a spreadsheet's doing) is a bad row: looked up,
    it would stop the whole import."""
    number = re.fullmatch(r"S-?(\d+)", submission_key_text.strip(), re.I)
    if number and int(number.group(1)) > 2**63 - 1:
        raise ValueError(f"submission_id {submission_key_text.strip()!r} is no submission's: too large")
    return f"{EXPORTED}{number.group(1)}" if number else None


def _already_here(session: Session, pending: list[Submission]) -> set[str]:
    """External ids of pending rows that are stored already: the same external id, or an
    exported submission id whose submission is here with the same text."""
    keys = [s.external_id for s in pending if s.external_id]
    exported = {
        int(s.external_id.removeprefix(EXPORTED)): s
        for s in pending
        if s.external_id and s.external_id.startswith(EXPORTED)
    }
    present = queries.submissions_with_text(session, texts={n: s.text for n, s in exported.items()})
    return queries.existing_external_ids(session, external_ids=keys) | {exported[n].external_id for n in present}


def import_rows(
    service: FrictionService,
    columns: list[str],
    rows: Iterable[tuple[str, dict | ValueError]],
    *,
    progress: Progress = no_progress,
    recluster: bool = True,
    batch: int = 500,
    options: ImportOptions = ImportOptions(),
    file_date: datetime | None = None,
    summary: ImportSummary | None = None,
    theme: bool = True,
) -> ImportSummary:
    """Import one table's rows (a CSV file, a sheet). With several tables, pass one summary along
    and `theme=False`, then `theme_imported` once at the end."""
    mapping = map_columns(columns, options.columns)
    summary = summary or ImportSummary()
    summary.unknown_columns += [c for c in columns if c not in mapping.values() and c not in summary.unknown_columns]
    summary.had_external_ids &= "external_id" in mapping or "submission_id" in mapping
    now = file_date or service.clock()
    pending: list[Submission] = []
    seen_ids = summary.seen_ids
    imported_ids = summary.imported_ids

    def flush() -> None:
        if not pending:
            return
        with session_scope(service.engine) as session:
            existing = _already_here(session, pending)
            fresh = [s for s in pending if s.external_id not in existing or s.external_id is None]
            summary.already_there += len(pending) - len(fresh)
            if options.dry_run:
                summary.imported += len(fresh)
                session.rollback()
            else:
                session.add_all(fresh)
                session.flush()
                imported_ids.extend(s.id for s in fresh)
                summary.imported += len(fresh)
        pending.clear()

    for where, row in rows:
        summary.read += 1
        try:
            submission, dated = _row_to_submission(
                service, row, mapping, options, now, lambda note, at=where: summary.warnings.append((at, note))
            )
        except ValueError as error:
            summary.bad_rows.append((where, str(error)))
            continue
        summary.undated += not dated
        if submission.external_id:
            if submission.external_id in seen_ids:
                summary.already_there += 1
                continue
            seen_ids.add(submission.external_id)
        pending.append(submission)
        if len(pending) >= batch:
            flush()
    flush()
    if theme and not options.dry_run:
        theme_imported(service, summary, progress=progress, recluster=recluster)
    return summary


def theme_imported(
    service: FrictionService, summary: ImportSummary, *, progress: Progress = no_progress, recluster: bool = True
) -> None:
    """Embeddings in batches, then one re-clustering of the window and of everything imported:
    an import often brings history older than the window, and it deserves real themes too."""
    if recluster and summary.imported_ids:
        summary.recluster = service.theming.recluster(service.clock(), progress, include=summary.imported_ids)
    elif summary.imported_ids:
        service.theming.embed_missing(progress)


def export_records(service: FrictionService) -> Iterator[dict]:
    with Session(service.engine) as session:
        themes = {t.id: t for t in queries.themes_by_ids(session, theme_ids=list(queries.theme_titles(session)))}
        for submission in queries.all_submissions(session):
            theme = themes.get(submission.theme_id)
            yield {
                "submission_id": submission_key(submission.id),
                "external_id": submission.external_id or "",
                "created_at": submission.created_at.isoformat(),
                "kind": submission.kind,
                "tags": submission.tags.replace(",", ";"),
                "theme_key": theme_key(submission.theme_id),
                "theme_title": theme.title if theme else "",
                "owner": theme.owner or "" if theme else "",
                "status": theme.status if theme else "",
                "resolution_note": theme.status_note if theme else "",
                "text": submission.text,
                # Anonymous means anonymous: no author, ever.
                "author": "" if submission.anonymous else (submission.author or ""),
            }


# What Excel or LibreOffice may take for a formula when it opens a CSV, after any quotes.
FORMULA = re.compile(r"'*[=+\-@\t\r]")


def quote_cell(value: str) -> str:
    """A CSV cell no spreadsheet runs (`=HYPERLINK(…)` sending the sheet away): one that starts as
    a formula gets a leading quote; so does one that starts with quotes before one, so that
    `unquote_cell` gives back exactly what was stored."""
    return "'" + value if FORMULA.match(value) else value


def unquote_cell(value: str) -> str:
    """The value `quote_cell` was given: an export's CSV imports back as it was stored."""
    return value[1:] if value.startswith("'") and FORMULA.match(value, 1) else value


def write_export(service: FrictionService, output: IO[str], fmt: str = "csv") -> int:
    count = 0
    if fmt == "json":
        records = list(export_records(service))
        json.dump(records, output, ensure_ascii=False, indent=1)
        output.write("\n")
        return len(records)
    writer = csv.DictWriter(output, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    for record in export_records(service):
        writer.writerow({column: quote_cell(value) for column, value in record.items()})
        count += 1
    return count
