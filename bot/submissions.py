"""Agents' use cases: log a report, hear which theme it joined, undo it, make it anonymous,
say it is a different issue, add a "me too", see what they logged."""

from datetime import timedelta

import numpy as np
from sqlmodel import Session

from bot import commands as c
from bot.actions import DifferentIssue, MakeAnonymous, Undo
from bot.classify import infer_kind, tags_of
from bot.core import Core, UserError, clip, people_count, submission_key
from bot.messages import Button, Inbound, Reply, Section
from bot.people import Person
from bot.redaction import redact
from storage import queries
from storage.models import Submission, Theme, theme_key

UNDO_WINDOW = timedelta(hours=24)


def new_submission(core: Core, event: Inbound, command: c.Submit) -> Submission | None:
    """The row to store before the platform is acknowledged: redacted, classified, the sender
    hashed and sealed. None when there is nothing to store (empty or too long: the reply says why)."""
    clean = redact(command.text.strip())
    if not clean or len(clean) > core.settings.max_message_chars:
        return None
    anonymous = command.anonymous or event.anonymous
    return Submission(
        text=clean,
        kind=infer_kind(clean),
        tags=",".join(tags_of(clean)),
        platform=event.platform,
        author=None if anonymous else (event.user_name or event.user),
        author_hash=core.person_hash(event.person),
        reporter_sealed=core.sealer.seal(event.platform, event.user),
        anonymous=anonymous,
        channel=None if anonymous else event.channel,  # a DM channel names its person
        source_url=event.source_url,  # the adapter keeps none that would name an anonymous sender
        platform_event_id=f"{event.platform}:{event.delivery_id}" if event.delivery_id else None,
        created_at=core.clock(),
    )


def refusal(core: Core, command: c.Submit) -> Reply:
    """Why a message was not stored."""
    clean = redact(command.text.strip())
    if not clean:
        return Reply(c.HELP)
    limit = core.settings.max_message_chars
    return Reply(
        f"That message is {len(clean):,} characters; frictionlog takes up to {limit:,}. "
        "Please shorten it to the problem itself (one issue per message works best).",
        ok=False,
    )


def place(core: Core, session: Session, submission: Submission, vector: np.ndarray | None) -> None:
    """Join the nearest theme (or open one); without a vector it waits for re-clustering."""
    if vector is not None and submission.theme_id is None:
        core.theming.place(session, [submission], vector[None, :], core.clock())


def confirmation(core: Core, session: Session, submission_id: int) -> Reply:
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise UserError(f"{submission_key(submission_id)} no longer exists.")
    key = submission_key(submission.id)
    theme = session.get(Theme, submission.theme_id) if submission.theme_id else None
    if theme is None:
        return Reply(
            f"Logged as {key}. We could not match it to a theme just now; it will join one at the next re-clustering.",
            buttons=(Button("Undo", Undo(submission.id), "danger"),),
        )
    people = queries.reporter_count(session, theme_id=theme.id)
    others = "you are the first to report this" if people <= 1 else f"{people} people reported this"
    anonymous = " (anonymously)" if submission.anonymous else ""
    buttons = (
        Button("Undo", Undo(submission.id), "danger"),
        *(() if submission.anonymous else (Button("Make anonymous", MakeAnonymous(submission.id)),)),
        Button("Different issue", DifferentIssue(submission.id)),
    )
    return Reply(
        f"Logged as {key}{anonymous}. It joined {theme.key} “{theme.title}”: {others}.",
        sections=(core.theme_section(session, theme, people),),
        buttons=buttons,
    )


def _own(core: Core, session: Session, event: Inbound, submission_id: int) -> Submission:
    submission = session.get(Submission, submission_id)
    if submission is None or submission.author_hash != core.person_hash(event.person):
        raise UserError(f"{submission_key(submission_id)} is not one of your submissions.")
    return submission


def undo(core: Core, session: Session, event: Inbound, submission_id: int) -> Reply:
    submission = _own(core, session, event, submission_id)
    if core.clock() - submission.created_at > UNDO_WINDOW:
        raise UserError(
            f"{submission_key(submission_id)} is older than 24 hours and counts in the themes now; "
            "ask a team lead if it must go."
        )
    from_theme, anonymous = submission.theme_id, submission.anonymous
    core.theming.withdraw(session, submission, core.clock())
    detail = f"{submission_key(submission_id)} withdrawn by its sender (text removed)"
    core.audit(session, event, "withdraw", from_theme, detail, anonymous=anonymous)
    session.info["scrub"] = True  # its words leave the database file too
    return Reply(f"Done: {submission_key(submission_id)} is withdrawn.")


def make_anonymous(core: Core, session: Session, event: Inbound, submission_id: int) -> Reply:
    submission = _own(core, session, event, submission_id)
    submission.author, submission.channel, submission.source_url, submission.anonymous = None, None, None, True
    session.add(submission)
    # Nor does what they did to it before ("Different issue"): the digest's footer would name them.
    key = submission_key(submission_id)
    queries.unsign_audit(session, actor=event.user, actor_platform=event.platform, submission=key)
    session.info["scrub"] = True  # after commit: overwritten bytes leave the database file too
    return Reply(f"{submission_key(submission_id)} is now anonymous: your name appears nowhere.")


def different_issue(core: Core, session: Session, event: Inbound, submission_id: int) -> Reply:
    """The sender (or a lead) says it is not that theme: it gets one of its own, for good."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise UserError(f"{submission_key(submission_id)} does not exist.")
    own = submission.author_hash == core.person_hash(event.person)
    if not own:
        core.require_lead(session, event, "move someone else's submission")
    from_theme = submission.theme_id
    new_theme = core.theming.split_off(session, [submission], from_theme, core.clock())
    core.audit(
        session,
        event,
        "split",
        new_theme.id,
        f"{submission_key(submission.id)} from {theme_key(from_theme)} -> {new_theme.key} (different issue)",
        anonymous=own and submission.anonymous,  # a lead moving it is named; its anonymous sender is not
    )
    return Reply(f"Moved {submission_key(submission_id)} to a new theme, {theme_key(new_theme.id)}.")


def me_too(core: Core, session: Session, event: Inbound, theme_id: int) -> Reply:
    theme = core.theme(session, theme_id)
    added = queries.add_vote(
        session,
        theme_id=theme.id,
        voter_hash=core.person_hash(event.person),
        voter_sealed=core.sealer.seal(event.platform, event.user),
        at=core.clock(),
    )
    people = queries.reporter_count(session, theme_id=theme.id)
    if not added:
        return Reply(f"You are already counted on {theme.key} ({people_count(people)}).")
    return Reply(f"Counted: {theme.key} “{theme.title}” now has {people_count(people)} behind it.")


def mine(core: Core, session: Session, event: Inbound) -> Reply:
    own = queries.submissions_by_author(session, author_hash=core.person_hash(event.person))
    if not own:
        return Reply("You have not logged anything yet. Send me what got in your way.")
    sections = []
    for submission in own:
        theme = session.get(Theme, submission.theme_id) if submission.theme_id else None
        where = f"{theme.key} “{theme.title}” · {theme.status.replace('_', ' ')}" if theme else "not themed yet"
        owner = Person.stored(theme.owner_platform, theme.owner) if theme else None
        sections.append(
            Section(
                title=submission_key(submission.id),
                text=f"{clip(submission.text, 140)}\n{where}",
                fields=(("Owner", owner or "none yet"),) if theme else (),
            )
        )
    heading = "Your last submission:" if len(sections) == 1 else f"Your last {len(sections)} submissions:"
    return Reply(heading, sections=tuple(sections))
