"""What every use case shares: the database, settings, clock, theme engine, who is a lead, and
the few words and shapes (theme cards, status names) every reply uses."""

from collections.abc import Callable, Mapping

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.actions import ActionCodec, MeToo
from bot.clock import Clock
from bot.messages import Button, Inbound, Section
from bot.people import Person
from bot.sealing import Sealer
from bot.settings import Settings
from digests.digest import people_count
from digests.theming import Theming
from storage import queries
from storage.models import ANONYMOUS_SENDER, Theme, theme_key

STATUS_LABELS = {
    "new": "new",
    "acknowledged": "acknowledged",
    "in_progress": "in progress",
    "resolved": "resolved",
    "wont_fix": "won't fix",
}
SORRY = "Sorry, something went wrong on our side. Please try again in a minute."


class UserError(Exception):
    """Something the person can fix; the message is shown to them as it is."""


def submission_key(submission_id: int) -> str:
    return f"S-{submission_id}"


def clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


class Core:
    def __init__(self, engine: Engine, settings: Settings, theming: Theming, clock: Clock):
        self.engine = engine
        self.settings = settings
        self.theming = theming
        self.clock = clock
        self.sealer = Sealer(settings.secret_key)
        self.codec = ActionCodec(settings.secret_key)
        # Display names by person, as their platforms show them; set by the pipeline that runs
        # this core (bot/pipeline.py). Without one, people are shown by id.
        self.display_names: Callable[[list[Person]], Mapping[Person, str]] | None = None

    # People ----------------------------------------------------------------------------------

    def person_hash(self, person: Person) -> str:
        """A keyed hash of (platform, id): "mine", undo and me-too work without storing who."""
        return self.sealer.person_hash(person.platform, person.id)

    def is_lead(self, session: Session, event: Inbound) -> bool:
        if event.user in self.settings.team_lead_ids_for(event.platform):
            return True
        if event.groups & self.settings.team_lead_groups:  # a member of a lead user group
            return True
        return queries.has_role(session, platform=event.platform, user_id=event.user, role="lead")

    def require_lead(self, session: Session, event: Inbound, action: str) -> None:
        if not self.is_lead(session, event):
            raise UserError(f"Only team leads can {action}. Ask your team lead, or see /friction help.")

    def audit(
        self, session: Session, event: Inbound, action: str, theme_id: int | None, detail: str, anonymous=False
    ) -> None:
        """Who did what to which theme, now: every curation and status change leaves one. An
        anonymous sender's own act (withdrawing their report) is recorded without their id."""
        queries.audit(
            session,
            actor=ANONYMOUS_SENDER if anonymous else event.user,
            actor_platform=None if anonymous else event.platform,
            action=action,
            theme_id=theme_id,
            at=self.clock(),
            detail=detail,
        )

    # Themes ----------------------------------------------------------------------------------

    def theme(self, session: Session, theme_id: int) -> Theme:
        theme = queries.follow_merges(session, theme_id=theme_id)
        if theme is None:
            raise UserError(f"There is no theme {theme_key(theme_id)}. Try /friction themes.")
        return theme

    def quotable(self, writers: int) -> bool:
        """Words from a theme may be shown only when enough people wrote it in their own words
        that no quote can single anyone out (FRICTIONLOG_MIN_GROUP; queries.writer_count)."""
        return writers >= self.settings.min_group

    def withheld(self, writers: int) -> str:
        return (
            f"Examples appear once {self.settings.min_group} people have reported it in their own words "
            f"({people_count(writers)} so far), so no one can be singled out."
        )

    def example(self, theme: Theme, writers: int) -> str:
        """A theme's most representative submission, or why it is withheld."""
        return theme.summary if self.quotable(writers) else self.withheld(writers)

    def theme_section(
        self, session: Session, theme: Theme, people: int | None = None, writers: int | None = None
    ) -> Section:
        people = queries.reporter_count(session, theme_id=theme.id) if people is None else people
        writers = queries.writer_count(session, theme_id=theme.id) if writers is None else writers
        owner = Person.stored(theme.owner_platform, theme.owner)
        return Section(
            title=f"{theme.key} · {theme.title}",
            text=self.example(theme, writers),
            fields=(
                ("Reported by", people_count(people)),
                ("Owner", owner if owner else "unowned"),
                ("Status", STATUS_LABELS.get(theme.status, theme.status)),
            ),
            buttons=(Button("Me too", MeToo(theme.id)),),
        )
