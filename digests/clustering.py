"""Re-clustering without k: how many themes there are is found from the data.

1. Reference set: every point, or a seeded sample of `sample_size` when there are more, so the
   cost of the graph step is bounded whatever the volume.
2. The exact cosine k-nearest-neighbour graph of the reference set (blocked matrix products).
3. Parts: Leiden communities under the Constant Potts Model, refined by spherical k-means. A
   part stays together while its neighbour-similarity density stays above `resolution`: small
   tight problems come out one part each, but on a neighbour graph density falls as a group
   grows, so a big problem reported in many wordings comes out in dozens of parts.
4. Groups: Leiden communities of the same graph under modularity, which compares each group's
   links with what its size alone would bring: big problems come out whole, and small
   neighbouring problems come out lumped together.
5. Each group decides from its own links which of the two it is (`whole_groups`): when its
   parts send more of their neighbour links to each other than they keep at home, the borders
   between them are not real and the group is one problem; otherwise its parts stand. No
   constant: a part's links at home against its links to its siblings.
6. Spherical k-means refinement, dropping clusters below `min_size`; then every point goes to
   its nearest centroid and a few rounds refine on all the data.

Deterministic for a given input and seed. Every point gets a label.

Limit: modularity weighs a group against what its share of all links would bring, so a group
holding most of the data is cut where the cut is cheapest. A problem whose wordings drift along
a line is whole beside other big problems (tests/test_themes.py), but when it is most of what
was reported it comes back in a few pieces, each pure. No density-free rule tells such a cut
from a real border: the line is evenly dense on both sides of it.
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, triu

from digests.embeddings import normalise

BLOCK = 1024  # rows per matrix-product block: bounds temporary memory (and page faults)


def nearest_neighbours(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of each row's k nearest other rows."""
    n = len(vectors)
    k = min(k, n - 1)
    indices = np.empty((n, k), dtype=np.int64)
    similarities = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, BLOCK):
        block = vectors[start : start + BLOCK] @ vectors.T
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -np.inf  # not its own neighbour
        # Selecting the k largest as the last k positions: several times faster than on -block.
        nearest = np.argpartition(block, n - k, axis=1)[:, n - k :]
        indices[start : start + BLOCK] = nearest
        similarities[start : start + BLOCK] = np.take_along_axis(block, nearest, axis=1)
    return indices, similarities


def communities(
    indices: np.ndarray, similarities: np.ndarray, resolution: float | None, seed: int, iterations: int = 2
) -> np.ndarray:
    """Leiden communities of the neighbour graph: under the Constant Potts Model at `resolution`,
    or under modularity when it is None."""
    # Imported here, not at start-up: igraph imports matplotlib.pyplot when it is installed (it is,
    # for the digest's chart), about half a second that only re-clustering should pay.
    import igraph
    import leidenalg

    n, k = indices.shape
    weights = np.maximum(similarities.ravel(), 0.0).astype(np.float64)
    directed = coo_matrix((weights, (np.repeat(np.arange(n), k), indices.ravel())), shape=(n, n)).tocsr()
    edges = triu(directed.maximum(directed.T), k=1).tocoo()  # one undirected edge per neighbour pair
    graph = igraph.Graph(n=n, edges=np.column_stack([edges.row, edges.col]).tolist(), directed=False)
    graph.es["weight"] = edges.data.tolist()
    if resolution is None:
        quality, options = leidenalg.ModularityVertexPartition, {}
    else:
        quality, options = leidenalg.CPMVertexPartition, {"resolution_parameter": resolution}
    partition = leidenalg.find_partition(
        graph, quality, weights="weight", seed=seed, n_iterations=iterations, **options
    )
    return np.asarray(partition.membership, dtype=np.int64)


