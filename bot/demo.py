"""`frictionlog demo`: the whole product on embedded defaults with shipped sample data.

The demo runs on a clock it controls: it imports last week's messages, has a lead assign owners
early in the week, lets the owners act, and runs the deadline chase hour by hour through the
week as `serve` would, delivering what it sends through the outbox to the platforms it is given
(the console): the owner who never acknowledged gets a reminder, and a day later the lead an
escalation.
"""

import asyncio
import csv
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from sqlmodel import Session

from bot.clock import FrozenClock
from bot.deadlines import chase
from bot.messages import Inbound
from bot.pipeline import delivery_worker
from bot.publish import compose_for
from bot.router import Router
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
    # (when, "reminder" or "escalation", "T-12:acknowledge"): what the deadline chase sent.
    chased: list[tuple[datetime, str, str]] = field(default_factory=list)


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


def run_demo(service: FrictionService, clock: FrozenClock, progress, router: Router | None = None) -> DemoResult:
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

    def say(user: str, command: str) -> None:  # commands go through the pipeline like any chat
        service.handle(Inbound(user=user, user_name=user, text=command, platform="console"))

    outbox = delivery_worker(service, router) if router is not None else None

    def deliver() -> None:
        async def drain() -> None:
            while await outbox.send_due():
                pass

        if outbox is not None:
            asyncio.run(drain())

    assigned = week_start + timedelta(days=1, hours=10)
    for label, owner, status, note in STORYLINE:
        if not votes[label]:
            continue
        theme_id = votes[label].most_common(1)[0][0]
        # Owners were assigned early in the week; most acted on it within the day.
        clock.now = assigned
        say(LEAD, f"assign T-{theme_id} {owner}")
        if status:
            clock.now = assigned + timedelta(hours=5)
            say(LEAD, f"status T-{theme_id} {status} {note}".rstrip())
            if status == "in_progress":  # the owner names the day it will be fixed by
                say(owner, f"due T-{theme_id} {(week_end + timedelta(days=14)).date().isoformat()}")
    deliver()
    # The rest of the week, as `serve` chases deadlines (every few minutes; here every hour).
    chased = []
    clock.now = assigned + timedelta(hours=6)
    while clock.now < publish:
        done = chase(service, platforms=["console"])
        chased += [(clock.now, "reminder", subject) for subject in done.reminders]
        chased += [(clock.now, "escalation", subject) for subject in done.escalations]
        deliver()
        clock.advance(hours=1)
    clock.now = publish
    digest = compose_for(service, week)
    return DemoResult(summary, digest, chased)
