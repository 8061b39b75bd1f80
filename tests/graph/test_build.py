"""Graph construction (`build_graph`): vertices, the three edge kinds and their weights, on hand-made and on
indexed data."""

from __future__ import annotations

import numpy as np
import pytest

from hippograph import Memory
from hippograph.graph.build import build_graph
from hippograph.indexing.store import GraphData, open_store

PHRASES = ["ada marsh", "kettleby", "veloria bridge"]
PASSAGES = ["p1", "p2"]


def graph_data(fact_passages, synonyms) -> GraphData:
    facts = sorted({(s, p, o) for s, p, o, _ in fact_passages})
    return GraphData(
        phrases=list(PHRASES),
        phrase_embeddings=np.zeros((len(PHRASES), 4), dtype=np.float32),
        facts=facts,
        fact_embeddings=np.zeros((len(facts), 4), dtype=np.float32),
        fact_passages=fact_passages,
        passage_phrases=[
            ("p1", "ada marsh"), ("p1", "kettleby"), ("p1", "veloria bridge"),
            ("p2", "ada marsh"), ("p2", "veloria bridge"),
        ],
        synonyms=synonyms,
    )


# Two facts; "designed" is seen in both passages, so its pair weighs 2.
FACT_PASSAGES = [
    ("ada marsh", "born in", "kettleby", "p1"),
    ("ada marsh", "designed", "veloria bridge", "p1"),
    ("ada marsh", "designed", "veloria bridge", "p2"),
]


def edges(built) -> dict[frozenset[str], float]:
    graph = built.graph
    names = graph.vs["name"]
    out = {}
    for edge in graph.es:
        a, b = edge.tuple
        key = frozenset((names[a], names[b]))
        assert key not in out, f"parallel edge {key} survived"
        out[key] = edge["weight"]
    return out


def test_vertices_are_phrases_then_passages():
    built = build_graph(graph_data(FACT_PASSAGES, [("kettleby", "veloria bridge", 0.85)]), PASSAGES)
    assert built.graph.vs["name"] == PHRASES + ["passage:p1", "passage:p2"]
    assert built.graph.vs["kind"] == ["phrase"] * 3 + ["passage"] * 2
    assert built.phrase_index == {"ada marsh": 0, "kettleby": 1, "veloria bridge": 2}
    assert built.passage_offset == 3
    assert not built.graph.is_directed()
    # passages each phrase occurs in
    assert built.phrase_passage_counts.tolist() == [2.0, 1.0, 2.0]


def test_fact_context_and_synonym_edges_with_their_weights():
    built = build_graph(graph_data(FACT_PASSAGES, [("kettleby", "veloria bridge", 0.85)]), PASSAGES)
    got = edges(built)
    expected = {
        frozenset(("ada marsh", "kettleby")): 1.0,  # fact seen once
        frozenset(("ada marsh", "veloria bridge")): 2.0,  # fact seen in two passages
        frozenset(("passage:p1", "ada marsh")): 1.0,
        frozenset(("passage:p1", "kettleby")): 1.0,
        frozenset(("passage:p1", "veloria bridge")): 1.0,
        frozenset(("passage:p2", "ada marsh")): 1.0,
        frozenset(("passage:p2", "veloria bridge")): 1.0,
        frozenset(("kettleby", "veloria bridge")): pytest.approx(0.85),  # synonym: its similarity
    }
    assert got == expected


def test_parallel_edges_are_summed():
    """A synonym pair that is also a fact pair, and a fact seen in both directions, become one edge each."""
    fact_passages = FACT_PASSAGES + [("veloria bridge", "designed by", "ada marsh", "p2")]
    built = build_graph(graph_data(fact_passages, [("ada marsh", "kettleby", 0.9)]), PASSAGES)
    got = edges(built)
    assert got[frozenset(("ada marsh", "kettleby"))] == pytest.approx(1.0 + 0.9)
    assert got[frozenset(("ada marsh", "veloria bridge"))] == pytest.approx(3.0)
    assert frozenset(("kettleby", "veloria bridge")) not in got
    assert len(got) == 7  # 2 phrase-phrase + 5 context


