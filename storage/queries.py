"""Every query frictionlog runs. Functions take the session first and keywords after."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import bindparam, case, false, func, insert, not_, union, update
from sqlalchemy import delete as sqldelete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import (
    ANONYMOUS_SENDER,
    CLOSED_STATUSES,
    AuditEvent,
    ConversationRef,
    Delivery,
    DigestRun,
    DigestTarget,
    EmbedderChoice,
    Notice,
    OutboxMessage,
    QuietPerson,
    Role,
    Submission,
    Theme,
    ThemePair,
    Vote,
    bytes_to_vector,
    utcnow,
)

# Submissions -------------------------------------------------------------------------------


def submissions_in_theme(session: Session, *, theme_id: int, submission_ids: Iterable[int]) -> list[Submission]:
    """Those of the given submissions that are in the theme."""
    query = select(Submission).where(col(Submission.id).in_(list(submission_ids)), Submission.theme_id == theme_id)
    return list(session.exec(query))


def texts_and_authors(session: Session, *, submission_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """Each submission's text and author hash (the keyed hash, never a name)."""
    found: dict[int, tuple[str, str | None]] = {}
    ids = list(submission_ids)
    for start in range(0, len(ids), 900):
        query = select(Submission.id, Submission.text, Submission.author_hash).where(
            col(Submission.id).in_(ids[start : start + 900])
        )
        found.update({row[0]: (row[1], row[2]) for row in session.exec(query)})
    return found


