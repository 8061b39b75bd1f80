"""Plain data that flows between the stages: documents in, passages, triples and results out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, astuple, dataclass, field
from typing import Any


def content_hash(*parts: str) -> str:
    """A short, stable hash of text parts; used for document change detection and default ids."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x1f")  # separator, so ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()[:32]


def titled(title: str, text: str) -> str:
    """What passages are embedded and BM25-indexed as: "title\ntext"."""
    return f"{title}\n{text}" if title else text


@dataclass(frozen=True)
class Document:
    """One input document. `doc_id` is the user's id, or a content hash when none was given."""

    doc_id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """A hash of the title, text and metadata: what tells a changed document from an unchanged one."""
        return content_hash(self.title, self.text, json.dumps(self.metadata, sort_keys=True, default=str))

    def index_key(self, index_settings: str) -> str:
        """What the store keeps to tell whether this document is indexed as it is now, under these
        settings (`Config.index_settings`): a change to either indexes it again."""
        return content_hash(self.content_hash, index_settings)


@dataclass(frozen=True)
class Passage:
    """A chunk of a document, the unit of retrieval. `position` is the chunk's index in its document."""

    passage_id: str
    doc_id: str
    position: int
    title: str
    text: str

    @property
    def embedding_text(self) -> str:
        """What is embedded for the passage: its title, then its text."""
        return titled(self.title, self.text)


@dataclass(frozen=True)
class Triple:
    """A subject-predicate-object fact seen in one sentence of one passage (`sentence` is its index)."""

    passage_id: str
    sentence: int
    subject: str
    predicate: str
    object: str


