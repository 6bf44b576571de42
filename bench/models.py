"""Which local model: all-MiniLM-L6-v2 against all-mpnet-base-v2 (when built: `make mpnet`), side
by side in one run. Each model is measured in a process of its own, so one's memory never counts
in the other's; each process uses 2 threads.

    python bench/models.py [--models minilm,mpnet] [--single 50] [--seeds 5]

Per model: the time to import sentence-transformers and to load the model (its weights' sha256
check included), resident memory after loading and at its peak while embedding; time per text
batched (512 texts, batch 64; the better of two runs) and one text a call (median and p99 of 50
calls); theme quality with the product's own clustering (`digests.clustering.cluster`, mean of 5
seeds) on CLINC150 test and SNIPS; and the similarity scale the shared thresholds of
`digests/themes.py` assume. Nothing is cached.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from common import DATA, MemoryWatch, machine, read_labelled, scores

SETS = {"CLINC150 test": DATA / "clinc150" / "test.csv", "SNIPS": DATA / "snips" / "all.csv"}
THREADS = 2


def resident_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def similarity_scale(vectors: np.ndarray, truth: np.ndarray, thresholds) -> dict[str, float]:
    """How the thresholds cut this model's similarities, with each problem's texts as a theme:
    the share of texts at least `join` similar to the centre of the rest of their problem (would
    join their theme at once), at least `join` to another problem's centre (could join a wrong
    one), and under `apart` to their own (kept apart wrongly)."""
    names, label = np.unique(truth, return_inverse=True)
    sums = np.zeros((len(names), vectors.shape[1]))
    np.add.at(sums, label, vectors)
    centres = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    rest = sums[label] - vectors  # each text's own problem without it
    own = np.einsum("ij,ij->i", vectors, rest) / np.maximum(np.linalg.norm(rest, axis=1), 1e-12)
    others = vectors @ centres.T
    others[np.arange(len(vectors)), label] = -1
    return {
        "own_median": float(np.median(own)),
        "other_median": float(np.median(others.max(axis=1))),
        "join_own": float(np.mean(own >= thresholds.join)),
        "join_other": float(np.mean(others.max(axis=1) >= thresholds.join)),
        "apart_own": float(np.mean(own < thresholds.apart)),
    }


def measure(choice: str, single_calls: int, seeds: int) -> dict:
    """One model, in this process."""
    started = time.perf_counter()
    import sentence_transformers  # noqa: F401  (timed: every process that embeds pays it)
    import torch

    torch.set_num_threads(THREADS)
    imported = time.perf_counter() - started

    from digests.clustering import cluster
    from digests.embeddings import LocalEmbedder
    from digests.themes import thresholds_for

    embedder = LocalEmbedder(choice)
    started = time.perf_counter()
    embedder.embed(["the first call loads the model"])
    loaded = time.perf_counter() - started
    after_load = resident_mb()

    datasets = {name: read_labelled(path) for name, path in SETS.items()}
    sample = datasets["CLINC150 test"][0][:512]
    batched = []
    for _ in range(2):
        started = time.perf_counter()
        embedder.embed(sample)
        batched.append((time.perf_counter() - started) / len(sample))
    singles = []
    for text in datasets["SNIPS"][0][:single_calls]:
        started = time.perf_counter()
        embedder.embed([text])
        singles.append(time.perf_counter() - started)

    quality, scale = {}, {}
    thresholds = thresholds_for(embedder.name)
    with MemoryWatch() as memory:
        vectors = {name: embedder.embed(texts) for name, (texts, _) in datasets.items()}
    for name, (_, truth) in datasets.items():
        runs = [scores(truth, cluster(vectors[name], seed=seed)) for seed in range(seeds)]
        quality[name] = {key: statistics.fmean(run[key] for run in runs) for key in runs[0]}
        scale[name] = similarity_scale(vectors[name], truth, thresholds)
    return {
        "model": embedder.name.removeprefix("local:"),
        "dimension": embedder.dimension,
        "import_s": imported,
        "load_s": loaded,
        "rss_after_load_mb": after_load,
        "rss_peak_mb": memory.peak / 2**20,
        "batched_ms": 1000 * min(batched),
        "single_median_ms": 1000 * statistics.median(singles),
        "single_p99_ms": 1000 * float(np.percentile(singles, 99)),
        "quality": quality,
        "scale": scale,
        "thresholds": [thresholds.join, thresholds.apart],
    }


def in_own_process(choice: str, args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
    command = [sys.executable, __file__, "--worker", choice, "--single", str(args.single), "--seeds", str(args.seeds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measuring {choice} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_tables(results: list[dict]) -> None:
    print("\n| model | dim | import | load | RSS after load | peak RSS embedding | batched | one text: median / p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['model']} | {r['dimension']} | {r['import_s']:.1f} s | {r['load_s']:.1f} s | "
            f"{r['rss_after_load_mb']:,.0f} MB | {r['rss_peak_mb']:,.0f} MB | "
            f"{r['batched_ms']:.2f} ms ({1000 / r['batched_ms']:,.0f}/s) | "
            f"{r['single_median_ms']:.1f} / {r['single_p99_ms']:.1f} ms |"
        )
    print("\n| model | data | NMI | ARI | accuracy | themes | themes per problem (median) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for name, q in r["quality"].items():
            print(
                f"| {r['model']} | {name} | {q['NMI']:.1f} | {q['ARI']:.1f} | {q['acc']:.1f} | {q['themes']:.1f} | "
                f"{q['themes_per_problem_median']:.1f} |"
            )
    print("\nSimilarity scale at each model's thresholds (join / apart):")
    print(
        "| model | data | thresholds | median to own problem | median to nearest other | joins own | "
        "could join another | under apart |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for name, s in r["scale"].items():
            print(
                f"| {r['model']} | {name} | {' / '.join(f'{t:.2f}' for t in r['thresholds'])} | "
                f"{s['own_median']:.2f} | {s['other_median']:.2f} | {s['join_own']:.1%} | {s['join_other']:.1%} | "
                f"{s['apart_own']:.1%} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="minilm,mpnet")
    parser.add_argument("--single", type=int, default=50, help="one-text calls timed")
    parser.add_argument("--seeds", type=int, default=5, help="clustering seeds averaged")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.single, args.seeds)))
        return

    from digests.models import MODELS, missing

    choices = []
    for choice in args.models.split(","):
        problem = missing(MODELS[choice])
        if problem:
            print(f"{problem} (it builds the model from its five PyPI parts, about 0.9 GB); measuring without it.")
        else:
            choices.append(choice)
    sizes = ", ".join(f"{name} {len(read_labelled(path)[0]):,} texts" for name, path in SETS.items())
    print(f"{' vs '.join(choices)} · {sizes} · {THREADS} threads · {machine()}", flush=True)
    results = []
    for choice in choices:
        print(f"measuring {choice} in a process of its own …", flush=True)
        results.append(in_own_process(choice, args))
    print_tables(results)
    if len(results) == 2:
        a, b = results
        print(
            f"\n{b['model']} against {a['model']}: {b['batched_ms'] / a['batched_ms']:.1f}x the time per text batched, "
            f"{b['single_median_ms'] / a['single_median_ms']:.1f}x for one text, "
            f"{b['rss_after_load_mb'] - a['rss_after_load_mb']:+,.0f} MB resident after load."
        )


if __name__ == "__main__":
    main()