def existing_external_ids(session: Session, *, external_ids: Iterable[str]) -> set[str]:
    wanted = list(set(external_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.exec(select(Submission.external_id).where(col(Submission.external_id).in_(chunk))))
    return found


def submissions_with_text(session: Session, *, texts: dict[int, str]) -> set[int]:
    """Of these submission ids, those stored with exactly this text (an export imported back)."""
    if not texts:
        return set()
    rows = session.exec(select(Submission.id, Submission.text).where(col(Submission.id).in_(list(texts))))
    return {number for number, text in rows if texts[number] == text}


def submissions_of_theme(session: Session, *, theme_id: int, limit: int | None = None) -> list[Submission]:
    query = (
        select(Submission)
        .where(Submission.theme_id == theme_id)
        .order_by(col(Submission.created_at).desc(), col(Submission.id).desc())
    )
    return list(session.exec(query.limit(limit) if limit else query))


def submissions_by_author(session: Session, *, author_hash: str, limit: int = 20) -> list[Submission]:
    query = (
        select(Submission)
        .where(Submission.author_hash == author_hash)
        .order_by(col(Submission.created_at).desc(), col(Submission.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def all_submissions(session: Session) -> list[Submission]:
    """Every submission but the withdrawn ones."""
    query = select(Submission).where(col(Submission.withdrawn_at).is_(None)).order_by(col(Submission.id))
    return list(session.exec(query))


def _made_by(embedder: str, size: int):
    """Stored by this embedder: recorded under its name (or under none, before names were kept)
    and of its size."""
    named = col(Submission.embedded_by).is_(None) | (col(Submission.embedded_by) == embedder)
    return named & (func.length(Submission.embedding) == size)


def embedding_matrix(
    session: Session, *, held_before: datetime | None = None, embedder: str | None = None, size: int = 0
):
    """(ids, theme ids with -1 for none, held flags, embeddings) of every embedded submission, or
    with `embedder` of those that embedder made (`size` bytes long): a replica still running
    another model may have stored a vector since, and vectors of two models never mix.
    Held: a lead pinned it, or it arrived before `held_before` and already has a theme."""
    held = col(Submission.pinned)
    if held_before is not None:
        held = held | ((Submission.created_at < held_before) & col(Submission.theme_id).is_not(None))
    query = select(Submission.id, Submission.theme_id, held, Submission.embedding).where(
        col(Submission.embedding).is_not(None)
    )
    if embedder is not None:
        query = query.where(_made_by(embedder, size))
    rows = session.exec(query.order_by(col(Submission.id))).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    themes = np.fromiter((r[1] if r[1] is not None else -1 for r in rows), dtype=np.int64, count=len(rows))
    held_flags = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=len(rows))
    vectors = np.stack([bytes_to_vector(r[3]) for r in rows]) if rows else np.zeros((0, 0), np.float32)
    return ids, themes, held_flags, vectors


def insert_submissions(session: Session, *, rows: Sequence[dict]) -> None:
    """Many submissions in one executemany (bulk loads and benchmarks)."""
    if rows:
        session.execute(insert(Submission), list(rows))


def texts_embedded_otherwise(session: Session, *, embedder: str | None, size: int = 0) -> list[tuple[int, str]]:
    """(id, text) of the submissions whose stored embedding another embedder made: one recorded
    under another name, or not `size` bytes long (one name can come in several sizes, and a
    vector stored before names were kept has only its size); with no embedder, of every
    embedded submission."""
    query = select(Submission.id, Submission.text).where(col(Submission.embedding).is_not(None))
    if embedder is not None:
        query = query.where(not_(_made_by(embedder, size)))
    return [(row_id, text) for row_id, text in session.exec(query.order_by(col(Submission.id)))]


def store_embeddings(session: Session, *, vectors: dict[int, bytes], embedder: str) -> None:
    """Replace the embeddings of these submissions, recording whose they are now. Only rows that
    still have one are written: a submission withdrawn after its text was read stays without."""
    if not vectors:
        return
    table = Submission.__table__
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"), table.c.embedding.is_not(None))
        .values(embedding=bindparam("vector"), embedded_by=embedder)
    )
    session.execute(statement, [{"row_id": row_id, "vector": vector} for row_id, vector in vectors.items()])


def _waiting_for_a_theme():
    """Stored without a theme (an import, an embedding that failed) and not withdrawn, and not
    left to a delivery that has yet to run: that delivery places its submission in the
    transaction that marks it done, so the two never place one submission twice. (A delivery
    leaves the received state once, for good; few are in it, and ix_delivery_pending finds them.)"""
    running = select(Delivery.submission_id).where(
        Delivery.state == "received", col(Delivery.submission_id).is_not(None)
    )
    return (
        col(Submission.theme_id).is_(None),
        col(Submission.withdrawn_at).is_(None),
        col(Submission.id).not_in(running),
    )


def unthemed_texts(session: Session) -> list[tuple[int, str]]:
    """(id, text) of the submissions waiting for a theme, oldest first."""
    query = select(Submission.id, Submission.text).where(*_waiting_for_a_theme()).order_by(col(Submission.id))
    return [(row_id, text) for row_id, text in session.exec(query)]


def unthemed_for_update(session: Session, *, submission_ids: Sequence[int]) -> dict[int, Submission]:
    """Those of these submissions still waiting for a theme, read again in the transaction that
    places them and, on PostgreSQL, locked until it ends: a process that placed one meanwhile has
    committed it, and a second one waiting here re-reads the row and leaves it out. (SQLite takes
    one writer at a time.)"""
    query = (
        select(Submission)
        .where(col(Submission.id).in_(list(submission_ids)), *_waiting_for_a_theme())
        .order_by(col(Submission.id))
        .with_for_update()
    )
    return {submission.id: submission for submission in session.exec(query)}


def theme_member_vectors(
    session: Session, *, theme_ids: Sequence[int], embedder: str, size: int
) -> Iterable[tuple[int, bytes]]:
    """(theme id, embedding) of the members of these themes that this embedder embedded, a few
    hundred rows at a time (a centre needs only a running sum)."""
    ids = list(theme_ids)
    for start in range(0, len(ids), 900):
        query = select(Submission.theme_id, Submission.embedding).where(
            col(Submission.theme_id).in_(ids[start : start + 900]),
            col(Submission.embedding).is_not(None),
            _made_by(embedder, size),
        )
        yield from session.exec(query.execution_options(yield_per=500))


def embedder_choice(session: Session) -> EmbedderChoice | None:
    """The switch of model in force: the newest recorded."""
    return session.exec(select(EmbedderChoice).order_by(col(EmbedderChoice.id).desc()).limit(1)).first()


def choose_embedder(session: Session, *, embedder: str, started_at: datetime, at: datetime) -> None:
    """Record a switch of model (a new row: the history of switches stays). Callers hold the
    embedding job lock (storage.db.job_lock), so two processes never read and record at once."""
    session.add(EmbedderChoice(embedder=embedder, started_at=started_at, chosen_at=at))


def move_submissions(session: Session, *, moves: Sequence[tuple[int, int | None, int]]) -> None:
    """(submission id, theme it was in, theme it goes to): each moves only if it is still where it
    was, not pinned or withdrawn, and its new theme was not merged away. Re-clustering decides from
    a snapshot; a lead's merge or split, or an undo, on another replica meanwhile stands."""
    if not moves:
        return
    table, themes = Submission.__table__, Theme.__table__
    live = select(themes.c.id).where(themes.c.id == bindparam("goes"), themes.c.merged_into_id.is_(None)).exists()
    statement = (
        update(table)
        .where(
            table.c.id == bindparam("row_id"),
            table.c.theme_id.is_not_distinct_from(bindparam("was")),
            table.c.pinned.is_(False),
            table.c.withdrawn_at.is_(None),
            live,
        )
        .values(theme_id=bindparam("goes"))
    )
    session.execute(statement, [{"row_id": i, "was": was, "goes": goes} for i, was, goes in moves])


def hold_themes(session: Session, *, theme_ids: Collection[int]) -> dict[int, bool]:
    """Lock these themes' rows until the transaction ends (in id order, as every holder does) and
    say which are live: not merged away, not empty. A report joining a theme and a lead merging it
    on another replica then take turns: the merge moves the report with the rest, or the report
    sees the theme merged and looks again. (SQLite has one writer at a time: nothing to lock.)"""
    query = (
        select(Theme.id, Theme.merged_into_id, Theme.size)
        .where(col(Theme.id).in_(list(theme_ids)))
        .order_by(col(Theme.id))
        .with_for_update()
    )
    return {theme_id: merged is None and size > 0 for theme_id, merged, size in session.exec(query)}


def reassign_theme(session: Session, *, from_theme_id: int, to_theme_id: int) -> int:
    result = session.exec(update(Submission).where(Submission.theme_id == from_theme_id).values(theme_id=to_theme_id))
    return result.rowcount or 0


def pin_theme(session: Session, *, theme_id: int) -> None:
    """Pin every submission now in the theme: re-clustering leaves them where a lead put them."""
    session.exec(update(Submission).where(Submission.theme_id == theme_id).values(pinned=True))


# Themes ------------------------------------------------------------------------------------


def live_themes(session: Session) -> list[Theme]:
    """Themes that hold submissions and were not merged away, biggest first."""
    query = (
        select(Theme)
        .where(col(Theme.merged_into_id).is_(None), Theme.size > 0)
        .order_by(col(Theme.size).desc(), col(Theme.id))
    )
    return list(session.exec(query))


def themes_quoting(session: Session, *, summary: str) -> list[Theme]:
    """The themes whose summary is this text: their example quotes a report word for word."""
    return list(session.exec(select(Theme).where(Theme.summary == summary).order_by(col(Theme.id))))


def themes_by_ids(session: Session, *, theme_ids: Sequence[int]) -> list[Theme]:
    ids = list(theme_ids)
    found: list[Theme] = []
    for start in range(0, len(ids), 900):
        query = select(Theme).where(col(Theme.id).in_(ids[start : start + 900])).order_by(col(Theme.id))
        found.extend(session.exec(query))
    return found


def merged_themes(session: Session) -> list[Theme]:
    return list(session.exec(select(Theme).where(col(Theme.merged_into_id).is_not(None))))


def theme_generation(session: Session) -> tuple[int, int]:
    """(newest theme id, newest audit event id), in one round trip: it changes whenever any
    process opens a theme (or rolls one back), re-clusters, merges, splits or reassigns."""
    newest_theme = select(func.max(Theme.id)).scalar_subquery()
    newest_event = select(func.max(AuditEvent.id)).scalar_subquery()
    theme, event = session.exec(select(newest_theme, newest_event)).one()
    return theme or 0, event or 0


def _open_but(excluding: Collection[int]):
    """Open themes (holding submissions, not merged, not closed) but these."""
    return (
        col(Theme.merged_into_id).is_(None),
        Theme.size > 0,
        col(Theme.status).not_in(CLOSED_STATUSES),
        col(Theme.id).not_in(list(excluding)),
    )


def open_titles(session: Session, *, excluding: Collection[int]) -> set[str]:
    """The titles of the open themes but these, case-folded: titles only, however many themes
    there are."""
    return {title.casefold() for title in session.exec(select(Theme.title).where(*_open_but(excluding)))}


def open_theme_titled(session: Session, *, title: str, excluding: Collection[int]) -> Theme | None:
    """The open theme (but these) with this title, in any case. Compared here, case-folded as
    open_titles does: SQLite's lower() folds only A to Z, so "ÉCRAN" and "écran" differed there."""
    wanted = title.casefold()
    rows = session.exec(select(Theme.id, Theme.title).where(*_open_but(excluding)).order_by(col(Theme.id)))
    found = next((theme_id for theme_id, other in rows if other.casefold() == wanted), None)
    return None if found is None else session.get(Theme, found)


def add_to_sizes(session: Session, *, added: Mapping[int, int]) -> None:
    """Add to themes' sizes (never below 0) in the database's own arithmetic, one statement per
    theme: replicas placing and withdrawing at once each keep their change, where a size read,
    changed and written back would overwrite the other's. The caller's objects are left as they
    are: they read the new sizes already (digests/theming.py)."""
    for theme_id, by in added.items():
        size = case((Theme.size + by > 0, Theme.size + by), else_=0)
        statement = update(Theme).where(col(Theme.id) == theme_id).values(size=size)
        session.exec(statement.execution_options(synchronize_session=False))


def unmerged_themes(session: Session) -> list[Theme]:
    return list(session.exec(select(Theme).where(col(Theme.merged_into_id).is_(None)).order_by(col(Theme.id))))


def theme_sizes(session: Session) -> dict[int, int]:
    rows = session.exec(
        select(Submission.theme_id, func.count())
        .where(col(Submission.theme_id).is_not(None))
        .group_by(Submission.theme_id)
    )
    return {theme_id: count for theme_id, count in rows}


def follow_merges(session: Session, *, theme_id: int) -> Theme | None:
    """The theme a key now lives in: merged themes point to where they went."""
    theme = session.get(Theme, theme_id)
    seen = set()
    while theme is not None and theme.merged_into_id is not None and theme.id not in seen:
        seen.add(theme.id)
        theme = session.get(Theme, theme.merged_into_id)
    return theme


def reporter_count(session: Session, *, theme_id: int) -> int:
    """Distinct people behind a theme: reporters (by hash, so anonymous ones count) and me-toos,
    counted in the database in one statement. An imported row without an author names nobody:
    it adds no person (fifty unsigned spreadsheet rows may be one agent)."""
    people = union(
        select(Submission.author_hash.label("person")).where(
            Submission.theme_id == theme_id, col(Submission.author_hash).is_not(None)
        ),
        select(Vote.voter_hash.label("person")).where(Vote.theme_id == theme_id),
    ).subquery()
    return int(session.exec(select(func.count()).select_from(people)).one())


def writer_count(session: Session, *, theme_id: int) -> int:
    """Distinct people whose own words are in a theme (its shown submissions' authors): what a
    quote needs, as a "me too" adds a person but no words (four of them beside one writer would
    quote that one person)."""
    query = select(func.count(func.distinct(Submission.author_hash))).where(
        Submission.theme_id == theme_id, col(Submission.author_hash).is_not(None), col(Submission.hidden).is_(False)
    )
    return int(session.exec(query).one())


def add_vote(
    session: Session, *, theme_id: int, voter_hash: str, at: datetime, voter_sealed: str | None = None
) -> bool:
    """True when the vote is new; a second "me too" from the same person changes nothing."""
    try:
        with session.begin_nested():
            session.add(Vote(theme_id=theme_id, voter_hash=voter_hash, voter_sealed=voter_sealed, created_at=at))
        return True
    except IntegrityError:
        return False


def sealed_people_of_theme(session: Session, *, theme_id: int) -> list[tuple[str, str]]:
    """(person hash, sealed platform:user) of every reporter and "me too" of a theme, one per person."""
    reporters = session.exec(
        select(Submission.author_hash, Submission.reporter_sealed).where(
            Submission.theme_id == theme_id, col(Submission.reporter_sealed).is_not(None)
        )
    ).all()
    voters = session.exec(
        select(Vote.voter_hash, Vote.voter_sealed).where(Vote.theme_id == theme_id, col(Vote.voter_sealed).is_not(None))
    ).all()
    people: dict[str, str] = {}
    for person_hash, sealed in [*reporters, *voters]:
        people.setdefault(person_hash or sealed, sealed)
    return list(people.items())


def sealed_reporters_of_themes(session: Session, *, theme_ids: Sequence[int]) -> list[tuple[int, str, str, bool]]:
    """(theme id, author hash, sealed platform:user, anonymous) of every reporter of these themes
    who can be reached through the bot (imported rows name nobody); one row per submission."""
    ids = list(theme_ids)
    found: list[tuple[int, str, str, bool]] = []
    for start in range(0, len(ids), 900):
        query = (
            select(Submission.theme_id, Submission.author_hash, Submission.reporter_sealed, Submission.anonymous)
            .where(
                col(Submission.theme_id).in_(ids[start : start + 900]),
                col(Submission.author_hash).is_not(None),
                col(Submission.reporter_sealed).is_not(None),
                col(Submission.withdrawn_at).is_(None),
            )
            .order_by(col(Submission.id))
        )
        found.extend(tuple(row) for row in session.exec(query))
    return found


def created_times_of_theme(session: Session, *, theme_id: int, since: datetime) -> list[datetime]:
    query = select(Submission.created_at).where(Submission.theme_id == theme_id, Submission.created_at >= since)
    return list(session.exec(query))


def theme_counts_since(session: Session, *, since: datetime, until: datetime) -> dict[int, int]:
    rows = session.exec(
        select(Submission.theme_id, func.count())
        .where(col(Submission.theme_id).is_not(None), Submission.created_at >= since, Submission.created_at < until)
        .group_by(Submission.theme_id)
    )
    return {theme_id: count for theme_id, count in rows}


def move_votes(session: Session, *, moves: dict[int, int]) -> None:
    """Each theme's "me too" votes to the theme it went into; a person counts once there."""
    if not moves:
        return
    sources, targets = list(moves), set(moves.values())
    existing = set(session.exec(select(Vote.theme_id, Vote.voter_hash).where(col(Vote.theme_id).in_(targets))))
    for vote in session.exec(select(Vote).where(col(Vote.theme_id).in_(sources))).all():
        target = moves[vote.theme_id]
        if (target, vote.voter_hash) in existing:
            session.delete(vote)
        else:
            existing.add((target, vote.voter_hash))
            vote.theme_id = target
            session.add(vote)


def unsign_audit(session: Session, *, actor: str, actor_platform: str, submission: str) -> None:
    """What a person did to their own submission (`S-12 …`, moving it as a different issue) no
    longer names them: they made it anonymous."""
    session.exec(
        update(AuditEvent)
        .where(
            AuditEvent.actor == actor,
            AuditEvent.actor_platform == actor_platform,
            col(AuditEvent.detail).startswith(f"{submission} "),
        )
        .values(actor=ANONYMOUS_SENDER, actor_platform=None)
    )


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    theme_id: int | None,
    detail: str = "",
    at: datetime | None = None,
    actor_platform: str | None = None,
) -> None:
    session.add(
        AuditEvent(
            actor=actor,
            actor_platform=actor_platform,
            action=action,
            theme_id=theme_id,
            detail=detail,
            created_at=at or utcnow(),
        )
    )


def status_details_since(session: Session, *, theme_id: int, since: datetime) -> list[str]:
    """The details of a theme's status changes from `since` on, oldest first (bot/owners.py writes them)."""
    query = (
        select(AuditEvent.detail)
        .where(AuditEvent.theme_id == theme_id, AuditEvent.action == "status", AuditEvent.created_at >= since)
        .order_by(col(AuditEvent.created_at), col(AuditEvent.id))
    )
    return list(session.exec(query))


def audit_events(session: Session, *, since: datetime, until: datetime) -> list[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(AuditEvent.created_at >= since, AuditEvent.created_at < until)
        .order_by(col(AuditEvent.created_at))
    )
    return list(session.exec(query))


# Digest data -------------------------------------------------------------------------------


def submission_facts(session: Session, *, since: datetime, until: datetime):
    """(theme id, created at, kind, tags, author hash, hidden, withdrawn) for every submission
    in the window, hidden and withdrawn ones included: the digest accounts for everything."""
    query = select(
        Submission.theme_id,
        Submission.created_at,
        Submission.kind,
        Submission.tags,
        Submission.author_hash,
        Submission.hidden,
        col(Submission.withdrawn_at).is_not(None),
    ).where(Submission.created_at >= since, Submission.created_at < until)
    return session.exec(query).all()


def first_and_last_seen(session: Session) -> dict[int, tuple[datetime, datetime]]:
    rows = session.exec(
        select(Submission.theme_id, func.min(Submission.created_at), func.max(Submission.created_at))
        .where(col(Submission.theme_id).is_not(None))
        .group_by(Submission.theme_id)
    )
    return {theme_id: (first, last) for theme_id, first, last in rows}


def quotes(session: Session, *, theme_id: int, since: datetime, until: datetime, limit: int) -> list[str]:
    query = (
        select(Submission.text)
        .where(
            Submission.theme_id == theme_id,
            Submission.created_at >= since,
            Submission.created_at < until,
            col(Submission.hidden).is_(False),
        )
        .order_by(func.length(Submission.text), col(Submission.id))
    )
    return list(session.exec(query.limit(limit)))


# Digest runs: exactly once per (target, period) -----------------------------------------------


def claim_digest(session: Session, *, target: str, period: str, at: datetime) -> DigestRun | None:
    """Claim `period`'s digest for `target`; the run for exactly one caller, None for the rest.
    The claim is the insert itself (the unique (target, period) pair), made in the transaction
    that queues the digest in the outbox, so replicas racing on one schedule cannot both queue it."""
    run = DigestRun(target=target, period=period, created_at=at)
    try:
        with session.begin_nested():
            session.add(run)
        return run
    except IntegrityError:
        return None


def digest_run(session: Session, *, target: str, period: str) -> DigestRun | None:
    return session.exec(select(DigestRun).where(DigestRun.target == target, DigestRun.period == period)).first()


def latest_digest_runs(session: Session) -> dict[str, tuple[str, str | None]]:
    """Each target's latest claimed period and the state of the outbox message carrying it
    (None if it has none). Periods are ISO weeks (`2026-W47`), which sort as text."""
    rows = session.exec(
        select(DigestRun.target, DigestRun.period, OutboxMessage.state).outerjoin(
            OutboxMessage, col(OutboxMessage.id) == col(DigestRun.message_id)
        )
    )
    latest: dict[str, tuple[str, str | None]] = {}
    for target, period, state in rows:
        if target not in latest or period > latest[target][0]:
            latest[target] = (period, state)
    return latest


# Notices: each reminder, escalation and "seen by leadership" sent once -------------------------


def claim_notice(session: Session, *, kind: str, subject: str, period: str, at: datetime) -> Notice | None:
    """Claim sending one notice (a deadline's reminder, a reporter's week); the row for exactly one
    caller, None for the rest. Like claim_digest, the claim is the insert of the unique (kind,
    subject, period) triple, made in the transaction that puts the message in the outbox: replicas
    chasing the same deadline at once cannot both send it, and a rolled-back claim sent nothing."""
    notice = Notice(kind=kind, subject=subject, period=period, created_at=at)
    try:
        with session.begin_nested():
            session.add(notice)
        return notice
    except IntegrityError:
        return None


def find_notice(session: Session, *, kind: str, subject: str, period: str) -> Notice | None:
    query = select(Notice).where(Notice.kind == kind, Notice.subject == subject, Notice.period == period)
    return session.exec(query).first()


# Quiet people: no "seen by leadership" notices ---------------------------------------------------


def set_quiet(session: Session, *, person_hash: str, at: datetime) -> bool:
    """True when the person was not quiet yet."""
    try:
        with session.begin_nested():
            session.add(QuietPerson(person_hash=person_hash, created_at=at))
        return True
    except IntegrityError:
        return False


def unset_quiet(session: Session, *, person_hash: str) -> bool:
    row = session.exec(select(QuietPerson).where(QuietPerson.person_hash == person_hash)).first()
    if row is None:
        return False
    session.delete(row)
    return True


def quiet_among(session: Session, *, person_hashes: Iterable[str]) -> set[str]:
    wanted = list(set(person_hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 900):
        query = select(QuietPerson.person_hash).where(col(QuietPerson.person_hash).in_(wanted[start : start + 900]))
        found.update(session.exec(query))
    return found


# The leads' merge queue: "Same problem?" pairs and their verdicts ------------------------------


def ordered(one: int, other: int) -> tuple[int, int]:
    return (one, other) if one < other else (other, one)


def replace_theme_pairs(session: Session, *, pairs: Sequence[tuple[int, int, float]], at: datetime) -> None:
    """The pairs the latest re-clustering found replace the undecided ones; a decided pair stays
    decided (and is not found again)."""
    session.exec(sqldelete(ThemePair).where(col(ThemePair.verdict).is_(None)))
    decided = set(session.exec(select(ThemePair.theme_id, ThemePair.other_id)).all())
    for one, other, share in pairs:
        key = ordered(one, other)
        if key not in decided:
            session.add(ThemePair(theme_id=key[0], other_id=key[1], share=share, found_at=at))
            decided.add(key)


def undecided_theme_pairs(session: Session) -> list[ThemePair]:
    query = select(ThemePair).where(col(ThemePair.verdict).is_(None)).order_by(col(ThemePair.share).desc())
    return list(session.exec(query))


def decide_theme_pair(session: Session, *, one: int, other: int, verdict: str, by: str, at: datetime) -> bool:
    """Record a lead's verdict on a pair; False when it had one already."""
    key = ordered(one, other)
    pair = session.exec(select(ThemePair).where(ThemePair.theme_id == key[0], ThemePair.other_id == key[1])).first()
    if pair is None:
        pair = ThemePair(theme_id=key[0], other_id=key[1], share=0.0, found_at=at)
    elif pair.verdict is not None:
        return False
    pair.verdict, pair.decided_by, pair.decided_at = verdict, by, at
    session.add(pair)
    return True


def distinct_theme_pairs(session: Session) -> set[tuple[int, int]]:
    query = select(ThemePair.theme_id, ThemePair.other_id).where(ThemePair.verdict == "distinct")
    return {(one, other) for one, other in session.exec(query)}


# Digest targets a lead added in chat -------------------------------------------------------------


def add_digest_target(
    session: Session,
    *,
    platform: str,
    channel: str,
    added_by: str,
    at: datetime,
    cron: str | None = None,
    timezone: str | None = None,
) -> bool:
    """True when the channel was not a target yet. `cron`, `timezone`: None for the defaults."""
    row = DigestTarget(
        platform=platform, channel=channel, added_by=added_by, created_at=at, cron=cron, timezone=timezone
    )
    try:
        with session.begin_nested():
            session.add(row)
        return True
    except IntegrityError:
        return False


def digest_target(session: Session, *, platform: str, channel: str) -> DigestTarget | None:
    return session.exec(
        select(DigestTarget).where(DigestTarget.platform == platform, DigestTarget.channel == channel)
    ).first()


def remove_digest_target(session: Session, *, platform: str, channel: str) -> bool:
    target = digest_target(session, platform=platform, channel=channel)
    if target is None:
        return False
    session.delete(target)
    return True


def digest_targets(session: Session) -> list[DigestTarget]:
    return list(session.exec(select(DigestTarget).order_by(col(DigestTarget.id))))


# Conversation references: where a platform lets the bot write first (Teams) -----------------------


def save_reference(session: Session, *, platform: str, key: str, reference: str, at: datetime) -> None:
    """Keep (or refresh) how to reach a person or a conversation later; `key` is "user:<id>" or
    "conversation:<id>"."""
    row = session.exec(
        select(ConversationRef).where(ConversationRef.platform == platform, ConversationRef.user_id == key)
    ).first()
    if row is None:
        try:
            with session.begin_nested():  # another replica may store the same key at the same time
                session.add(ConversationRef(platform=platform, user_id=key, reference=reference, updated_at=at))
            return
        except IntegrityError:
            row = session.exec(
                select(ConversationRef).where(ConversationRef.platform == platform, ConversationRef.user_id == key)
            ).one()
    if row.reference != reference:
        row.reference, row.updated_at = reference, at
        session.add(row)


def reference(session: Session, *, platform: str, key: str) -> str | None:
    query = select(ConversationRef.reference).where(
        ConversationRef.platform == platform, ConversationRef.user_id == key
    )
    return session.exec(query).first()


# Roles -------------------------------------------------------------------------------------


def has_role(session: Session, *, platform: str, user_id: str, role: str) -> bool:
    query = select(Role).where(Role.platform == platform, Role.user_id == user_id, Role.role == role)
    return session.exec(query).first() is not None


def people_with_role(session: Session, *, role: str) -> list[tuple[str, str]]:
    rows = session.exec(select(Role.platform, Role.user_id).where(Role.role == role).order_by(col(Role.id)))
    return [(platform, user_id) for platform, user_id in rows]


def owned_open_themes(session: Session) -> list[Theme]:
    """Live themes with an owner that are neither resolved nor won't fix: their deadlines run. A
    theme whose every report was withdrawn is gone from the board, and chases nobody."""
    query = (
        select(Theme)
        .where(col(Theme.owner).is_not(None), col(Theme.owner_assigned_at).is_not(None), *_open_but(excluding=()))
        .order_by(col(Theme.id))
    )
    return list(session.exec(query))


def people_to_name(
    session: Session, *, acted_since: datetime | None = None, actions: Sequence[str] = ()
) -> set[tuple[str, str]]:
    """(platform, id) of every owner of a live theme and, with `acted_since`, of everyone who
    did one of `actions` to a theme since then: the digest shows them by name."""
    rows = session.exec(
        select(Theme.owner_platform, Theme.owner).where(
            col(Theme.owner).is_not(None), col(Theme.merged_into_id).is_(None)
        )
    )
    people = {(platform or "console", owner) for platform, owner in rows}
    if acted_since is not None:
        actors = session.exec(
            select(AuditEvent.actor_platform, AuditEvent.actor).where(
                AuditEvent.created_at >= acted_since,
                col(AuditEvent.actor_platform).is_not(None),
                col(AuditEvent.action).in_(actions),
            )
        )
        people |= set(actors)
    return people


def theme_titles(session: Session) -> dict[int, str]:
    return dict(session.exec(select(Theme.id, Theme.title)).all())


# Inbound deliveries: each handled once ---------------------------------------------------------


def insert_delivery(
    session: Session,
    *,
    platform: str,
    delivery_id: str,
    event_sealed: str,
    claimed_by: str,
    claimed_until: datetime,
    submission: Submission | None = None,
) -> tuple[int, int | None]:
    """Record a delivery, claimed by the process that received it, with the submission it brings;
    returns (delivery row id, submission id). The insert is the de-duplication: the unique
    (platform, delivery_id) pair lets one of two racing replicas (or a retry meeting its first
    delivery) in; the other's transaction fails with IntegrityError and stores nothing, its
    submission included. Plain INSERT … RETURNING: this is the ack path."""
    connection = session.connection()
    submission_id = None
    if submission is not None:
        values = submission.model_dump(exclude={"id"})
        submission_id = connection.execute(_INSERT_SUBMISSION, values).scalar_one()
        submission.id = submission_id
    delivery = {
        "platform": platform,
        "delivery_id": delivery_id,
        "state": "received",
        "event_sealed": event_sealed,
        "submission_id": submission_id,
        "attempts": 0,
        "claimed_by": claimed_by,
        "claimed_until": claimed_until,
        "received_at": utcnow(),
    }
    return connection.execute(_INSERT_DELIVERY, delivery).scalar_one(), submission_id


# Compiled once and cached: the same statement with new parameters each time.
_INSERT_SUBMISSION = insert(Submission.__table__).returning(Submission.__table__.c.id)
_INSERT_DELIVERY = insert(Delivery.__table__).returning(Delivery.__table__.c.id)


def unclaimed_deliveries(session: Session, *, now: datetime, limit: int = 50) -> list[int]:
    """Deliveries stored but not run whose claim ran out: their process died after the ack."""
    query = (
        select(Delivery.id)
        .where(Delivery.state == "received", col(Delivery.claimed_until) < now)
        .order_by(col(Delivery.id))
        .limit(limit)
    )
    return list(session.exec(query))


def claim_delivery(session: Session, *, delivery_id: int, worker: str, now: datetime, until: datetime) -> bool:
    """Take over a delivery whose claim ran out; True for exactly one caller (a conditional
    update: a second replica re-reads the row after the first commits and matches nothing)."""
    result = session.exec(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == "received", col(Delivery.claimed_until) < now)
        .values(claimed_by=worker, claimed_until=until)
    )
    return (result.rowcount or 0) == 1


def finish_delivery(session: Session, *, delivery_id: int, at: datetime, state: str = "done") -> bool:
    """Mark a delivery run, and forget the event it carried. Called first in the transaction that
    runs it, so the row is locked from the start: of two processes running the same delivery
    (one whose claim ran out while it worked), exactly one commits; the other matches nothing."""
    result = session.exec(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == "received")
        .values(state=state, done_at=at, event_sealed=None, claimed_until=None)
    )
    return (result.rowcount or 0) == 1


