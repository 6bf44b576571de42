"""The use cases of frictionlog, behind one object every platform calls."""

import hashlib
import hmac
import logging
from dataclasses import replace
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot import commands as c
from bot.classify import infer_kind, tags_of
from bot.clock import Clock, system_clock
from bot.messages import Button, Notification, Person, Reply, Request, Section
from bot.redaction import redact
from bot.sealing import Sealer
from bot.settings import Settings
from bot.theming import Theming
from digests.digest import IsoWeek
from digests.embeddings import Embedder
from digests.naming import TitleModel
from storage import queries
from storage.db import session_scope
from storage.models import CLOSED_STATUSES, Submission, Theme, theme_key

log = logging.getLogger(__name__)
UNDO_WINDOW = timedelta(hours=24)
STATUS_LABELS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "in_progress": "in progress",
    "resolved": "resolved",
    "wont_fix": "won't fix",
}
OWNER_QUOTES = 3
TREND_WEEKS = 6
BOARD_LIMIT = 25
LOOK_ALIKE_AMONG = 300  # the board's first themes compared pairwise for "same problem?"
LOOK_ALIKE_PAIRS = 3


class UserError(Exception):
    """Something the person can fix; the message is shown to them as it is."""


def submission_key(submission_id: int) -> str:
    return f"S-{submission_id}"


