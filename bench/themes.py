"""Theme quality: frictionlog's own pipeline (no k) against KMeans given k and BERTopic, on the
same MiniLM embeddings of a labelled set (CLINC150 test by default).

    python bench/themes.py [--data FILE.csv] [--no-bertopic]
"""

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import SHARED, MemoryWatch, machine, read_labelled, scores
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
        with MemoryWatch() as memory:
            started = time.perf_counter()
            result = service.theming.recluster(datetime.now(UTC))
            cluster_seconds = time.perf_counter() - started
        peak = memory.grew_mb
        with Session(service.engine) as session:
            ids, themes, _, vectors = queries.embedding_matrix(session)
            external = {s.id: s.external_id for s in queries.all_submissions(session)}
        order = np.argsort([int(external[i].split("-")[1]) for i in ids])
        service.engine.dispose()
    return themes[order], vectors[order], cluster_seconds, peak, embed_seconds, result


def timed(function):
    with MemoryWatch() as memory:
        started = time.perf_counter()
        value = function()
        seconds = time.perf_counter() - started
    return value, seconds, memory.grew_mb


def kmeans_labels(vectors: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)


def bertopic_labels(texts: list[str], vectors: np.ndarray) -> tuple[np.ndarray, float]:
    from bertopic import BERTopic

    topics, _ = BERTopic().fit_transform(texts, vectors)
    topics = np.asarray(topics)
    return topics, float((topics == -1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED / "test.csv")
    parser.add_argument("--no-bertopic", action="store_true", help="skip BERTopic (needs `pip install -e .[bench]`)")
    args = parser.parse_args()
    texts, truth = read_labelled(args.data)
    k = len(np.unique(truth))
    print(f"{args.data.name}: {len(texts):,} texts, {k} labels · {machine()}", flush=True)

    themes, vectors, seconds, peak, embed_seconds, result = frictionlog_run(texts)
    print(f"embedding + placement through the product: {embed_seconds:.1f} s", flush=True)
    rows = [("frictionlog (no k)", scores(truth, themes), seconds, peak, "")]
    labels, seconds, peak = timed(lambda: kmeans_labels(vectors, k))
    rows.append((f"MiniLM + KMeans (k={k} given)", scores(truth, labels), seconds, peak, ""))
    if not args.no_bertopic:
        try:
            # numba compiles UMAP, pynndescent and HDBSCAN on first use in a process (~45 s):
            # not clustering time, so BERTopic runs once untimed on the same data first.
            print("warming BERTopic up (numba compilation) …", flush=True)
            bertopic_labels(texts, vectors)
            (labels, outliers), seconds, peak = timed(lambda: bertopic_labels(texts, vectors))
            rows.append(("BERTopic defaults", scores(truth, labels), seconds, peak, f"{outliers:.1%} outliers"))
        except ImportError:
            print("BERTopic is not installed: pip install -e '.[bench]'")

    print()
    print("| method | NMI | ARI | accuracy | themes | clustering time | peak memory | note |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, s, seconds, peak, note in rows:
        print(
            f"| {name} | {s['NMI']:.1f} | {s['ARI']:.1f} | {s['acc']:.1f} | {s['themes']} | "
            f"{seconds:.1f} s | {peak:.0f} MB | {note} |"
        )
    if len(rows) == 3:
        print(f"\nfrictionlog is {rows[2][2] / rows[0][2]:.1f}x faster than BERTopic on the same embeddings.")
    print(f"frictionlog re-clustering: {result.themes} themes, {result.new_themes} new, {result.kept_themes} kept.")
    print("Clustering time: frictionlog's full re-clustering (read embeddings, cluster, match, name, write);")
    print("Peak memory: resident memory the step added on top of the process (model already loaded).")


if __name__ == "__main__":
    main()