def retry_delivery_later(session: Session, *, delivery_id: int, until: datetime) -> int:
    """After a failed run: count the attempt and leave it to be taken again at `until`."""
    session.exec(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.state == "received")
        .values(attempts=Delivery.attempts + 1, claimed_until=until)
    )
    delivery = session.get(Delivery, delivery_id)
    return delivery.attempts if delivery else 0


# The outbox: every message that goes out, sent once --------------------------------------------


def _unclaimed(now: datetime):
    return col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now)


def _budgeted():
    return col(OutboxMessage.budgeted).is_(True) & col(OutboxMessage.recipient_hash).is_not(None)


def _waits_for_budget():
    """Budgeted messages not yet begun. One already partly sent (in parts, and a later part failed)
    had its place in the day and is half read: it goes on at once, neither held nor batched again."""
    return _budgeted() & (col(OutboxMessage.parts_done) == 0)


def due_messages(
    session: Session, *, now: datetime, limit: int = 50, platforms: Sequence[str] | None = None
) -> list[int]:
    """Due messages outside the DM budget (replies, digests, one partly sent); the others: due_budgeted."""
    query = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.state == "pending",
            OutboxMessage.next_attempt_at <= now,
            _unclaimed(now),
            ~_waits_for_budget(),
        )
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if platforms is not None:
        query = query.where(col(OutboxMessage.platform).in_(list(platforms)))
    return list(session.exec(query))


