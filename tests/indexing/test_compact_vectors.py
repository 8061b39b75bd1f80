"""Compact vectors (two int8 codes a row) rank as float32 vectors do: the compact top k is exactly the top k
of the two-code cosines (the scan's bound never drops a row that belongs there), which lie within 1e-5 of
the float32 cosines, so on real embeddings it equals the float32 top k; and the edge cases keep the float32
index's semantics (empty, k beyond the rows, ties by the lower row, NaN last)."""

from __future__ import annotations

import numpy as np
import pytest

from hippograph import Config
from hippograph.indexing.compact import CompactVectors
from hippograph.indexing.cosine import CosineIndex, top_k
from hippograph.indexing.store import open_store
from hippograph.retrievers import Snapshot


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def rows_of(ranked: list[tuple[int, float]]) -> list[int]:
    return [row for row, _ in ranked]


@pytest.fixture(scope="module")
def near_ties() -> tuple[np.ndarray, np.ndarray]:
    """Random unit rows, rows whose cosines to the queries differ in the fourth decimal (closer than the
    first code's own error, so only the bound and the rescoring keep them apart), and exact duplicates."""
    rng = np.random.default_rng(3)
    queries = unit(rng.standard_normal((4, 384)))
    close = unit(np.repeat(queries, 30, axis=0) + 1e-3 * rng.standard_normal((120, 384)))
    vectors = np.concatenate([unit(rng.standard_normal((5000, 384))), close, close[:7]])
    return vectors[rng.permutation(len(vectors))], queries


@pytest.fixture(scope="module")
def demo_graph(demo_store):
    """The demo store's phrase and fact vectors (real all-MiniLM-L6-v2 embeddings), float32 and compact."""
    with open_store(demo_store) as store:
        return store.read_graph_data(), store.read_graph_data(compact=True)


@pytest.mark.parametrize("k", [1, 5, 30, 200])
def test_compact_top_k_is_the_top_k_of_the_two_code_cosines(near_ties, k):
    vectors, queries = near_ties
    compact = CompactVectors.encode(vectors)
    index = CosineIndex(compact)
    for query, got in zip(queries, index.top_many(queries, k)):
        two_code = compact.decoded() @ query.astype(np.float64)
        assert rows_of(got) == list(top_k(two_code, k))
        assert [score for _, score in got] == pytest.approx(two_code[rows_of(got)], abs=1e-12)


@pytest.mark.parametrize("k", [1, 5, 30])
def test_compact_top_k_holds_the_float32_top_k_within_1e_5(near_ties, k):
    vectors, queries = near_ties
    float32, compact = CosineIndex(vectors), CosineIndex(CompactVectors.encode(vectors))
    for query, got, expected in zip(queries, compact.top_many(queries, k), float32.top_many(queries, k)):
        exact = vectors.astype(np.float64) @ query.astype(np.float64)
        # Rows whose cosines differ by less than the residual's rounding may come in either order.
        assert exact[rows_of(got)] == pytest.approx([score for _, score in expected], abs=1e-5)
        assert [score for _, score in got] == pytest.approx(exact[rows_of(got)], abs=1e-5)


def test_compact_vectors_are_half_the_bytes_and_within_1e_5(near_ties):
    vectors, queries = near_ties
    compact = CompactVectors.encode(vectors)
    assert compact.nbytes == len(vectors) * (2 * 384 + 16) < 0.52 * vectors.nbytes
    assert np.abs(compact.decoded() - vectors).max() < 1e-5
    residual = compact.residual * compact.residual_scales[:, None].astype(np.float64)
    assert (np.linalg.norm(residual, axis=1) <= compact.bounds).all()
    codes = compact.codes * compact.scales[:, None].astype(np.float64)
    assert (np.linalg.norm(codes, axis=1) <= compact.code_norms).all()
    assert CosineIndex(compact).scores_many(queries) == pytest.approx(queries @ vectors.T, abs=1e-5)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_compact_top_k_equals_float32_on_real_embeddings(demo_graph, embedder, demo_question_records, k):
    float32_data, compact_data = demo_graph
    questions = embedder.encode([q["question"] for q in demo_question_records])
    for float32_vectors, compact_vectors in [
        (float32_data.fact_embeddings, compact_data.fact_embeddings),
        (float32_data.phrase_embeddings, compact_data.phrase_embeddings),
    ]:
        queries = np.concatenate([questions, float32_vectors])  # every stored vector finds itself and its neighbours
        expected = CosineIndex(float32_vectors).top_many(queries, k)
        got = CosineIndex(compact_vectors).top_many(queries, k)
        same = sum(rows_of(g) == rows_of(e) for g, e in zip(got, expected))
        # Real near-ties exist (two facts of one passage at cosines 0.4592822 and 0.4592820 to a third):
        # those may swap, nothing else.
        assert same >= 0.98 * len(queries)
        for query, g, e in zip(queries, got, expected):
            exact = float32_vectors.astype(np.float64) @ query.astype(np.float64)
            assert exact[rows_of(g)] == pytest.approx(exact[rows_of(e)], abs=1e-5)
            assert [s for _, s in g] == pytest.approx([s for _, s in e], abs=1e-5)


