"""The commit step: write what the stages made into the store, in one transaction, and publish it.

Committing holds the store's writer lock while it reads what the store holds, adds what is new
(phrases and facts not yet stored, synonym edges of new phrases against all phrases) and writes.
It never blocks readers: `update_store` writes another version of the store and swaps it in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hippograph.config import Config
from hippograph.graph.synonyms import synonym_edges
from hippograph.indexing.store import Store, open_store, update_store, writer_lock
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.stages import FactKey, GraphVectors, KnownGraph, StageOutput, embed_texts, new_graph_keys
from hippograph.types import Document, ImportReport, IndexBatch, IndexReport


@dataclass(frozen=True)
class StoreState:
    """What the store already holds that indexing needs to know."""

    index_keys: dict[str, str]  # doc_id -> `Document.index_key` of the stored version
    phrases: list[str]
    phrase_vectors: np.ndarray  # row-aligned with `phrases`; empty when read without vectors
    fact_keys: set[FactKey]

    @staticmethod
    def read(db_path: str | Path, vectors: bool = True) -> "StoreState":
        """The store's state; without `vectors` the phrase vectors stay empty (the stages need only the
        names, and the vectors are most of the bytes)."""
        if not Path(db_path).exists():
            return StoreState({}, [], np.zeros((0, 0), np.float32), set())
        with open_store(db_path) as store:
            return StoreState.of(store, vectors)

    @staticmethod
    def of(store: Store, vectors: bool = True) -> "StoreState":
        phrases = store.phrase_vectors() if vectors else (store.phrases(), np.zeros((0, 0), np.float32))
        return StoreState(store.index_keys(), *phrases, store.fact_keys())

    @property
    def known(self) -> KnownGraph:
        return KnownGraph(frozenset(self.phrases), self.fact_keys)


def commit(
    db_path: str | Path,
    output: StageOutput,
    config: Config,
    report: IndexReport | None = None,
    delete: Sequence[str] = (),
) -> IndexReport:
    """Add `output` to the store, and delete the documents `delete` names, in one transaction. Documents
    the store already holds unchanged are skipped, so committing the same output twice adds nothing."""
    report = report or IndexReport(documents=len(output.documents))
    timer = StageTimer(report)
    for passage_facts in output.facts:  # spent whether or not the documents are still to be written
        report.llm += passage_facts.usage
    for record in output.memories.records:
        report.llm += record.usage
    with writer_lock(db_path):
        with timer("read_store"):
            state = StoreState.read(db_path)
        given = len(output.documents)
        output = _without_stored(output, state, config)
        report.unchanged += given - len(output.documents)
        removed = sorted(set(delete) & (set(state.index_keys) - {d.doc_id for d in output.documents}))
        if not output.documents and not removed:
            return report
        with timer("merge"):
            batch = merge(output, state, config)
            batch.removed_doc_ids = removed
        with update_store(db_path) as store, timer("write"):
            store.write(batch)
        timer.add(store.timings)  # preparing the version to write, and publishing it
    report.indexed, report.passages, report.triples = len(batch.documents), len(batch.passages), len(batch.triples)
    report.deleted = len(removed)
    report.new_phrases, report.new_facts = len(batch.new_phrases), len(batch.new_facts)
    report.synonym_edges = len(batch.synonyms)
    return report


def merge(output: StageOutput, state: StoreState, config: Config) -> IndexBatch:
    """The batch to write: the documents with their passages and graph records, vectors for phrases
    and facts the store lacks (reused from the stages, else embedded here), synonym edges of new phrases."""
    embedder = embedder_for(config)
    batch = IndexBatch(embedder.name, config.index_settings(), output.documents, output.passages, output.passage_vectors)
    batch.memories, batch.memory_key_vectors = output.memories.records, output.memories.key_vectors
    for passage_facts in output.facts:
        batch.passage_phrases.extend((passage_facts.passage_id, phrase) for phrase in passage_facts.phrases)
        batch.passage_entities.extend((passage_facts.passage_id, mention) for mention in passage_facts.entities)
        batch.triples.extend(passage_facts.triples)
    new_phrases, new_facts = new_graph_keys(output.facts, state.known)
    vectors = _vectors_for(new_phrases, new_facts, output.graph_vectors, config)
    batch.new_phrases, batch.phrase_embeddings = vectors.phrases, vectors.phrase_vectors
    batch.new_facts, batch.fact_embeddings = vectors.facts, vectors.fact_vectors
    all_phrases = state.phrases + batch.new_phrases
    all_vectors = batch.phrase_embeddings if state.phrase_vectors.size == 0 else np.vstack([state.phrase_vectors, batch.phrase_embeddings])
    batch.synonyms = synonym_edges(
        batch.new_phrases, batch.phrase_embeddings, all_phrases, all_vectors,
        config.synonym_threshold, config.synonym_top_k, config.synonym_min_chars,
    )
    return batch


def _vectors_for(phrases: list[str], facts: list[FactKey], made: GraphVectors, config: Config) -> GraphVectors:
    """Vectors of `phrases` and `facts`, row-aligned: from `made` where the stages embedded them; the
    rest (e.g. phrases another run deleted after the stages looked) are embedded now."""
    phrase_vectors = dict(zip(made.phrases, made.phrase_vectors))
    fact_vectors = dict(zip(made.facts, made.fact_vectors))
    missing = embed_texts(
        [p for p in phrases if p not in phrase_vectors], [f for f in facts if f not in fact_vectors], config
    )
    phrase_vectors.update(zip(missing.phrases, missing.phrase_vectors))
    fact_vectors.update(zip(missing.facts, missing.fact_vectors))
    dim = embedder_for(config).dim
    return GraphVectors(phrases, _rows(phrase_vectors, phrases, dim), facts, _rows(fact_vectors, facts, dim))


def _rows(vectors: dict, keys: list, dim: int) -> np.ndarray:
    return np.vstack([vectors[key] for key in keys]) if keys else np.zeros((0, dim), np.float32)


def pending(documents: Iterable[Document], index_keys: Mapping[str, str], config: Config) -> list[Document]:
    """The documents the store (`index_keys`, see `Store.index_keys`) lacks, or holds in another version
    or indexed under other settings than `config`'s."""
    settings = config.index_settings()
    return [d for d in documents if index_keys.get(d.doc_id) != d.index_key(settings)]


