"""Indexing in this process: every stage of `STAGES` over plain data, then one commit.

    documents -> changed ones -> chunk -> embed passages -> extract triples -> embed new phrases and
    facts -> commit (synonym edges, one transaction, publish)

For resumable or distributed runs the same stages run over shard files: `hippograph.pipeline.shards`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.config import Config
from hippograph.indexing.store import check_embedding_model, open_store, update_store, writer_lock
from hippograph.pipeline.commit import StageTimer, StoreState, commit, merge, pending
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.stages import GraphVectors, KnownGraph, MemoryBank, StageOutput, active_stages
from hippograph.types import Document, ImportReport, IndexReport


def index_documents(
    db_path: str | Path, documents: Sequence[Document], config: Config = Config(), progress: bool = False
) -> IndexReport:
    """Index new and changed documents into the store; unchanged ones cost nothing."""
    report = IndexReport(documents=len(documents))
    timer = StageTimer(report)
    with timer("read_store"):
        state = StoreState.read(db_path, vectors=False)  # the commit reads it whole, under the writer lock
    todo = pending(documents, state.index_keys, config)
    report.unchanged = len(documents) - len(todo)
    if not todo:
        return report
    return commit(db_path, run_stages(todo, config, timer, state.known, progress), config, report)


def run_stages(
    documents: Sequence[Document], config: Config, timer: StageTimer, known: KnownGraph = KnownGraph(),
    progress: bool = False,
) -> StageOutput:
    """Every active stage over the documents; phrases and facts in `known` are not embedded again."""
    stages = active_stages(config)
    with timer("load_models"):  # once per process; timed apart so the stage times are the stages' own
        for stage in stages:
            stage.setup(config)
    artifacts: dict[str, Any] = {"documents": list(documents), "known": known}
    for stage in stages:
        with timer(stage.name):
            artifacts[stage.writes] = stage.run(*(artifacts[name] for name in stage.reads), config, progress)
    return StageOutput.of(artifacts, embedder_for(config).dim)


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
    timer = StageTimer(report)
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
        output = StageOutput([], [], no_passages, facts, GraphVectors.empty(embedder.dim), MemoryBank.empty(embedder.dim))
        with timer("merge"):
            batch = merge(output, state, config)
        with timer("write"), update_store(db_path) as store:
            store.write(batch)
    report.imported = len(batch.triples)
    report.new_phrases, report.new_facts, report.synonym_edges = len(batch.new_phrases), len(batch.new_facts), len(batch.synonyms)
    return report
