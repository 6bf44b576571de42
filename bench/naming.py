"""Theme titles against labels: does a title say what the problem is?

A title "hits" when, among all label names of the set, the one closest to it under
all-MiniLM-L6-v2 is the majority label of its theme's members. Themes come from the product's
own import and re-clustering (no k). Offline titles are what frictionlog shows without a
language model; with FRICTIONLOG_OPENAI_CHAT_MODEL (and OPENAI_BASE_URL / OPENAI_API_KEY)
set, the model's titles are measured too. Beside them, in the same run: each theme's most
central submission as is (no rules), the keyword lists titles used to be, and the theme's centre
itself, as if a title's vector could sit exactly there: about what a choice guided by the centre
can reach. "Cut at the start": titles that begin inside their sentence's phrase ("Far am I from
orlando" of "how far am I from orlando").

By default three sets, side by side: CLINC150 test; a seeded sample of 4,500 CLINC150 rows that
are not in test.csv (texts no naming rule was looked at on); and SNIPS. A label's name is read
as words ("pto_balance", "AddToPlaylist" -> "pto balance", "add to playlist").

    python bench/naming.py [FILE.csv ...] [--sample N] [--seed S] [--exclude TEST.csv]
"""

import argparse
import os
import random
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import DATA, SHARED, machine, read_labelled
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sqlmodel import Session

from adapters.wiring import build_service
from bot.settings import Settings
from bot.transfer import import_rows
from digests.naming import CHAT_STOP_WORDS, QUESTION_LEADS, is_content, word_key
from storage import queries
from storage.models import CLOSED_STATUSES, bytes_to_vector

WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
PLACEHOLDER = re.compile(r"Not yet named \(T-\d+\)$")
# The stop list the keyword titles were made with, kept as it was for the "before" row.
OLD_STOP_WORDS = list(ENGLISH_STOP_WORDS | CHAT_STOP_WORDS)


@dataclass(frozen=True)
class LabelledSet:
    name: str
    path: Path
    sample: int = 0  # rows drawn (seeded) from the file; 0: all of them
    seed: int = 0
    exclude: Path | None = None  # rows whose text is in this file are left out first

    def read(self) -> tuple[list[str], np.ndarray]:
        texts, truth = read_labelled(self.path)
        if self.exclude is not None:
            seen = set(read_labelled(self.exclude)[0])
            kept = [n for n, text in enumerate(texts) if text not in seen]
            texts, truth = [texts[n] for n in kept], truth[kept]
        if self.sample and self.sample < len(texts):
            chosen = sorted(random.Random(self.seed).sample(range(len(texts)), self.sample))
            texts, truth = [texts[n] for n in chosen], truth[chosen]
        return texts, truth


def default_sets() -> list[LabelledSet]:
    return [
        LabelledSet("CLINC150 test", SHARED / "test.csv"),
        LabelledSet("CLINC150 held out (4,500 not in test, seed 0)", SHARED / "all.csv", 4500, 0, SHARED / "test.csv"),
        LabelledSet("SNIPS", DATA / "snips" / "all.csv"),
    ]


def label_words(label: str) -> str:
    """A label's name as words: snake_case and CamelCase split, lower case."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", label).replace("_", " ").lower()


def themes_of(texts: list[str], model: str):
    """Import and re-cluster through the product; each open theme's title, members, example and
    centre, the embedder, and how long re-clustering took and how much of it the offline namer took."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'naming.db'}",
            embeddings="local",
            openai_chat_model=model,
            _env_file=None,
        )
        service = build_service(settings)
        rows = [(n + 2, {"external_id": f"row-{n}", "text": text}) for n, text in enumerate(texts)]
        import_rows(service, ["external_id", "text"], rows, recluster=False)
        naming = timed(service.theming.offline_namer)
        started = time.perf_counter()
        service.theming.recluster(datetime.now(UTC))
        seconds = time.perf_counter() - started
        with Session(service.engine) as session:
            row_of = {s.id: int(s.external_id.split("-")[1]) for s in queries.all_submissions(session)}
            themes = []
            for theme in queries.unmerged_themes(session):
                members = [row_of[s.id] for s in queries.submissions_of_theme(session, theme_id=theme.id)]
                if members and theme.status not in CLOSED_STATUSES:
                    example = theme.example_submission_id and row_of[theme.example_submission_id]
                    themes.append((theme.title, members, example, bytes_to_vector(theme.centroid)))
        embedder = service.theming.embedder
        service.engine.dispose()
    return themes, embedder, seconds, naming[0]