# The daily DM budget: unprompted messages counted per recipient (bot/outbox.py) ----------------


def due_budgeted(
    session: Session, *, now: datetime, limit: int = 50, platforms: Sequence[str] | None = None
) -> list[tuple[int, str]]:
    """(id, recipient hash) of due budgeted messages, oldest first: each passes the budget first."""
    query = (
        select(OutboxMessage.id, OutboxMessage.recipient_hash)
        .where(
            OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now, _unclaimed(now), _waits_for_budget()
        )
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .limit(limit)
    )
    if platforms is not None:
        query = query.where(col(OutboxMessage.platform).in_(list(platforms)))
    return [(message_id, recipient) for message_id, recipient in session.exec(query)]


def lock_recipients(session: Session, *, recipient_hashes: Iterable[str]) -> None:
    """Serialise budget decisions for these recipients until the transaction ends, so two workers
    cannot both see room for one more message. PostgreSQL: a transaction-level advisory lock per
    recipient, taken in a fixed order (no deadlock between workers). SQLite: the database's write
    lock, taken now by an update that changes nothing (readers are not blocked)."""
    if session.get_bind().dialect.name == "postgresql":
        for recipient in sorted(set(recipient_hashes)):
            # 60 bits of the hash: a bigint key; a collision only makes two people wait on each other.
            session.exec(select(func.pg_advisory_xact_lock(int(recipient[:15], 16))))
        return
    session.exec(update(OutboxMessage).where(false()).values(state=OutboxMessage.state))


