"""Triples made elsewhere (an LLM OpenIE run, a hand-curated list) attached to passages already stored.

    records -> validated, normalised triples -> each placed on one passage of its document -> PassageFacts

Plain functions over plain data: the runner (`pipeline.run.import_triples`) reads the store and writes the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hippograph.errors import InputError
from hippograph.pipeline.extract import normalize_phrase
from hippograph.pipeline.sources import document_id, read_jsonl_records
from hippograph.types import PassageFacts, Triple

UNKNOWN_SENTENCE = -1  # an imported triple's sentence is not known
TRIPLE_FIELDS = ("doc_id", "subject", "predicate", "object")


@dataclass(frozen=True)
class ImportedTriple:
    """One input line, normalised like extracted triples; `where` names its file and line for errors."""

    where: str
    doc_id: str
    subject: str
    predicate: str
    object: str


def triple_records(source: str | Path | Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """("file:line" or "record n", record) from a JSONL path or from Python dicts."""
    if isinstance(source, (str, Path)):
        yield from read_jsonl_records(source)
    else:
        for number, record in enumerate(source, start=1):
            yield f"record {number}", record


def parse_triples(records: Iterable[tuple[str, Any]]) -> list[ImportedTriple]:
    """Validate and normalise every record; the first bad one raises InputError naming where it is."""
    return [parse_triple(where, record) for where, record in records]


def parse_triple(where: str, record: Any) -> ImportedTriple:
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected a JSON object with {', '.join(TRIPLE_FIELDS)}")
    missing = [f for f in TRIPLE_FIELDS if f not in record]
    if missing:
        raise InputError(f"{where}: missing field(s) {', '.join(missing)}")
    doc_id = document_id(record["doc_id"], where, "doc_id")  # integer ids as in JSONL corpora
    for name in ("subject", "predicate", "object"):
        if not isinstance(record[name], str) or not record[name].strip():
            raise InputError(f"{where}: \"{name}\" must be a non-empty string")
    subject, obj = normalize_phrase(record["subject"]), normalize_phrase(record["object"])
    for name, phrase in (("subject", subject), ("object", obj)):
        if not phrase:
            raise InputError(f"{where}: \"{name}\" {record[name]!r} names nothing once normalised")
    if subject == obj:  # the graph has no self-loops; such a fact would link nothing
        raise InputError(f"{where}: subject and object are the same phrase ({subject!r})")
    predicate = " ".join(record["predicate"].lower().split())
    return ImportedTriple(where, doc_id, subject, predicate, obj)


def place_triples(
    triples: Sequence[ImportedTriple], passages: Mapping[str, Sequence[tuple[str, str]]]
) -> list[Triple]:
    """Each triple on one passage of its document ((passage_id, text) pairs in document order).

    The passage naming both phrases, else one naming either, else the first: the passage the fact most
    likely came from, so graph search reaches the passage that states it.
    """
    placed = []
    for triple in triples:
        candidates = passages.get(triple.doc_id)
        if not candidates:
            raise InputError(f"{triple.where}: no document {triple.doc_id!r} in the store; index it first")
        passage_id = _best_passage(triple, candidates)
        placed.append(Triple(passage_id, UNKNOWN_SENTENCE, triple.subject, triple.predicate, triple.object))
    return placed


def _best_passage(triple: ImportedTriple, candidates: Sequence[tuple[str, str]]) -> str:
    # Phrases are lowercased and whitespace-collapsed, so the text is compared in the same form.
    texts = [(pid, " ".join(text.lower().split())) for pid, text in candidates]
    for wanted in (all, any):
        for passage_id, text in texts:
            if wanted(phrase in text for phrase in (triple.subject, triple.object)):
                return passage_id
    return candidates[0][0]


def new_passage_facts(
    triples: Sequence[Triple],
    stored_triples: set[tuple[str, str, str, str]],
    stored_links: set[tuple[str, str]],
) -> tuple[list[PassageFacts], int]:
    """PassageFacts of the triples not yet stored for their passage, and how many were skipped as already there.

    `stored_triples` holds (passage_id, subject, predicate, object), `stored_links` (passage_id, phrase); a
    phrase link is added only when the passage lacks it, so re-imports and extracted phrases add no rows.
    """
    seen, links = set(stored_triples), set(stored_links)
    by_passage: dict[str, PassageFacts] = {}
    skipped = 0
    for triple in triples:
        key = (triple.passage_id, triple.subject, triple.predicate, triple.object)
        if key in seen:
            skipped += 1
            continue
        seen.add(key)
        facts = by_passage.setdefault(triple.passage_id, PassageFacts(triple.passage_id, [], []))
        facts.triples.append(triple)
        for phrase in (triple.subject, triple.object):
            if (triple.passage_id, phrase) not in links:
                links.add((triple.passage_id, phrase))
                facts.phrases.append(phrase)
    return list(by_passage.values()), skipped