def test_the_adjacency_is_the_igraph_graphs_and_the_igraph_graph_is_made_only_when_asked():
    """PageRank reads the adjacency matrix; the igraph graph (PRPACK, export) is made from it on first
    use, so a query process on the power solver never holds it."""
    built = build_graph(graph_data(FACT_PASSAGES + [("kettleby", "near", "kettleby", "p1")],
                                   [("kettleby", "veloria bridge", 0.85), ("veloria bridge", "ada marsh", 0.5)]), PASSAGES)
    assert "graph" not in vars(built)
    adjacency = built.adjacency.toarray()
    assert np.array_equal(adjacency, adjacency.T) and not adjacency.diagonal().any()  # undirected, no loops
    assert adjacency[0, 2] == 2 + 0.5  # "designed" in two passages, plus the synonym pair: summed
    np.testing.assert_array_equal(built.graph.get_adjacency_sparse(attribute="weight").toarray(), adjacency)


def test_records_naming_unknown_phrases_or_passages_add_no_edges():
    data = graph_data(
        FACT_PASSAGES + [("ada marsh", "met", "nobody known", "p1"), ("kettleby", "is", "kettleby", "p1")],
        [("kettleby", "somewhere else", 0.95)],
    )
    data.passage_phrases.append(("p9", "kettleby"))  # a passage not in the graph
    got = edges(build_graph(data, PASSAGES))
    assert len(got) == 7  # 2 facts + 5 context, nothing else
    assert all("nobody known" not in key and "somewhere else" not in key and "passage:p9" not in key for key in got)


# ---- from a real index ----------------------------------------------------------------------------------

CURIE_DOCS = [
    {"id": "curie", "title": "Marie Curie", "text": "Marie Curie discovered polonium in 1898. She was born in Warsaw."},
    {"id": "pierre", "title": "Pierre Curie", "text": "Pierre Curie worked with Marie Curie in Paris."},
]


@pytest.fixture(scope="module")
def curie_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("curie") / "curie.duckdb"
    Memory(path).index(CURIE_DOCS)
    with open_store(path) as store:
        passages, data = store.read_passages(), store.read_graph_data()
    return build_graph(data, passages.passage_ids), data, passages


def test_indexed_corpus_has_the_expected_phrase_and_passage_nodes(curie_graph):
    built, _, passages = curie_graph
    names = set(built.graph.vs["name"])
    assert {"marie curie", "polonium", "warsaw", "pierre curie", "paris"} <= names
    assert {f"passage:{pid}" for pid in passages.passage_ids} <= names
    assert built.graph.vcount() == len(names)  # names are unique


def test_indexed_corpus_has_the_discovery_fact_edge(curie_graph):
    built, data, passages = curie_graph
    assert ("marie curie", "discovered", "polonium") in data.facts
    got = edges(built)
    assert got[frozenset(("marie curie", "polonium"))] >= 1.0
    # Both Curie passages mention Marie Curie, so her node has a context edge to each.
    for pid in passages.passage_ids:
        assert got[frozenset((f"passage:{pid}", "marie curie"))] == 1.0
    assert built.phrase_passage_counts[built.phrase_index["marie curie"]] == 2


def test_power_iteration_equals_prpack_including_dangling_vertices():
    import igraph as ig
    import numpy as np

    from hippograph.graph.build import PowerIteration, personalized_pagerank

    graph = ig.Graph.Erdos_Renyi(n=60, m=150, directed=False, loops=False)
    graph.add_vertices(3)  # isolated vertices: their mass must restart by the reset vector
    rng = np.random.default_rng(7)
    graph.es["weight"] = rng.uniform(0.2, 3.0, graph.ecount()).tolist()
    reset = np.zeros(graph.vcount())
    reset[[0, 5, 61]] = [1.0, 0.4, 0.2]
    reset[30:40] = 0.05
    for damping in (0.5, 0.85):
        expected = personalized_pagerank(graph, reset, damping)
        got = PowerIteration(graph, tolerance=1e-8)(reset, damping)
        assert np.allclose(got, expected, atol=1e-8), np.abs(got - expected).max()
