"""The query's fast paths give the results of the plain ones: the cosine index's top k equals a float64
top k (ties by the lower row), accelerated PageRank stays within its stated error of PRPACK, alone or
over many reset vectors at once, a hipporag query embeds its question and the phrases it names in one
call, and questions searched in one batch get the answers they get one at a time."""

from __future__ import annotations

import igraph as ig
import numpy as np
import pytest

from hippograph import Memory
from hippograph.graph.build import PowerIteration, personalized_pagerank
from hippograph.indexing.cosine import CosineIndex
from hippograph.pipeline.embed import embedder_for


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def near_ties() -> tuple[np.ndarray, np.ndarray]:
    """Random unit rows, plus rows whose cosines to the query differ in the fourth decimal, and exact
    duplicates (ties must keep the lower row first)."""
    rng = np.random.default_rng(3)
    query = unit(rng.standard_normal(384))
    close = unit(query + 1e-3 * rng.standard_normal((40, 384)))
    vectors = np.concatenate([unit(rng.standard_normal((3000, 384))), close, close[:5]])
    return vectors[rng.permutation(len(vectors))], query


@pytest.mark.parametrize("k", [1, 5, 30])
def test_cosine_index_equals_a_float32_top_k(near_ties, k):
    vectors, query = near_ties
    exact = vectors.astype(np.float64) @ query
    got = CosineIndex(vectors).top(query, k)
    rows = [row for row, _ in got]
    assert len(set(rows)) == k
    # Rows whose float32 cosines differ only in the last bits may come in either order, as between any
    # two float32 products of a different shape; their float64 cosines must still be the top k.
    assert exact[rows] == pytest.approx(np.sort(exact)[::-1][:k], abs=1e-6)
    assert [score for _, score in got] == pytest.approx(exact[rows], abs=1e-6)


def test_cosine_index_breaks_ties_by_the_lower_row():
    vectors = unit(np.random.default_rng(1).standard_normal((50, 16)))
    vectors[[7, 21, 40]] = vectors[3]  # four equal rows
    assert [row for row, _ in CosineIndex(vectors).top(vectors[3], 3)] == [3, 7, 21]


def test_top_many_is_top_of_each_query(near_ties):
    vectors, query = near_ties
    queries = np.stack([query, vectors[10], vectors[-1]])
    index = CosineIndex(vectors)
    for got, alone in zip(index.top_many(queries, 5), [index.top(q, 5) for q in queries]):
        assert [row for row, _ in got] == [row for row, _ in alone]
        assert [score for _, score in got] == pytest.approx([score for _, score in alone], abs=1e-6)


def test_cosine_index_of_nothing():
    assert CosineIndex(np.zeros((0, 0), dtype=np.float32)).top(np.zeros(384, dtype=np.float32), 5) == []
    vectors = unit(np.random.default_rng(0).standard_normal((3, 8)))
    assert len(CosineIndex(vectors).top(vectors[0], 5)) == 3


def random_graph(n: int, m: int, seed: int, bipartite_with: int = 0) -> ig.Graph:
    """m distinct random edges without loops, from a seeded generator (igraph's own generators draw from
    Python's global random state); with `bipartite_with`, edges only join the first n vertices to the
    next `bipartite_with`."""
    rng = np.random.default_rng(seed)
    edges: set[tuple[int, int]] = set()
    while len(edges) < m:
        if bipartite_with:
            a, b = int(rng.integers(n)), n + int(rng.integers(bipartite_with))
        else:
            a, b = sorted(int(v) for v in rng.choice(n, 2, replace=False))
        edges.add((a, b))
    return ig.Graph(n=n + bipartite_with, edges=sorted(edges), directed=False)


def weighted(graph: ig.Graph, seed: int) -> ig.Graph:
    graph.add_vertices(3)  # isolated vertices: their mass must restart by the reset vector
    graph.es["weight"] = np.random.default_rng(seed).uniform(0.2, 3.0, graph.ecount()).tolist()
    return graph


# Bipartite graphs (passages and phrases) give the transition matrix an eigenvalue of -1, the edge of the
# spectrum Chebyshev acceleration assumes.
GRAPHS = {
    "random": lambda: weighted(random_graph(60, 150, seed=7), 7),
    "bipartite": lambda: weighted(random_graph(30, 160, seed=8, bipartite_with=40), 8),
}


