"""The theme engine: putting submissions into themes at once when they arrive, re-clustering
everything while keeping keys, owners and a lead's decisions stable, naming, and the curation
operations (merge, split, different issue, undo's effect on a theme).

The service calls this one object; it owns every change to a theme's size and centre. Callers
pass their session, so a change lands in the same transaction as what caused it."""

import re
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from digests.clustering import NeighbourGraph, cluster, neighbour_graph
from digests.embeddings import Embedder, normalise
from digests.naming import (
    PhraseNamer,
    ThemeName,
    TitleModel,
    lost_its_grounding,
    name_with_model,
    needs_name,
    representative_order,
)
from digests.themes import (
    keep_apart,
    keep_distinct,
    match_clusters,
    nearest_theme,
    same_problem_pairs,
    thresholds_for,
)
from storage import queries
from storage.db import job_lock, session_scope
from storage.models import (
    EMBEDDER_CHARS,
    Submission,
    Theme,
    bytes_to_vector,
    utcnow,
    vector_bytes,
    vector_to_bytes,
)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
REPRESENTATIVES = 8  # texts a title model is sent
# The offline namer reads more: a word that names the problem is more often shared by two of
# sixteen reporters than by two of eight, and it is only read here, never sent anywhere.
NAMING_TEXTS = 16
BATCH = 256  # submissions embedded, then committed, at a time
TOO_FEW = 6  # submissions: below this, re-clustering keeps the themes there are


def no_progress(_stage: str, _done: int, _total: int) -> None:
    pass


@dataclass(frozen=True)
class ReclusterResult:
    submissions: int
    themes: int
    new_themes: int
    kept_themes: int
    emptied_themes: int
    held: int = 0  # pinned by a lead or older than the window: left where they were
    embedded_again: int = 0  # stored vectors another embedder made, embedded again first
    # The model a process started after this one switched stored vectors to: nothing was done.
    newer_model: str | None = None


@dataclass(frozen=True)
class CatchUp:
    """What bringing stored vectors to this process's model did (`Theming.catch_up`)."""

    embedded_again: int  # stored vectors another embedder had made
    centres: int  # theme centres made again from their members' new vectors
    newer_model: str | None = None  # as in ReclusterResult: then nothing was done


def one_per_person(ranked: list[tuple[str, str | None]], limit: int = REPRESENTATIVES) -> list[str]:
    """The most representative texts (`limit` of them), at most one per person (an unknown author
    counts as someone new): one person saying a thing twice cannot make it look grounded to the namer."""
    seen: set[str] = set()
    texts = []
    for text, author in ranked:
        if author is None or author not in seen:
            texts.append(text)
        if author is not None:
            seen.add(author)
        if len(texts) == limit:
            break
    return texts


# Reports read to name a theme at the moment a second reporter joins it: enough for two people's
# words, few enough that the join stays quick.
PLACEHOLDER_READ = 20


def not_yet_named(theme: Theme) -> str:
    """The title of a theme whose reporters share no words yet (or that has one reporter): its
    key keeps it apart from the others; the next re-clustering names it."""
    return f"Not yet named ({theme.key})"


def read_as_resized(theme: Theme, by: int) -> None:
    """This session reads the theme `by` larger (never below 0), and never writes the number back:
    that would overwrite what another replica added or withdrew meanwhile. The database is told
    the change itself (queries.add_to_sizes)."""
    set_committed_value(theme, "size", max(0, theme.size + by))


def resize(session: Session, theme: Theme, by: int) -> None:
    """A theme `by` larger (never below 0), here and in the database."""
    read_as_resized(theme, by)
    queries.add_to_sizes(session, added={theme.id: by})


def hand_over_owner(source: Theme, target: Theme) -> None:
    """An unowned theme that takes in an owned one takes its owner, with the owner's clock and fix
    date: their deadlines go on being chased where the reports now are (bot/deadlines.py)."""
    if target.owner is None and source.owner is not None:
        target.owner, target.owner_platform = source.owner, source.owner_platform
        target.owner_assigned_at, target.acknowledged_at = source.owner_assigned_at, source.acknowledged_at
        target.resolution_due_at = source.resolution_due_at


def regrouping_detail(submissions: int, themes: int, new: int, emptied: int) -> str:
    """What a re-clustering's audit event says it did (the digest's footer reads it back)."""
    return f"{submissions} submissions into {themes} themes; {new} new, {emptied} emptied"


REGROUPING = re.compile(r"; (\d+) new, (\d+) emptied$")