def _without_stored(output: StageOutput, state: StoreState, config: Config) -> StageOutput:
    """`output` less the documents the store holds as they are, under the same settings (committed by
    an earlier run)."""
    todo = {d.doc_id for d in pending(output.documents, state.index_keys, config)}
    if len(todo) == len(output.documents):
        return output
    rows = [i for i, p in enumerate(output.passages) if p.doc_id in todo]
    kept_passages = {output.passages[i].passage_id for i in rows}
    return StageOutput(
        documents=[d for d in output.documents if d.doc_id in todo],
        passages=[output.passages[i] for i in rows],
        passage_vectors=output.passage_vectors[rows],
        facts=[f for f in output.facts if f.passage_id in kept_passages],
        graph_vectors=output.graph_vectors,
        memories=output.memories.of_documents(todo),
    )


class StageTimer:
    """`with timer("stage"):` adds the block's wall time to the report."""

    def __init__(self, report: IndexReport | ImportReport):
        self.report = report
        self._stage = ""

    def __call__(self, stage: str) -> "StageTimer":
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.add({self._stage: time.perf_counter() - self._start})

    def add(self, seconds: Mapping[str, float]) -> None:
        """Add the seconds of steps timed elsewhere (`Store.timings`)."""
        for stage, elapsed in seconds.items():
            self.report.seconds[stage] = round(self.report.seconds.get(stage, 0.0) + elapsed, 3)