@pytest.mark.parametrize("graph_name", GRAPHS)
@pytest.mark.parametrize("tolerance", [1e-3, 1e-5, 1e-8])
@pytest.mark.parametrize("damping", [0.5, 0.85])
def test_power_iteration_is_within_its_tolerance_of_prpack(graph_name, tolerance, damping):
    graph = GRAPHS[graph_name]()
    reset = np.zeros(graph.vcount())
    reset[[0, 5, graph.vcount() - 2]] = [1.0, 0.4, 0.2]
    reset[30:40] = 0.05
    expected = personalized_pagerank(graph, reset, damping)
    got = PowerIteration(graph, tolerance=tolerance)(reset, damping)
    assert np.abs(got - expected).sum() <= tolerance + 1e-10  # PRPACK's own error is far below that
    assert got.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("damping", [0.5, 0.85])
def test_power_iteration_over_many_resets_is_each_one_alone(damping):
    graph = GRAPHS["bipartite"]()
    resets = np.random.default_rng(5).random((graph.vcount(), 4)) ** 8  # skewed, like real seeds
    resets[:, 3] = 0.0
    resets[7, 3] = 1.0  # one column with a single seed: the slowest to converge
    power = PowerIteration(graph, tolerance=1e-8)
    together = power(resets, damping)
    for column in range(resets.shape[1]):
        alone = power(resets[:, column], damping)
        assert np.abs(together[:, column] - alone).sum() <= 1e-8
        assert np.abs(together[:, column] - personalized_pagerank(graph, resets[:, column], damping)).sum() <= 1e-8


@pytest.mark.parametrize("mode", ["hipporag", "memorag"])
def test_a_batch_of_questions_gets_what_each_gets_alone(demo_store, demo_question_records, mode):
    questions = [q["question"] for q in demo_question_records[:6]]
    together = Memory(demo_store).retrieve_many(questions, mode=mode, top_k=5)
    for question, batched in zip(questions, together):
        alone = Memory(demo_store).retrieve(question, mode=mode, top_k=5)  # a fresh memory: nothing cached
        assert [p.passage_id for p in batched.passages] == [p.passage_id for p in alone.passages]
        assert [p.score for p in batched.passages] == pytest.approx([p.score for p in alone.passages], abs=1e-6)
        # Vectors embedded in a larger batch differ in the last bits (padding), so weights are near.
        assert [(c.text, c.kind) for c in batched.clues] == [(c.text, c.kind) for c in alone.clues]
        assert [c.weight for c in batched.clues] == pytest.approx([c.weight for c in alone.clues], abs=1e-5)
        assert batched.draft_answer == alone.draft_answer


def test_a_hipporag_query_embeds_once(demo_store, demo_question_records, monkeypatch):
    memory = Memory(demo_store)
    retriever = memory.retriever("hipporag")
    embedder = embedder_for(memory.config)
    encode, calls = embedder.encode, []
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: calls.append(list(texts)) or encode(texts, **kw))
    questions = [q["question"] for q in demo_question_records]
    embedded = set()
    for question in questions:
        calls.clear()
        memory.retrieve(question, mode="hipporag")
        wanted = [question, *retriever.graph.phrases_to_embed(retriever.question_phrases(question))]
        new = [t for t in dict.fromkeys(wanted) if t not in embedded]
        assert calls == [new]  # a phrase an earlier question named comes from the recent vectors
        embedded.update(new)
    calls.clear()
    memory.retrieve(questions[0], mode="hipporag")
    assert calls == []


def test_phrases_to_embed_are_the_names_the_graph_lacks(demo_store):
    memory = Memory(demo_store)
    retriever = memory.retriever("hipporag").graph
    known = next(p for p in retriever.graph.phrase_index if p.isalpha())
    assert retriever.phrases_to_embed([known, "1999", "zzyzx quarble"]) == ["zzyzx quarble"]
    vector = embedder_for(memory.config).encode(["zzyzx quarble"])[0]
    linked = retriever.link_phrases([known, "1999", "zzyzx quarble"], {"zzyzx quarble": vector})
    assert linked[0] == (retriever.graph.phrase_index[known], 1.0)
    similarity = retriever.phrase_cosine.scores(vector)
    best = int(np.argmax(similarity))
    expected = [(best, float(similarity[best]))] if similarity[best] >= memory.config.entity_link_threshold else []
    assert [phrase for phrase, _ in linked[1:]] == [phrase for phrase, _ in expected]


def test_unknown_coordinations_link_as_the_names_they_join(demo_store):
    graph = Memory(demo_store).retriever("hipporag").graph
    index = graph.graph.phrase_index
    first, second = sorted(p for p in index if p.isalpha())[:2]
    whole = next(p for p in index if " and " in p)  # a name the graph holds with "and" in it: "tarr and sons"
    assert graph.named_parts([f"{first} and {second}", whole, f"{second} or zzyzx"]) == [first, second, whole, "zzyzx"]
    assert graph.named_parts(["zzyzx & quarble"]) == ["zzyzx", "quarble"]