class FrictionService:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        embedder: Embedder,
        clock: Clock = system_clock,
        title_model: TitleModel | None = None,
    ):
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.theming = Theming(engine, embedder, title_model, window=settings.recluster_window)
        self.sealer = Sealer(settings.secret_key)

    # Identity and roles --------------------------------------------------------------------

    def person_hash(self, platform: str, user: str) -> str:
        key = self.settings.secret_key.encode()
        return hmac.new(key, f"{platform}:{user}".encode(), hashlib.sha256).hexdigest()[:40]

    def is_lead(self, session: Session, request: Request) -> bool:
        if request.user in self.settings.team_lead_ids:
            return True
        if request.groups & self.settings.team_lead_groups:  # a member of a lead user group
            return True
        return queries.has_role(session, platform=request.platform, user_id=request.user, role="lead")

    def _require_lead(self, session: Session, request: Request, action: str) -> None:
        if not self.is_lead(session, request):
            raise UserError(f"Only team leads can {action}. Ask your team lead, or see /friction help.")

    # The one entry point -------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        """Parse one message and run it; every failure becomes a plain sentence."""
        return self._guarded(request, c.parse(request.text))

    def handle_submission(self, request: Request) -> Reply:
        """Log the text as it is, never reading it as a command (a message shortcut's modal)."""
        return self._guarded(request, c.Submit(request.text.strip(), request.anonymous))

    def _guarded(self, request: Request, command: c.Command) -> Reply:
        try:
            return self._dispatch(request, command)
        except UserError as error:
            return Reply(str(error), ok=False)
        except Exception:
            log.exception("request failed: platform=%s", request.platform)
            return Reply("Sorry, something went wrong on our side. Please try again in a minute.", ok=False)

    def _dispatch(self, request: Request, command: c.Command) -> Reply:
        match command:
            case c.Submit(text, anonymous):
                return self.submit(replace(request, text=text, anonymous=anonymous or request.anonymous))
            case c.Help(reason):
                return Reply(f"{reason}\n\n{c.HELP}".strip())
            case c.Themes():
                return self.themes_overview()
            case c.ShowTheme(theme_id):
                return self.show_theme(theme_id)
            case c.Mine():
                return self.mine(request)
            case c.DigestPreview():
                return self.digest_preview()
            case c.Assign(theme_id, owner):
                return self.assign(request, theme_id, owner)
            case c.SetStatus(theme_id, status, note):
                return self.set_status(request, theme_id, status, note)
            case c.Merge(source_id, target_id):
                return self.merge(request, source_id, target_id)
            case c.Rename(theme_id, title):
                return self.rename(request, theme_id, title)
            case c.Split(theme_id, submission_ids):
                return self.split(request, theme_id, submission_ids)
            case c.Undo(submission_id):
                return self.undo(request, submission_id)
            case c.MeToo(theme_id):
                return self.me_too(request, theme_id)
        raise AssertionError(f"unhandled command {command!r}")

    def press(self, request: Request, action: str, value: str) -> Reply:
        """A button from a reply (see messages.Button) pressed on any platform.

        "status" takes "theme_id:status[:note]"; "assign" takes "theme_id:user"."""
        handlers = {
            "undo": self.undo,
            "anonymous": self.make_anonymous,
            "different_issue": self.different_issue,
            "me_too": self.me_too,
        }
        try:
            if action == "status":
                theme_id, status, note = (value.split(":", 2) + [""])[:3]
                if status not in STATUS_LABELS:
                    raise ValueError(status)
                return self.set_status(request, int(theme_id), status, note.strip())
            if action == "merge":
                source, _, target = value.partition(":")
                return self.merge(request, int(source), int(target))
            if action == "assign":
                theme_id, _, owner = value.partition(":")
                if not owner.strip():
                    raise ValueError(value)
                return self.assign(request, int(theme_id), owner.strip())
            handler = handlers[action]
            return handler(request, int(value))
        except UserError as error:
            return Reply(str(error), ok=False)
        except (KeyError, ValueError):
            return Reply("That button is no longer valid.", ok=False)
        except Exception:
            log.exception("button failed: platform=%s action=%s", request.platform, action)
            return Reply("Sorry, something went wrong on our side. Please try again in a minute.", ok=False)

    # Agents --------------------------------------------------------------------------------

    def submit(self, request: Request) -> Reply:
        text = request.text.strip()
        if not text:
            return Reply(c.HELP)
        clean = redact(text)
        limit = self.settings.max_message_chars
        if len(clean) > limit:  # counted as stored: redaction may lengthen a short email a little
            raise UserError(
                f"That message is {len(clean):,} characters; frictionlog takes up to {limit:,}. "
                "Please shorten it to the problem itself (one issue per message works best)."
            )
        if request.event_id:
            with Session(self.engine) as session:
                earlier = queries.submission_by_event(session, event_id=request.event_id)
                if earlier is not None:  # a platform retry: answer as the first time
                    return replace(self.confirmation(earlier.id), duplicate=True)
        now = self.clock()
        submission = Submission(
            text=clean,
            kind=infer_kind(clean),
            tags=",".join(tags_of(clean)),
            platform=request.platform,
            author=None if request.anonymous else (request.user_name or request.user),
            author_hash=self.person_hash(request.platform, request.user),
            reporter_sealed=self.sealer.seal(request.platform, request.user),
            anonymous=request.anonymous,
            channel=None if request.anonymous else request.channel,  # a DM channel names its person
            source_url=request.source_url,
            platform_event_id=request.event_id,
            created_at=now,
        )
        # Durable before anything slow: the sender is never told "logged" for a lost message.
        try:
            with session_scope(self.engine) as session:
                session.add(submission)
        except IntegrityError:
            with Session(self.engine) as session:
                earlier = queries.submission_by_event(session, event_id=request.event_id or "")
            if earlier is None:
                raise
            return replace(self.confirmation(earlier.id), duplicate=True)
        try:
            self.assign_theme(submission.id)
        except Exception:
            self.theming.invalidate()  # the index may hold a theme whose insert was rolled back
            log.exception("theme assignment failed for %s; it will be themed on the next run", submission.id)
            return Reply(
                f"Logged as {submission_key(submission.id)}. We could not match it to a theme just now; "
                "it will join one at the next re-clustering."
            )
        return self.confirmation(submission.id)

    def assign_theme(self, submission_id: int) -> None:
        with Session(self.engine) as session:
            submission = session.get(Submission, submission_id)
            if submission is None or submission.theme_id is not None:
                return
            text = submission.text
        vectors = self.theming.embedder.embed([text])  # the slow part, outside the lock
        with self.theming.lock, session_scope(self.engine) as session:
            submission = session.get(Submission, submission_id)
            if submission is not None and submission.theme_id is None:
                self.theming.place(session, [submission], vectors, self.clock())

    def confirmation(self, submission_id: int) -> Reply:
        with Session(self.engine) as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise UserError(f"{submission_key(submission_id)} no longer exists.")
            key = submission_key(submission.id)
            theme = session.get(Theme, submission.theme_id) if submission.theme_id else None
            if theme is None:
                return Reply(f"Logged as {key}. It will join a theme shortly.")
            people = queries.reporter_count(session, theme_id=theme.id)
            others = "you are the first to report this" if people <= 1 else f"{people} people reported this"
            anonymous = " (anonymously)" if submission.anonymous else ""
            buttons = (
                Button("Undo", "undo", str(submission.id), "danger"),
                *(() if submission.anonymous else (Button("Make anonymous", "anonymous", str(submission.id)),)),
                Button("Different issue", "different_issue", str(submission.id)),
            )
            return Reply(
                f"Logged as {key}{anonymous}. It joined {theme.key} “{theme.title}”: {others}.",
                sections=(self._theme_section(session, theme, people),),
                buttons=buttons,
            )

    def _theme_section(self, session: Session, theme: Theme, people: int | None = None) -> Section:
        people = queries.reporter_count(session, theme_id=theme.id) if people is None else people
        return Section(
            title=f"{theme.key} · {theme.title}",
            text=theme.summary,
            fields=(
                ("Reported by", f"{people} {'person' if people == 1 else 'people'}"),
                ("Owner", Person(theme.owner) if theme.owner else "unowned"),
                ("Status", STATUS_LABELS.get(theme.status, theme.status)),
            ),
            buttons=(Button("Me too", "me_too", str(theme.id)),),
        )

    def _own_submission(self, session: Session, request: Request, submission_id: int) -> Submission:
        submission = session.get(Submission, submission_id)
        if submission is None or submission.author_hash != self.person_hash(request.platform, request.user):
            raise UserError(f"{submission_key(submission_id)} is not one of your submissions.")
        return submission

    def undo(self, request: Request, submission_id: int) -> Reply:
        with self.theming.lock, session_scope(self.engine) as session:
            submission = self._own_submission(session, request, submission_id)
            if self.clock() - submission.created_at > UNDO_WINDOW:
                raise UserError(
                    f"{submission_key(submission_id)} is older than 24 hours and counts in the themes now; "
                    "ask a team lead if it must go."
                )
            self.theming.withdraw(session, submission)
        self.theming.invalidate()
        return Reply(f"Done: {submission_key(submission_id)} is withdrawn.")

    def make_anonymous(self, request: Request, submission_id: int) -> Reply:
        with session_scope(self.engine) as session:
            submission = self._own_submission(session, request, submission_id)
            submission.author, submission.channel, submission.anonymous = None, None, True
            session.add(submission)
        return Reply(f"{submission_key(submission_id)} is now anonymous: your name appears nowhere.")

    def different_issue(self, request: Request, submission_id: int) -> Reply:
        """The sender (or a lead) says it is not that theme: it gets one of its own, for good."""
        with self.theming.lock, session_scope(self.engine) as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise UserError(f"{submission_key(submission_id)} does not exist.")
            if submission.author_hash != self.person_hash(request.platform, request.user):
                self._require_lead(session, request, "move someone else's submission")
            new_theme = self._split_off(session, [submission], request, submission.theme_id)
        return Reply(f"Moved {submission_key(submission_id)} to a new theme, {theme_key(new_theme.id)}.")

    def me_too(self, request: Request, theme_id: int) -> Reply:
        with session_scope(self.engine) as session:
            theme = self._theme(session, theme_id)
            added = queries.add_vote(
                session,
                theme_id=theme.id,
                voter_hash=self.person_hash(request.platform, request.user),
                voter_sealed=self.sealer.seal(request.platform, request.user),
                at=self.clock(),
            )
            people = queries.reporter_count(session, theme_id=theme.id)
        if not added:
            return Reply(f"You are already counted on {theme.key} ({people} people).")
        return Reply(f"Counted: {theme.key} “{theme.title}” now has {people} people behind it.")

    def mine(self, request: Request) -> Reply:
        with Session(self.engine) as session:
            own = queries.submissions_by_author(session, author_hash=self.person_hash(request.platform, request.user))
            if not own:
                return Reply("You have not logged anything yet. Send me what got in your way.")
            sections = []
            for submission in own:
                theme = session.get(Theme, submission.theme_id) if submission.theme_id else None
                where = (
                    f"{theme.key} “{theme.title}” · {STATUS_LABELS[theme.status]} · owner {theme.owner or 'none yet'}"
                    if theme
                    else "not themed yet"
                )
                sections.append(
                    Section(title=submission_key(submission.id), text=f"{_clip(submission.text, 140)}\n{where}")
                )
        return Reply(f"Your last {len(sections)} submissions:", sections=tuple(sections))

    def home(self, request: Request) -> Reply:
        """The person's home page: a lead's theme board, or an agent's own submissions."""
        with Session(self.engine) as session:
            lead = self.is_lead(session, request)
        own = self.mine(request)
        if not lead:
            return own
        board = self.board()
        return Reply(
            board.text,
            sections=board.sections + (Section(title="Your own submissions", text=own.text),) + own.sections,
        )

    def board(self) -> Reply:
        """Every live theme for a lead, unowned and growing first, each with an owner picker."""
        now = self.clock()
        week = timedelta(days=7)
        with Session(self.engine) as session:
            themes = [t for t in queries.live_themes(session) if t.status not in CLOSED_STATUSES]
            recent = queries.theme_counts_since(session, since=now - week, until=now + timedelta(seconds=1))
            before = queries.theme_counts_since(session, since=now - 2 * week, until=now - week)
            themes.sort(
                key=lambda t: (t.owner is not None, -(recent.get(t.id, 0) - before.get(t.id, 0)), -t.size, t.id)
            )
            sections = []
            for theme in themes[:BOARD_LIMIT]:
                section = self._theme_section(session, theme)
                growth = recent.get(theme.id, 0) - before.get(theme.id, 0)
                fields = section.fields + (("Last 7 days", f"{recent.get(theme.id, 0)} ({growth:+d})"),)
                sections.append(replace(section, fields=fields, buttons=(Button("Owner", "assign", str(theme.id)),)))
            sections += self._look_alike_sections(themes[:LOOK_ALIKE_AMONG])
        if not sections:
            return Reply("Theme board: no open themes yet.")
        unowned = sum(1 for t in themes if t.owner is None)
        more = f", the first {BOARD_LIMIT} shown" if len(themes) > BOARD_LIMIT else ""
        return Reply(f"Theme board: {len(themes)} open themes, {unowned} without an owner{more}.", tuple(sections))

    def _look_alike_sections(self, themes: list[Theme]) -> list[Section]:
        """Themes that look like one problem, each pair with a button merging the smaller away."""
        sections = []
        for one, other, similarity in self.theming.look_alike(themes, LOOK_ALIKE_PAIRS):
            small, big = sorted((one, other), key=lambda t: (t.size, -t.id))
            sections.append(
                Section(
                    title=f"Same problem? {small.key} and {big.key}",
                    text=f"{small.key} “{small.title}” ({small.size}) looks like {big.key} “{big.title}” "
                    f"({big.size}): similarity {similarity:.2f}.",
                    buttons=(Button(f"Merge {small.key} into {big.key}", "merge", f"{small.id}:{big.id}"),),
                )
            )
        return sections

    # Everyone can look ---------------------------------------------------------------------

    def _theme(self, session: Session, theme_id: int) -> Theme:
        theme = queries.follow_merges(session, theme_id=theme_id)
        if theme is None:
            raise UserError(f"There is no theme {theme_key(theme_id)}. Try /friction themes.")
        return theme

    def themes_overview(self, limit: int = 20) -> Reply:
        with Session(self.engine) as session:
            themes = queries.live_themes(session)
            if not themes:
                return Reply("No themes yet: nothing has been logged.")
            sections = tuple(self._theme_section(session, t) for t in themes[:limit])
        more = f" (the {limit} biggest shown)" if len(themes) > limit else ""
        return Reply(f"{len(themes)} themes{more}:", sections=sections)

    def show_theme(self, theme_id: int, quotes: int = 5) -> Reply:
        with Session(self.engine) as session:
            theme = self._theme(session, theme_id)
            moved = f"{theme_key(theme_id)} was merged into {theme.key}.\n" if theme.id != theme_id else ""
            recent = queries.submissions_of_theme(session, theme_id=theme.id, limit=quotes)
            lines = [f"“{_clip(s.text, 280)}”" for s in recent if not s.hidden]
            note = f"\nLatest note: {theme.status_note}" if theme.status_note else ""
            section = self._theme_section(session, theme)
        return Reply(
            f"{moved}{theme.key} “{theme.title}” — {theme.size} submissions.{note}",
            sections=(section, Section(title="Recent reports", text="\n".join(lines))),
        )

    def digest_preview(self) -> Reply:
        from digests.compose import compose_digest
        from digests.render import render_text

        digest = compose_digest(
            self.engine, zone=self.settings.zone, now=self.clock(), ack_hours=self.settings.ack_hours
        )
        return Reply(render_text(digest))

    # Team leads and owners -----------------------------------------------------------------

    def assign(self, request: Request, theme_id: int, owner: str) -> Reply:
        with session_scope(self.engine) as session:
            self._require_lead(session, request, "assign owners")
            theme = self._theme(session, theme_id)
            now = self.clock()
            previous = theme.owner
            theme.owner, theme.owner_assigned_at, theme.acknowledged_at = owner, now, None
            theme.updated_at = now
            session.add(theme)
            queries.audit(
                session,
                actor=request.user,
                action="assign",
                theme_id=theme.id,
                at=now,
                detail=f"owner {previous or 'none'} -> {owner}",
            )
            notification = self._owner_notification(session, theme, owner, request.platform)
        hours = self.settings.ack_hours
        return Reply(
            f"{theme.key} “{theme.title}” is now owned by {owner}, who has {hours} h to acknowledge it.",
            sections=(Section(title=f"{theme.key} · {theme.title}", fields=(("Owner", Person(owner)),)),),
            notifications=(notification,),
        )

    def _owner_notification(self, session: Session, theme: Theme, owner: str, platform: str) -> Notification:
        """What a new owner gets: the theme, its quotes, its count and trend, and the status buttons."""
        people = queries.reporter_count(session, theme_id=theme.id)
        recent = [s for s in queries.submissions_of_theme(session, theme_id=theme.id, limit=20) if not s.hidden]
        quotes = "\n".join(f"“{_clip(s.text, 280)}”" for s in recent[:OWNER_QUOTES])
        hours = self.settings.ack_hours
        return Notification(
            user=owner,
            platform=platform,
            text=(
                f"You now own {theme.key} “{theme.title}”: {theme.size} submissions from {people} "
                f"{'person' if people == 1 else 'people'}. Please acknowledge it within {hours} h."
            ),
            sections=(
                Section(
                    title=f"{theme.key} · {theme.title}",
                    text=theme.summary,
                    fields=(
                        ("Submissions", str(theme.size)),
                        ("Reported by", f"{people} {'person' if people == 1 else 'people'}"),
                        ("Weekly trend", self._trend(session, theme)),
                        ("Status", STATUS_LABELS.get(theme.status, theme.status)),
                    ),
                ),
                Section(title="What people said", text=quotes or "No quotes to show."),
            ),
            buttons=(
                Button("Acknowledge", "status", f"{theme.id}:acknowledged", "primary"),
                Button("In progress", "status", f"{theme.id}:in_progress"),
                Button("Resolved", "status", f"{theme.id}:resolved", needs_note=True),
                Button("Won't fix", "status", f"{theme.id}:wont_fix", "danger", needs_note=True),
            ),
        )

    def _trend(self, session: Session, theme: Theme) -> str:
        """Submissions per ISO week, oldest first, ending with this week."""
        zone = self.settings.zone
        this_week = IsoWeek.containing(self.clock(), zone)
        weeks = [this_week.previous(n) for n in reversed(range(TREND_WEEKS))]
        since, _ = weeks[0].bounds(zone)
        counts = {str(week): 0 for week in weeks}
        for created in queries.created_times_of_theme(session, theme_id=theme.id, since=since):
            label = str(IsoWeek.containing(created, zone))
            if label in counts:
                counts[label] += 1
        values = list(counts.values())
        return f"{' · '.join(str(v) for v in values)} (last {TREND_WEEKS} weeks, this week last)"

    def set_status(self, request: Request, theme_id: int, status: str, note: str = "") -> Reply:
        with session_scope(self.engine) as session:
            theme = self._theme(session, theme_id)
            owns = theme.owner is not None and theme.owner in (request.user, request.user_name)
            if not owns:  # an unowned theme has no owner to match: only a lead may move it
                self._require_lead(session, request, "change the status of a theme they do not own")
            if status in CLOSED_STATUSES and not note:
                raise UserError(
                    f"Please add a note for “{STATUS_LABELS[status]}”: it goes back to everyone who reported "
                    f"{theme.key}. Example: /friction status {theme.key} {status} <what changed>"
                )
            now = self.clock()
            before = theme.status
            theme.status, theme.status_changed_at, theme.updated_at = status, now, now
            theme.status_note = note or theme.status_note
            if status != "new" and theme.acknowledged_at is None:
                theme.acknowledged_at = now
            session.add(theme)
            queries.audit(
                session,
                actor=request.user,
                action="status",
                theme_id=theme.id,
                at=now,
                detail=f"{before} -> {status}" + (f": {note}" if note else ""),
            )
            notifications = self._resolution_notifications(session, theme) if status in CLOSED_STATUSES else ()
        told = len(notifications)
        return Reply(
            f"{theme.key} “{theme.title}” is now {STATUS_LABELS[status]}."
            + (f" Note: {note.rstrip('.')}." if note else "")
            + (f" {told} {'reporter' if told == 1 else 'reporters'} will hear about it." if told else ""),
            notifications=notifications,
        )

    def _resolution_notifications(self, session: Session, theme: Theme) -> tuple[Notification, ...]:
        """ "You said, we did": the note goes to every reporter and "me too" of the theme, anonymous
        ones included. Their ids are opened from the sealed column for this delivery only."""
        text = f"Update on something you reported: {theme.key} “{theme.title}” is {STATUS_LABELS[theme.status]}."
        section = Section(title="What the owner says", text=theme.status_note)
        notifications = []
        for _person, sealed in queries.sealed_people_of_theme(session, theme_id=theme.id):
            opened = self.sealer.open(sealed)
            if opened is not None:
                platform, user = opened
                notifications.append(Notification(user=user, platform=platform, text=text, sections=(section,)))
        return tuple(notifications)

    def rename(self, request: Request, theme_id: int, title: str) -> Reply:
        title = " ".join(title.split())[:120]
        if not title:
            raise UserError("Give the new title after the theme, e.g. /friction rename T-12 Refund approvals take days")
        with session_scope(self.engine) as session:
            self._require_lead(session, request, "rename themes")
            theme = self._theme(session, theme_id)
            before = theme.title
            theme.title, theme.title_locked, theme.updated_at = title, True, self.clock()
            session.add(theme)
            queries.audit(
                session,
                actor=request.user,
                action="rename",
                theme_id=theme.id,
                at=self.clock(),
                detail=f"{before} -> {title}",
            )
        return Reply(f"{theme.key} is now “{title}”. Re-clustering will keep this title.")

    def merge(self, request: Request, source_id: int, target_id: int) -> Reply:
        with self.theming.lock, session_scope(self.engine) as session:
            self._require_lead(session, request, "merge themes")
            source, target = self._theme(session, source_id), self._theme(session, target_id)
            if source.id == target.id:
                raise UserError(f"{source.key} and {target.key} are already the same theme.")
            now = self.clock()
            moved = queries.reassign_theme(session, from_theme_id=source.id, to_theme_id=target.id)
            queries.pin_theme(session, theme_id=target.id)  # the lead put them together: they stay
            queries.move_votes(session, moves={source.id: target.id})
            target.size += moved
            target.curated, target.updated_at = True, now
            target.owner = target.owner or source.owner
            # The source keeps its centre: new reports like its own still find their way here.
            source.merged_into_id, source.size, source.updated_at = target.id, 0, now
            session.add_all([source, target])
            queries.audit(
                session,
                actor=request.user,
                action="merge",
                theme_id=target.id,
                at=now,
                detail=f"{source.key} “{source.title}” ({moved} submissions) -> {target.key}",
            )
        self.theming.invalidate()
        return Reply(
            f"Merged {source.key} into {target.key} “{target.title}”: {moved} submissions moved. "
            f"{source.key} now points to {target.key}."
        )

    def split(self, request: Request, theme_id: int, submission_ids: tuple[int, ...]) -> Reply:
        with self.theming.lock, session_scope(self.engine) as session:
            self._require_lead(session, request, "split themes")
            theme = self._theme(session, theme_id)
            chosen = queries.submissions_in_theme(session, theme_id=theme.id, submission_ids=submission_ids)
            if len(chosen) != len(set(submission_ids)):
                raise UserError(
                    f"Every submission to split off must be in {theme.key}; see /friction theme {theme.key}."
                )
            if len(chosen) == theme.size:
                raise UserError(f"That would move all of {theme.key}; rename it instead.")
            new_theme = self._split_off(session, chosen, request, theme.id)
        return Reply(
            f"Split {len(chosen)} submissions off {theme_key(theme_id)} into {new_theme.key} “{new_theme.title}”."
        )

    def _split_off(
        self, session: Session, chosen: list[Submission], request: Request, from_theme_id: int | None
    ) -> Theme:
        now = self.clock()
        title = self.theming.offline_namer.name([[s.text for s in chosen]])[0]
        new_theme = Theme(
            title=title.title,
            summary=title.summary,
            created_at=now,
            updated_at=now,
            size=len(chosen),
            named_size=len(chosen),
            centroid=self.theming.centre_of(chosen),  # new reports like these can join it at once
        )
        session.add(new_theme)
        session.flush()
        for submission in chosen:
            submission.theme_id, submission.pinned = new_theme.id, True
            session.add(submission)
        if from_theme_id is not None:
            old = session.get(Theme, from_theme_id)
            old.size = max(0, old.size - len(chosen))
            session.add(old)
        ids = ", ".join(submission_key(s.id) for s in chosen)
        queries.audit(
            session,
            actor=request.user,
            action="split",
            theme_id=new_theme.id,
            at=now,
            detail=f"{ids} from {theme_key(from_theme_id)} -> {new_theme.key}",
        )
        self.theming.invalidate()
        return new_theme


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"
