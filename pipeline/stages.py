"""The index stages: plain functions over plain data that hold no store connection.

    documents --chunk--> passages --embed_passages--> passage vectors
                                  --extract--> facts (triples, phrases) --embed_graph--> phrase and fact vectors

`Memory.index`, `hippograph index`, the sharded runner and the Airflow DAG all run these same
functions; `hippograph.pipeline.load` then merges their output into the store.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from hippograph.config import Config
from hippograph.errors import InputError
from hippograph.graph.synonyms import synonym_candidate
from hippograph.pipeline.chunk import chunk_documents
from hippograph.pipeline.embed import embedder_for
from hippograph.types import Document, Passage, PassageFacts

FactKey = tuple[str, str, str]


@dataclass
class GraphVectors:
    """Embeddings of phrases and facts, row-aligned with the lists beside them."""

    phrases: list[str]
    phrase_vectors: np.ndarray
    facts: list[FactKey]
    fact_vectors: np.ndarray

    @staticmethod
    def empty(dim: int) -> "GraphVectors":
        return GraphVectors([], np.zeros((0, dim), np.float32), [], np.zeros((0, dim), np.float32))

    @staticmethod
    def concat(parts: Sequence["GraphVectors"], dim: int) -> "GraphVectors":
        """All parts in one; a phrase or fact several parts embedded appears once per part."""
        if not parts:
            return GraphVectors.empty(dim)
        return GraphVectors(
            [p for part in parts for p in part.phrases], np.vstack([part.phrase_vectors for part in parts]),
            [f for part in parts for f in part.facts], np.vstack([part.fact_vectors for part in parts]),
        )


def chunk(documents: Sequence[Document], config: Config) -> list[Passage]:
    """Passages of whole sentences that fit the embedder's window (see `chunk_documents`)."""
    embedder = embedder_for(config)
    window = embedder.max_tokens - 2  # less the two special tokens
    if config.chunk_max_tokens is not None and config.chunk_max_tokens > window:
        raise InputError(
            f"config option chunk_max_tokens must be at most {window}, the window of {embedder.name}, "
            f"not {config.chunk_max_tokens}: longer passages would be truncated"
        )
    return chunk_documents(documents, embedder.count_tokens, config.chunk_max_tokens or window)


def embed_passages(passages: Sequence[Passage], config: Config, progress: bool = False) -> np.ndarray:
    """One L2-normalised vector per passage, embedded as "title\\ntext"."""
    embedder = embedder_for(config)
    if not passages:
        return np.zeros((0, embedder.dim), np.float32)
    return embedder.encode([p.embedding_text for p in passages], progress=progress)


def extract(passages: Sequence[Passage], config: Config, progress: bool = False) -> list[PassageFacts]:
    """Triples and entity phrases of each passage, by spaCy (see `hippograph.pipeline.extract`)."""
    from hippograph.pipeline.extract import extract_facts, load_spacy  # spaCy loads only when extracting

    nlp = load_spacy(config.spacy_model)
    return extract_facts(passages, nlp, config.extract_batch_size, config.extract_processes, progress)


def embed_graph(
    facts: Sequence[PassageFacts],
    config: Config,
    known_phrases: Collection[str] = frozenset(),
    known_facts: Collection[FactKey] = frozenset(),
    progress: bool = False,
) -> GraphVectors:
    """Vectors of the distinct phrases and facts in `facts`, except those already `known` (stored)."""
    phrases: dict[str, None] = {}  # ordered sets
    fact_keys: dict[FactKey, None] = {}
    for passage_facts in facts:
        phrases.update((p, None) for p in passage_facts.phrases if p not in known_phrases)
        for triple in passage_facts.triples:
            key = (triple.subject, triple.predicate, triple.object)
            if key not in known_facts:
                fact_keys[key] = None
    return embed_texts(list(phrases), list(fact_keys), config, progress)


def embed_texts(phrases: list[str], facts: list[FactKey], config: Config, progress: bool = False) -> GraphVectors:
    """Phrase vectors serve synonym edges and query linking, so phrases that can't be synonyms (too
    short, or with digits) keep zero vectors; facts are embedded as "subject predicate object"."""
    embedder = embedder_for(config)
    batch = config.short_text_batch_size
    phrase_vectors = np.zeros((len(phrases), embedder.dim), dtype=np.float32)
    rows = [i for i, p in enumerate(phrases) if synonym_candidate(p, config.synonym_min_chars)]
    if rows:
        phrase_vectors[rows] = embedder.encode([phrases[i] for i in rows], progress=progress, batch_size=batch)
    fact_vectors = np.zeros((0, embedder.dim), np.float32)
    if facts:
        fact_vectors = embedder.encode([" ".join(f) for f in facts], progress=progress, batch_size=batch)
    return GraphVectors(phrases, phrase_vectors, facts, fact_vectors)
