"""Bulk import of past complaints and export of everything, as CSV or JSON."""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from sqlmodel import Session

from bot.classify import infer_kind, tags_of
from bot.core import submission_key
from bot.people import Person
from bot.redaction import redact
from bot.service import FrictionService
from digests.theming import Progress, ReclusterResult, no_progress
from storage import queries
from storage.db import session_scope
from storage.models import KINDS, Submission, theme_key

KNOWN_COLUMNS = ("text", "external_id", "created_at", "author", "kind", "tags")
EXPORT_COLUMNS = (
    "submission_id",
    "external_id",
    "created_at",
    "kind",
    "tags",
    "theme_key",
    "theme_title",
    "text",
    "author",
)


@dataclass
class ImportSummary:
    read: int = 0
    imported: int = 0
    already_there: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    had_external_ids: bool = True  # without them, a second import of the same file adds it again
    recluster: ReclusterResult | None = None


class UnreadableFile(ValueError):
    """The file as a whole cannot be imported (no `text` column, not a CSV)."""


def read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, dict | ValueError]]]:
    """The columns and (line number, row) pairs; a line the CSV reader cannot parse comes as the
    error instead of a row, so it is reported and the rest still imports."""
    raw = path.read_bytes()
    try:  # decoded whole first: an encoding problem stops the import before anything is stored
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UnreadableFile(
            f'line {line} is not UTF-8 text; save the file as "CSV UTF-8" and import it again'
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as error:
        raise UnreadableFile(f"the header line is not CSV: {error}") from None
    if not fieldnames:
        raise UnreadableFile(f"{path} is empty or not a CSV file")
    columns = [name.strip() for name in fieldnames]
    reader.fieldnames = columns

    def rows():
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield reader.line_num + 1, ValueError(f"not a readable CSV line ({error})")
                continue
            yield reader.line_num, row

    return columns, rows()


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _row_to_submission(service: FrictionService, row: dict | ValueError, now: datetime) -> Submission:
    if isinstance(row, ValueError):
        raise row
    text = (row.get("text") or "").strip()
    if not text:
        raise ValueError("the text is empty")
    clean = redact(text)
    limit = service.settings.max_message_chars
    if len(clean) > limit:  # counted as stored, redacted
        raise ValueError(f"the text is {len(clean):,} characters; the limit is {limit:,}")
    author = (row.get("author") or "").strip() or None
    external_id = (row.get("external_id") or "").strip() or None
    for name, value, most in (("author", author, 120), ("external_id", external_id, 200)):
        if value and len(value) > most:
            raise ValueError(f"{name} is {len(value)} characters; the limit is {most}")
    created = (row.get("created_at") or "").strip()
    try:
        created_at = parse_time(created) if created else now
    except ValueError:
        raise ValueError(f"created_at {created!r} is not an ISO 8601 date or time") from None
    kind = (row.get("kind") or "").strip().lower()
    if kind and kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    tags = [t.strip().lstrip("#").lower() for t in (row.get("tags") or "").replace(";", ",").split(",")]
    tags = list(dict.fromkeys([t for t in tags if t] + tags_of(clean)))
    return Submission(
        text=clean,
        kind=kind or infer_kind(clean),
        tags=",".join(tags)[:500],
        platform="import",
        author=author,
        author_hash=service.person_hash(Person("import", author)) if author else None,
        external_id=external_id,
        created_at=created_at,
    )


def import_rows(
    service: FrictionService,
    columns: list[str],
    rows: Iterable[tuple[int, dict | ValueError]],
    *,
    progress: Progress = no_progress,
    recluster: bool = True,
    batch: int = 500,
) -> ImportSummary:
    if "text" not in columns:
        raise UnreadableFile("the file has no `text` column; it is the one column frictionlog needs")
    summary = ImportSummary(
        unknown_columns=[c for c in columns if c not in KNOWN_COLUMNS], had_external_ids="external_id" in columns
    )
    now = service.clock()
    pending: list[Submission] = []
    seen_ids: set[str] = set()
    imported_ids: list[int] = []

    def flush() -> None:
        if not pending:
            return
        with session_scope(service.engine) as session:
            existing = queries.existing_external_ids(
                session, external_ids=[s.external_id for s in pending if s.external_id]
            )
            fresh = [s for s in pending if s.external_id not in existing or s.external_id is None]
            summary.already_there += len(pending) - len(fresh)
            session.add_all(fresh)
            session.flush()
            imported_ids.extend(s.id for s in fresh)
            summary.imported += len(fresh)
        pending.clear()

    for line, row in rows:
        summary.read += 1
        try:
            submission = _row_to_submission(service, row, now)
        except ValueError as error:
            summary.bad_rows.append((line, str(error)))
            continue
        if submission.external_id:
            if submission.external_id in seen_ids:
                summary.already_there += 1
                continue
            seen_ids.add(submission.external_id)
        pending.append(submission)
        if len(pending) >= batch:
            flush()
    flush()
    # Embeddings in batches, then one re-clustering of the window and of everything imported:
    # an import often brings history older than the window, and it deserves real themes too.
    if recluster and summary.imported:
        summary.recluster = service.theming.recluster(service.clock(), progress, include=imported_ids)
    elif summary.imported:
        service.theming.embed_missing(progress)
    return summary


def import_csv(
    service: FrictionService, path: Path, *, progress: Progress = no_progress, recluster: bool = True
) -> ImportSummary:
    columns, rows = read_csv(path)
    return import_rows(service, columns, rows, progress=progress, recluster=recluster)


def export_records(service: FrictionService) -> Iterator[dict]:
    with Session(service.engine) as session:
        titles = queries.theme_titles(session)
        for submission in queries.all_submissions(session):
            yield {
                "submission_id": submission_key(submission.id),
                "external_id": submission.external_id or "",
                "created_at": submission.created_at.isoformat(),
                "kind": submission.kind,
                "tags": submission.tags.replace(",", ";"),
                "theme_key": theme_key(submission.theme_id),
                "theme_title": titles.get(submission.theme_id, ""),
                "text": submission.text,
                # Anonymous means anonymous: no author, ever.
                "author": "" if submission.anonymous else (submission.author or ""),
            }


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
        writer.writerow(record)
        count += 1
    return count
