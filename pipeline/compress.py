"""Compression into memory records (CMT's memory bank, without its trained networks): plain functions.

Each document becomes one `MemoryRecord` within a byte budget (`Config.memory_budget` x its text):
- a gist: its lead sentence (encyclopedic and news text say there what a document is about), then its
  most informative other sentences, by centrality (word overlap with the whole document) and content
  (the entities and numbers a sentence names), stripped of parentheses, in document order; with
  `gist_writer="llm"`, the facts an LLM wrote about the document instead (`llm_compress`);
- key facts: its extracted triples that the gist does not already say, parsed facts first;
- self-matching keys: statements of what the document can answer, embedded with its title: first the
  whole record (gist and key facts), then the gist and each key fact on their own, each statement
  once (a record that is only its gist has one key). CMT keys a memory by
  what it can itself answer; a question is matched against the keys (`hippograph.retrievers.MemoryRetriever`).

Both choices (lead first; one key for the whole record) kept more hotpotqa-dev recall at this budget than
the most central sentences and the best of a memory's statement keys did, in a measurement made while
designing (see README).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from hippograph.pipeline.chunk import sentences
from hippograph.types import Document, MemoryRecord, PassageFacts, Triple

RELATED = "related to"  # the extractor's co-occurrence predicate: a weaker fact than a parsed one
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d")
_PARENTHESES = re.compile(r"\s*[(\[{][^()\[\]{}]*[)\]}]")
# Function words carry no topic: left out of centrality.
STOPWORDS = frozenset(
    "a an and are as at be by for from has had have he her his in is it its of on or she that the their they "
    "this to was were which who with".split()
)


def compress_documents(
    documents: Sequence[Document], facts: Sequence[PassageFacts], budget: float,
    written: Sequence[Sequence[str] | None] = (),
) -> list[MemoryRecord]:
    """One memory record per document; `facts` are the extracted facts of the documents' passages
    (passage ids are `doc_id#n`); `written[i]`, if given, the facts an LLM wrote for document i
    (`hippograph.pipeline.llm_compress`), or None for none."""
    by_doc: dict[str, list[PassageFacts]] = {}
    for passage_facts in facts:
        by_doc.setdefault(passage_facts.passage_id.rsplit("#", 1)[0], []).append(passage_facts)
    written = list(written) or [None] * len(documents)
    return [compress_document(d, by_doc.get(d.doc_id, []), budget, w) for d, w in zip(documents, written)]


def record_budget(document: Document, budget: float) -> int:
    """Bytes a memory record of `document` may keep: `budget` x its text's bytes."""
    return int(budget * len(document.text.encode("utf-8")))


def compress_document(
    document: Document, facts: Sequence[PassageFacts], budget: float, written: Sequence[str] | None = None
) -> MemoryRecord:
    """The document's gist and key facts, together at most `budget` x its text's bytes, and its keys. The
    gist is the `written` facts that fit, in order, if any does; else a choice of the document's sentences."""
    source_bytes = len(document.text.encode("utf-8"))
    room = record_budget(document, budget)
    phrases = {p for f in facts for p in f.phrases}
    written = written or []
    gist = " ".join(written[i] for i in fitting(written, room))
    gist = gist or select_gist(sentences(document.text), phrases, room)
    room -= _bytes(gist)
    key_facts = []
    for statement in ranked_fact_statements([t for f in facts for t in f.triples], gist):
        if _bytes(statement) <= room:
            key_facts.append(statement)
            room -= _bytes(statement)
    statements = ([gist] if gist else []) + key_facts
    # A record of one statement (a gist and no key facts, most records) is its own only key: embedding
    # it twice would cost a forward pass and add nothing.
    keys = list(dict.fromkeys([record_text(gist, key_facts)] + statements)) if statements else []
    return MemoryRecord(document.doc_id, gist, key_facts, keys, source_bytes)


def select_gist(document_sentences: Sequence[str], phrases: Iterable[str], room: int) -> str:
    """The lead sentence, then the best others, that fit in `room` bytes, in document order; if the lead
    does not fit, its first words up to `room`."""
    cleaned = [_without_parentheses(s) for s in document_sentences]
    cleaned = [s for s in cleaned if _WORD.search(s)]
    if not cleaned or room <= 0:
        return ""
    if _bytes(cleaned[0]) > room:
        return _clip(cleaned[0], room)
    scores = sentence_scores(cleaned, phrases)
    ranked = [0] + sorted(range(1, len(cleaned)), key=lambda i: (-scores[i], i))
    chosen = [ranked[k] for k in fitting([cleaned[i] for i in ranked], room)]
    return " ".join(cleaned[i] for i in sorted(chosen))


def fitting(statements: Sequence[str], room: int) -> list[int]:
    """Positions of the statements that fit in `room` bytes together (joined by spaces), taken in order,
    each if it still fits."""
    chosen, used = [], -1
    for position, statement in enumerate(statements):
        if used + 1 + _bytes(statement) <= room:
            chosen.append(position)
            used += 1 + _bytes(statement)
    return chosen


def sentence_scores(document_sentences: Sequence[str], phrases: Iterable[str]) -> list[float]:
    """Centrality (cosine of a sentence's content words to the whole document's) times one plus the
    entities and numbers it names: the sentence that is most about the document and says most."""
    bags = [Counter(w for w in lower_words(s) if w not in STOPWORDS) for s in document_sentences]
    whole = sum(bags, Counter())
    phrases = [p for p in set(phrases) if p]
    scores = []
    for sentence, bag in zip(document_sentences, bags):
        lowered = f" {' '.join(lower_words(sentence))} "
        named = sum(1 for p in phrases if f" {' '.join(lower_words(p))} " in lowered)
        numbers = len(_NUMBER.findall(sentence)) > 0
        scores.append(_cosine(bag, whole) * (1 + named + numbers))
    return scores


def ranked_fact_statements(triples: Sequence[Triple], gist: str) -> list[str]:
    """Distinct "subject predicate object" statements the gist does not already hold (both ends named
    in it), parsed facts before co-occurrences, then in text order."""
    said = f" {' '.join(lower_words(gist))} "
    seen, ranked = set(), []
    for triple in sorted(triples, key=lambda t: (t.predicate == RELATED, t.sentence)):
        statement = f"{triple.subject} {triple.predicate} {triple.object}"
        if statement in seen or all(f" {' '.join(lower_words(x))} " in said for x in (triple.subject, triple.object)):
            continue
        seen.add(statement)
        ranked.append(statement)
    return ranked


def record_text(gist: str, facts: Sequence[str]) -> str:
    """A whole record as one statement: the gist, then the key facts."""
    return " ".join(filter(None, [gist, "; ".join(facts)]))


def key_text(title: str, key: str) -> str:
    """What a key is embedded as: the statement with the document's title, which names what it is about."""
    return f"{title}\n{key}" if title else key


def lower_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(count * b[word] for word, count in a.items())
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm if norm else 0.0


def _without_parentheses(sentence: str) -> str:
    """Parenthetical asides (pronunciations, alternative names) cost bytes and rarely carry the point;
    braces too, which in prose are markup left over (hotpotqa's removed pronunciations: `{'1': ", ...}`)."""
    previous = None
    while previous != sentence:
        previous, sentence = sentence, _PARENTHESES.sub("", sentence)
    return " ".join(sentence.split())


def _clip(sentence: str, room: int) -> str:
    words, out = sentence.split(), ""
    for word in words:
        candidate = f"{out} {word}" if out else word
        if _bytes(candidate) > room:
            break
        out = candidate
    return out


def _bytes(text: str) -> int:
    return len(text.encode("utf-8"))
