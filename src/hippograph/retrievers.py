"""Query modes as retriever objects: each answers many questions from one snapshot of the store.

    class MyRetriever(Retriever):                  # one class ...
        def retrieve_many(self, questions, top_k): ...
    register_retriever("mine")(MyRetriever)        # ... and one registry line: memory.retrieve(q, mode="mine")

A retriever is built once per snapshot and configuration (`Memory` caches it), owns its query parsing and
embedding, and returns one `Retrieval` per question. `RetrievedPassage.score` is the retriever's own
ranking score: BM25 Okapi score (bm25), cosine similarity (dense), PageRank mass (hipporag; the cosine
when the graph has nothing to seed it), the cosine of the memory's key (memory), the pooled clue score
(memorag).
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hippograph.clues import ClueWriter, offline_clues
from hippograph.config import Config
from hippograph.heap import release_freed_memory
from hippograph.indexing.store import EntityTable, GraphData, MemoryBankData, PassageTable, open_store
from hippograph.pipeline.embed import embedder_for
from hippograph.types import Retrieval, RetrievedPassage, SeedFact, titled


class Recent:
    """What queries computed lately for a text (its vector, its parse), keyed by (model, text), so that a
    text met again, in one memorag search or the next, costs nothing. Bounded, least recently used out
    first; safe across threads."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[tuple[str, str], object] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, model: str, texts: Sequence[str]) -> dict[str, object]:
        with self._lock:
            found = {t: self._items[(model, t)] for t in texts if (model, t) in self._items}
            for text in found:
                self._items.move_to_end((model, text))
        return found

    def put_many(self, model: str, items: dict[str, object]) -> None:
        with self._lock:
            self._items.update(((model, t), item) for t, item in items.items())
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def computed(self, model: str, texts: Sequence[str], compute) -> dict[str, object]:
        """text -> item for the distinct `texts`, computing those not known with one call of `compute`
        (texts -> items, in order)."""
        texts = list(dict.fromkeys(texts))
        items = self.get_many(model, texts)
        missing = [t for t in texts if t not in items]
        if missing:
            fresh = dict(zip(missing, compute(missing)))
            self.put_many(model, fresh)
            items.update(fresh)
        return items


