"""Re-clustering without k: how many themes there are is found from the data.

1. Reference set: every point, or a seeded sample of `sample_size` when there are more, so the
   cost of the graph step is bounded whatever the volume.
2. The exact cosine k-nearest-neighbour graph of the reference set (blocked matrix products).
3. Leiden communities under the Constant Potts Model: a group stays together while its
   neighbour-similarity density stays above `resolution`. No k, and no resolution limit.
4. A community big enough to keep all its neighbour links at home (twice k) that still sends
   at least `merge_share` of them (similarity-weighted) into another is the same problem seen
   from two sides: they are merged. (On a kNN graph a community's density falls as it grows,
   so a large theme otherwise comes back in pieces; this repairs only part of that.)
5. Spherical k-means refinement from that partition, dropping clusters below `min_size`;
   then every point goes to its nearest centroid and a few rounds refine on all the data.

Deterministic for a given input and seed. Every point gets a label.
"""

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix, triu
from scipy.sparse.csgraph import connected_components

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
    indices: np.ndarray, similarities: np.ndarray, resolution: float, seed: int, iterations: int = 2
) -> np.ndarray:
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
    partition = leidenalg.find_partition(
        graph,
        leidenalg.CPMVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
        n_iterations=iterations,
    )
    return np.asarray(partition.membership, dtype=np.int64)


def link_matrices(
    labels: np.ndarray, indices: np.ndarray, similarities: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row a, column b: the share of cluster a's neighbour links (weighted by similarity) that end
    in cluster b, and how close those links are (their mean similarity); and per cluster, how
    much the closeness of the links inside it spreads (standard deviation). The evidence for "one
    problem seen from two sides", for merging here and for the leads' "Same problem?" queue."""
    count = labels.max() + 1
    source = np.repeat(labels, indices.shape[1])
    target = labels[indices.ravel()]
    weights = np.maximum(similarities.ravel(), 0.0)
    links = coo_matrix((weights, (source, target)), shape=(count, count)).toarray()
    counts = coo_matrix((np.ones(len(source)), (source, target)), shape=(count, count)).toarray()
    shares = links / np.maximum(links.sum(axis=1, keepdims=True), 1e-12)
    closeness = links / np.maximum(counts, 1)
    inside = source == target
    squares = np.bincount(source[inside], weights[inside] ** 2, minlength=count)
    spread = np.sqrt(np.maximum(squares / np.maximum(np.diag(counts), 1) - np.diag(closeness) ** 2, 0.0))
    return shares, closeness, spread


def merge_linked(labels: np.ndarray, indices: np.ndarray, similarities: np.ndarray, share: float) -> np.ndarray:
    """Join communities when one sends at least `share` of its neighbour links (weighted by
    similarity) to the other."""
    shares, _, _ = link_matrices(labels, indices, similarities)
    # Only a community big enough to keep all its links at home can speak for a merge: a small
    # one sends links out because it must, not because it belongs elsewhere.
    sizes = np.bincount(labels, minlength=len(shares))
    speaks = (shares >= share) & (sizes >= 2 * indices.shape[1])[:, None]
    joined = speaks | speaks.T
    np.fill_diagonal(joined, False)
    _, component = connected_components(joined, directed=False)
    return component[labels]


def neighbour_links(
    embeddings: np.ndarray, labels: np.ndarray, *, neighbours: int = 20, sample_size: int = 5000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`link_matrices` for a finished clustering, on the same seeded sample and neighbour graph."""
    vectors = normalise(embeddings)
    n = len(vectors)
    count = int(labels.max()) + 1 if n else 0
    shares, closeness, spread = np.zeros((count, count)), np.zeros((count, count)), np.zeros(count)
    if n < 2:
        return shares, closeness, spread
    reference = np.arange(n)
    if n > sample_size:
        reference = np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
    indices, similarities = nearest_neighbours(vectors[reference], neighbours)
    found = link_matrices(labels[reference], indices, similarities)
    for whole, part in zip((shares, closeness, spread), found, strict=True):
        whole[tuple(slice(0, len(part)) for _ in part.shape)] = part
    return shares, closeness, spread


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
    merge_share: float = 0.2,
    merge_passes: int = 1,
    min_size: int = 3,
    sample_size: int = 5000,
    reference_rounds: int = 20,
    full_rounds: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Labels 0..k-1 for unit-length embeddings; k is whatever the data says."""
    vectors = normalise(embeddings)
    n = len(vectors)
    if n <= max(2 * min_size, 2):
        return np.zeros(n, dtype=np.int64)
    reference = None
    if n > sample_size:
        reference = np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))
    sample = vectors if reference is None else vectors[reference]
    indices, similarities = nearest_neighbours(sample, neighbours)
    labels = refine(sample, communities(indices, similarities, resolution, seed), min_size, reference_rounds)
    for _ in range(merge_passes):
        merged = refine(sample, merge_linked(labels, indices, similarities, merge_share), min_size, reference_rounds)
        if merged.max() == labels.max():
            break
        labels = merged
    if reference is not None:
        centroids = normalise(cluster_sums(sample, labels, labels.max() + 1))
        labels = np.unique(nearest_centroid(vectors, centroids), return_inverse=True)[1]
        labels = refine(vectors, labels, max(min_size, round(min_size * n / sample_size)), full_rounds)
    return _relabel(labels)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Number clusters by first appearance, so the same input always gives the same labels."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)
