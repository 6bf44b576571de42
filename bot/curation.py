"""Team leads' use cases on themes: merge, "not the same", rename, split. Every one leaves an audit event."""

from sqlmodel import Session

from bot.core import Core, UserError, submission_key
from bot.messages import Inbound, Reply
from digests.digest import counted
from storage import queries


def two_themes(core: Core, session: Session, event: Inbound, one_id: int, other_id: int, doing: str):
    """Two different themes, for a lead: what merging and "not the same" act on."""
    core.require_lead(session, event, doing)
    one, other = core.theme(session, one_id), core.theme(session, other_id)
    if one.id == other.id:
        raise UserError(f"{one.key} and {other.key} are already the same theme.")
    return one, other


def merge(core: Core, session: Session, event: Inbound, source_id: int, target_id: int) -> Reply:
    source, target = two_themes(core, session, event, source_id, target_id, "merge themes")
    now = core.clock()
    moved = core.theming.merge(session, source, target, now)
    core.audit(
        session, event, "merge", target.id, f"{source.key} “{source.title}” ({moved} submissions) -> {target.key}"
    )
    return Reply(
        f"Merged {source.key} into {target.key} “{target.title}”: {counted(moved, 'submission', 'submissions')} moved. "
        f"{source.key} now points to {target.key}."
    )


def not_the_same(core: Core, session: Session, event: Inbound, theme_id: int, other_id: int) -> Reply:
    """A lead's "Not the same": remembered, never asked again, and re-clustering keeps them apart."""
    one, other = two_themes(core, session, event, theme_id, other_id, "judge look-alike themes")
    now = core.clock()
    lead = f"{event.platform}:{event.user}"
    if queries.decide_theme_pair(session, one=one.id, other=other.id, verdict="distinct", by=lead, at=now):
        core.audit(session, event, "not the same", one.id, f"{one.key} and {other.key} are different problems")
    return Reply(f"{one.key} and {other.key} stay apart: re-clustering keeps them apart, and nobody is asked again.")


def rename(core: Core, session: Session, event: Inbound, theme_id: int, title: str) -> Reply:
    title = " ".join(title.split())[:120]
    if not title:
        raise UserError("Give the new title after the theme, e.g. /friction rename T-12 Refund approvals take days")
    core.require_lead(session, event, "rename themes")
    theme = core.theme(session, theme_id)
    other = queries.open_theme_titled(session, title=title, excluding={theme.id})
    if other is not None:  # two rows alike on the board and in the digest: nobody could tell them apart
        raise UserError(
            f"{other.key} is already called “{other.title}”. Choose another title, or if they are one "
            f"problem: /friction merge {theme.key} into {other.key}"
        )
    before = theme.title
    core.theming.rename(session, theme, title, core.clock())
    core.audit(session, event, "rename", theme.id, f"{before} -> {title}")
    return Reply(f"{theme.key} is now “{title}”. Re-clustering will keep this title.")


def split(core: Core, session: Session, event: Inbound, theme_id: int, submission_ids: tuple[int, ...]) -> Reply:
    core.require_lead(session, event, "split themes")
    theme = core.theme(session, theme_id)
    chosen = queries.submissions_in_theme(session, theme_id=theme.id, submission_ids=submission_ids)
    if len(chosen) != len(set(submission_ids)):
        raise UserError(f"Every submission to split off must be in {theme.key}; see /friction theme {theme.key}.")
    if len(chosen) == theme.size:
        raise UserError(f"That would move all of {theme.key}; rename it instead.")
    new_theme = core.theming.split_off(session, chosen, theme.id, core.clock())
    core.audit(
        session,
        event,
        "split",
        new_theme.id,
        f"{', '.join(submission_key(s.id) for s in chosen)} from {theme.key} -> {new_theme.key}",
    )
    # The theme they left: a merged key the lead typed leads there.
    moved = counted(len(chosen), "submission", "submissions")
    return Reply(f"Split {moved} off {theme.key} into {new_theme.key} “{new_theme.title}”.")