def budget_spent(
    session: Session, *, recipient_hashes: Iterable[str], since: datetime, until: datetime, now: datetime
) -> dict[str, int]:
    """Budgeted messages each recipient got in [since, until) (a batch is one row), and those being
    sent right now (claimed by a worker that passed them through the budget)."""
    wanted = list(set(recipient_hashes))
    if not wanted:
        return {}
    sent = (OutboxMessage.state == "sent") & (OutboxMessage.sent_at >= since) & (OutboxMessage.sent_at < until)
    in_flight = (OutboxMessage.state == "pending") & (col(OutboxMessage.claimed_until) >= now)
    query = (
        select(OutboxMessage.recipient_hash, func.count())
        .where(col(OutboxMessage.recipient_hash).in_(wanted), _budgeted(), sent | in_flight)
        .group_by(OutboxMessage.recipient_hash)
    )
    return {recipient: count for recipient, count in session.exec(query)}


def held_release_times(session: Session, *, recipient_hashes: Iterable[str]) -> dict[str, datetime]:
    """When each recipient's held messages go out together (one time per recipient)."""
    wanted = list(set(recipient_hashes))
    if not wanted:
        return {}
    query = (
        select(OutboxMessage.recipient_hash, func.min(OutboxMessage.next_attempt_at))
        .where(col(OutboxMessage.recipient_hash).in_(wanted), OutboxMessage.state == "held")
        .group_by(OutboxMessage.recipient_hash)
    )
    return {recipient: at for recipient, at in session.exec(query)}


