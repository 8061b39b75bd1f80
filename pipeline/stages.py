"""The index stages: plain functions over plain data that hold no store connection, in one ordered list.

    documents --chunk--> passages --embed_passages--> passage_vectors
                                  --extract--> facts --embed_graph (less what the store knows)--> graph_vectors
    documents, facts --compress--> memories (one memory record per document, its keys embedded)

Each `Stage` names the artifacts it reads and the one it writes. The in-process runner
(`hippograph.pipeline.run`), the shard runner (`hippograph.pipeline.shards`) and the Airflow DAG all iterate
`STAGES`; `hippograph.pipeline.commit` then writes what they made into the store. A new stage is one
function and one `Stage` line here (plus, if the store keeps its output, the commit step writing it).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hippograph.config import Config
from hippograph.errors import InputError
from hippograph.graph.synonyms import synonym_candidate
from hippograph.pipeline.chunk import chunk_documents
from hippograph.pipeline.compress import compress_documents, key_text, record_budget
from hippograph.pipeline.embed import embedder_for
from hippograph.registry import extractors
from hippograph.types import Document, LLMUsage, MemoryRecord, Passage, PassageFacts

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


@dataclass
class MemoryBank:
    """Memory records with their keys' vectors: `key_vectors` rows follow the records' keys in order."""

    records: list[MemoryRecord]
    key_vectors: np.ndarray

    @staticmethod
    def empty(dim: int) -> "MemoryBank":
        return MemoryBank([], np.zeros((0, dim), np.float32))

    @staticmethod
    def concat(parts: Sequence["MemoryBank"], dim: int) -> "MemoryBank":
        if not parts:
            return MemoryBank.empty(dim)
        return MemoryBank([r for part in parts for r in part.records], np.vstack([part.key_vectors for part in parts]))

    def of_documents(self, doc_ids: Collection[str]) -> "MemoryBank":
        """The records of these documents only, with their key vectors."""
        rows, start = [], 0
        for record in self.records:
            if record.doc_id in doc_ids:
                rows.extend(range(start, start + len(record.keys)))
            start += len(record.keys)
        return MemoryBank([r for r in self.records if r.doc_id in doc_ids], self.key_vectors[rows])


@dataclass
class StageOutput:
    """What the stages made for some documents, as the commit step takes it: passages row-aligned with
    their vectors; no facts when the graph is not built, no memories when the memory bank is not."""

    documents: list[Document]
    passages: list[Passage]
    passage_vectors: np.ndarray
    facts: list[PassageFacts]
    graph_vectors: GraphVectors
    memories: MemoryBank

    @staticmethod
    def of(artifacts: Mapping[str, Any], dim: int) -> "StageOutput":
        """From artifacts by name (what `STAGES` wrote); a stage that did not run leaves its default."""
        return StageOutput(
            documents=list(artifacts["documents"]),
            passages=list(artifacts.get("passages", [])),
            passage_vectors=artifacts.get("passage_vectors", np.zeros((0, dim), np.float32)),
            facts=list(artifacts.get("facts", [])),
            graph_vectors=artifacts.get("graph_vectors", GraphVectors.empty(dim)),
            memories=artifacts.get("memories", MemoryBank.empty(dim)),
        )

    @staticmethod
    def concat(parts: Sequence["StageOutput"], dim: int) -> "StageOutput":
        return StageOutput(
            documents=[d for p in parts for d in p.documents],
            passages=[x for p in parts for x in p.passages],
            passage_vectors=np.vstack([p.passage_vectors for p in parts]) if parts else np.zeros((0, dim), np.float32),
            facts=[f for p in parts for f in p.facts],
            graph_vectors=GraphVectors.concat([p.graph_vectors for p in parts], dim),
            memories=MemoryBank.concat([p.memories for p in parts], dim),
        )


@dataclass(frozen=True)
class KnownGraph:
    """The phrases and facts a store held when a run began: their vectors need not be made again."""

    phrases: Collection[str] = frozenset()
    facts: Collection[FactKey] = frozenset()


def new_graph_keys(facts: Iterable[PassageFacts], known: KnownGraph) -> tuple[list[str], list[FactKey]]:
    """The distinct phrases and facts of `facts` that `known` lacks, in order of first mention."""
    phrases: dict[str, None] = {}  # ordered sets
    fact_keys: dict[FactKey, None] = {}
    for passage_facts in facts:
        phrases.update((p, None) for p in passage_facts.phrases if p not in known.phrases)
        for triple in passage_facts.triples:
            key = (triple.subject, triple.predicate, triple.object)
            if key not in known.facts:
                fact_keys[key] = None
    return list(phrases), list(fact_keys)


# ---- the stage functions --------------------------------------------------------------------------


def chunk(documents: Sequence[Document], config: Config, progress: bool = False) -> list[Passage]:
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
    return embedder.encode_corpus([p.embedding_text for p in passages], progress=progress)


def extract(passages: Sequence[Passage], config: Config, progress: bool = False) -> list[PassageFacts]:
    """Triples and entity phrases of each passage, by the extractor `config.extractor` names."""
    return extractors.get(config.extractor)(passages, config, progress)


def embed_graph(
    facts: Sequence[PassageFacts], known: KnownGraph, config: Config, progress: bool = False
) -> GraphVectors:
    """Vectors of the distinct phrases and facts in `facts` that the store did not hold (`known`)."""
    return embed_texts(*new_graph_keys(facts, known), config, progress)


def embed_texts(phrases: list[str], facts: list[FactKey], config: Config, progress: bool = False) -> GraphVectors:
    """Phrase vectors serve synonym edges and query linking, so phrases that can't be synonyms (too
    short, or with digits) keep zero vectors; facts are embedded as "subject predicate object"."""
    embedder = embedder_for(config)
    batch = config.short_text_batch_size
    phrase_vectors = np.zeros((len(phrases), embedder.dim), dtype=np.float32)
    rows = [i for i, p in enumerate(phrases) if synonym_candidate(p, config.synonym_min_chars)]
    if rows:
        phrase_vectors[rows] = embedder.encode_corpus([phrases[i] for i in rows], progress=progress, batch_size=batch)
    fact_vectors = np.zeros((0, embedder.dim), np.float32)
    if facts:
        fact_vectors = embedder.encode_corpus([" ".join(f) for f in facts], progress=progress, batch_size=batch)
    return GraphVectors(phrases, phrase_vectors, facts, fact_vectors)


def compress(
    documents: Sequence[Document], facts: Sequence[PassageFacts], config: Config, progress: bool = False
) -> MemoryBank:
    """One memory record per document (gist, key facts, keys; see `hippograph.pipeline.compress`), its
    keys embedded with the document's title. With `gist_writer="llm"` the gists are the facts an LLM
    wrote (`hippograph.pipeline.llm_compress`), each record carrying what that cost."""
    written, usages = [], [LLMUsage()] * len(documents)
    if config.gist_writer == "llm":
        from hippograph.pipeline.llm_compress import write_gists

        budgets = [record_budget(d, config.memory_budget) for d in documents]
        written, usages = write_gists(documents, budgets, config, progress)
    records = compress_documents(documents, facts, config.memory_budget, written)
    records = [replace(record, usage=usage) for record, usage in zip(records, usages)]
    titles = {d.doc_id: d.title for d in documents}
    texts = [key_text(titles[r.doc_id], key) for r in records for key in r.keys]
    embedder = embedder_for(config)
    return MemoryBank(records, embedder.encode_corpus(texts, progress=progress, batch_size=config.short_text_batch_size))


# ---- the stage list -------------------------------------------------------------------------------


def always(config: Config) -> bool:
    return True


def no_setup(config: Config) -> None:
    pass


def builds_graph(config: Config) -> bool:
    return config.build_graph


def builds_memory(config: Config) -> bool:
    return config.build_graph and config.build_memory  # key facts come from the extracted triples


def load_embedder(config: Config) -> None:
    embedder_for(config)


def load_extractor(config: Config) -> None:
    extractors.get(config.extractor).setup(config)


@dataclass(frozen=True)
class Stage:
    """`run(*inputs, config, progress)` where inputs are the artifacts named by `reads`, in order;
    returns the artifact `writes`. Skipped when `when(config)` is false; `setup(config)` loads models."""

    name: str
    run: Callable[..., Any]
    reads: tuple[str, ...]
    writes: str
    when: Callable[[Config], bool] = always
    setup: Callable[[Config], None] = no_setup


# "documents" and "known" (what the store holds) come from the runner; every other artifact from a stage.
STAGES: tuple[Stage, ...] = (
    Stage("chunk", chunk, reads=("documents",), writes="passages", setup=load_embedder),
    Stage("embed_passages", embed_passages, reads=("passages",), writes="passage_vectors", setup=load_embedder),
    Stage("extract", extract, reads=("passages",), writes="facts", when=builds_graph, setup=load_extractor),
    Stage("embed_graph", embed_graph, reads=("facts", "known"), writes="graph_vectors", when=builds_graph,
          setup=load_embedder),
    Stage("compress", compress, reads=("documents", "facts"), writes="memories", when=builds_memory,
          setup=load_embedder),
)


def active_stages(config: Config) -> list[Stage]:
    return [stage for stage in STAGES if stage.when(config)]


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise KeyError(f"no index stage named {name!r}; stages: {', '.join(s.name for s in STAGES)}")


def writer_of(artifact: str) -> Stage | None:
    """The stage that makes `artifact` (None for the runners' own inputs)."""
    return next((stage for stage in STAGES if stage.writes == artifact), None)
