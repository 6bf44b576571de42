"""Themes from embeddings: joining the nearest theme at submit time, and matching a fresh
clustering to the themes people already know so that keys, owners and history survive."""

from collections import Counter
from dataclasses import dataclass

import numpy as np

from digests.clustering import cluster_sums
from digests.embeddings import normalise


@dataclass(frozen=True)
class Thresholds:
    """How close is "the same problem" at submit time depends on the embedding space."""

    # Cosine similarity above which a new submission joins an existing theme at once; below
    # it, it opens a provisional theme that the next re-clustering may fold into another.
    join: float
    # Below this similarity to its cluster's centre a submission is plainly about something
    # else, and re-clustering keeps it apart (see keep_apart).
    apart: float


# Shared by all-MiniLM-L6-v2 and all-mpnet-base-v2: bench/models.py measures where these cut each
# model's similarities with every labelled problem taken as a theme, on CLINC150 test and SNIPS,
# and the two agree within a few points on both (texts joining their own problem's centre at 0.50:
# 92 / 93% and 69 / 76%; under 0.25 to it: 0.3 / 0.4% and 1.8 / 1.9%), so mpnet needs no
# thresholds of its own.
SENTENCE_MODEL = Thresholds(join=0.50, apart=0.25)
HASHING = Thresholds(join=0.30, apart=0.15)


def thresholds_for(embedder_name: str) -> Thresholds:
    return HASHING if embedder_name == "hashing" else SENTENCE_MODEL


@dataclass(frozen=True)
class Placement:
    theme_index: int | None  # row of the centroid matrix, or None for a new theme
    similarity: float


def nearest_theme(embedding: np.ndarray, centroids: np.ndarray, threshold: float) -> Placement:
    """One matrix-vector product over every live theme's centroid."""
    if len(centroids) == 0:
        return Placement(None, 0.0)
    similarities = centroids @ embedding
    best = int(np.argmax(similarities))
    score = float(similarities[best])
    return Placement(best if score >= threshold else None, score)


def same_problem_pairs(shares: np.ndarray) -> list[tuple[int, int, float]]:
    """Themes one of which sends at least as many of its neighbour links to the other as it keeps
    at home (see clustering.link_shares): the rule by which clustering joins the parts of one
    problem, asked of a lead where clustering left them apart. (a, b, share) with a < b, the
    strongest first."""
    outside = shares.copy()
    np.fill_diagonal(outside, 0.0)
    best: dict[tuple[int, int], float] = {}
    for row, other in enumerate(outside.argmax(axis=1) if len(outside) else []):
        if outside[row, other] > 0 and outside[row, other] >= shares[row, row]:
            pair = (min(row, int(other)), max(row, int(other)))
            best[pair] = max(best.get(pair, 0.0), float(outside[row, other]))
    return sorted(((a, b, share) for (a, b), share in best.items()), key=lambda p: (-p[2], p[0], p[1]))


def keep_distinct(
    labels: np.ndarray, vectors: np.ndarray, previous: np.ndarray, distinct: set[tuple[int, int]]
) -> np.ndarray:
    """A lead said these pairs of themes are not the same problem: a cluster holding members of
    both is cut in two, each member going with whichever side's centre it is nearer."""
    labels = labels.copy()
    for one, other in sorted(distinct):
        for label in np.unique(labels[(previous == one) | (previous == other)]):
            members = labels == label
            sides = [members & (previous == theme) for theme in (one, other)]
            if not (sides[0].any() and sides[1].any()):
                continue
            centres = normalise(np.stack([vectors[side].mean(axis=0) for side in sides]))
            nearer_other = (vectors[members] @ centres.T).argmax(axis=1) == 1
            nearer_other[previous[members] == one] = False  # each side's own members stay with it
            nearer_other[previous[members] == other] = True
            moved = np.flatnonzero(members)[nearer_other]
            labels[moved] = labels.max() + 1
    return labels


def lower_fences(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per label, Tukey's lower outer fence of its values ("far out" below it): the first quartile
    minus three interquartile ranges."""
    fences = np.full(count, np.inf)  # too few (under 4) to tell an outlier: the threshold alone decides
    order = np.lexsort((values, labels))
    bounds = np.searchsorted(labels[order], np.arange(count + 1))
    for label in range(count):
        group = values[order[bounds[label] : bounds[label + 1]]]
        if len(group) >= 4:
            q1, q3 = np.percentile(group, [25, 75])
            fences[label] = q1 - 3 * (q3 - q1)
    return fences


def keep_apart(labels: np.ndarray, vectors: np.ndarray, previous: np.ndarray, threshold: float) -> np.ndarray:
    """Members plainly unlike the rest of their cluster are not forced in: they stay together
    with what they were with before (a provisional theme), so a new problem with few reports
    is not swallowed by a big theme it does not belong to."""
    count = labels.max() + 1 if len(labels) else 0
    sums = cluster_sums(vectors, labels, count)
    # Similarity to the centre of the *other* members: a member must not vouch for itself.
    others = sums[labels] - vectors
    norms = np.linalg.norm(others, axis=1)
    fit = np.einsum("ij,ij->i", vectors, others) / np.maximum(norms, 1e-12)
    # Apart: under the threshold, and far out among its cluster's own fits (below Tukey's outer
    # fence), so a big problem in many wordings does not shed its looser reports.
    apart = (fit < threshold) & (norms > 1e-6) & (fit < lower_fences(fit, labels, count)[labels])
    if not apart.any():
        return labels
    # One new label per previous theme among the outsiders; unthemed ones stand alone.
    groups = np.where(previous[apart] >= 0, previous[apart], -1 - np.flatnonzero(apart))
    _, group_labels = np.unique(groups, return_inverse=True)
    relabelled = labels.copy()
    relabelled[apart] = count + group_labels
    return relabelled


def match_clusters(
    labels: np.ndarray, previous: np.ndarray, curated: frozenset[int] = frozenset()
) -> dict[int, int | None]:
    """Map each new cluster label to the existing theme it continues, or None for a new theme.

    `previous` holds each item's theme id before re-clustering (-1 for none). A cluster
    continues theme X when more of its previously themed members were in X than in any other
    theme (several provisional themes joining an older one must not cost it its key). Each
    theme continues at most one cluster (largest overlap first), except a theme a lead curated
    by merging: it takes every cluster that is mostly its own, so the merge is never undone.
    """
    overlaps: Counter[tuple[int, int]] = Counter()
    themed_members: Counter[int] = Counter()
    for label, theme in zip(labels.tolist(), previous.tolist(), strict=True):
        if theme >= 0:
            overlaps[(label, theme)] += 1
            themed_members[label] += 1

    mapping: dict[int, int | None] = {int(label): None for label in np.unique(labels)}
    largest: dict[int, int] = {}
    for (label, _theme), count in overlaps.items():
        largest[label] = max(largest.get(label, 0), count)
    taken: set[int] = set()
    # Largest overlaps first; ties broken by ids so the result is deterministic.
    for (label, theme), count in sorted(overlaps.items(), key=lambda kv: (-kv[1], kv[0])):
        if mapping[label] is not None or count < largest[label]:
            continue
        if theme in taken and not (theme in curated and count * 2 > themed_members[label]):
            continue  # a curated theme takes more than one cluster only where it is the majority
        mapping[label] = theme
        taken.add(theme)
    return mapping
