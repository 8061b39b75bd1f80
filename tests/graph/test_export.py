"""Graph export for Gephi and yEd: GraphML and GEXF files that networkx reads back with the graph's nodes,
edges and attributes; edge kinds carried over from the stored records."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pytest

from hippograph import GraphExport, InputError, Memory, StoreError
from hippograph.graph.build import build_graph
from hippograph.graph.export import to_networkx
from hippograph.indexing.store import GraphData, PassageTable, open_store

READERS = {"graphml": nx.read_graphml, "gexf": nx.read_gexf}


def stored_graph(path):
    with open_store(path) as store:
        passages, data = store.read_passages(), store.read_graph_data()
    return passages, data, build_graph(data, passages.passage_ids)


def test_edge_kinds_on_hand_made_data():
    phrases = ["ada marsh", "kettleby", "veloria bridge"]
    data = GraphData(
        phrases=phrases,
        phrase_embeddings=np.zeros((3, 4), dtype=np.float32),
        facts=[("ada marsh", "born in", "kettleby"), ("ada marsh", "designed", "veloria bridge")],
        fact_embeddings=np.zeros((2, 4), dtype=np.float32),
        fact_passages=[("ada marsh", "born in", "kettleby", "p1"), ("ada marsh", "designed", "veloria bridge", "p2")],
        passage_phrases=[("p1", "ada marsh"), ("p1", "kettleby"), ("p2", "veloria bridge")],
        synonyms=[("kettleby", "veloria bridge", 0.85), ("ada marsh", "kettleby", 0.9)],
    )
    passages = PassageTable(["p1", "p2"], ["d1", "d2"], ["Ada Marsh", ""], ["...", "..."], np.zeros((2, 4)))
    graph = to_networkx(data, passages)
    kinds = {frozenset((a, b)): (d["kind"], d["weight"]) for a, b, d in graph.edges(data=True)}
    assert kinds == {
        frozenset(("phrase:ada marsh", "phrase:kettleby")): ("fact+synonym", pytest.approx(1.9)),
        frozenset(("phrase:ada marsh", "phrase:veloria bridge")): ("fact", 1.0),
        frozenset(("phrase:kettleby", "phrase:veloria bridge")): ("synonym", pytest.approx(0.85)),
        frozenset(("passage:p1", "phrase:ada marsh")): ("context", 1.0),
        frozenset(("passage:p1", "phrase:kettleby")): ("context", 1.0),
        frozenset(("passage:p2", "phrase:veloria bridge")): ("context", 1.0),
    }
    assert graph.nodes["phrase:kettleby"] == {"label": "kettleby", "kind": "phrase"}
    assert graph.nodes["passage:p1"] == {"label": "Ada Marsh", "kind": "passage", "doc_id": "d1"}
    assert graph.nodes["passage:p2"]["label"] == "p2"  # an untitled passage is labelled with its id


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_export_reads_back_with_the_graph_nodes_and_edges(small_store, tmp_path, fmt):
    passages, data, built = stored_graph(small_store)
    out = tmp_path / f"graph.{fmt}"
    result = Memory(small_store).export_graph(out, fmt)
    assert result == GraphExport(str(out), fmt, built.graph.vcount(), built.graph.ecount())

    graph = READERS[fmt](out)
    assert graph.number_of_nodes() == len(data.phrases) + len(passages.passage_ids) == built.graph.vcount()
    assert graph.number_of_edges() == built.graph.ecount() > 0
    for pid, doc_id, title in zip(passages.passage_ids, passages.doc_ids, passages.titles):
        node = graph.nodes[f"passage:{pid}"]
        assert (node["kind"], node["doc_id"], node["label"]) == ("passage", doc_id, title)
    for phrase in data.phrases:
        node = graph.nodes[f"phrase:{phrase}"]
        assert (node["kind"], node["label"]) == ("phrase", phrase)
    edge_kinds = {d["kind"] for _, _, d in graph.edges(data=True)}
    assert {"fact", "context"} <= edge_kinds <= {"fact", "context", "synonym", "fact+synonym"}
    s, _, o = data.facts[0]
    assert graph.edges[f"phrase:{s}", f"phrase:{o}"]["weight"] >= 1.0
    # total weight survives the round trip
    assert sum(float(d["weight"]) for *_, d in graph.edges(data=True)) == pytest.approx(sum(built.graph.es["weight"]))


def test_export_writes_the_default_file_in_the_working_directory(small_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Memory(small_store).export_graph(format="gexf").path == "hippograph.gexf"
    assert nx.read_gexf(tmp_path / "hippograph.gexf").number_of_nodes() > 0
    assert not (tmp_path / "hippograph.graphml").exists()


def test_export_errors(small_store, tmp_path):
    memory = Memory(small_store)
    with pytest.raises(InputError, match="unknown graph format 'dot'"):
        memory.export_graph(tmp_path / "g.dot", "dot")
    with pytest.raises(InputError, match="is a directory"):
        memory.export_graph(tmp_path, "graphml")
    with pytest.raises(InputError, match="cannot write"):
        memory.export_graph(tmp_path / "no-such-dir" / "g.graphml")
    with pytest.raises(StoreError, match="no store"):
        Memory(tmp_path / "missing.duckdb").export_graph(tmp_path / "g.graphml")
    assert not (tmp_path / "missing.duckdb").exists()


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_cli_export_graph(cli, small_store, tmp_path, monkeypatch, fmt):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("export-graph", "--db", small_store, "--format", fmt, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["path"] == f"hippograph.{fmt}" and result["format"] == fmt
    assert READERS[fmt](tmp_path / result["path"]).number_of_edges() == result["edges"]

    code, out, err = cli("export-graph", "--db", small_store, "--format", fmt, "--out", tmp_path / "g.out")
    assert code == 0, err
    assert out.strip() == f"wrote {result['nodes']} nodes and {result['edges']} edges to {tmp_path / 'g.out'}"


def test_cli_export_graph_errors(cli, tmp_path):
    code, out, err = cli("export-graph", "--db", tmp_path / "missing.duckdb", "--out", tmp_path / "g.graphml")
    assert (code, out) == (1, "")
    assert err.startswith("hippograph: error: no store at") and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects an unknown format itself
        cli("export-graph", "--db", tmp_path / "missing.duckdb", "--format", "dot")
    assert exit_info.value.code == 2


def test_export_overwrites_only_with_force_and_never_the_store(small_store_copy, tmp_path):
    memory = Memory(small_store_copy)
    out = tmp_path / "g.gexf"
    out.write_text("keep me")
    with pytest.raises(InputError, match="exists"):
        memory.export_graph(out, "gexf")
    assert out.read_text() == "keep me"
    assert memory.export_graph(out, "gexf", force=True).nodes > 0
    link = tmp_path / "link.graphml"
    link.symlink_to(small_store_copy)
    for target in (small_store_copy, link, tmp_path / "sub" / ".." / small_store_copy.name):
        with pytest.raises(InputError, match="store's own file"):
            memory.export_graph(target, force=True)


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_export_of_ids_and_titles_with_control_characters_is_valid_xml(tmp_path, fmt):
    import xml.etree.ElementTree as ElementTree

    memory = Memory(tmp_path / "ctl.duckdb")
    memory.index([
        {"id": "ada\x01", "title": "Ada\x02 Marsh\x1f", "text": "Ada Marsh designed the Veloria Bridge in Kettleby."},
        {"id": "bell\x0b", "title": "Bells", "text": "Tobias Wren cast the bells of Kettleby."},
    ])
    out = tmp_path / f"graph.{fmt}"
    result = memory.export_graph(out, fmt)
    ElementTree.parse(out)  # raises on a character XML cannot hold
    graph = READERS[fmt](out)
    assert graph.number_of_nodes() == result.nodes
    assert graph.nodes["passage:ada\\u0001#0"]["label"] == "Ada\\u0002 Marsh\\u001f"
    assert graph.nodes["passage:bell\\u000b#0"]["doc_id"] == "bell\\u000b"