def hold_messages(session: Session, *, message_ids: Sequence[int], until: datetime, now: datetime) -> list[int]:
    """Hold messages over the budget until `until`: pending ones nobody is sending, or held ones
    (moved on). Returns those held."""
    if not message_ids:
        return []
    holdable = (OutboxMessage.state == "held") | ((OutboxMessage.state == "pending") & _unclaimed(now))
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(message_ids)), holdable)
        .values(state="held", next_attempt_at=until, claimed_by=None, claimed_until=None)
        .returning(OutboxMessage.id)
    )
    return sorted(row[0] for row in result)


def due_held(
    session: Session, *, until: datetime, limit: int = 50, platforms: Sequence[str] | None = None
) -> list[str]:
    """Recipients whose held messages are due to go out together."""
    query = (
        select(OutboxMessage.recipient_hash)
        .where(OutboxMessage.state == "held", OutboxMessage.next_attempt_at <= until)
        .group_by(OutboxMessage.recipient_hash)
        .order_by(func.min(OutboxMessage.next_attempt_at))
        .limit(limit)
    )
    if platforms is not None:
        query = query.where(col(OutboxMessage.platform).in_(list(platforms)))
    return [recipient for recipient in session.exec(query) if recipient]


def held_messages(session: Session, *, recipient_hash: str) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.recipient_hash == recipient_hash, OutboxMessage.state == "held")
        .order_by(col(OutboxMessage.id))
    )
    return list(session.exec(query))