def timed(namer) -> list[float]:
    """Seconds the namer spends naming, added up in the list returned (read after the run)."""
    spent, name = [0.0], namer.name

    def name_timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return name(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    namer.name = name_timed
    return spent


def keyword_titles(groups: list[list[str]]) -> list[str]:
    """The titles frictionlog used to make: the three words most particular to each theme."""
    counts = CountVectorizer(stop_words=OLD_STOP_WORDS, ngram_range=(1, 2)).fit(" ".join(g) for g in groups)
    matrix = counts.transform(" ".join(g) for g in groups).toarray().astype(float)
    idf = np.log(1 + matrix.sum() / len(groups) / np.maximum(matrix.sum(axis=0), 1))
    vocabulary = counts.get_feature_names_out()
    return [" · ".join(vocabulary[i] for i in np.argsort(-row * idf)[:3]) for row in matrix]


def rules_broken(title: str, member_texts: list[str]) -> list[str]:
    if PLACEHOLDER.match(title):
        return []  # no reporter's words: counted apart, as not yet named
    bare = re.sub(r" \(T-\d+\)$", "", title)
    words = [word_key(w) for w in WORD.findall(bare)]
    broken = []
    if len(words) > 8:
        broken.append("over 8 words")
    if len(set(words)) < len(words):
        broken.append("a repeated word")
    if "·" in bare:
        broken.append("a keyword list")
    reporters = [{word_key(w) for w in WORD.findall(text)} for text in member_texts]
    for word in {word_key(w) for w in WORD.findall(bare) if is_content(w)}:
        if sum(word in r for r in reporters) < 2:
            broken.append("a word from one reporter")
            break
    return broken


def cut_at_start(title: str, member_texts: list[str]) -> bool:
    """A title that starts inside its sentence's phrase: after the "how"/"what" it hangs on ("Far am
    I from orlando") or after a content word two reporters used ("Limit on my visa" of "credit
    limit on my visa"), wherever a member's text holds it."""
    wanted = [w.lower() for w in WORD.findall(title)]
    reporters = [{word_key(w) for w in WORD.findall(text)} for text in member_texts]
    found = False
    for text in member_texts:
        words = [w.lower() for w in WORD.findall(text)]
        for at in range(len(words) - len(wanted) + 1):
            if words[at : at + len(wanted)] == wanted:
                before = words[at - 1] if at else ""
                shared = bool(before) and is_content(before) and sum(word_key(before) in r for r in reporters) >= 2
                if not (before in QUESTION_LEADS or shared):
                    return False  # one reporter wrote it as a phrase of its own
                found = True
    return found


def measure(name: str, titles: list[str], majority: list[str], labels: list[str], label_vectors, embedder, groups):
    vectors = embedder.embed(titles)
    nearest = np.argmax(vectors @ label_vectors.T, axis=1)
    # A placeholder names nothing: it is a miss even when its words happen to land on the label.
    hits = np.mean(
        [labels[n] == m and not PLACEHOLDER.match(t) for n, m, t in zip(nearest, majority, titles, strict=True)]
    )
    repeated = np.mean([len({word_key(w) for w in WORD.findall(t)}) < len(WORD.findall(t)) for t in titles])
    shared = len(titles) - len(set(map(str.casefold, titles)))
    broken = sum(bool(rules_broken(t, g)) for t, g in zip(titles, groups, strict=True))
    unnamed = sum(bool(PLACEHOLDER.match(t)) for t in titles)
    cut = sum(cut_at_start(t, g) for t, g in zip(titles, groups, strict=True))
    return name, hits, repeated, shared, broken, unnamed, cut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", type=Path, help="labelled CSVs (default: the three sets above)")
    parser.add_argument("--sample", type=int, default=0, help="a seeded sample of N rows of each file given")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed")
    parser.add_argument("--exclude", type=Path, help="leave out the rows whose text is in this CSV (e.g. test.csv)")
    parser.add_argument("--examples", type=int, default=15, help="example titles to print beside their labels")
    args = parser.parse_args()
    sets = [
        LabelledSet(
            path.name + (f" (sample of {args.sample:,}, seed {args.seed})" if args.sample else ""),
            path,
            args.sample,
            args.seed,
            args.exclude,
        )
        for path in args.data
    ] or default_sets()
    model = os.environ.get("FRICTIONLOG_OPENAI_CHAT_MODEL", "")
    print(f"{machine()}\n", flush=True)
    summary = []
    for number, labelled in enumerate(sets):
        texts, truth = labelled.read()
        labels = sorted(set(truth))
        print(f"{labelled.name}: {len(texts):,} texts, {len(labels)} labels", flush=True)
        runs = [("offline (frictionlog)", "")] + ([(f"model {model}", model)] if model else [])
        rows = []
        for run_name, run_model in runs:
            themes, embedder, seconds, naming = themes_of(texts, run_model)
            label_vectors = embedder.embed([label_words(label) for label in labels])
            groups = [[texts[i] for i in members] for _, members, _, _ in themes]
            majority = [Counter(truth[members]).most_common(1)[0][0] for _, members, _, _ in themes]
            titles = [t for t, _, _, _ in themes]
            rows.append(measure(run_name, titles, majority, labels, label_vectors, embedder, groups))
            print(
                f"  {run_name}: {len(themes)} themes; re-clustering took {seconds:.1f} s, "
                f"{naming:.2f} s of it naming offline",
                flush=True,
            )
            if not run_model:
                against = (majority, labels, label_vectors, embedder, groups)
                central = [texts[example] for _, _, example, _ in themes]
                rows.append(measure("most central submission, as is", central, *against))
                rows.append(measure("keyword lists (before)", keyword_titles(groups), *against))
                centres = np.stack([centre for _, _, _, centre in themes])
                nearest = np.argmax(centres @ label_vectors.T, axis=1)
                centre_hits = np.mean([labels[n] == m for n, m in zip(nearest, majority, strict=True)])
                examples = list(zip(titles, majority, strict=True))
                summary.append((labelled.name, len(themes), naming, [row[1] for row in rows], centre_hits))
        print()
        print(
            "| titles | hits | repeating a word | open themes sharing a title | breaking a rule | not yet named "
            "| cut at the start |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, hits, repeated, shared, broken, unnamed, cut in rows:
            print(f"| {name} | {hits:.1%} | {repeated:.1%} | {shared} | {broken} | {unnamed} | {cut} |")
        print(f"| the theme's centre itself (a vector, no title) | {summary[-1][4]:.1%} | — | — | — | — | — |")
        if number == 0 and args.examples:
            print(f"\n{args.examples} offline titles beside their theme's majority label:\n")
            print("| title | label |\n|---|---|")
            step = max(1, len(examples) // args.examples)
            for title, label in examples[::step][: args.examples]:
                print(f"| {title} | {label} |")
        print(flush=True)
    print("Hits side by side (offline titles meet every rule; central submissions and keyword lists do not):\n")
    print(
        "| set | themes | offline (frictionlog) | most central submission, as is | keyword lists (before) "
        "| the theme's centre itself | naming |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, count, naming, (offline, central, keywords, *_), centre in summary:
        print(f"| {name} | {count} | {offline:.1%} | {central:.1%} | {keywords:.1%} | {centre:.1%} | {naming:.2f} s |")


if __name__ == "__main__":
    main()
