"""Query modes as retriever objects: each answers many questions from one snapshot of the store.

    class MyRetriever(Retriever):                  # one class ...
        def retrieve_many(self, questions, top_k): ...
    register_retriever("mine")(MyRetriever)        # ... and one registry line: memory.retrieve(q, mode="mine")

A retriever is built once per snapshot and configuration (`Memory` caches it), owns its query parsing and
embedding, and returns one `Retrieval` per question. `RetrievedPassage.score` is the retriever's own
ranking score: BM25 Okapi score (bm25), cosine similarity (dense), PageRank mass (hipporag; the cosine
when the graph has nothing to seed it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from hippograph.config import Config
from hippograph.indexing.store import GraphData, PassageTable, open_store
from hippograph.pipeline.embed import embedder_for
from hippograph.types import Retrieval, RetrievedPassage, SeedFact, titled


@dataclass
class Snapshot:
    """What queries read, copied out of the store so that no connection stays open."""

    generation: int
    embedding_model: tuple[str, int] | None  # (name, dim) of the stored vectors; None before the first index
    passages: PassageTable
    graph: GraphData
    file_identity: tuple[int, int, int] | None = None  # of the file read, to notice a newer one
    retrievers: dict = field(default_factory=dict, repr=False)  # (mode, Config) -> Retriever, built on first use

    @staticmethod
    def read(db_path: str | Path, file_identity: tuple[int, int, int] | None = None) -> "Snapshot":
        with open_store(db_path) as store:
            return Snapshot(
                store.generation(), store.embedding_model(), store.read_passages(), store.read_graph_data(), file_identity
            )

    @cached_property
    def passage_index(self):
        """Cosine index over the passage vectors, shared by every retriever of this snapshot."""
        from hippograph.indexing.cosine import CosineIndex  # torch, only when a mode needs vectors

        return CosineIndex(self.passages.embeddings)

    def ranked(self, question: str, mode: str, scores: np.ndarray, top_k: int, facts: list[SeedFact] = ()) -> Retrieval:
        """The `top_k` passages by `scores` (one per passage, in `passages` order) as a Retrieval."""
        from hippograph.indexing.cosine import top_k as best

        table = self.passages
        passages = [
            RetrievedPassage(table.doc_ids[i], table.passage_ids[i], table.titles[i], table.texts[i], float(scores[i]))
            for i in best(scores, top_k)
        ]
        return Retrieval(question, mode, passages, list(facts))


class Retriever:
    """Answers questions from one snapshot. Subclasses set `mode` and implement `retrieve_many`; those
    that embed questions keep `uses_embeddings`, so a store from another embedding model is refused."""

    mode = ""
    uses_embeddings = True

    def __init__(self, snapshot: Snapshot, config: Config):
        self.snapshot = snapshot
        self.config = config

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of distinct texts, in one batched forward pass."""
        texts = list(dict.fromkeys(texts))
        return dict(zip(texts, embedder_for(self.config).encode(texts)))

    def rows(self, vectors: dict[str, np.ndarray], texts: Sequence[str]) -> np.ndarray:
        """The vectors of `texts` as the rows of one matrix (no rows for no texts)."""
        if not texts:
            return np.zeros((0, embedder_for(self.config).dim), np.float32)
        return np.stack([vectors[t] for t in texts])


class BM25Retriever(Retriever):
    mode = "bm25"
    uses_embeddings = False

    def __init__(self, snapshot: Snapshot, config: Config):
        from hippograph.indexing.bm25 import BM25Index

        super().__init__(snapshot, config)
        passages = snapshot.passages
        self.index = BM25Index([titled(t, x) for t, x in zip(passages.titles, passages.texts)])

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        return [self.snapshot.ranked(q, self.mode, self.index.scores(q), top_k) for q in questions]


class DenseRetriever(Retriever):
    mode = "dense"

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        vectors = self.embed(questions)
        scores = self.snapshot.passage_index.scores_many(self.rows(vectors, questions))
        return [self.snapshot.ranked(q, self.mode, s, top_k) for q, s in zip(questions, scores)]


class HippoRAGRetriever(Retriever):
    """HippoRAG 2: the question's closest facts and the phrases it names seed Personalized PageRank over
    the passage-entity graph (see `hippograph.graph.hipporag`). A store without a graph answers as dense."""

    mode = "hipporag"

    def __init__(self, snapshot: Snapshot, config: Config):
        super().__init__(snapshot, config)
        self.graph = None
        if snapshot.graph.phrases:
            from hippograph.graph.hipporag import HippoRAGGraph  # igraph, only for a store with a graph

            self.graph = HippoRAGGraph(snapshot.graph, snapshot.passages.passage_ids, config, self._fact_filter())

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        named = [self.question_phrases(q) for q in questions]
        # One forward pass for the questions and the named phrases linking needs: a second one for the
        # phrases alone costs nearly as much as the first.
        to_link = [p for phrases in named for p in self.graph.phrases_to_embed(phrases)] if self.graph else []
        vectors = self.embed([*questions, *to_link])
        dense = self.snapshot.passage_index.scores_many(self.rows(vectors, questions))
        return [self._retrieve_one(q, phrases, vectors, scores, top_k) for q, phrases, scores in zip(questions, named, dense)]

    def _retrieve_one(
        self, question: str, named: list[str], vectors: dict[str, np.ndarray], dense: np.ndarray, top_k: int
    ) -> Retrieval:
        if self.graph is None:
            return self.snapshot.ranked(question, self.mode, dense, top_k)
        search = self.graph.search(vectors[question], dense, self.graph.link_phrases(named, vectors), question)
        facts = [SeedFact(*self.graph.facts[i], score=s) for i, s in search.seed_facts]
        return self.snapshot.ranked(question, self.mode, search.passage_scores, top_k, facts)

    def _fact_filter(self):
        """The LLM recognition filter, with `recognition_filter="llm"` (which a Config allows only with an LLM)."""
        if self.config.recognition_filter != "llm":
            return None
        from functools import partial

        from hippograph.answers import recognize
        from hippograph.llm import llm_client

        return partial(recognize, llm_client(self.config))

    def question_phrases(self, question: str) -> list[str]:
        """The entity phrases a question names (named entities and proper-noun chunks), normalised like
        graph phrases; none without a graph to link them to, or with `entity_linking` off."""
        if self.graph is None or not self.config.entity_linking:
            return []
        from hippograph.pipeline.extract import PERSONAL_PRONOUNS, SKIPPED_ENTITY_LABELS, load_spacy, normalize_phrase

        doc = load_spacy(self.config.spacy_model)(question)
        spans = [e for e in doc.ents if e.label_ not in SKIPPED_ENTITY_LABELS]
        if doc.has_annotation("DEP"):
            spans += [c for c in doc.noun_chunks if c.root.pos_ == "PROPN" or c.root.ent_type_]
        phrases = (normalize_phrase(span.text) for span in spans)
        phrases = list(dict.fromkeys(p for p in phrases if p and p not in PERSONAL_PRONOUNS))
        # "republic" inside "republic of china" names nothing new, and would seed unrelated passages.
        return [p for p in phrases if not any(p != q and f" {p} " in f" {q} " for q in phrases)]
