"""Indexing in this process: every stage over plain data, then one load.

    documents -> changed ones -> chunk -> embed passages -> extract triples -> embed new phrases and
    facts -> load (synonym edges, one transaction, publish)

For resumable or distributed runs the same stages run over shard files: `hippograph.pipeline.shards`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.config import Config
from hippograph.indexing.store import check_embedding_model, open_store, update_store, writer_lock
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.extract import load_spacy
from hippograph.pipeline.load import IndexReport, StageOutput, StageTimer, StoreState, load, merge, pending
from hippograph.pipeline.stages import GraphVectors, chunk, embed_graph, embed_passages, extract
from hippograph.types import Document


def index_documents(
    db_path: str | Path, documents: Sequence[Document], config: Config = Config(), progress: bool = False
) -> IndexReport:
    """Index new and changed documents into the store; unchanged ones cost nothing."""
    report = IndexReport(documents=len(documents))
    timer = StageTimer(report)
    with timer("read_store"):
        state = StoreState.read(db_path, vectors=False)  # the load reads it whole, under the writer lock
    todo = pending(documents, state.index_keys, config)
    report.unchanged = len(documents) - len(todo)
    if not todo:
        return report
    return load(db_path, run_stages(todo, config, timer, state, progress), config, report)


def run_stages(
    documents: Sequence[Document], config: Config, timer: StageTimer, state: StoreState, progress: bool = False
) -> StageOutput:
    """Every stage over the documents, skipping phrases and facts `state` says are stored."""
    with timer("load_models"):  # once per process; timed apart so the stage times are the stages' own
        embedder_for(config)
        if config.build_graph:
            load_spacy(config.spacy_model)
    with timer("chunk"):
        passages = chunk(documents, config)
    with timer("embed_passages"):
        vectors = embed_passages(passages, config, progress)
    output = StageOutput(list(documents), passages, vectors, [], GraphVectors.empty(vectors.shape[1]))
    if config.build_graph:
        with timer("extract"):
            output.facts = extract(passages, config, progress)
        with timer("embed_graph"):
            output.graph_vectors = embed_graph(output.facts, config, set(state.phrases), state.fact_keys, progress)
    return output


@dataclass
class ImportReport:
    triples: int = 0  # records read
    imported: int = 0
    skipped: int = 0  # already stored for their passage (or repeated in the input)
    new_phrases: int = 0
    new_facts: int = 0
    synonym_edges: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def import_triples(
    db_path: str | Path, source: str | Path | Iterable[Mapping[str, Any]], config: Config = Config()
) -> ImportReport:
    """Add triples made elsewhere to passages already stored: a JSONL path or dicts of doc_id, subject,
    predicate, object. New phrases and facts are embedded and linked as in indexing; one transaction."""
    from hippograph.pipeline.triples import new_passage_facts, parse_triples, place_triples, triple_records

    parsed = parse_triples(triple_records(source))  # all input is checked before the store is opened
    report = ImportReport(triples=len(parsed))
    if not parsed:
        return report
    timer = StageTimer(IndexReport())
    with writer_lock(db_path):
        with timer("read_store"), open_store(db_path) as store:
            passages = store.document_passages(sorted({t.doc_id for t in parsed}))
            stored = store.passage_records([pid for rows in passages.values() for pid, _ in rows])
            model, state = store.embedding_model(), StoreState.of(store)
        facts, report.skipped = new_passage_facts(place_triples(parsed, passages), *stored)
        if not facts:
            return report
        embedder = embedder_for(config)
        check_embedding_model(db_path, model, embedder.name, embedder.dim)  # no passages: `Store.write` won't
        no_passages = np.zeros((0, embedder.dim), np.float32)
        output = StageOutput([], [], no_passages, facts, GraphVectors.empty(embedder.dim))
        with timer("merge"):
            batch = merge(output, state, config)
        with timer("write"), update_store(db_path) as store:
            store.write(batch)
    report.imported = len(batch.triples)
    report.new_phrases, report.new_facts, report.synonym_edges = len(batch.new_phrases), len(batch.new_facts), len(batch.synonyms)
    report.seconds = timer.report.seconds
    return report
