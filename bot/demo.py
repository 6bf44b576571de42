"""`frictionlog demo`: the whole product on embedded defaults with shipped sample data."""

import csv
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session

from bot.clock import FrozenClock
from bot.messages import Inbound
from bot.publish import compose_for
from bot.service import FrictionService
from bot.transfer import ImportSummary, import_rows
from digests.digest import Digest, IsoWeek
from storage import queries

SAMPLE = Path(__file__).parent / "sample_data" / "frontline_messages.csv"
LEAD = "demo-lead"
# (sample label, owner, what happened) for a few themes; the rest stay unowned. The theme of a
# label is the one holding most of that label's messages, whatever key clustering gave it.
STORYLINE = [
    ("refund_approval_delay", "dana", "in_progress", "Piloting a $150 self-approval limit for refunds with team 3."),
    (
        "android_checkout_crash",
        "lee",
        "in_progress",
        "Checkout fix ships in Thursday's Android release.",
    ),
    ("late_fee_waiver_ticket", "marco", "acknowledged", ""),
    ("long_hold_times", "priya", None, ""),  # assigned days ago, never acknowledged: overdue
    ("crm_billing_sync", "sam", "resolved", "Billing now syncs address changes from the CRM every 15 minutes."),
]


@dataclass
class DemoResult:
    summary: ImportSummary
    digest: Digest


def digest_moment(now: datetime, zone) -> datetime:
    """Monday 09:00 of the current week, local time: when the scheduled digest goes out."""
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime.combine(monday, time(9, 0), tzinfo=zone)


def sample_rows(last_day_end: datetime):
    """The sample messages, dated backwards from the end of the last complete week."""
    with open(SAMPLE, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            # A stable spread over working hours, so two demo runs tell the same story.
            minutes = zlib.crc32(row["external_id"].encode()) % (10 * 60)
            created = last_day_end - timedelta(days=int(row.pop("days_ago")), hours=4, minutes=minutes)
            rows.append((reader.line_num, {**row, "created_at": created.isoformat()}))
    return [c for c in columns if c != "days_ago"] + ["created_at"], rows


def run_demo(service: FrictionService, clock: FrozenClock, progress) -> DemoResult:
    zone = service.settings.zone
    publish = digest_moment(clock(), zone)
    week = IsoWeek.last_complete(publish, zone)
    week_start, week_end = week.bounds(zone)
    columns, rows = sample_rows(week_end - timedelta(hours=2))
    clock.now = week_start - timedelta(days=1)
    summary = import_rows(service, columns, rows, progress=progress)

    label_of = {row["external_id"]: row["label"] for _, row in rows}
    with Session(service.engine) as session:
        votes: dict[str, Counter[int]] = defaultdict(Counter)
        for submission in queries.all_submissions(session):
            votes[label_of.get(submission.external_id, "")][submission.theme_id] += 1

    def lead(command: str) -> None:  # the lead's commands go through the pipeline like any chat
        service.handle(Inbound(user=LEAD, user_name=LEAD, text=command, platform="console"))

    for label, owner, status, note in STORYLINE:
        if not votes[label]:
            continue
        theme_id = votes[label].most_common(1)[0][0]
        # Owners were assigned early in the week; most acted on it within the day.
        clock.now = week_start + timedelta(days=1, hours=10)
        lead(f"assign T-{theme_id} {owner}")
        if status:
            clock.now = week_start + timedelta(days=3, hours=15)
            lead(f"status T-{theme_id} {status} {note}".rstrip())
    clock.now = publish
    digest = compose_for(service, week)
    return DemoResult(summary, digest)
