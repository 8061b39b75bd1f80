"""The passage-entity graph (HippoRAG 2): phrase nodes, passage nodes, and three edge kinds, as the sparse
adjacency matrix PageRank reads (and an igraph graph, made from it when asked for).

- fact edges between a triple's subject and object phrases, weighted by how often the pair was seen;
- context edges between a passage and each phrase it mentions (weight 1);
- synonym edges between phrases with close embeddings (weight = cosine).

The graph is undirected; parallel edges (a fact pair that is also a synonym pair) merge by summing.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence

import igraph as ig
import numpy as np
import torch
from scipy import sparse

from hippograph.indexing.store import GraphData


class PassageGraph:
    """The graph as a symmetric sparse adjacency matrix (what PageRank reads), and as an igraph `Graph`
    with vertex names and kinds, made from it on first use (PRPACK, export): a query process running
    the power solver never holds the igraph copy, a few hundred megabytes at 100k passages."""

    def __init__(self, adjacency: sparse.csr_matrix, phrase_index: dict[str, int], passage_ids: Sequence[str],
                 phrase_passage_counts: np.ndarray):
        self.adjacency = adjacency  # edge weights, both directions; parallel edges summed, no loops
        self.phrase_index = phrase_index  # phrase -> vertex id; passages follow the phrases
        self.passage_ids = passage_ids
        self.phrase_passage_counts = phrase_passage_counts  # passages each phrase occurs in, by phrase vertex id

    @property
    def passage_offset(self) -> int:
        """Vertex id of passage 0: passage i is passage_offset + i."""
        return len(self.phrase_index)

    @functools.cached_property
    def graph(self) -> ig.Graph:
        upper = sparse.triu(self.adjacency, k=1).tocoo()  # each undirected edge once
        graph = ig.Graph(n=self.adjacency.shape[0], edges=np.column_stack([upper.row, upper.col]), directed=False)
        graph.es["weight"] = upper.data.tolist()
        graph.vs["name"] = list(self.phrase_index) + [f"passage:{pid}" for pid in self.passage_ids]
        graph.vs["kind"] = ["phrase"] * self.passage_offset + ["passage"] * len(self.passage_ids)
        return graph


def build_graph(data: GraphData, passage_ids: Sequence[str], synonym_threshold: float = 0.0) -> PassageGraph:
    """Vertices: every stored phrase, then every passage in `passage_ids` order.

    Synonym edges below `synonym_threshold` are left out, so a stricter threshold needs no re-index.
    """
    phrase_index = {phrase: i for i, phrase in enumerate(data.phrases)}
    offset = len(phrase_index)
    passage_index = {pid: offset + i for i, pid in enumerate(passage_ids)}

    fact_ends = vertex_pairs(
        ((s, o) for s, _, o, _ in data.fact_passages), phrase_index, phrase_index, len(data.fact_passages))
    fact_ends = fact_ends[(fact_ends >= 0).all(axis=1) & (fact_ends[:, 0] != fact_ends[:, 1])]
    fact_edges, passages_seen = np.unique(fact_ends, axis=0, return_counts=True)  # a pair weighs its passages
    links = vertex_pairs(data.passage_phrases, passage_index, phrase_index, len(data.passage_phrases))
    links = links[(links >= 0).all(axis=1)]
    counts = np.bincount(links[:, 1], minlength=offset).astype(np.float64)
    synonym_ends = vertex_pairs(
        ((a, b) for a, b, _ in data.synonyms), phrase_index, phrase_index, len(data.synonyms))
    similarity = np.fromiter((float(sim) for _, _, sim in data.synonyms), np.float64, len(data.synonyms))
    kept = (synonym_ends >= 0).all(axis=1) & (similarity >= synonym_threshold)
    edges = np.concatenate([fact_edges, links, synonym_ends[kept]])
    weights = np.concatenate([passages_seen.astype(np.float64), np.ones(len(links)), similarity[kept]])

    not_loop = edges[:, 0] != edges[:, 1]
    first, second, weights = edges[not_loop, 0], edges[not_loop, 1], weights[not_loop]
    vertices = offset + len(passage_ids)
    # each edge in both directions; converting to CSR sums duplicates, so parallel edges merge by summing
    rows, columns = np.concatenate([first, second]), np.concatenate([second, first])
    adjacency = sparse.coo_matrix((np.concatenate([weights, weights]), (rows, columns)), shape=(vertices, vertices)).tocsr()
    return PassageGraph(adjacency, phrase_index, passage_ids, counts)


def vertex_pairs(pairs, first: dict[str, int], second: dict[str, int], count: int, dtype=np.int64) -> np.ndarray:
    """(count, 2) vertex ids of `count` pairs of names, looked up in `first` and `second`; -1 for a name
    the index lacks. An array, not millions of tuples."""
    ids = (index.get(name, -1) for a, b in pairs for index, name in ((first, a), (second, b)))
    return np.fromiter(ids, dtype, 2 * count).reshape(-1, 2)


def personalized_pagerank(graph: ig.Graph, reset: np.ndarray, damping: float) -> np.ndarray:
    """PageRank mass of every vertex for restart distribution `reset` (igraph's PRPACK)."""
    scores = graph.personalized_pagerank(
        directed=False, damping=damping, reset=reset.tolist(), weights="weight", implementation="prpack"
    )
    return np.asarray(scores)


class PowerIteration:
    """The same Personalized PageRank as `personalized_pagerank`, for many queries on one graph.

    PRPACK rebuilds its matrix on every call, which dominates a query on a large graph. Here the
    column-stochastic transition matrix P is built once, and each query solves z = d P z + r by power
    iteration with Chebyshev acceleration (Golub & Varga 1961): P is similar to the symmetric
    D^-1/2 A D^-1/2, so its eigenvalues are real and in [-1, 1], and with damping 0.5 the error shrinks by
    0.27 per sparse product instead of 0.5. z normalised is PageRank with dangling vertices restarting by
    `reset`, as in igraph. Iteration stops once the residual bounds the L1 distance of the result to the
    exact scores by `tolerance`. A test checks both solvers agree. The products run in PyTorch, whose
    sparse kernels use every core (SciPy's use one).

    The default tolerance, an L1 error of 1e-5 over all vertices, leaves every passage's mass within
    1e-5 of exact (the bound is loose: the largest L1 distance measured was 3.9e-7); on the 2wiki store it
    ranks the top 10 passages of all 149 dev questions as 1e-8 does, with 11 sparse products instead of
    16 (`benchmarks/bench_pagerank_tolerance.py`; at 1e-4 one question's top 10 changed).
    """

    def __init__(self, graph: ig.Graph | sparse.spmatrix, tolerance: float = 1e-5, max_steps: int = 1000):
        """`graph`: an undirected igraph `Graph` with edge weights, or its symmetric adjacency matrix."""
        if not sparse.issparse(graph):
            graph = graph.get_adjacency_sparse(attribute="weight")
        adjacency = graph.tocsr().astype(np.float64, copy=False)  # read only: no copy needed
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        transition = (adjacency @ sparse.diags(inverse)).tocsr().sorted_indices()  # symmetric graph: A D^-1
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            self.transition = torch.sparse_csr_tensor(
                torch.from_numpy(transition.indptr.astype(np.int32)),  # int32 indices: a quarter less to read
                torch.from_numpy(transition.indices.astype(np.int32)),
                torch.from_numpy(transition.data),
                size=transition.shape,
                check_invariants=True,  # once, when built
            )
        self.tolerance, self.max_steps = tolerance, max_steps
        self.last_steps = 0

    def __call__(self, reset: np.ndarray, damping: float) -> np.ndarray:
        """The PageRank of one reset vector, or of each column of a (vertices, queries) matrix: the
        columns share every sparse product, which reads the matrix once for all of them."""
        single = reset.ndim == 1
        restart = torch.from_numpy(reset[:, None] if single else reset)
        restart = restart / restart.sum(dim=0, keepdim=True)
        previous, ranks, weight = restart, restart, 1.0
        for step in range(self.max_steps):
            stepped = torch.addmm(restart, self.transition, ranks, alpha=damping)  # one power step: d P z + r
            residual = float((stepped - ranks).abs().sum(dim=0).max())  # the slowest column decides
            if self._converged(residual, damping):
                break
            weight = _chebyshev_weight(step, damping, weight)
            stepped = torch.lerp(previous, stepped, weight)  # previous + weight x (stepped - previous)
            previous, ranks = ranks, stepped
        self.last_steps = step + 1  # sparse products the last call took, for benchmarks
        ranks = (stepped / stepped.sum(dim=0, keepdim=True)).numpy()
        return ranks[:, 0] if single else ranks

    def _converged(self, residual: float, damping: float) -> bool:
        """The L1 error of the power step is at most d / (1 - d) x the residual (P has column sums <= 1),
        and normalising (sum of z >= 1) at most doubles it."""
        return 2 * damping * residual <= self.tolerance * (1 - damping)


def _chebyshev_weight(step: int, damping: float, previous: float) -> float:
    """Extrapolation weight of Chebyshev semi-iteration for a spectral radius of at most `damping`."""
    if step == 0:
        return 1.0
    return 1.0 / (1.0 - damping * damping * previous / (2.0 if step == 1 else 4.0))
