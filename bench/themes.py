"""Theme quality: frictionlog's own pipeline (no k) against KMeans told the true k and BERTopic's
defaults, on the same MiniLM embeddings, for every labelled set in ../shared/data/ (many small
problems and a few big ones) and every labelled CSV (text,label) named on the command line.

    python bench/themes.py [FILE.csv ...] [--only-given] [--no-bertopic]

Besides NMI, ARI and accuracy: how split the true problems come back (themes per problem, median
and max, and the median share of a problem its largest theme holds) and how pure the 10 largest
themes are, since a score averaged over many small problems can hide a few big ones in pieces.
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import DATA, MemoryWatch, labelled_sets, machine, read_labelled, scores
from sqlmodel import Session

from adapters.wiring import build_service
from bot.settings import Settings
from bot.transfer import import_rows
from storage import queries


def frictionlog_run(texts: list[str]):
    """Import through the product (batched embeddings, placement at once), then time the
    re-clustering `frictionlog cluster` runs, exactly as a user would."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{Path(folder) / 'bench.db'}", embeddings="local", _env_file=None)
        service = build_service(settings)
        rows = [(n + 2, {"external_id": f"row-{n}", "text": text}) for n, text in enumerate(texts)]
        started = time.perf_counter()
        import_rows(service, ["external_id", "text"], rows, recluster=False)
        embed_seconds = time.perf_counter() - started
        (result, cluster_seconds, cluster_cpu, peak) = timed(lambda: service.theming.recluster(datetime.now(UTC)))
        with Session(service.engine) as session:
            ids, themes, _, vectors = queries.embedding_matrix(session)
            external = {s.id: s.external_id for s in queries.all_submissions(session)}
            pairs = [(p.theme_id, p.other_id) for p in queries.undecided_theme_pairs(session)]
        order = np.argsort([int(external[i].split("-")[1]) for i in ids])
        service.engine.dispose()
    return themes[order], vectors[order], (cluster_seconds, cluster_cpu), peak, embed_seconds, result, pairs


def same_problem_precision(truth: np.ndarray, themes: np.ndarray, pairs: list[tuple[int, int]]) -> str:
    """How many of the leads' "Same problem?" pairs (most linked first) join two pieces of one
    true problem (each theme read as its majority problem)."""
    if not pairs:
        return 'no "Same problem?" pairs'
    majority = {}
    for theme in np.unique(themes):
        labels, counts = np.unique(truth[themes == theme], return_counts=True)
        majority[int(theme)] = labels[counts.argmax()]
    right = [majority.get(a) == majority.get(b) for a, b in pairs]
    return (
        f'"Same problem?" pairs: {sum(right)} of {len(right)} join pieces of one true problem; '
        f"the board's first 3: {sum(right[:3])} of {len(right[:3])}"
    )


def timed(function):
    """Value, wall seconds, CPU seconds (every thread of this process: another job on a shared
    machine inflates it too, through shared caches, but far less than wall time) and memory grown."""
    with MemoryWatch() as memory:
        started, cpu = time.perf_counter(), time.process_time()
        value = function()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return value, seconds, cpu, memory.grew_mb


def kmeans_labels(vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)


def bertopic_labels(texts: list[str], vectors: np.ndarray) -> tuple[np.ndarray, float]:
    from bertopic import BERTopic

    topics, _ = BERTopic().fit_transform(texts, vectors)
    topics = np.asarray(topics)
    return topics, float((topics == -1).mean())


Row = tuple[str, dict[str, float], tuple[float, float], float, str]  # seconds: (wall, CPU)
QUALITY = (
    "NMI | ARI | accuracy | themes | themes per problem (median / max) | "
    "a problem's share in its largest theme (median) | purity of the 10 largest (worst)"
)


