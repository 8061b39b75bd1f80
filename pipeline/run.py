"""The index runner: strings the stages together over plain data, then writes once.

    documents -> changed ones -> chunk -> embed passages -> extract triples -> embed new phrases and
    facts -> synonym edges -> one store transaction

The store is opened twice and briefly: to read what it already holds, and to commit the batch.
Every stage in between works on plain data and holds no connection.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hippograph.config import Config
from hippograph.errors import StoreError
from hippograph.graph.synonyms import synonym_candidate, synonym_edges
from hippograph.indexing.store import open_store
from hippograph.pipeline.chunk import chunk_documents
from hippograph.pipeline.embed import Embedder, embedder_for
from hippograph.types import Document, IndexBatch, PassageFacts


@dataclass
class IndexReport:
    documents: int = 0
    indexed: int = 0
    unchanged: int = 0
    passages: int = 0
    triples: int = 0
    new_phrases: int = 0
    new_facts: int = 0
    synonym_edges: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoreState:
    """What the store already holds that indexing needs to know."""

    content_hashes: dict[str, str]
    phrases: list[str]
    phrase_vectors: np.ndarray
    fact_keys: set[tuple[str, str, str]]


def index_documents(
    db_path: str | Path, documents: Sequence[Document], config: Config = Config(), progress: bool = False
) -> IndexReport:
    """Index new and changed documents into the store; unchanged ones cost nothing."""
    report = IndexReport(documents=len(documents))
    if not documents:
        return report
    timer = _StageTimer(report)
    with timer("read_store"), open_store(db_path, read_only=False) as store:
        state = StoreState(store.document_hashes(), *store.phrase_vectors(), store.fact_keys())
    todo = [d for d in documents if state.content_hashes.get(d.doc_id) != d.content_hash]
    report.unchanged = len(documents) - len(todo)
    if not todo:
        return report
    embedder = embedder_for(config)
    batch = build_batch(todo, state, embedder, config, timer, progress)
    with timer("write"), open_store(db_path, read_only=False) as store:
        store.write(batch)
    report.indexed = len(todo)
    return report


def build_batch(
    documents: Sequence[Document],
    state: StoreState,
    embedder: Embedder,
    config: Config,
    timer: "_StageTimer",
    progress: bool = False,
) -> IndexBatch:
    """Run every stage over the documents; returns what the store should add."""
    from hippograph.pipeline.extract import extract_facts, load_spacy

    with timer("chunk"):
        passages = chunk_documents(documents, embedder.count_tokens, config.chunk_max_tokens or embedder.max_tokens - 2)
    with timer("embed_passages"):
        passage_vectors = embedder.encode([p.embedding_text for p in passages], progress=progress)
    batch = IndexBatch(embedder.name, list(documents), passages, passage_vectors)
    if config.build_graph:
        with timer("extract"):
            nlp = load_spacy(config.spacy_model)
            facts = extract_facts(passages, nlp, config.extract_batch_size, config.extract_processes, progress)
        add_graph_records(batch, facts, state, embedder, config, timer, progress)
    timer.report.passages = len(passages)
    return batch


def add_graph_records(
    batch: IndexBatch,
    facts: Sequence[PassageFacts],
    state: StoreState,
    embedder: Embedder,
    config: Config,
    timer: "_StageTimer",
    progress: bool = False,
) -> None:
    """Triples and phrase links of the new passages; embeddings only for phrases and facts not yet stored."""
    known_phrases = set(state.phrases)
    new_phrases: dict[str, None] = {}  # ordered set
    new_facts: dict[tuple[str, str, str], None] = {}
    for passage_facts in facts:
        for phrase in passage_facts.phrases:
            batch.passage_phrases.append((passage_facts.passage_id, phrase))
            if phrase not in known_phrases:
                new_phrases[phrase] = None
        for triple in passage_facts.triples:
            batch.triples.append(triple)
            key = (triple.subject, triple.predicate, triple.object)
            if key not in state.fact_keys:
                new_facts[key] = None
    batch.new_phrases = list(new_phrases)
    batch.new_facts = list(new_facts)
    with timer("embed_phrases"):
        batch.phrase_embeddings = _embed_synonym_candidates(batch.new_phrases, embedder, config, progress)
    with timer("embed_facts"):
        batch.fact_embeddings = embedder.encode(
            [" ".join(f) for f in batch.new_facts], progress=progress, batch_size=config.short_text_batch_size
        )
    with timer("synonyms"):
        all_phrases = state.phrases + batch.new_phrases
        all_vectors = _stack(state.phrase_vectors, batch.phrase_embeddings)
        batch.synonyms = synonym_edges(
            batch.new_phrases, batch.phrase_embeddings, all_phrases, all_vectors,
            config.synonym_threshold, config.synonym_top_k, config.synonym_min_chars,
        )
    report = timer.report
    report.triples, report.new_phrases = len(batch.triples), len(batch.new_phrases)
    report.new_facts, report.synonym_edges = len(batch.new_facts), len(batch.synonyms)


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
    timer = _StageTimer(IndexReport())
    with timer("read_store"), open_store(db_path) as store:
        passages = store.document_passages(sorted({t.doc_id for t in parsed}))
        stored = store.passage_records([pid for rows in passages.values() for pid, _ in rows])
        state = StoreState({}, *store.phrase_vectors(), store.fact_keys())
        model = store.embedding_model()
    facts, report.skipped = new_passage_facts(place_triples(parsed, passages), *stored)
    if facts:
        embedder = embedder_for(config)
        if model != (embedder.name, embedder.dim):  # the batch has no passages, so `Store.write` cannot check
            raise StoreError(f"{db_path} holds vectors from {model[0]}, not {embedder.name}; import with the same model")
        batch = IndexBatch(embedder.name)
        add_graph_records(batch, facts, state, embedder, config, timer)
        with timer("write"), open_store(db_path, read_only=False) as store:
            store.write(batch)
        report.imported = len(batch.triples)
    scratch = timer.report
    report.new_phrases, report.new_facts, report.synonym_edges = scratch.new_phrases, scratch.new_facts, scratch.synonym_edges
    report.seconds = scratch.seconds
    return report


def _embed_synonym_candidates(phrases: list[str], embedder: Embedder, config: Config, progress: bool) -> np.ndarray:
    """Phrase vectors serve synonym edges and query linking; phrases that can't be synonyms keep zeros."""
    vectors = np.zeros((len(phrases), embedder.dim), dtype=np.float32)
    rows = [i for i, p in enumerate(phrases) if synonym_candidate(p, config.synonym_min_chars)]
    if rows:
        texts = [phrases[i] for i in rows]
        vectors[rows] = embedder.encode(texts, progress=progress, batch_size=config.short_text_batch_size)
    return vectors


def _stack(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    return new if old.size == 0 else np.vstack([old, new])


class _StageTimer:
    """`with timer("stage"):` adds the block's wall time to the report."""

    def __init__(self, report: IndexReport):
        self.report = report
        self._stage = ""

    def __call__(self, stage: str) -> "_StageTimer":
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self._start
        self.report.seconds[self._stage] = round(self.report.seconds.get(self._stage, 0.0) + elapsed, 3)
