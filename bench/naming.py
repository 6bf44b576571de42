"""Theme titles against labels: does a title say what the problem is?

A title "hits" when, among all label names of the set, the one closest to it under
all-MiniLM-L6-v2 is the majority label of its theme's members. Themes come from the product's
own import and re-clustering (no k). Offline titles are what frictionlog shows without a
language model; with FRICTIONLOG_OPENAI_CHAT_MODEL (and OPENAI_BASE_URL / OPENAI_API_KEY)
set, the model's titles are measured too. Beside them, in the same run: each theme's most
central submission as is (no rules), and the keyword lists titles used to be.

    python bench/naming.py [FILE.csv ...]      (default: ../shared/data/clinc150/test.csv)
"""

import argparse
import os
import re
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import SHARED, machine, read_labelled
from sklearn.feature_extraction.text import CountVectorizer
from sqlmodel import Session

from adapters.wiring import build_service
from bot.settings import Settings
from bot.transfer import import_rows
from digests.naming import STOP_WORDS, is_content, word_key
from storage import queries
from storage.models import CLOSED_STATUSES

WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
PLACEHOLDER = re.compile(r"Not yet named \(T-\d+\)$")


def themes_of(texts: list[str], model: str):
    """Import and re-cluster through the product; each open theme's title, members and centre."""
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
        started = time.perf_counter()
        service.theming.recluster(datetime.now(UTC))
        seconds = time.perf_counter() - started
        with Session(service.engine) as session:
            row_of = {s.id: int(s.external_id.split("-")[1]) for s in queries.all_submissions(session)}
            themes = []
            for theme in queries.unmerged_themes(session):
                members = [row_of[s.id] for s in queries.submissions_of_theme(session, theme_id=theme.id)]
                if members and theme.status not in CLOSED_STATUSES:
                    themes.append(
                        (theme.title, members, theme.example_submission_id and row_of[theme.example_submission_id])
                    )
        embedder = service.theming.embedder
        service.engine.dispose()
    return themes, embedder, seconds


def keyword_titles(groups: list[list[str]]) -> list[str]:
    """The titles frictionlog used to make: the three words most particular to each theme."""
    counts = CountVectorizer(stop_words=STOP_WORDS, ngram_range=(1, 2)).fit(" ".join(g) for g in groups)
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


def measure(name: str, titles: list[str], majority: list[str], labels: list[str], label_vectors, embedder, groups):
    vectors = embedder.embed(titles)
    nearest = np.argmax(vectors @ label_vectors.T, axis=1)
    hits = np.mean([labels[n] == m for n, m in zip(nearest, majority, strict=True)])
    repeated = np.mean([len({word_key(w) for w in WORD.findall(t)}) < len(WORD.findall(t)) for t in titles])
    shared = len(titles) - len(set(map(str.casefold, titles)))
    broken = sum(bool(rules_broken(t, g)) for t, g in zip(titles, groups, strict=True))
    unnamed = sum(bool(PLACEHOLDER.match(t)) for t in titles)
    return name, hits, repeated, shared, broken, unnamed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", type=Path, default=[SHARED / "test.csv"])
    parser.add_argument("--examples", type=int, default=15, help="example titles to print beside their labels")
    args = parser.parse_args()
    model = os.environ.get("FRICTIONLOG_OPENAI_CHAT_MODEL", "")
    print(f"{machine()}\n", flush=True)
    for path in args.data:
        texts, truth = read_labelled(path)
        labels = sorted(set(truth))
        print(f"{path.name}: {len(texts):,} texts, {len(labels)} labels", flush=True)
        runs = [("offline (frictionlog)", "")] + ([(f"model {model}", model)] if model else [])
        rows = []
        for run_name, run_model in runs:
            themes, embedder, seconds = themes_of(texts, run_model)
            label_vectors = embedder.embed([label.replace("_", " ") for label in labels])
            groups = [[texts[i] for i in members] for _, members, _ in themes]
            majority = [Counter(truth[members]).most_common(1)[0][0] for _, members, _ in themes]
            rows.append(measure(run_name, [t for t, _, _ in themes], majority, labels, label_vectors, embedder, groups))
            print(f"  {run_name}: {len(themes)} themes, re-clustering and naming took {seconds:.1f} s", flush=True)
            if not run_model:
                central = [texts[example] for _, _, example in themes]
                rows.append(
                    measure(
                        "most central submission, as is", central, majority, labels, label_vectors, embedder, groups
                    )
                )
                rows.append(
                    measure(
                        "keyword lists (before)",
                        keyword_titles(groups),
                        majority,
                        labels,
                        label_vectors,
                        embedder,
                        groups,
                    )
                )
                examples = [(t, m) for (t, _, _), m in zip(themes, majority, strict=True)]
        print()
        print("| titles | hits | repeating a word | open themes sharing a title | breaking a rule | not yet named |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, hits, repeated, shared, broken, unnamed in rows:
            print(f"| {name} | {hits:.1%} | {repeated:.1%} | {shared} | {broken} | {unnamed} |")
        print(f"\n{args.examples} offline titles beside their theme's majority label:\n")
        print("| title | label |\n|---|---|")
        step = max(1, len(examples) // args.examples)
        for title, label in examples[::step][: args.examples]:
            print(f"| {title} | {label} |")
        print()


if __name__ == "__main__":
    main()