def regrouped(details: list[str]) -> tuple[int, int]:
    """New and emptied themes, added up over re-clusterings' audit details."""
    found = [tuple(map(int, m.groups())) for detail in details if (m := REGROUPING.search(detail))]
    return sum(new for new, _ in found), sum(emptied for _, emptied in found)


def give_titles(session: Session, named: list[tuple[Theme, ThemeName]]) -> None:
    """Each theme its name's title, unless another open theme has it: then its next phrase,
    or the title with its key. A lead's rename is never touched."""
    taken = queries.open_titles(session, excluding={theme.id for theme, _ in named})
    for theme, name in sorted(named, key=lambda pair: -pair[0].size):  # the biggest keeps its first choice
        if theme.title_locked:
            taken.add(theme.title.casefold())
            continue
        choices = [title for title in (name.title, *name.alternatives) if title]
        title = next((t for t in choices if t.casefold() not in taken), None)
        if title is None:
            title = f"{choices[0]} ({theme.key})" if choices else not_yet_named(theme)
        theme.title = title
        taken.add(title.casefold())
        session.add(theme)


def maker(embedder: Embedder) -> str:
    """What a stored vector records as the embedder that made it."""
    return embedder.name[:EMBEDDER_CHARS]


def made_by(embedder: Embedder, vector: bytes | None, embedded_by: str | None) -> bool:
    """A stored vector this embedder made: its size, and its name where one was recorded (for a
    vector stored before names were kept, the size alone tells)."""
    if vector is None or len(vector) != vector_bytes(embedder.dimension):
        return False
    return embedded_by is None or embedded_by == maker(embedder)


def has_centre(theme: Theme, embedder: Embedder) -> bool:
    """A stored centre the current embedder can compare with (not another embedder's)."""
    return made_by(embedder, theme.centroid, theme.embedded_by)


class ThemeIndex:
    """The live themes' centroids in memory, so joining a theme is one matrix product.

    Row r leads to the live theme `theme_ids[r]`. It is that theme's own centre, or the centre of
    a theme a lead merged into it (`centre_ids[r]` names whose): after "merge T-3 into T-12", a
    new report like T-3's joins T-12 at once, not a new theme.
    """

    def __init__(
        self,
        theme_ids: list[int],
        centroids: np.ndarray,
        sizes: list[int],
        generation: tuple[int, int] = (0, 0),
        centre_ids: list[int] | None = None,
    ):
        self.theme_ids = theme_ids
        self.centre_ids = list(theme_ids) if centre_ids is None else centre_ids
        self.sizes = sizes
        self.generation = generation  # the database's (newest theme, newest audit event) at load
        # Room to grow: a new theme must not copy every centroid.
        self._matrix = np.zeros((max(16, 2 * len(theme_ids)), centroids.shape[1]), dtype=np.float32)
        self._matrix[: len(theme_ids)] = centroids

    @property
    def centroids(self) -> np.ndarray:
        return self._matrix[: len(self.theme_ids)]

    @classmethod
    def load(cls, session: Session, embedder: Embedder) -> "ThemeIndex":
        # A centre from another embedder (after a switch) is left out until re-clustering.
        live = {t.id: t for t in queries.live_themes(session) if has_centre(t, embedder)}
        rows = [(t.id, t) for t in live.values()]
        for merged in queries.merged_themes(session):  # all in the session now: following is free
            target = queries.follow_merges(session, theme_id=merged.id)
            if has_centre(merged, embedder) and target is not None and target.id in live:
                rows.append((target.id, merged))
        vectors = [bytes_to_vector(centre.centroid) for _, centre in rows]
        matrix = np.stack(vectors) if vectors else np.zeros((0, embedder.dimension), dtype=np.float32)
        return cls(
            [theme_id for theme_id, _ in rows],
            matrix,
            [centre.size for _, centre in rows],
            queries.theme_generation(session),
            [centre.id for _, centre in rows],
        )

    def join(self, row: int, embedding: np.ndarray) -> np.ndarray:
        size = self.sizes[row]
        updated = normalise((self._matrix[row] * size + embedding)[None, :])[0]
        self._matrix[row] = updated
        self.sizes[row] = size + 1
        return updated

    def add(self, theme_id: int, embedding: np.ndarray) -> None:
        count = len(self.theme_ids)
        if count == len(self._matrix):
            self._matrix = np.vstack([self._matrix, np.zeros_like(self._matrix)])
        self._matrix[count] = embedding
        self.theme_ids.append(theme_id)
        self.centre_ids.append(theme_id)
        self.sizes.append(1)
        self.generation = (max(self.generation[0], theme_id), self.generation[1])


