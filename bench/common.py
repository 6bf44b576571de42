"""What the benchmarks share: labelled data, metrics, memory and a product service on a temp database."""

import csv
import os
import resource
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
SHARED = DATA / "clinc150"


def read_labelled(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], np.array([r["label"] for r in rows])


def labelled_sets(folder: Path = DATA) -> list[Path]:
    """Every CSV under `folder` with text and label columns and at least two labels (a set of one
    label, such as CLINC150's out-of-scope noise, has no problems to tell apart)."""
    found = []
    for path in sorted(folder.glob("*/*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if {"text", "label"} <= set(reader.fieldnames or ()) and len({row["label"] for row in reader}) >= 2:
                found.append(path)
    return found


def scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """NMI, ARI and accuracy after a one-to-one (Hungarian) matching of clusters to labels; how
    split the true problems are (themes holding part of each, and the share of each problem its
    largest theme holds); how pure the 10 largest themes are (share of their majority problem)."""
    table = contingency_matrix(truth, found)
    rows, cols = linear_sum_assignment(-table)
    themes_per_problem = (table > 0).sum(axis=1)
    largest = table[:, np.argsort(-table.sum(axis=0), kind="stable")[:10]]
    purity = largest.max(axis=0) / largest.sum(axis=0)
    return {
        "NMI": 100 * normalized_mutual_info_score(truth, found),
        "ARI": 100 * adjusted_rand_score(truth, found),
        "acc": 100 * table[rows, cols].sum() / len(truth),
        "themes": len(np.unique(found)),
        "themes_per_problem_median": float(np.median(themes_per_problem)),
        "themes_per_problem_max": int(themes_per_problem.max()),
        "largest_share_median": 100 * float(np.median(table.max(axis=1) / table.sum(axis=1))),
        "purity_10_largest": 100 * float(largest.max(axis=0).sum() / largest.sum()),
        "purity_10_largest_worst": 100 * float(purity.min()),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryWatch:
    """Peak resident memory above the starting level while a block runs, sampled every 10 ms
    from /proc (tracemalloc would slow numba and BLAS code down by orders of magnitude)."""

    def __enter__(self) -> "MemoryWatch":
        import threading

        self._page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * self._page

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def grew_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def machine() -> str:
    import platform

    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"