@dataclass(frozen=True)
class LLMUsage:
    """What an LLM cost, for one passage or document or summed over a run: requests sent to the server (a
    request it retried counts once), replies served from the cache, replies that were not valid, passages
    that fell back to the spaCy extractor, the tokens the server counted, and documents whose memory
    gist fell back to the offline one (`gist_writer="llm"`)."""

    llm_calls: int = 0
    cache_hits: int = 0
    invalid_replies: int = 0
    fallbacks: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    gist_fallbacks: int = 0

    def __add__(self, other: "LLMUsage") -> "LLMUsage":
        return LLMUsage(*(a + b for a, b in zip(astuple(self), astuple(other))))

    def to_dict(self) -> dict[str, int]:
        """The same, as plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class PassageFacts:
    """What extraction found in one passage: its triples and every entity phrase it mentions, and what an
    LLM extractor spent on it (carried with the facts, so every runner can report it)."""

    passage_id: str
    triples: list[Triple]
    phrases: list[str]
    usage: LLMUsage = LLMUsage()
    entities: list[EntityMention] = field(default_factory=list)  # named entities, by a spaCy extractor


@dataclass(frozen=True)
class EntityMention:
    """A named entity in a passage's text, by character offsets, with the sentence that holds it: what
    draft answers read, found once at index time instead of by parsing the evidence at every query."""

    start_char: int
    end_char: int
    label: str  # spaCy's: PERSON, GPE, DATE...
    sentence_start: int
    sentence_end: int


@dataclass(frozen=True)
class MemoryRecord:
    """One document compressed into the memory bank (see `hippograph.pipeline.compress`): its gist, its
    key facts and its self-matching keys, statements of what it can answer: `keys[0]` the whole record,
    then the gist and each key fact on their own, none twice."""

    doc_id: str
    gist: str
    facts: list[str]
    keys: list[str]
    source_bytes: int  # of the document's text
    usage: LLMUsage = LLMUsage()  # what writing its gist cost an LLM (`gist_writer="llm"`), for the run's report

    @property
    def kept_bytes(self) -> int:
        """Bytes of the text the record keeps: its gist and key facts (the keys are made of them)."""
        return sum(len(text.encode("utf-8")) for text in [self.gist, *self.facts])


@dataclass(frozen=True)
class RetrievedPassage:
    """One ranked passage. `score` is the mode's own ranking score, comparable only within one retrieval:
    BM25 Okapi score (bm25), cosine similarity to the question (dense), PageRank mass (hipporag; the
    cosine when nothing in the graph seeds the search)."""

    doc_id: str
    passage_id: str
    title: str
    text: str
    score: float
    reason: str | None = None  # why it came back, where the mode says (memory: the key it matched)

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        out: dict[str, Any] = {
            "doc_id": self.doc_id,
            "passage_id": self.passage_id,
            "title": self.title,
            "text": self.text,
            "score": self.score,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class SeedFact:
    """A fact that seeded graph search, with its query similarity."""

    subject: str
    predicate: str
    object: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return {"subject": self.subject, "predicate": self.predicate, "object": self.object, "score": self.score}


@dataclass(frozen=True)
class Clue:
    """A text that retrieves on the question's behalf (MemoRAG). `kind`: "question" (the question itself),
    "span" (text from the memory bank that would help), "surrogate" (the question with a bridge entity in
    place of what it describes) or "draft" (a draft answer). `weight` is how far the clue is trusted, in
    [0, 1]: the question 1, others the score of what made them."""

    text: str
    kind: str
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return {"text": self.text, "kind": self.kind, "weight": round(self.weight, 4)}


@dataclass(frozen=True)
class DraftAnswer:
    """An answer drawn from the evidence (see `hippograph.draft.draft_answer`), with the passage it came
    from; empty text (and no passage) when the evidence holds nothing that fits."""

    text: str
    doc_id: str | None = None
    passage_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return {"text": self.text, "doc_id": self.doc_id, "passage_id": self.passage_id}


@dataclass(frozen=True)
class Retrieval:
    """The answer to one question: ranked passages and, for graph modes, the facts that seeded the search;
    memorag adds the clues that retrieved the passages and a draft answer."""

    question: str
    mode: str
    passages: list[RetrievedPassage]
    facts: list[SeedFact] = field(default_factory=list)
    clues: list[Clue] = field(default_factory=list)
    draft_answer: DraftAnswer | None = None

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        out: dict[str, Any] = {
            "question": self.question,
            "mode": self.mode,
            "passages": [p.to_dict() for p in self.passages],
        }
        if self.facts or self.mode in ("hipporag", "memorag"):  # graph modes always say which facts seeded them
            out["facts"] = [f.to_dict() for f in self.facts]
        if self.clues or self.draft_answer is not None:
            out["clues"] = [c.to_dict() for c in self.clues]
            out["draft_answer"] = self.draft_answer.to_dict() if self.draft_answer else None
        return out


@dataclass
class IndexBatch:
    """Everything one index run adds, computed without touching the store, then written in one transaction.

    `documents` replace any stored documents with the same ids (and all that was derived from them);
    `removed_doc_ids` are documents to delete.
    Embedding matrices are row-aligned with the lists beside them.
    """

    embedding_model: str
    index_settings: str = ""  # stored with each document as part of its `index_key`
    documents: list[Document] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    passage_embeddings: Any = None  # np.ndarray (len(passages), dim)
    triples: list[Triple] = field(default_factory=list)
    passage_phrases: list[tuple[str, str]] = field(default_factory=list)  # (passage_id, phrase)
    new_phrases: list[str] = field(default_factory=list)
    phrase_embeddings: Any = None
    new_facts: list[tuple[str, str, str]] = field(default_factory=list)
    fact_embeddings: Any = None
    synonyms: list[tuple[str, str, float]] = field(default_factory=list)  # (phrase_a, phrase_b, cosine)
    memories: list[MemoryRecord] = field(default_factory=list)
    memory_key_vectors: Any = None  # rows follow the memories' keys, in order
    removed_doc_ids: list[str] = field(default_factory=list)
    passage_entities: list[tuple[str, EntityMention]] = field(default_factory=list)  # (passage_id, mention)


@dataclass
class IndexReport:
    """What an index run did. `seconds` is the wall time of each stage, and of reading the store
    (`read_store`), making the version to write (`prepare`: the previous version brought up to date, or
    a copy of the store), writing it (`write`) and publishing it (`publish`)."""

    documents: int = 0  # given
    indexed: int = 0  # new or changed, written
    unchanged: int = 0  # stored as they are, under the same settings: skipped
    passages: int = 0
    triples: int = 0
    new_phrases: int = 0
    new_facts: int = 0
    synonym_edges: int = 0
    deleted: int = 0  # documents removed because their source no longer has them
    llm: LLMUsage = LLMUsage()  # what the LLM extractor spent; zero for the spaCy extractor
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return {**self.__dict__, "llm": self.llm.to_dict()}


@dataclass
class ImportReport:
    """What `import_triples` did."""

    triples: int = 0  # records read
    imported: int = 0
    skipped: int = 0  # already stored for their passage (or repeated in the input)
    invalid: dict[str, int] = field(default_factory=dict)  # lenient mode: records left out, by reason
    new_phrases: int = 0
    new_facts: int = 0
    synonym_edges: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class StoreStats:
    """What a store holds (`Memory.stats`)."""

    path: str
    schema_version: int
    generation: int  # increases with every write
    embedding_model: str | None
    embedding_dim: int | None
    documents: int
    passages: int
    triples: int
    phrases: int
    facts: int
    synonyms: int
    memories: int = 0  # memory records, one per document compressed
    memory_keys: int = 0
    compression_ratio: float | None = None  # bytes the memory records keep / bytes of their documents' text

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class GraphExport:
    """A graph file written by `Memory.export_graph`."""

    path: str
    format: str
    nodes: int
    edges: int

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Answer:
    """An answer to a question from retrieved passages (`Memory.answer`). `citations` are the doc_ids of
    the given passages the answer rests on; `answer` is None when no answer was made, and `note` says why.
    `source` is "llm" for the LLM's answer, "draft" for the offline draft (`hippograph.draft`)."""

    question: str
    answer: str | None
    citations: list[str]
    passages: list[RetrievedPassage]
    mode: str
    note: str = ""
    source: str = "llm"

    def to_dict(self) -> dict[str, Any]:
        """The same, as plain JSON-ready data."""
        out = {"question": self.question, "answer": self.answer, "citations": list(self.citations),
               "passages": [p.to_dict() for p in self.passages], "mode": self.mode, "source": self.source}
        return {**out, "note": self.note} if self.note else out