def claim_held(session: Session, *, message_ids: Sequence[int], worker: str, until: datetime) -> list[int]:
    """Take held messages to send (under lock_recipients); returns those this worker got."""
    if not message_ids:
        return []
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(message_ids)), OutboxMessage.state == "held")
        .values(state="pending", claimed_by=worker, claimed_until=until, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)
    )
    return sorted(row[0] for row in result)


def claim_message(session: Session, *, message_id: int, worker: str, now: datetime, until: datetime) -> bool:
    """Claim one due message for sending; True for exactly one caller however many replicas
    try. A claim whose worker died mid-send runs out at `claimed_until` and the message is
    claimed again: it goes out once after a restart."""
    result = session.exec(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == "pending",
            OutboxMessage.next_attempt_at <= now,
            col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now),
        )
        .values(claimed_by=worker, claimed_until=until, attempts=OutboxMessage.attempts + 1)
    )
    return (result.rowcount or 0) == 1


def claim_messages(
    session: Session, *, message_ids: Sequence[int], worker: str, now: datetime, until: datetime
) -> list[int]:
    """Claim due messages in one statement; returns those this worker got. The same conditions as
    claim_message, so a message another worker claimed first (PostgreSQL re-checks a row another
    transaction changed) is left out."""
    if not message_ids:
        return []
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(list(message_ids)),
            OutboxMessage.state == "pending",
            OutboxMessage.next_attempt_at <= now,
            col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now),
        )
        .values(claimed_by=worker, claimed_until=until, attempts=OutboxMessage.attempts + 1)
        .returning(OutboxMessage.id)
    )
    return sorted(row[0] for row in result)