@dataclass
class Snapshot:
    """What queries read, copied out of the store so that no connection stays open."""

    generation: int
    embedding_model: tuple[str, int] | None  # (name, dim) of the stored vectors; None before the first index
    passages: PassageTable
    graph: GraphData
    memory: MemoryBankData = field(default_factory=MemoryBankData.empty)
    entities: EntityTable = field(default_factory=EntityTable.empty)
    file_identity: tuple[int, int, int] | None = None  # of the file read, to notice a newer one
    retrievers: dict = field(default_factory=dict, repr=False)  # (mode, Config) -> Retriever, built on first use
    recent_vectors: Recent = field(default_factory=lambda: Recent(8192), repr=False)  # of questions, clues, predicates
    recent_parses: Recent = field(default_factory=lambda: Recent(2048), repr=False)  # spaCy docs of them, of passages

    @staticmethod
    def read(db_path: str | Path, file_identity: tuple[int, int, int] | None = None, compact: bool = True) -> "Snapshot":
        """The store's contents. Phrase and fact vectors, the mass of it, are held compact (half of float32's
        bytes, cosines within about 1e-5: `hippograph.indexing.compact`) unless `compact` is false; passage
        and memory key vectors, whose every cosine queries consume, stay float32."""
        with open_store(db_path) as store:
            snapshot = Snapshot(
                store.generation(), store.embedding_model(), store.read_passages(), store.read_graph_data(compact),
                store.read_memory_bank(), store.read_entities(), file_identity,
            )
        release_freed_memory()
        return snapshot

    def retriever(self, mode: str, config: Config) -> "Retriever":
        """The retriever of `mode` over this snapshot, built once per configuration (modes build on each other)."""
        from hippograph.registry import retrievers

        key = (mode, config)
        if key not in self.retrievers:
            self.retrievers[key] = retrievers.get(mode)(self, config)
            release_freed_memory()  # what building its indexes made and dropped
        return self.retrievers[key]

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
        """Vectors of distinct texts: those embedded lately from the snapshot's `recent_vectors`, the others
        in one batched forward pass."""
        encode = embedder_for(self.config).encode
        return self.snapshot.recent_vectors.computed(self.config.embedding_model, texts, encode)

    def parse(self, texts: Sequence[str]) -> dict[str, object]:
        """spaCy docs of distinct texts: those parsed lately from the snapshot's `recent_parses`, the
        others in one batch."""
        from hippograph.pipeline.extract import load_spacy

        nlp = load_spacy(self.config.spacy_model)
        return self.snapshot.recent_parses.computed(self.config.spacy_model, texts, lambda todo: list(nlp.pipe(todo)))

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
        named = self.question_phrases_many(questions)
        # One forward pass for the questions and the named phrases linking needs: a second one for the
        # phrases alone costs nearly as much as the first.
        to_link = [p for phrases in named for p in self.graph.phrases_to_embed(phrases)] if self.graph else []
        vectors = self.embed([*questions, *to_link])
        question_vectors = self.rows(vectors, questions)
        dense = self.snapshot.passage_index.scores_many(question_vectors)
        if self.graph is None:
            return [self.snapshot.ranked(q, self.mode, scores, top_k) for q, scores in zip(questions, dense)]
        linked = [self.graph.link_phrases(phrases, vectors) for phrases in named]
        searches = self.graph.search_many(question_vectors, dense, linked, questions)
        return [
            self.snapshot.ranked(q, self.mode, search.passage_scores, top_k,
                                 [SeedFact(*self.graph.facts[i], score=s) for i, s in search.seed_facts])
            for q, search in zip(questions, searches)
        ]

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
        graph phrases, names joined by "and" or "or" apart unless the graph holds them joined
        (`HippoRAGGraph.named_parts`); none without a graph to link them to, or with `entity_linking` off."""
        return self.question_phrases_many([question])[0]

    def question_phrases_many(self, questions: Sequence[str]) -> list[list[str]]:
        """`question_phrases` of each question, parsed in one batch."""
        if self.graph is None or not self.config.entity_linking:
            return [[] for _ in questions]
        parsed = self.parse(questions)
        return [self.graph.named_parts(_named_phrases(parsed[q])) for q in questions]


def _named_phrases(doc) -> list[str]:
    from hippograph.pipeline.extract import PERSONAL_PRONOUNS, SKIPPED_ENTITY_LABELS, normalize_phrase

    spans = [e for e in doc.ents if e.label_ not in SKIPPED_ENTITY_LABELS]
    if doc.has_annotation("DEP"):
        spans += [c for c in doc.noun_chunks if c.root.pos_ == "PROPN" or c.root.ent_type_]
    phrases = (normalize_phrase(span.text) for span in spans)
    phrases = list(dict.fromkeys(p for p in phrases if p and p not in PERSONAL_PRONOUNS))
    # "republic" inside "republic of china" names nothing new, and would seed unrelated passages.
    return [p for p in phrases if not any(p != q and f" {p} " in f" {q} " for q in phrases)]


class MemoryRetriever(Retriever):
    """CMT-style memory: self-matching of the question against the memories' keys, then top-k aggregation
    of the best memories into evidence, their documents' passages, each with the statement of its memory
    that matched the question best as its `reason`. A memory is ranked by its whole-record key (see
    `hippograph.pipeline.compress`). A store without a memory bank answers as dense."""

    mode = "memory"

    def __init__(self, snapshot: Snapshot, config: Config):
        super().__init__(snapshot, config)
        self.bank = snapshot.memory
        memories = np.arange(len(self.bank.doc_ids))
        # Keys are stored by memory, the whole-record key first: each memory owns one run of rows.
        self.key_starts = np.searchsorted(self.bank.key_memories, memories, side="left")
        self.key_ends = np.searchsorted(self.bank.key_memories, memories, side="right")
        self.passage_rows: dict[str, list[int]] = {}
        for row, doc_id in enumerate(snapshot.passages.doc_ids):
            self.passage_rows.setdefault(doc_id, []).append(row)

    @cached_property
    def key_index(self):
        from hippograph.indexing.cosine import CosineIndex

        return CosineIndex(self.bank.key_embeddings)

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        vectors = self.embed(questions)
        if not self.bank.doc_ids:
            dense = self.snapshot.passage_index.scores_many(self.rows(vectors, questions))
            return [self.snapshot.ranked(q, self.mode, s, top_k) for q, s in zip(questions, dense)]
        key_scores = self.key_scores(self.rows(vectors, questions))
        return [self._evidence(q, scores, top_k) for q, scores in zip(questions, key_scores)]

    def key_scores(self, question_vectors: np.ndarray) -> np.ndarray:
        """(questions, keys) cosines."""
        return self.key_index.scores_many(question_vectors)

    def nearest(self, key_scores: np.ndarray, k: int) -> list[tuple[int, float, int]]:
        """The k memories whose whole-record keys match best: (memory, its key's cosine, the row of its
        best-matching statement key), best first."""
        from hippograph.indexing.cosine import top_k as best

        has_keys = self.key_ends > self.key_starts
        record_scores = np.where(has_keys, key_scores[np.minimum(self.key_starts, len(key_scores) - 1)], -np.inf)
        out = []
        for memory in best(record_scores, min(k, int(has_keys.sum()))):
            start, end = self.key_starts[memory], self.key_ends[memory]
            statements = range(start + 1, end) if end - start > 1 else range(start, end)
            statement = max(statements, key=lambda row: key_scores[row])
            out.append((int(memory), float(record_scores[memory]), statement))
        return out

    def _evidence(self, question: str, key_scores: np.ndarray, top_k: int) -> Retrieval:
        table, passages = self.snapshot.passages, []
        for memory, score, statement in self.nearest(key_scores, top_k):
            for row in self.passage_rows.get(self.bank.doc_ids[memory], []):
                passages.append(RetrievedPassage(
                    table.doc_ids[row], table.passage_ids[row], table.titles[row], table.texts[row], score,
                    reason=self.bank.key_texts[statement],
                ))
        return Retrieval(question, self.mode, passages[:top_k])


class MemoRAGRetriever(Retriever):
    """MemoRAG over the global memory (the memory bank and the graph), without a language model.

    Clues: the question; span clues from the memories nearest it (`write_clues`); surrogate questions
    that put bridge entities, found in the facts of the evidence so far, in place of the phrases that
    describe them, for `clue_rounds` rounds (each round bridges from the last one's entity, one hop
    further); the draft answer of the evidence. Each clue retrieves its own top `clue_hits` with
    hipporag. A hit scores its clue's weight (the question 1; a span its memory's match; a surrogate
    the product of its bridge facts' scores; the draft its passage's pooled score) times its score
    over the clue's best; a passage keeps its best hit (a sum would favour the passages every clue
    about the question's topic finds, over the later hop only one clue reaches). The hits of the
    clues that ask the question (itself and its surrogates) come first, then those of the spans and
    the draft, which ask for related text and a guessed entity, then the question's own ranking fills
    up to `top_k` (see `_pooled`). The first round's seed facts are the retrieval's `facts`.
    """

    mode = "memorag"
    write_clues: ClueWriter = staticmethod(offline_clues)  # an LLM clue writer plugs in here

    def __init__(self, snapshot: Snapshot, config: Config):
        super().__init__(snapshot, config)
        self.hipporag = snapshot.retriever("hipporag", config)
        self.memory = snapshot.retriever("memory", config)
        if config.clue_writer == "llm":  # which a Config allows only with an LLM
            from hippograph.answers import llm_clue_writer
            from hippograph.llm import llm_client

            self.write_clues = llm_clue_writer(llm_client(config))
        graph = snapshot.graph
        fact_rows = {fact: row for row, fact in enumerate(graph.facts)}
        self.passage_facts: dict[str, list[int]] = {}
        for subject, predicate, obj, passage_id in graph.fact_passages:
            self.passage_facts.setdefault(passage_id, []).append(fact_rows[(subject, predicate, obj)])

    def retrieve_many(self, questions: Sequence[str], top_k: int) -> list[Retrieval]:
        """Each step runs for all the questions at once, so each round of hipporag searches (the
        questions and their spans, each round of surrogates, the drafts) is one batch: one spaCy pipe,
        one forward pass, one PageRank over all its reset vectors."""
        from hippograph.clues import assemble_clues

        questions = list(dict.fromkeys(questions))
        depth = max(top_k, self.config.clue_hits)
        vectors = self.embed(questions)
        spans = [self.write_clues(q, self._nearest_gists(vectors[q])) for q in questions]
        found: dict[str, Retrieval] = {}
        self._retrieve(found, [c.text for q, s in zip(questions, spans) for c in assemble_clues(q, s)], depth)
        surrogates = self._surrogates(questions, found, depth)
        clues = [assemble_clues(q, s + b) for q, s, b in zip(questions, spans, surrogates)]
        drafts = [self._draft(q, self._pooled(q, c, found, top_k)) for q, c in zip(questions, clues)]
        clues = [assemble_clues(q, c[1:], draft, weight) for q, c, (draft, weight) in zip(questions, clues, drafts)]
        self._retrieve(found, [c.text for question_clues in clues for c in question_clues], depth)
        by_question = {
            q: self._pooled(q, c, found, top_k, draft) for q, c, (draft, _) in zip(questions, clues, drafts)
        }
        return [by_question[q] for q in questions]

    def _draft(self, question: str, pooled: Retrieval) -> tuple:
        """The draft answer of the evidence so far, and its clue's weight: its passage's pooled score."""
        from hippograph.draft import draft_answer

        draft = draft_answer(question, pooled, self.config.spacy_model, self.parse, self.snapshot.entities.of)
        source = next((p.score for p in pooled.passages if p.passage_id == draft.passage_id), 0.0)
        return draft, min(source, 1.0)

    def _retrieve(self, found: dict[str, Retrieval], texts: Sequence[str], depth: int) -> None:
        """Retrieve the texts not retrieved yet, in one batch."""
        todo = [t for t in dict.fromkeys(texts) if t not in found]
        found.update(zip(todo, self.hipporag.retrieve_many(todo, depth) if todo else []))

    @cached_property
    def _titles(self) -> dict[str, str]:
        return dict(zip(self.snapshot.passages.doc_ids, self.snapshot.passages.titles))

    def _nearest_gists(self, vector: np.ndarray) -> list:
        from hippograph.clues import MemoryGist

        bank = self.memory.bank
        if not bank.doc_ids or self.config.span_clues == 0:
            return []
        key_scores = self.memory.key_scores(vector[None, :])[0]
        return [
            MemoryGist(bank.doc_ids[m], self._titles.get(bank.doc_ids[m], ""), bank.gists[m], bank.key_texts[row], score)
            for m, score, row in self.memory.nearest(key_scores, self.config.span_clues)
        ]

    def _surrogates(self, questions: Sequence[str], found: dict[str, Retrieval], depth: int) -> list[list]:
        """Surrogate questions of each question, round by round: the first bridges from the phrases the
        question names, each later one from the entity the round before put in."""
        from hippograph.clues import surrogate_question
        from hippograph.types import Clue

        clues: list[list[Clue]] = [[] for _ in questions]
        if self.hipporag.graph is None or self.config.bridge_clues == 0:
            return clues
        # A beam over bridge paths per question: a path scores the product of its hops' relation scores.
        named = self.hipporag.question_phrases_many(questions)
        frontiers = [[(q, set(phrases), 1.0)] for q, phrases in zip(questions, named)]
        for _ in range(self.config.clue_rounds):
            parsed = self.parse([text for frontier in frontiers for text, _, _ in frontier])
            hops = [self._hops(frontier, parsed, found) for frontier in frontiers]
            every = [hop for question_hops in hops for hop in question_hops]
            vectors = self.embed([h.relation for h in every] + [p for h in every for _, p, _ in h.facts])
            for i, question_hops in enumerate(hops):
                candidates = []
                for hop in question_hops:
                    for bridge, score in self._bridges(hop.anchor, hop.facts, vectors, vectors[hop.relation], hop.evidence):
                        candidates.append((hop.path * score, surrogate_question(hop.text, hop.span, bridge[1]), bridge[0]))
                candidates = sorted(candidates, key=lambda c: -c[0])[: self.config.bridge_clues]
                clues[i] += [Clue(text, "surrogate", max(path, 0.0)) for path, text, _ in candidates]
                frontiers[i] = [(text, {bridge}, path) for path, text, bridge in candidates]
            self._retrieve(found, [text for frontier in frontiers for text, _, _ in frontier], depth)
        return clues

    def _hops(self, frontier: list, parsed: dict, found: dict[str, Retrieval]) -> list["_Hop"]:
        """One hop from each anchor of each text of a question's frontier, over that text's evidence."""
        from hippograph.clues import described_span

        hops = []
        for text, anchors, path in frontier:
            evidence = found[text].passages[: self.config.clue_hits]
            for anchor in sorted(anchors):
                span = described_span(parsed[text], anchor)
                facts = self._anchor_facts(anchor, evidence)
                hops.append(_Hop(text, anchor, span, path, evidence, facts, _relation(text, anchor, span)))
        return hops

    def _anchor_facts(self, anchor: str, evidence: Sequence[RetrievedPassage]) -> list[tuple[str, str, str]]:
        """The facts of the evidence passages with `anchor` at one end."""
        facts = self.snapshot.graph.facts
        rows = {row for p in evidence for row in self.passage_facts.get(p.passage_id, [])}
        return [facts[row] for row in sorted(rows) if anchor in (facts[row][0], facts[row][2])]

    def _bridges(
        self, anchor: str, facts: Sequence[tuple[str, str, str]], vectors: dict[str, np.ndarray],
        relation: np.ndarray, evidence: Sequence[RetrievedPassage],
    ) -> list[tuple[tuple[str, str], float]]:
        """((bridge, as the evidence spells it), score) for the bridges from `anchor`: a fact scores the
        cosine of its predicate to what the question says about the anchor, so "born in" answers "the
        birthplace of" whatever the names around it."""
        from hippograph.clues import bridge_entities

        texts = [p.text for p in evidence]
        scored = [(s, p, o, float(vectors[p] @ relation)) for s, p, o in facts]
        is_name = functools.partial(_spelled_as_name, texts=texts)
        return [((bridge, _spelled_as_name(bridge, texts)), score)
                for _, bridge, score in bridge_entities({anchor}, scored, is_name, self.config.bridge_clues)]

    def _pooled(
        self, question: str, clues: Sequence, found: dict[str, Retrieval], top_k: int, draft=None
    ) -> Retrieval:
        """The clues' hits, de-duplicated, best first: those of the clues that ask the question (itself
        and its surrogates), then those of the spans and the draft, then the question's own ranking up
        to `top_k`. Within a band a hit scores its clue's weight x its score over the clue's best, and a
        passage keeps its best hit; each band scores below the one before."""
        asking = [c for c in clues if c.kind in ("question", "surrogate")]
        bands = [self._hits(asking, found), self._hits([c for c in clues if c not in asking], found)]
        first = found[question]
        best = first.passages[0].score if first.passages and first.passages[0].score > 0 else 1.0
        bands.append({p.passage_id: (p.score / best, p) for p in first.passages})
        passages, ceiling, seen = [], 1.0, set()
        for band in bands:
            ranked = [pid for pid in sorted(band, key=lambda pid: -band[pid][0]) if pid not in seen]
            top = max((band[pid][0] for pid in ranked), default=1.0) or 1.0
            for pid in ranked:  # scaled under the band before, so scores fall all the way down
                passages.append(replace(band[pid][1], score=ceiling * band[pid][0] / top))
            seen.update(ranked)
            ceiling = min((p.score for p in passages), default=ceiling) / 2
        return Retrieval(question, self.mode, passages[:top_k], first.facts, list(clues), draft)

    def _hits(self, clues: Sequence, found: dict[str, Retrieval]) -> dict[str, tuple[float, RetrievedPassage]]:
        """passage id -> (best weighted score, passage) over the clues' top `clue_hits` (ties: first seen)."""
        hits: dict[str, tuple[float, RetrievedPassage]] = {}
        for clue in clues:
            top = found[clue.text].passages[: self.config.clue_hits]
            best = top[0].score if top and top[0].score > 0 else 1.0
            for passage in top:
                score = clue.weight * passage.score / best
                if passage.passage_id not in hits or score > hits[passage.passage_id][0]:
                    hits[passage.passage_id] = (score, passage)
        return hits


