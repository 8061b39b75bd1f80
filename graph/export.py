"""The passage-entity graph as a file for Gephi or yEd (GraphML or GEXF), through networkx.

Nodes and edges are exactly those `build_graph` gives retrieval. It merges parallel edges by summing their
weights, so an edge that is both a fact pair and a synonym pair has kind "fact+synonym" and the summed weight.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import networkx as nx

from hippograph.errors import InputError
from hippograph.graph.build import build_graph
from hippograph.indexing.store import GraphData, PassageTable

FORMATS = ("graphml", "gexf")
_WRITERS = {"graphml": nx.write_graphml, "gexf": nx.write_gexf}
# Characters XML 1.0 cannot hold, escaped or not; ids and titles may contain them.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def to_networkx(data: GraphData, passages: PassageTable, synonym_threshold: float = 0.0) -> nx.Graph:
    """Node ids "phrase:<text>" and "passage:<id>" (never clash); attributes label, kind, doc_id; weight, kind."""
    built = build_graph(data, passages.passage_ids, synonym_threshold)
    graph = nx.Graph()
    ids = [f"phrase:{p}" for p in data.phrases] + [f"passage:{p}" for p in passages.passage_ids]
    for node, phrase in zip(ids, data.phrases):
        graph.add_node(node, label=phrase, kind="phrase")
    for node, pid, doc_id, title in zip(ids[built.passage_offset :], passages.passage_ids, passages.doc_ids, passages.titles):
        graph.add_node(node, label=title or pid, kind="passage", doc_id=doc_id)
    kind = _edge_kinds(data, built.passage_offset)
    for edge in built.graph.es:
        a, b = edge.tuple
        graph.add_edge(ids[a], ids[b], weight=float(edge["weight"]), kind=kind(a, b))
    return graph


def _edge_kinds(data: GraphData, offset: int):
    """kind(a, b) for vertex ids: recomputed from the stored records, since igraph's merged edges forget it."""
    facts = {frozenset((s, o)) for s, _, o, _ in data.fact_passages}
    synonyms = {frozenset((a, b)) for a, b, _ in data.synonyms}

    def kind(a: int, b: int) -> str:
        if a >= offset or b >= offset:
            return "context"  # passages connect only to the phrases they mention
        pair = frozenset((data.phrases[a], data.phrases[b]))
        return "+".join(name for name, pairs in (("fact", facts), ("synonym", synonyms)) if pair in pairs)

    return kind


def check_format(format: str) -> None:
    if format not in _WRITERS:
        raise InputError(f"unknown graph format {format!r}; choose one of {', '.join(FORMATS)}")


def check_target(path: Path, protected: Sequence[Path] = (), force: bool = False) -> None:
    """Refuse to write the graph over a directory, over the store's own files (`protected`) even with
    `force`, or over any other existing file without it."""
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a file name for the graph")
    for own in protected:
        if path.resolve() == own.resolve() or (path.exists() and own.exists() and os.path.samefile(path, own)):
            raise InputError(f"{path} is the store's own file {own}; give another file name for the graph")
    if path.exists() and not force:
        raise InputError(f"{path} exists; give another file name for the graph, or overwrite it with --force")


def write_graph(graph: nx.Graph, path: str | Path, format: str) -> None:
    check_format(format)
    path = Path(path)
    try:
        _WRITERS[format](_xml_safe(graph), str(path))
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror or error}") from None


def _xml_safe(graph: nx.Graph) -> nx.Graph:
    """A copy of `graph` whose strings XML can hold: each character it cannot is written as \\uXXXX."""
    safe = nx.Graph()
    safe.add_nodes_from((_xml_text(node), _xml_attributes(data)) for node, data in graph.nodes(data=True))
    safe.add_edges_from((_xml_text(a), _xml_text(b), _xml_attributes(data)) for a, b, data in graph.edges(data=True))
    return safe


def _xml_attributes(data: dict) -> dict:
    return {key: _xml_text(value) for key, value in data.items()}


def _xml_text(value: object) -> object:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", value) if isinstance(value, str) else value
