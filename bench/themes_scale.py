"""Re-theming at volume: 10,000, 50,000 and 100,000 stored submissions, each size in a fresh
process, timing `frictionlog cluster`'s own re-clustering and its peak memory.

Submissions are synthetic from real MiniLM embeddings of CLINC150 (each a real embedding plus
a little noise, renormalised), already placed in themes as they would be at submit time.

    python bench/themes_scale.py [--sizes 10000 50000 100000] [--model minilm|mpnet]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from common import ROOT, SHARED, machine, peak_rss_mb, read_labelled, scores


def cache(model: str) -> Path:
    return ROOT / "bench" / "results" / f"clinc_test_{model}.npy"


def base_embeddings(model: str) -> np.ndarray:
    """The model's embeddings of CLINC150 test, made once and kept in bench/results/."""
    path = cache(model)
    if not path.exists():
        from digests.embeddings import LocalEmbedder

        texts, _ = read_labelled(SHARED / "test.csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, LocalEmbedder(model).embed(texts))
    return np.load(path)


def child(size: int, model: str) -> None:
    from sqlmodel import Session

    from adapters.wiring import build_service
    from bot.settings import Settings
    from digests.embeddings import normalise
    from storage.models import Theme, vector_to_bytes

    texts, labels = read_labelled(SHARED / "test.csv")
    base = np.load(cache(model))
    rng = np.random.default_rng(size)
    source = rng.integers(0, len(base), size)
    vectors = normalise(base[source] + rng.normal(scale=0.02, size=(size, base.shape[1])).astype(np.float32))
    names = sorted(set(labels))
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'scale.db'}",
            embeddings="local",
            embedding_model=model,
            _env_file=None,
        )
        service = build_service(settings)
        now = datetime.now(UTC)
        with Session(service.engine) as session:
            themes = [Theme(title=name, created_at=now, updated_at=now) for name in names]
            session.add_all(themes)
            session.flush()
            theme_of = {name: theme.id for name, theme in zip(names, themes, strict=True)}
            from storage import queries

            for start in range(0, size, 5000):
                chunk = range(start, min(size, start + 5000))
                queries.insert_submissions(
                    session,
                    rows=[
                        {
                            "text": texts[source[i]],
                            "kind": "other",
                            "tags": "",
                            "platform": "import",
                            "anonymous": False,
                            "pinned": False,
                            "hidden": False,
                            "created_at": now,
                            "theme_id": theme_of[labels[source[i]]],
                            "embedding": vector_to_bytes(vectors[i]),
                        }
                        for i in chunk
                    ],
                )
            session.commit()
        del vectors
        started, cpu = time.perf_counter(), time.process_time()
        result = service.theming.recluster(now)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        with Session(service.engine) as session:
            ids, found, _, _ = queries.embedding_matrix(session)
        quality = scores(labels[source[np.argsort(ids)]], found[np.argsort(ids)])
        print(
            f"{size}\t{seconds:.1f}\t{cpu:.1f}\t{peak_rss_mb():.0f}\t{result.themes}\t{quality['NMI']:.1f}",
            flush=True,
        )


def assignment_latency(model: str, themes: int = 10_000, submissions: int = 2_000) -> tuple[float, float]:
    """Joining a theme at submit time, after the embedding: p50 and p99 in milliseconds over
    `themes` live centroids (the in-memory index `frictionlog serve` keeps)."""
    from digests.embeddings import normalise
    from digests.themes import SENTENCE_MODEL, nearest_theme
    from digests.theming import ThemeIndex

    base = np.load(cache(model))
    rng = np.random.default_rng(1)
    centroids = normalise(
        base[rng.integers(0, len(base), themes)] + rng.normal(scale=0.05, size=(themes, base.shape[1]))
    )
    index = ThemeIndex(list(range(themes)), centroids.astype(np.float32), [10] * themes)
    queries_ = normalise(base[rng.integers(0, len(base), submissions)])
    times = []
    for vector in queries_:
        started = time.perf_counter()
        placement = nearest_theme(vector, index.centroids, SENTENCE_MODEL.join)
        if placement.theme_index is None:
            index.add(len(index.theme_ids), vector)
        else:
            index.join(placement.theme_index, vector)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def placement_latency(model: str, themes: int = 10_000, submissions: int = 300) -> tuple[float, float]:
    """Placing one submission through the product (`Theming.place`, what a DM runs after its
    embedding) with `themes` live themes stored in SQLite: p50 and p99 in milliseconds, database
    reads and writes and the commit included."""
    from adapters.wiring import build_service
    from bot.settings import Settings
    from digests.embeddings import normalise
    from storage.db import session_scope
    from storage.models import Submission, Theme, vector_to_bytes

    base = np.load(cache(model))
    rng = np.random.default_rng(2)
    centroids = normalise(
        base[rng.integers(0, len(base), themes)] + rng.normal(scale=0.05, size=(themes, base.shape[1]))
    )
    probes = normalise(base[rng.integers(0, len(base), submissions)])
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database_url=f"sqlite:///{Path(folder) / 'place.db'}",
            embeddings="local",
            embedding_model=model,
            _env_file=None,
        )
        service = build_service(settings)
        now = datetime.now(UTC)
        with session_scope(service.engine) as session:
            session.add_all(
                Theme(title=f"theme {n}", created_at=now, updated_at=now, size=10, centroid=vector_to_bytes(c))
                for n, c in enumerate(centroids)
            )
        times = []
        for n, vector in enumerate(probes):
            started = time.perf_counter()
            with session_scope(service.engine) as session:
                submission = Submission(text=f"probe {n}", created_at=now)
                session.add(submission)
                service.theming.place(session, [submission], vector[None, :], now)
            times.append((time.perf_counter() - started) * 1000)
        service.engine.dispose()
    times = times[1:]  # the first one loads the index
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--model", default="minilm", choices=["minilm", "mpnet"], help="the local model's vectors")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model)
        return
    base_embeddings(args.model)
    print(f"Re-theming stored submissions, {args.model} vectors · {machine()}")
    print()
    print("| submissions | re-clustering (CPU time) | peak memory (whole process) | themes | NMI vs source labels |")
    print("|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(size), "--model", args.model],
            capture_output=True,
            text=True,
            check=False,
        )
        line = [row for row in out.stdout.splitlines() if row.count("\t") == 5]
        if out.returncode or not line:
            reason = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "no output"
            print(f"| {size:,} | failed: {reason} | | | |")
            continue
        _, seconds, cpu, peak, themes, nmi = line[-1].split("\t")
        print(f"| {size:,} | {seconds} s ({cpu} s) | {int(peak):,} MB | {themes} | {nmi} |", flush=True)
    p50, p99 = assignment_latency(args.model)
    print(f"\nJoining a theme at submit time with 10,000 live themes: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print("(after the embedding; nearest centroid and the centroid update).")
    p50, p99 = placement_latency(args.model)
    print(f"The same through the product on SQLite (store, place, commit): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print("\nTime covers the whole re-clustering: reading embeddings, clustering, matching to")
    print("existing themes, writing theme ids, recomputing centroids and titles. CPU time counts every")
    print("thread; a loaded machine inflates it less than wall time, but it does inflate it.")


if __name__ == "__main__":
    main()