def quality_cells(s: dict[str, float]) -> str:
    return (
        f"{s['NMI']:.1f} | {s['ARI']:.1f} | {s['acc']:.1f} | {s['themes']} | "
        f"{s['themes_per_problem_median']:.0f} / {s['themes_per_problem_max']} | {s['largest_share_median']:.0f}% | "
        f"{s['purity_10_largest']:.0f}% ({s['purity_10_largest_worst']:.0f}%)"
    )


def bertopic_row(texts: list[str], truth: np.ndarray, vectors: np.ndarray, warm: list[bool]) -> Row | None:
    try:
        if not warm:
            # numba compiles UMAP, pynndescent and HDBSCAN on first use in a process (~45 s): not
            # clustering time, so BERTopic runs once untimed first.
            print("warming BERTopic up (numba compilation) …", flush=True)
            bertopic_labels(texts[:2000], vectors[:2000])
            warm.append(True)
        (labels, outliers), *seconds, peak = timed(lambda: bertopic_labels(texts, vectors))
    except ImportError:
        print("BERTopic is not installed: pip install -e '.[bench]'")
        return None
    return ("BERTopic defaults", scores(truth, labels), seconds, peak, f"{outliers:.0%} outliers")


def measure(path: Path, with_bertopic: bool, warm: list[bool]) -> list[Row]:
    texts, truth = read_labelled(path)
    k = len(np.unique(truth))
    print(f"\n## {path.parent.name}/{path.name}: {len(texts):,} texts, {k} problems", flush=True)
    themes, vectors, seconds, peak, embed_seconds, result, pairs = frictionlog_run(texts)
    print(
        f"embedding + placement through the product: {embed_seconds:.1f} s; re-clustering: "
        f"{result.themes} themes, {result.new_themes} new, {result.kept_themes} kept",
        flush=True,
    )
    print(same_problem_precision(truth, themes, pairs), flush=True)
    rows: list[Row] = [("frictionlog (no k)", scores(truth, themes), seconds, peak, "")]
    labels, *seconds, peak = timed(lambda: kmeans_labels(vectors, k))
    rows.append((f"KMeans told k={k}", scores(truth, labels), seconds, peak, ""))
    if with_bertopic and (row := bertopic_row(texts, truth, vectors, warm)):
        rows.append(row)
    print(f"\n| method | {QUALITY} | time (CPU) | peak memory | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, s, (seconds, cpu), peak, note in rows:
        print(f"| {name} | {quality_cells(s)} | {seconds:.1f} s ({cpu:.1f} s) | {peak:.0f} MB | {note} |", flush=True)
    if len(rows) == 3:
        (ours, our_cpu), (theirs, their_cpu) = rows[0][2], rows[2][2]
        print(
            f"\nOn the same embeddings frictionlog is {theirs / ours:.1f}x faster than BERTopic "
            f"({their_cpu / our_cpu:.1f}x by CPU time)."
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", nargs="*", type=Path, help="more labelled CSVs (columns text,label)")
    parser.add_argument("--only-given", action="store_true", help=f"skip the sets in {DATA}")
    parser.add_argument("--no-bertopic", action="store_true", help="skip BERTopic (needs `pip install -e .[bench]`)")
    args = parser.parse_args()
    paths = ([] if args.only_given else labelled_sets()) + args.csv
    if not paths:
        parser.error(f"no labelled CSV found in {DATA} and none given")
    print(f"# Theme quality · {machine()}")
    warm: list[bool] = []
    summary = [(path, measure(path, not args.no_bertopic, warm)[0][1]) for path in paths]
    print("\n## frictionlog on every set (no k, default settings)\n")
    print(f"| set | {QUALITY} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for path, s in summary:
        print(f"| {path.parent.name}/{path.name} | {quality_cells(s)} |")
    print("\nTime: frictionlog's full re-clustering (read embeddings, cluster, match, name, write), the others'")
    print("clustering alone; wall time, and in brackets CPU time over every thread, which a loaded machine")
    print("inflates less; peak memory: resident memory the step added on top of the process.")


if __name__ == "__main__":
    main()