class Theming:
    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        title_model: TitleModel | None = None,
        window: timedelta | None = None,
        started: datetime | None = None,
    ):
        self.engine = engine
        self.window = window  # how far back re-clustering reaches; None: everything
        # When this process started with its embedder: a model switch recorded by a process that
        # started later wins over this one's (see newer_model).
        self.started = started or utcnow()
        self.embedder = embedder
        self.title_model = title_model
        self.offline_namer = PhraseNamer(embed=embedder.embed)
        self.thresholds = thresholds_for(embedder.name)
        self._index: ThemeIndex | None = None
        # Held from placement to commit: a theme opened by one submission is committed before
        # the next one looks for its nearest theme, so two reports of a new problem meet.
        self.lock = threading.RLock()

    def invalidate(self) -> None:
        with self.lock:
            self._index = None

    def _fresh_index(self, session: Session) -> ThemeIndex:
        """The in-memory index, loaded again when the database moved on without it: a theme
        opened by another process (a second replica) or rolled back, or a re-clustering, merge or
        split anywhere (each leaves an audit event)."""
        if self._index is None or self._index.generation != queries.theme_generation(session):
            self._index = ThemeIndex.load(session, self.embedder)
        return self._index

    def _nearest(
        self, session: Session, vector: np.ndarray, fresh: bool = False
    ) -> tuple[ThemeIndex, int | None, Theme | None]:
        """The index, the row and the theme to join, or no theme when it is a new problem.
        `fresh`: the index was checked against the database already in this transaction."""
        for _ in range(2):
            index = self._index if fresh and self._index is not None else self._fresh_index(session)
            row = nearest_theme(vector, index.centroids, self.thresholds.join).theme_index
            if row is None:
                return index, None, None
            theme_id = index.theme_ids[row]
            if queries.hold_themes(session, theme_ids=[theme_id]).get(theme_id):  # as committed now
                return index, row, session.get(Theme, theme_id)
            self._index = None  # merged or emptied elsewhere: look again on a fresh index
        return self._fresh_index(session), None, None

    def place(self, session: Session, submissions: list[Submission], vectors: np.ndarray, now: datetime) -> None:
        """Store embeddings and put each submission in its nearest theme or a new one."""
        with self.lock:
            embedded_by = maker(self.embedder)
            grown: Counter[int] = Counter()  # added to sizes in the database at the end
            for n, (submission, vector) in enumerate(zip(submissions, vectors, strict=True)):
                submission.embedding, submission.embedded_by = vector_to_bytes(vector), embedded_by
                # One look at the database for what other processes changed, per batch.
                index, row, theme = self._nearest(session, vector, fresh=n > 0)
                if theme is None:
                    theme = Theme(
                        summary=submission.text[:500],
                        created_at=now,
                        updated_at=now,
                        size=1,
                        named_size=1,
                        centroid=vector_to_bytes(vector),
                        embedded_by=embedded_by,
                    )
                    session.add(theme)
                    session.flush()
                    theme.title = not_yet_named(theme)  # one person's words never name a theme
                    index.add(theme.id, vector)
                else:
                    if index.centre_ids[row] == theme.id:  # its own centre moves; a merged one's stays
                        theme.centroid, theme.embedded_by = vector_to_bytes(index.join(row, vector)), embedded_by
                    theme.updated_at = now
                    read_as_resized(theme, 1)
                    grown[theme.id] += 1  # written once per theme, at the end
                    session.add(theme)
                    if not theme.title_locked and theme.title == not_yet_named(theme):
                        self._name_when_grounded(session, theme, submission)
                submission.theme_id = theme.id
                session.add(submission)
            queries.add_to_sizes(session, added=grown)

    def same_problem(self, session: Session, themes: list[Theme]) -> list[tuple[Theme, Theme, float]]:
        """The pairs among these themes that re-clustering found linked and no lead has judged,
        most linked first: (one, other, share of neighbour links)."""
        by_id = {t.id: t for t in themes}
        return [
            (by_id[pair.theme_id], by_id[pair.other_id], pair.share)
            for pair in queries.undecided_theme_pairs(session)
            if pair.theme_id in by_id and pair.other_id in by_id
        ]

    def centre_of(self, submissions: list[Submission]) -> bytes | None:
        """Their centre, when the current embedder made all their vectors."""
        if not submissions or not all(made_by(self.embedder, s.embedding, s.embedded_by) for s in submissions):
            return None
        vectors = [bytes_to_vector(s.embedding) for s in submissions]
        return vector_to_bytes(normalise(np.mean(vectors, axis=0, keepdims=True))[0])

    # Curation: each keeps sizes, centres, pins and votes right; the caller records who did it.

    def merge(self, session: Session, source: Theme, target: Theme, now: datetime) -> int:
        """Move every submission of `source` into `target`; returns how many moved."""
        # First, so a report joining `source` on another replica now is either moved with the rest or
        # finds it merged (_nearest), never left behind in a theme no list shows.
        queries.hold_themes(session, theme_ids=[source.id, target.id])
        moved = queries.reassign_theme(session, from_theme_id=source.id, to_theme_id=target.id)
        queries.pin_theme(session, theme_id=target.id)  # the lead put them together: they stay
        queries.move_votes(session, moves={source.id: target.id})
        target.curated, target.updated_at = True, now
        resize(session, target, moved)
        hand_over_owner(source, target)
        # The source keeps its centre: new reports like its own still find their way here.
        source.merged_into_id, source.size, source.updated_at = target.id, 0, now
        session.add_all([source, target])
        self.invalidate()
        return moved

    def split_off(self, session: Session, chosen: list[Submission], from_theme_id: int | None, now: datetime) -> Theme:
        """A new theme of its own for the chosen submissions, pinned there."""
        name = self._name_one(session, [s.id for s in chosen])
        centre = self.centre_of(chosen)  # new reports like these can join it at once
        new_theme = Theme(
            summary=name.summary,
            created_at=now,
            updated_at=now,
            size=len(chosen),
            named_size=len(chosen),
            centroid=centre,
            embedded_by=maker(self.embedder) if centre else None,
        )
        session.add(new_theme)
        session.flush()
        give_titles(session, [(new_theme, name)])
        for submission in chosen:
            submission.theme_id, submission.pinned = new_theme.id, True
            session.add(submission)
        if from_theme_id is not None:
            resize(session, session.get(Theme, from_theme_id), -len(chosen))
        self.invalidate()
        return new_theme

    def rename(self, session: Session, theme: Theme, title: str, now: datetime) -> None:
        """A lead's title, kept over every automatic one from now on."""
        theme.title, theme.title_locked, theme.updated_at = title, True, now
        session.add(theme)

    def withdraw(self, session: Session, submission: Submission, now: datetime) -> None:
        """Withdraw a submission: its id stays, its words, sender and theme go, and its words
        leave the title and example of its theme and of any theme still quoting it."""
        theme = session.get(Theme, submission.theme_id) if submission.theme_id else None
        words = submission.text
        submission.text, submission.tags, submission.theme_id = "", "", None
        submission.embedding = submission.embedded_by = None
        submission.author = submission.author_hash = submission.reporter_sealed = None
        submission.channel, submission.source_url, submission.withdrawn_at = None, None, now
        session.add(submission)
        session.flush()
        # A theme it left ("Different issue", a re-clustering, a merge) may still quote it as its example.
        for other in queries.themes_quoting(session, summary=words[:500]) if words else ():
            if theme is None or other.id != theme.id:
                self._example_from_rest(session, other)
        if theme is None:
            return
        resize(session, theme, -1)
        rest = queries.submissions_of_theme(session, theme_id=theme.id, limit=3 * REPRESENTATIVES)
        if theme.example_submission_id == submission.id or theme.summary == words[:500]:
            rest = self._example_from_rest(session, theme)
            if not rest and not theme.title_locked:
                theme.named_size, theme.title = theme.size, "Withdrawn"  # empty: not an open theme anyone lists
        if not rest:
            theme.centroid = theme.embedded_by = None
        session.add(theme)
        self.invalidate()

    def _example_from_rest(self, session: Session, theme: Theme) -> list[Submission]:
        """A theme's example, and its title unless a lead's, from the reports it holds, once the
        one it quoted is withdrawn; returns those reports (none: no example is left)."""
        rest = queries.submissions_of_theme(session, theme_id=theme.id, limit=3 * REPRESENTATIVES)
        name = self._name_one(session, [s.id for s in rest]) if rest else ThemeName("", "")
        theme.summary, theme.example_submission_id = name.summary, rest[0].id if rest else None
        if rest and not theme.title_locked:
            theme.named_size = theme.size
            give_titles(session, [(theme, name)])
        session.add(theme)
        return rest

    def embed_missing(self, progress: Progress = no_progress, batch: int = BATCH) -> int:
        """Embed submissions stored without a theme (a failed embedding, an import) and place
        them; returns how many were placed. One process at a time (the embedding job lock)."""
        with job_lock(self.engine, "embedding"):
            return self._embed_missing(progress, batch)

    def _embed_missing(self, progress: Progress, batch: int) -> int:
        """Batch by batch, like _embed_again: each batch is embedded outside any transaction and
        lock, then placed and committed on its own, so an interrupted run keeps what it placed, and
        new submissions are stored (the ack path) and placed (the theme lock) meanwhile. Each batch
        is read again, locked, as it is placed: a submission placed since (or withdrawn, or changed)
        is left alone, so none is placed twice."""
        with Session(self.engine) as session:
            pending = queries.unthemed_texts(session)
        placed = 0
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            vectors = self.embedder.embed([text for _, text in chunk])
            with self.lock, session_scope(self.engine) as session:
                waiting = queries.unthemed_for_update(session, submission_ids=[row_id for row_id, _ in chunk])
                texts = {row_id: submission.text for row_id, submission in waiting.items()}
                keep = [i for i, (row_id, text) in enumerate(chunk) if texts.get(row_id) == text]
                if keep:
                    chosen = [waiting[chunk[i][0]] for i in keep]
                    self.place(session, chosen, vectors[keep], max(s.created_at for s in chosen))
                    placed += len(keep)
            progress("embedding", start + len(chunk), len(pending))
        return placed

    def embed_again(self, progress: Progress = no_progress, *, every: bool = False, batch: int = BATCH) -> int:
        """After FRICTIONLOG_EMBEDDINGS or the model changed, embed again every stored vector
        another embedder made (recorded under another name, or of another size), or with `every`
        all of them: the one time a submission's embedding is recomputed. One process at a time
        (the embedding job lock); nothing when a process started after this one switched to
        another model (newer_model)."""
        with job_lock(self.engine, "embedding"):
            if self._newer_model() is not None:
                return 0
            return self._embed_again(progress, every=every, batch=batch)

    def _embed_again(self, progress: Progress, *, every: bool = False, batch: int = BATCH) -> int:
        """Each batch is embedded outside any transaction and lock and committed on its own, so new
        submissions are stored and placed meanwhile (a larger model takes minutes over many
        submissions), and an interrupted run continues where it stopped. Only rows another
        embedder made are read, so running it again (another replica, after this one) does nothing."""
        if not every and not self.embedder.dimension:
            self.embedder.embed(["how long is a vector"])  # a model not loaded yet: learn its size
        embedded_by = maker(self.embedder)
        with Session(self.engine) as session:
            stale = queries.texts_embedded_otherwise(
                session,
                embedder=None if every else embedded_by,
                size=vector_bytes(self.embedder.dimension),
            )
        if stale:
            progress("embedding again", 0, len(stale))
        for start in range(0, len(stale), batch):
            chunk = stale[start : start + batch]
            vectors = self.embedder.embed([text for _, text in chunk])
            with session_scope(self.engine) as session:
                queries.store_embeddings(
                    session,
                    vectors={row_id: vector_to_bytes(v) for (row_id, _), v in zip(chunk, vectors, strict=True)},
                    embedder=embedded_by,
                )
            progress("embedding again", start + len(chunk), len(stale))
        return len(stale)

    def newer_model(self) -> str | None:
        """None when stored vectors are this process's model's to keep (the switch recorded when
        this is one), or the model a process started after this one switched them to."""
        with job_lock(self.engine, "embedding"):
            return self._newer_model()

    def _newer_model(self) -> str | None:
        """Held under the embedding job lock, so no two processes decide at once.

        The guard of a rolling deploy: replicas started before a switch, still running the old
        model, leave stored vectors (and re-clustering) alone instead of embedding everything back,
        until they are replaced, and the two never flip them back and forth. Any process started
        after the switch (a restart, `frictionlog cluster`) may switch again: the latest start wins."""
        mine = maker(self.embedder)
        with session_scope(self.engine) as session:
            choice = queries.embedder_choice(session)
            if choice is not None and choice.embedder != mine and choice.started_at > self.started:
                return choice.embedder
            if choice is None or choice.embedder != mine:
                queries.choose_embedder(session, embedder=mine, started_at=self.started, at=utcnow())
        return None

    def catch_up(self, progress: Progress = no_progress, batch: int = BATCH) -> CatchUp:
        """Bring what is stored to this process's model, once (`serve` does at start-up): embed
        again what another embedder made, then give the themes centres made from their members' new
        vectors, so new reports join them at once rather than after the next re-clustering. Run
        again, or by a second replica, it finds nothing to do."""
        with job_lock(self.engine, "embedding"):
            newer = self._newer_model()
            if newer is not None:
                return CatchUp(0, 0, newer)
            again = self._embed_again(progress, batch=batch)
            return CatchUp(again, self._recentre())

    def _recentre(self) -> int:
        """A centre of this embedder for every live theme whose centre another one made, from its
        members' vectors (a theme none of whose members this embedder embedded keeps its old one,
        unused, until re-clustering), and for every merged theme (`_recentre_merged`). The sums are
        read outside any write transaction; the write is short, and an audit event makes every
        process load its index again."""
        mine, size = maker(self.embedder), vector_bytes(self.embedder.dimension)
        with Session(self.engine) as session:
            stale = [t.id for t in queries.unmerged_themes(session) if t.size > 0 and not has_centre(t, self.embedder)]
            sums: dict[int, np.ndarray] = {}
            for theme_id, vector in queries.theme_member_vectors(session, theme_ids=stale, embedder=mine, size=size):
                sums[theme_id] = sums.get(theme_id, 0) + bytes_to_vector(vector)
        seeds = self._merged_seeds()
        with self.lock, session_scope(self.engine) as session:
            changed = self._recentre_merged(session, seeds)
            for theme in queries.themes_by_ids(session, theme_ids=list(sums)):
                if not has_centre(theme, self.embedder):  # a re-clustering may have given it one since
                    theme.centroid, theme.embedded_by = vector_to_bytes(normalise(sums[theme.id][None, :])[0]), mine
                    session.add(theme)
                    changed += 1
            if not changed:
                return 0
            queries.audit(
                session,
                actor="frictionlog",
                action="new model",
                theme_id=None,
                at=utcnow(),
                detail=f"{changed} theme centres made again with {mine}",
            )
        self.invalidate()
        return changed

    def _merged_seeds(self) -> dict[int, np.ndarray]:
        """For each merged theme whose centre another embedder made (an emptied one has none), its
        summary (its most representative report, or a title model's sentence) embedded by this one:
        where its reports lie now. Embedded outside any transaction and lock, like every embedding."""
        with Session(self.engine) as session:
            stale = [
                t
                for t in queries.merged_themes(session)
                if t.centroid is not None and t.summary and not has_centre(t, self.embedder)
            ]
        if not stale:
            return {}
        return dict(zip([t.id for t in stale], normalise(self.embedder.embed([t.summary for t in stale])), strict=True))

    def _recentre_merged(self, session: Session, seeds: dict[int, np.ndarray]) -> int:
        """A centre of this embedder for the merged themes `seeds` names: what brings new reports
        like theirs to the theme each was merged into. Their members are that theme's now, not told
        apart, so a centre is the mean of as many of them as it had when it was last named, those
        nearest its seed. Returns how many were made again."""
        mine, size = maker(self.embedder), vector_bytes(self.embedder.dimension)
        changed = 0
        for merged in queries.themes_by_ids(session, theme_ids=list(seeds)):
            target = queries.follow_merges(session, theme_id=merged.id)
            if has_centre(merged, self.embedder) or target is None:
                continue
            members = queries.theme_member_vectors(session, theme_ids=[target.id], embedder=mine, size=size)
            vectors = np.array([bytes_to_vector(vector) for _, vector in members]).reshape(-1, len(seeds[merged.id]))
            if not len(vectors):
                continue  # not embedded again yet: the next catch-up or re-clustering will be
            nearest = np.argsort(-(vectors @ seeds[merged.id]))[: max(1, merged.named_size)]
            merged.centroid = vector_to_bytes(normalise(vectors[nearest].mean(axis=0, keepdims=True))[0])
            merged.embedded_by = mine
            session.add(merged)
            changed += 1
        return changed

    def recluster(
        self,
        now: datetime,
        progress: Progress = no_progress,
        *,
        everything: bool = False,
        include: Collection[int] = (),
    ) -> ReclusterResult:
        """Re-theme the recent window (or everything; `include` adds submissions older than the
        window, such as an import's). Keys continue where most members came from; pinned
        submissions stay where a lead put them, older ones where they are; a curated (merged-into)
        theme takes every cluster mostly its own; an emptied theme points to where its members went.
        """
        # One process at a time embeds and re-clusters: a switch of model by another process
        # cannot land between this one's embedding and its new centres.
        with job_lock(self.engine, "embedding"):
            newer = self._newer_model()
            if newer is not None:
                return ReclusterResult(0, 0, 0, 0, 0, newer_model=newer)
            self._embed_missing(progress, BATCH)
            embedded_again = self._embed_again(progress)
            seeds = self._merged_seeds()
            result, to_name = self._recluster(now, progress, everything, include, embedded_again, seeds)
        # A model can take seconds per theme: never inside the write transaction or the locks.
        self._name_with_model(to_name)
        return result

    def _recluster(
        self,
        now: datetime,
        progress: Progress,
        everything: bool,
        include: Collection[int],
        embedded_again: int,
        seeds: dict[int, np.ndarray],
    ) -> tuple[ReclusterResult, list[tuple[int, list[str], ThemeName]]]:
        held_before = None if everything or self.window is None else now - self.window
        mine, size = maker(self.embedder), vector_bytes(self.embedder.dimension)
        # The lock keeps this process from placing a submission between the snapshot and the
        # write; sizes are counted in the database, so another process's placements stay too.
        with self.lock:
            with session_scope(self.engine) as session:
                ids, previous, held, vectors = queries.embedding_matrix(
                    session, held_before=held_before, embedder=mine, size=size
                )
                if len(ids) == 0:
                    return ReclusterResult(0, 0, 0, 0, 0, embedded_again=embedded_again), []
                if include:
                    held &= ~np.isin(ids, np.fromiter(include, dtype=np.int64))
                free = ~held
                progress("clustering", 0, 1)
                distinct = queries.distinct_theme_pairs(session)
                graph = neighbour_graph(vectors[free])  # for clustering, then for the "Same problem?" queue
                labels = self._labels(vectors[free], previous[free], distinct, graph)
                progress("clustering", 1, 1)
                curated = frozenset(t.id for t in queries.unmerged_themes(session) if t.curated)
                mapping = match_clusters(labels, previous[free], curated)
                new_theme_for: dict[int, int] = {}
                for label, theme_id in mapping.items():
                    if theme_id is None:
                        theme = Theme(title="", created_at=now, updated_at=now)
                        session.add(theme)
                        session.flush()
                        new_theme_for[label] = theme.id
                final = {label: new_theme_for.get(label, theme_id) for label, theme_id in mapping.items()}
                assigned = previous.copy()
                assigned[free] = np.array([final[label] for label in labels.tolist()], dtype=np.int64)
                changed = assigned != previous
                # Each only if still where the snapshot saw it (another replica may have merged,
                # split or withdrawn it since): sizes are then counted from what is there.
                moves = zip(ids[changed].tolist(), previous[changed].tolist(), assigned[changed].tolist(), strict=True)
                queries.move_submissions(session, moves=[(i, old if old >= 0 else None, new) for i, old, new in moves])
                emptied, representatives = self._refresh_themes(session, ids, previous, assigned, vectors, now)
                self._recentre_merged(session, seeds)  # after a switch of model
                self._find_pairs(session, graph.link_shares(labels), final, now)
                to_name = self._name_offline(session, representatives)
                queries.audit(
                    session,
                    actor="frictionlog",
                    action="recluster",
                    theme_id=None,
                    at=now,
                    detail=regrouping_detail(len(ids), len(np.unique(assigned)), len(new_theme_for), emptied),
                )
            self.invalidate()
        themes = len(np.unique(assigned))
        result = ReclusterResult(
            len(ids),
            themes,
            len(new_theme_for),
            themes - len(new_theme_for),
            emptied,
            held=int(held.sum()),
            embedded_again=embedded_again,
        )
        return result, to_name

    def _labels(
        self, vectors: np.ndarray, previous: np.ndarray, distinct: set[tuple[int, int]], graph: NeighbourGraph
    ) -> np.ndarray:
        if len(vectors) <= TOO_FEW:  # too few to tell themes apart: keep the ones there are
            return np.unique(previous, return_inverse=True)[1]
        labels = keep_apart(cluster(vectors, graph=graph), vectors, previous, self.thresholds.apart)
        return keep_distinct(labels, vectors, previous, distinct)

    @staticmethod
    def _find_pairs(session: Session, shares: np.ndarray, theme_of: dict, now: datetime) -> None:
        """The leads' "Same problem?" queue, from the evidence clustering merges on: how many of
        one cluster's neighbour links end in another (`shares`, per new cluster label)."""
        pairs = []
        for a, b, share in same_problem_pairs(shares):
            one, other = theme_of.get(a), theme_of.get(b)
            if one is not None and other is not None and one != other:
                pairs.append((one, other, share))
        queries.replace_theme_pairs(session, pairs=pairs, at=now)

    def _refresh_themes(
        self, session: Session, ids, previous, assigned, vectors, now: datetime
    ) -> tuple[int, dict[int, np.ndarray]]:
        """Sizes, centroids and representatives from the new membership; an emptied theme
        points to the theme most of its members went to, which inherits its owner if it has none.
        Returns how many were emptied and each refreshed theme's representative submissions."""
        themes = {t.id: t for t in queries.unmerged_themes(session)}
        counts = queries.theme_sizes(session)  # includes anything placed since the snapshot
        order = np.argsort(assigned, kind="stable")
        bounds = np.flatnonzero(np.diff(assigned[order])) + 1
        members = {int(assigned[group[0]]): group for group in np.split(order, bounds) if len(group)}
        representatives: dict[int, np.ndarray] = {}
        moves: dict[int, int] = {}  # emptied theme -> where its members went
        emptied = 0
        for theme_id, theme in themes.items():
            group = members.get(theme_id)
            theme.size = counts.get(theme_id, 0)
            if group is None:
                went = assigned[previous == theme_id]
                if theme.size == 0 and len(went):
                    emptied += 1
                    destinations, how_many = np.unique(went, return_counts=True)
                    self._point_to(session, theme, themes.get(int(destinations[how_many.argmax()])), moves)
                session.add(theme)
                continue
            centre = normalise(vectors[group].mean(axis=0, keepdims=True))[0]
            theme.centroid, theme.embedded_by = vector_to_bytes(centre), maker(self.embedder)
            ranked = ids[group][representative_order(vectors[group], centre)]
            theme.example_submission_id = int(ranked[0])
            theme.updated_at = now
            representatives[theme_id] = ranked[: 3 * NAMING_TEXTS]  # room to pick one per person
            session.add(theme)
        queries.move_votes(session, moves=moves)
        return emptied, representatives

    @staticmethod
    def _point_to(session: Session, theme: Theme, target: Theme | None, moves: dict[int, int]) -> None:
        theme.centroid = theme.embedded_by = None
        if target is None or target.id == theme.id:
            return
        theme.merged_into_id = target.id  # "theme T-7" still answers, with where it went
        hand_over_owner(theme, target)
        moves[theme.id] = target.id
        session.add(target)

    def _name_when_grounded(self, session: Session, theme: Theme, joining: Submission) -> None:
        """A theme not yet named is named as soon as a second reporter's words can ground a title,
        not at the next re-clustering: the one who just joined it is told a title, not a key."""
        members = queries.submissions_of_theme(session, theme_id=theme.id, limit=PLACEHOLDER_READ)
        name = self._name_one(session, [s.id for s in members if s.id != joining.id] + [joining.id])
        if name.title:
            theme.summary, theme.named_size = name.summary, theme.size
            give_titles(session, [(theme, name)])

    def _name_one(self, session: Session, submission_ids: list[int]) -> ThemeName:
        """A name for one group of submissions (a split, what a withdrawal left)."""
        rows = queries.texts_and_authors(session, submission_ids=submission_ids)
        texts = one_per_person([rows[i] for i in submission_ids if i in rows])
        return self.offline_namer.name([texts])[0]

    def _name_offline(
        self, session: Session, representatives: dict[int, np.ndarray]
    ) -> list[tuple[int, list[str], ThemeName]]:
        """Offline titles for the themes that changed enough (every theme is read for contrast);
        returns those themes and their texts, for a model to name afterwards."""
        themes = queries.themes_by_ids(session, theme_ids=list(representatives))
        rows = queries.texts_and_authors(session, submission_ids=[int(i) for r in representatives.values() for i in r])
        groups = [one_per_person([rows[int(i)] for i in representatives[t.id]], NAMING_TEXTS) for t in themes]
        stale = [
            i
            for i, t in enumerate(themes)
            if needs_name(t.size, t.named_size, t.title_locked)
            or not t.title
            or t.title == not_yet_named(t)
            # Its members changed though its size did not: the reporters whose words made the
            # title may have gone to another theme, and one person's words must not stay on.
            or (not t.title_locked and lost_its_grounding(t.title, groups[i]))
        ]
        if not stale:
            return []
        centres = np.stack([bytes_to_vector(t.centroid) for t in themes])
        names = self.offline_namer.name(groups, centres, wanted=stale)
        for i, name in zip(stale, names, strict=True):
            themes[i].summary, themes[i].named_size = name.summary, themes[i].size
        give_titles(session, [(themes[i], name) for i, name in zip(stale, names, strict=True)])
        # A model names only what at least two people said: one person's words are not a theme's.
        return [
            (themes[i].id, groups[i][:REPRESENTATIVES], name)
            for i, name in zip(stale, names, strict=True)
            if len(groups[i]) >= 2
        ]

    def _name_with_model(self, to_name: list[tuple[int, list[str], ThemeName]]) -> None:
        if self.title_model is None:
            return
        for theme_id, texts, keyword_name in to_name:
            name, from_model = name_with_model(self.title_model, texts, keyword_name)
            if not from_model:
                continue
            with session_scope(self.engine) as session:
                theme = session.get(Theme, theme_id)
                if theme is None or theme.title_locked:  # a lead may have renamed it meanwhile
                    continue
                # A model names neighbours alike: another open theme's title keeps the offline one.
                if name.title.casefold() in queries.open_titles(session, excluding={theme_id}):
                    continue
                theme.title, theme.summary = name.title, name.summary
                session.add(theme)
