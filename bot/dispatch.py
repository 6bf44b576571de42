"""Which use case each command and each button runs: one table for every platform."""

from sqlmodel import Session

from bot import actions as a
from bot import commands as c
from bot import curation, deadlines, owners, seen_by_leadership, submissions, targets, views
from bot.core import Core, UserError
from bot.messages import Inbound, Reply
from bot.people import Person


def command(core: Core, session: Session, event: Inbound, command: c.Command) -> Reply:
    """The use case a typed command runs."""
    match command:
        case c.Submit():
            return submissions.refusal(core, command)  # a stored one never gets here
        case c.Help(reason):
            return Reply(f"{reason}\n\n{c.HELP}".strip())
        case c.Usage(text):
            return Reply(text, ok=False)
        case c.Themes():
            return views.themes_overview(core, session)
        case c.ShowTheme(theme_id):
            return views.show_theme(core, session, theme_id)
        case c.Mine():
            return submissions.mine(core, session, event)
        case c.DigestPreview():
            return views.digest_preview(core)
        case c.DigestHere(on, cron, timezone):
            return targets.digest_here(core, session, event, on, cron, timezone)
        case c.Assign(theme_id, owner):
            return owners.assign(core, session, event, theme_id, Person.parse(owner, event.platform))
        case c.SetStatus(theme_id, status, note):
            return owners.set_status(core, session, event, theme_id, status, note)
        case c.Due(theme_id, when):
            return deadlines.set_due(core, session, event, theme_id, when)
        case c.Quiet(on):
            return seen_by_leadership.quiet(core, session, event, on)
        case c.Merge(source_id, target_id):
            return curation.merge(core, session, event, source_id, target_id)
        case c.Rename(theme_id, title):
            return curation.rename(core, session, event, theme_id, title)
        case c.Split(theme_id, submission_ids):
            return curation.split(core, session, event, theme_id, submission_ids)
        case c.Undo(submission_id):
            return submissions.undo(core, session, event, submission_id)
        case c.MeToo(theme_id):
            return submissions.me_too(core, session, event, theme_id)
    raise AssertionError(f"unhandled command {command!r}")


def act(core: Core, session: Session, event: Inbound, action: a.Action) -> Reply:
    """The use case a button (or a completed form) runs."""
    match action:
        case a.Undo(submission_id):
            return submissions.undo(core, session, event, submission_id)
        case a.MakeAnonymous(submission_id):
            return submissions.make_anonymous(core, session, event, submission_id)
        case a.DifferentIssue(submission_id):
            return submissions.different_issue(core, session, event, submission_id)
        case a.MeToo(theme_id):
            return submissions.me_too(core, session, event, theme_id)
        case a.SetStatus(theme_id, status, note):
            return owners.set_status(core, session, event, theme_id, status, note)
        case a.AssignOwner(theme_id, owner):
            if owner is None:
                raise UserError("Choose who should own the theme.")
            return owners.assign(core, session, event, theme_id, owner)
        case a.MergeThemes(source_id, target_id):
            return curation.merge(core, session, event, source_id, target_id)
        case a.NotTheSame(theme_id, other_id):
            return curation.not_the_same(core, session, event, theme_id, other_id)
    raise AssertionError(f"unhandled action {action!r}")
