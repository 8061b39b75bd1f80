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
from hippograph.llm import with_cache_beside
from hippograph.indexing.store import check_embedding_model, open_store, update_store, writer_lock
from hippograph.pipeline.commit import StageTimer, StoreState, commit, merge, pending
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.stages import GraphVectors, KnownGraph, MemoryBank, StageOutput, active_stages
from hippograph.types import Document, ImportReport, IndexReport


def index_documents(
    db_path: str | Path, documents: Sequence[Document], config: Config = Config(), progress: bool = False
) -> IndexReport:
    """Index new and changed documents into the store; unchanged ones cost nothing."""
    config = with_cache_beside(config, db_path)
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
    db_path: str | Path, source: str | Path | Iterable[Mapping[str, Any]], config: Config = Config(),
    lenient: bool = False,
) -> ImportReport:
    """Add triples made elsewhere to passages already stored: a JSONL path, HippoRAG's OpenIE results file
    (.json), or dicts of doc_id, subject, predicate, object. New phrases and facts are embedded and linked
    as in indexing; one transaction. Strict, a bad record is an error and nothing is written; `lenient`
    leaves bad records out, counted by reason in `ImportReport.invalid`."""
    from hippograph.pipeline.triples import (
        new_passage_facts, parse_triples, place_triples, resolve_documents, triple_records,
    )

    records = list(triple_records(source))  # all input is read and checked before the store is opened
    parsed, invalid = parse_triples(records, lenient)
    report = ImportReport(triples=len(records))
    if not parsed:
        report.invalid = dict(invalid)
        return report
    timer = StageTimer(report)
    with writer_lock(db_path):
        with timer("read_store"), open_store(db_path) as store:
            parsed, unmatched = resolve_documents(
                parsed, store.doc_ids_by_content(sorted({t.content for t in parsed if t.content})), lenient)
            passages = store.document_passages(sorted({t.doc_id for t in parsed}))
            placed, missing = place_triples(parsed, passages, lenient)
            stored = store.passage_records(sorted({t.passage_id for t in placed}))
            model, state = store.embedding_model(), StoreState.of(store)
        report.invalid = dict(invalid + unmatched + missing)
        facts, report.skipped = new_passage_facts(placed, *stored)
        if not facts:
            return report
        embedder = embedder_for(config)
        check_embedding_model(db_path, model, embedder.name, embedder.dim)  # no passages: `Store.write` won't
        no_passages = np.zeros((0, embedder.dim), np.float32)
        output = StageOutput([], [], no_passages, facts, GraphVectors.empty(embedder.dim), MemoryBank.empty(embedder.dim))
        with timer("merge"):
            batch = merge(output, state, config)
        with update_store(db_path) as store, timer("write"):
            store.write(batch)
        timer.add(store.timings)  # preparing the version to write, and publishing it
    report.imported = len(batch.triples)
    report.new_phrases, report.new_facts, report.synonym_edges = len(batch.new_phrases), len(batch.new_facts), len(batch.synonyms)
    return report
