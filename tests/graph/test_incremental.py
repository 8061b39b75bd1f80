"""Incremental indexing keeps the graph exact: adding then deleting documents leaves the store's graph as if
they had never been added, adding documents embeds only what is new, and unchanged documents cost nothing."""

from __future__ import annotations

import numpy as np
import pytest

from hippograph import Memory
from hippograph.graph.synonyms import synonym_candidate
from hippograph.indexing.store import GraphData, open_store

# Corpus B shares phrases with corpus A (the small docs: Ada Marsh, Kettleby, Tobias Wren, the Veloria
# Bridge), adds facts between them, and adds phrases close enough to A's for synonym edges.
CORPUS_B = [
    {"id": "wren", "title": "Tobias Wren", "text": "Tobias Wren was born in Dunmere and moved to Kettleby in 1875. "
                                                  "He admired the Veloria Bridges of Ada Marsh."},
    {"id": "orne", "title": "Orne valley", "text": "The Orne valley is known for the Veloria bridges and the Harrow Iron Company."},
]
B_IDS = [d["id"] for d in CORPUS_B]


def graph_data(path) -> GraphData:
    with open_store(path) as store:
        return store.read_graph_data()


def generation(path) -> int:
    with open_store(path) as store:
        return store.generation()


def assert_same_graph(got: GraphData, expected: GraphData) -> None:
    assert got.phrases == expected.phrases
    assert got.facts == expected.facts
    assert got.fact_passages == expected.fact_passages
    assert got.passage_phrases == expected.passage_phrases
    assert [(a, b) for a, b, _ in got.synonyms] == [(a, b) for a, b, _ in expected.synonyms]
    np.testing.assert_allclose([s for *_, s in got.synonyms], [s for *_, s in expected.synonyms], atol=1e-6)
    np.testing.assert_allclose(got.phrase_embeddings, expected.phrase_embeddings, atol=1e-6)
    np.testing.assert_allclose(got.fact_embeddings, expected.fact_embeddings, atol=1e-6)


@pytest.fixture
def spy_encode(embedder, monkeypatch):
    """Every text the shared embedder encodes from now on, for queries or indexing (Memory uses this same
    instance)."""
    seen: list[str] = []

    def spying_on(encode):
        def spy(texts, *args, **kwargs):
            seen.extend(texts)
            return encode(texts, *args, **kwargs)

        return spy

    for method in ("encode", "encode_corpus"):
        monkeypatch.setattr(embedder, method, spying_on(getattr(embedder, method)))
    return seen


def test_add_then_delete_leaves_the_graph_as_if_never_added(small_store, small_store_copy, small_docs):
    before = graph_data(small_store)
    memory = Memory(small_store_copy)
    memory.index(CORPUS_B)
    added = graph_data(small_store_copy)
    # B really changed the graph, in every record kind the deletion has to undo.
    new_phrases = set(added.phrases) - set(before.phrases)
    assert {"dunmere", "harrow iron company"} <= new_phrases
    assert set(added.facts) > set(before.facts)
    assert any((a in new_phrases) != (b in new_phrases) for a, b, _ in added.synonyms)  # B phrase ~ A phrase
    assert any(s in before.phrases and o in before.phrases for s, _, o, pid in added.fact_passages if pid.startswith("wren"))

    assert memory.delete(B_IDS) == sorted(B_IDS)
    assert_same_graph(graph_data(small_store_copy), before)


def test_adding_documents_embeds_only_new_passages_phrases_and_facts(small_store, small_store_copy, small_docs, spy_encode,
                                                                   store_tools):
    before = graph_data(small_store)
    rows = "SELECT * FROM {} ORDER BY ALL"
    old_rows = {t: store_tools.sql(small_store, rows.format(t)) for t in ("phrases", "facts", "passage_embeddings")}

    report = Memory(small_store_copy).index(small_docs + CORPUS_B)
    assert (report.indexed, report.unchanged) == (len(CORPUS_B), len(small_docs))

    after = graph_data(small_store_copy)
    new_phrases = set(after.phrases) - set(before.phrases)
    new_facts = set(after.facts) - set(before.facts)
    assert report.new_phrases == len(new_phrases) > 0
    assert report.new_facts == len(new_facts) > 0
    # Nothing of corpus A was embedded again: not its passages, phrases or facts ...
    encoded = set(spy_encode)
    assert not encoded & set(before.phrases)
    assert not encoded & {" ".join(f) for f in before.facts}
    assert not any(d["text"] in text for d in small_docs for text in encoded)
    assert {p for p in new_phrases if synonym_candidate(p)} <= encoded  # the spy sees what indexing embeds
    # ... and its rows are still there, unchanged.
    for table, old in old_rows.items():
        now = set(store_tools.sql(small_store_copy, rows.format(table)))
        assert set(old) <= now, table


def test_reindexing_unchanged_documents_does_nothing(small_store_copy, small_docs, spy_encode, store_tools):
    counts, gen = store_tools.counts(small_store_copy), generation(small_store_copy)
    before = graph_data(small_store_copy)
    report = Memory(small_store_copy).index(small_docs)
    assert (report.indexed, report.unchanged, report.passages, report.triples) == (0, len(small_docs), 0, 0)
    assert spy_encode == []
    assert generation(small_store_copy) == gen
    assert store_tools.counts(small_store_copy) == counts
    assert_same_graph(graph_data(small_store_copy), before)