class _Hop(NamedTuple):
    """A step of memorag's bridge search: from `anchor` in `text`, over the facts of its evidence."""

    text: str
    anchor: str
    span: tuple[int, int] | None  # where `text` describes an entity through the anchor
    path: float  # the score of the path so far
    evidence: Sequence[RetrievedPassage]
    facts: list[tuple[str, str, str]]  # of the evidence, with the anchor at one end
    relation: str  # what `text` says about the anchor


def _relation(text: str, anchor: str, span: tuple[int, int] | None) -> str:
    """What `text` says about `anchor`: the phrase that describes through it (or the whole text), less
    the anchor's own words."""
    said = text[span[0] : span[1]] if span else text
    return re.sub(r"\b" + r"\W+".join(map(re.escape, anchor.split())) + r"\b", " ", said, flags=re.IGNORECASE)


def _spelled_as_name(phrase: str, texts: Sequence[str]) -> str:
    """How `phrase` (normalised, lower case) is written in the texts if it is written as a name there
    (with a capital letter), else ""."""
    words = phrase.split()
    if not words:
        return ""
    pattern = re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", re.IGNORECASE)
    for text in texts:
        for match in pattern.finditer(text):
            if any(ch.isupper() for ch in match.group(0)):
                return match.group(0)
    return ""