def link_shares(labels: np.ndarray, indices: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Row a, column b: the share of cluster a's neighbour links (weighted by similarity) that end
    in cluster b; the diagonal is what each keeps at home. The evidence for "one problem seen from
    several sides", for joining parts here and for the leads' "Same problem?" queue."""
    count = labels.max() + 1
    source = np.repeat(labels, indices.shape[1])
    target = labels[indices.ravel()]
    weights = np.maximum(similarities.ravel(), 0.0)
    links = coo_matrix((weights, (source, target)), shape=(count, count)).toarray()
    return links / np.maximum(links.sum(axis=1, keepdims=True), 1e-12)


def whole_groups(parts: np.ndarray, groups: np.ndarray, indices: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """Join the parts of each group whose typical part (the median) sends more of its neighbour
    links to its sibling parts than it keeps at home: one problem whose wordings the density
    cut up. A group of parts that keep more at home is several problems side by side."""
    count = parts.max() + 1
    home_group = coo_matrix((np.ones(len(parts)), (parts, groups)), shape=(count, groups.max() + 1))
    group_of = np.asarray(home_group.argmax(axis=1)).ravel()  # where most of each part's members are
    shares = link_shares(parts, indices, similarities)
    at_home = np.diag(shares)
    joined = np.arange(count)
    for group in np.unique(group_of):
        members = np.flatnonzero(group_of == group)
        if len(members) < 2:
            continue
        to_siblings = shares[np.ix_(members, members)].sum(axis=1) - at_home[members]
        if np.median(at_home[members] - to_siblings) < 0:
            joined[members] = members[0]
    return joined[parts]


@dataclass(frozen=True)
class NeighbourGraph:
    """The exact k-nearest-neighbour graph of the reference set: every row, or a seeded sample
    (`reference`, sorted row numbers) when there are more than `sample_size`. Built once per
    re-clustering: clustering runs on it, and the "Same problem?" queue reads it afterwards."""

    reference: np.ndarray | None
    indices: np.ndarray
    similarities: np.ndarray

    def link_shares(self, labels: np.ndarray) -> np.ndarray:
        """`link_shares` for labels of every row (the sample's rows are read from them)."""
        count = int(labels.max()) + 1 if len(labels) else 0
        shares = np.zeros((count, count))
        if self.indices.shape[1]:
            sample = labels if self.reference is None else labels[self.reference]
            found = link_shares(sample, self.indices, self.similarities)
            shares[: len(found), : len(found)] = found
        return shares


def neighbour_graph(
    embeddings: np.ndarray, *, neighbours: int = 20, sample_size: int = 5000, seed: int = 0
) -> NeighbourGraph:
    vectors = normalise(embeddings)
    n = len(vectors)
    if n < 2:  # nobody to be a neighbour
        return NeighbourGraph(None, np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32))
    reference = None
    if n > sample_size:
        reference = np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
    sample = vectors if reference is None else vectors[reference]
    return NeighbourGraph(reference, *nearest_neighbours(sample, neighbours))


def cluster_sums(vectors: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per-cluster sums of the rows, as one sparse product (np.add.at is far slower)."""
    membership = csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(count, len(labels)))
    return np.asarray(membership @ vectors.astype(np.float64))


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    out = np.empty(len(vectors), dtype=np.int64)
    transposed = centroids.T.astype(np.float32)
    for start in range(0, len(vectors), BLOCK):
        out[start : start + BLOCK] = (vectors[start : start + BLOCK] @ transposed).argmax(axis=1)
    return out


def refine(vectors: np.ndarray, labels: np.ndarray, min_size: int, rounds: int) -> np.ndarray:
    """Spherical k-means from a partition; clusters under min_size give their members away."""
    labels = np.unique(labels, return_inverse=True)[1]
    for _ in range(rounds):
        sizes = np.bincount(labels)
        keep = np.flatnonzero(sizes >= min_size)
        if len(keep) == 0:
            keep = np.array([sizes.argmax()])
        centroids = normalise(cluster_sums(vectors, labels, len(sizes))[keep])
        moved = nearest_centroid(vectors, centroids)
        if len(keep) == len(sizes) and np.array_equal(moved, labels):
            break
        labels = np.unique(moved, return_inverse=True)[1]
    return labels


def cluster(
    embeddings: np.ndarray,
    *,
    neighbours: int = 20,
    resolution: float = 0.1,
    min_size: int = 3,
    sample_size: int = 5000,
    reference_rounds: int = 20,
    full_rounds: int = 5,
    seed: int = 0,
    graph: NeighbourGraph | None = None,
) -> np.ndarray:
    """Labels 0..k-1 for unit-length embeddings; k is whatever the data says. `graph`: the
    neighbour graph of these embeddings, when the caller built it already."""
    vectors = normalise(embeddings)
    n = len(vectors)
    if n <= max(2 * min_size, 2):
        return np.zeros(n, dtype=np.int64)
    if graph is None:
        graph = neighbour_graph(vectors, neighbours=neighbours, sample_size=sample_size, seed=seed)
    reference, indices, similarities = graph.reference, graph.indices, graph.similarities
    sample = vectors if reference is None else vectors[reference]
    parts = refine(sample, communities(indices, similarities, resolution, seed), min_size, reference_rounds)
    groups = communities(indices, similarities, None, seed)
    labels = refine(sample, whole_groups(parts, groups, indices, similarities), min_size, reference_rounds)
    if reference is not None:
        centroids = normalise(cluster_sums(sample, labels, labels.max() + 1))
        labels = np.unique(nearest_centroid(vectors, centroids), return_inverse=True)[1]
        labels = refine(vectors, labels, max(min_size, round(min_size * n / len(reference))), full_rounds)
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Number clusters by first appearance, so the same input always gives the same labels."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)