def test_the_store_encodes_what_it_stores(demo_graph):
    float32_data, compact_data = demo_graph
    assert compact_data.phrases == float32_data.phrases and compact_data.facts == float32_data.facts
    for float32_vectors, compact_vectors in [
        (float32_data.fact_embeddings, compact_data.fact_embeddings),
        (float32_data.phrase_embeddings, compact_data.phrase_embeddings),
    ]:
        assert isinstance(compact_vectors, CompactVectors)
        assert np.abs(compact_vectors.decoded() - float32_vectors).max() < 1e-5


def test_a_snapshot_retrieves_what_a_float32_one_does(demo_store, demo_question_records):
    config = Config()
    questions = [q["question"] for q in demo_question_records]
    compact, float32 = Snapshot.read(demo_store), Snapshot.read(demo_store, compact=False)
    assert isinstance(compact.graph.fact_embeddings, CompactVectors)
    assert isinstance(float32.graph.fact_embeddings, np.ndarray)
    for mode in ("hipporag", "memorag"):
        got = compact.retriever(mode, config).retrieve_many(questions, 5)
        expected = float32.retriever(mode, config).retrieve_many(questions, 5)
        for g, e in zip(got, expected):
            assert [p.passage_id for p in g.passages] == [p.passage_id for p in e.passages]
            assert [p.score for p in g.passages] == pytest.approx([p.score for p in e.passages], abs=1e-5)
            assert [(f.subject, f.predicate, f.object) for f in g.facts] == [(f.subject, f.predicate, f.object) for f in e.facts]


def test_top_many_is_top_of_each_query(near_ties):
    vectors, queries = near_ties
    index = CosineIndex(CompactVectors.encode(vectors))
    assert index.top_many(queries, 5) == [index.top(q, 5) for q in queries]


def test_compact_index_of_nothing_and_k_beyond_the_rows():
    empty = CosineIndex(CompactVectors.encode(np.zeros((0, 384), np.float32)))
    query = unit(np.ones(384))
    assert len(empty) == 0 and empty.top(query, 5) == [] and empty.scores(query).shape == (0,)
    vectors = unit(np.random.default_rng(0).standard_normal((3, 8)))
    index = CosineIndex(CompactVectors.encode(vectors))
    assert rows_of(index.top(vectors[0], 5)) == rows_of(CosineIndex(vectors).top(vectors[0], 5))
    assert index.top(vectors[0], 0) == []


def test_compact_index_breaks_ties_by_the_lower_row():
    vectors = unit(np.random.default_rng(1).standard_normal((50, 16)))
    vectors[[7, 21, 40]] = vectors[3]  # four equal rows
    assert rows_of(CosineIndex(CompactVectors.encode(vectors)).top(vectors[3], 3)) == [3, 7, 21]


def test_nan_rows_rank_last_and_a_nan_query_ranks_nothing():
    vectors = unit(np.random.default_rng(2).standard_normal((40, 16)))
    vectors[[4, 9]] = np.nan
    vectors[12] = 0.0  # a zero row scores 0
    float32, compact = CosineIndex(vectors), CosineIndex(CompactVectors.encode(vectors))
    query = vectors[0]
    got, expected = compact.top(query, 40), float32.top(query, 40)
    assert rows_of(got) == rows_of(expected) and rows_of(got)[-2:] == [4, 9]
    assert np.isnan([s for _, s in got[-2:]]).all() and dict(got)[12] == 0.0
    nan_query = np.full(16, np.nan, np.float32)
    assert [(r, np.isnan(s)) for r, s in compact.top(nan_query, 3)] == [(0, True), (1, True), (2, True)]
    assert rows_of(compact.top(nan_query, 3)) == rows_of(float32.top(nan_query, 3))
    every_row_nan = CosineIndex(CompactVectors.encode(np.full((3, 16), np.nan, np.float32)))
    assert rows_of(every_row_nan.top(query, 2)) == [0, 1]