def renew_claims(session: Session, *, message_ids: Sequence[int], worker: str, until: datetime) -> list[int]:
    """Extend this worker's claims that are still open; returns the messages it still holds."""
    if not message_ids:
        return []
    result = session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(message_ids)), OutboxMessage.claimed_by == worker)
        .values(claimed_until=until)
        .returning(OutboxMessage.id)
    )
    return sorted(row[0] for row in result)


def outbox_rows(session: Session, *, message_ids: Sequence[int]) -> list[OutboxMessage]:
    if not message_ids:
        return []
    query = select(OutboxMessage).where(col(OutboxMessage.id).in_(list(message_ids))).order_by(col(OutboxMessage.id))
    # Fresh from the database: a claim just made by an UPDATE changed what the session holds.
    return list(session.exec(query.execution_options(populate_existing=True)))


def mark_sent(session: Session, *, message_ids: Sequence[int], worker: str, at: datetime) -> int:
    """Mark claimed messages sent; returns how many this worker still held the claim of."""
    result = session.exec(
        update(OutboxMessage)
        .where(col(OutboxMessage.id).in_(list(message_ids)), OutboxMessage.claimed_by == worker)
        .values(state="sent", sent_at=at, claimed_by=None, claimed_until=None, last_error="")
    )
    return result.rowcount or 0


def settle_message(
    session: Session,
    *,
    message_id: int,
    worker: str,
    state: str,
    at: datetime,
    error: str = "",
    next_attempt_at: datetime | None = None,
) -> bool:
    """Record how a claimed send ended: sent, failed or undeliverable for good, or pending again
    from `next_attempt_at`. Only the worker holding the claim may settle it."""
    values: dict = {"state": state, "claimed_by": None, "claimed_until": None, "last_error": error[:500]}
    if state == "sent":
        values["sent_at"] = at
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    result = session.exec(
        update(OutboxMessage).where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == worker).values(**values)
    )
    return (result.rowcount or 0) == 1


def record_parts_sent(session: Session, *, message_id: int, worker: str, parts_done: int) -> None:
    """A message sent in several parts (a long digest): how many are out, so a retry goes on from there."""
    session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.claimed_by == worker)
        .values(parts_done=parts_done)
    )


def outbox_messages(session: Session, *, states: Sequence[str], limit: int = 200) -> list[OutboxMessage]:
    query = (
        select(OutboxMessage)
        .where(col(OutboxMessage.state).in_(list(states)))
        .order_by(col(OutboxMessage.id).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
    return {state: count for state, count in rows}


def retry_message(session: Session, *, message_id: int, at: datetime) -> bool:
    """Put a failed or undeliverable message back in line; True when there was one to retry."""
    result = session.exec(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, col(OutboxMessage.state).in_(["failed", "undeliverable"]))
        .values(state="pending", next_attempt_at=at, attempts=0, last_error="", claimed_until=None, claimed_by=None)
    )
    return (result.rowcount or 0) == 1
