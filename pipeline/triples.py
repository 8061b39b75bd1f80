"""Triples made elsewhere (an LLM OpenIE run, a hand-curated list) attached to passages already stored.

    records -> validated, normalised triples -> each placed on one passage of its document -> PassageFacts

Records come from JSONL ({"doc_id", "subject", "predicate", "object"} a line) or from HippoRAG's OpenIE
results file, whose passages are matched to stored documents by title and text. Strict by default (the
first bad record is an error naming its file and line); lenient mode leaves bad records out and counts
them by reason.

Plain functions over plain data: the runner (`pipeline.run.import_triples`) reads the store and writes the result.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hippograph.errors import InputError
from hippograph.pipeline.extract import normalize_phrase
from hippograph.pipeline.sources import document_id, read_jsonl_records
from hippograph.types import PassageFacts, Triple

UNKNOWN_SENTENCE = -1  # an imported triple's sentence is not known
TRIPLE_FIELDS = ("doc_id", "subject", "predicate", "object")


class InvalidTriple(InputError):
    """A triple record that cannot be imported; `reason` names its kind, for the counts of lenient mode."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ImportedTriple:
    """One input record, normalised like extracted triples; `where` names its file and line for errors. Its
    document is `doc_id`, or, for an OpenIE file, the stored document with this (title, text) `content`."""

    where: str
    doc_id: str | None
    subject: str
    predicate: str
    object: str
    content: tuple[str, str] | None = None


def triple_records(source: str | Path | Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Any]]:
    """("file:line" or "record n", record) from a JSONL path, a HippoRAG OpenIE results file (.json), or
    Python dicts."""
    if isinstance(source, (str, Path)):
        yield from (openie_records(source) if Path(source).suffix.lower() == ".json" else read_jsonl_records(source))
    else:
        for number, record in enumerate(source, start=1):
            yield f"record {number}", record


def openie_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """The triples of HippoRAG's OpenIE results file (`openie_results_ner_*.json`: {"docs": [{"title",
    "text", "extracted_triples": [[s, p, o], ...]}, ...]}), one record each, with its passage's title and
    text in place of a doc_id (`resolve_documents` matches them to stored documents)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"cannot read {path} as an OpenIE results file: {error}") from None
    docs = data.get("docs") if isinstance(data, dict) else None
    if not isinstance(docs, list):
        raise InputError(f"{path}: expected HippoRAG's OpenIE results, a JSON object with a \"docs\" list")
    for number, doc in enumerate(docs):
        where = f"{path}: docs[{number}]"
        if not isinstance(doc, dict) or not isinstance(doc.get("extracted_triples"), list):
            yield where, doc  # refused (or counted) by `parse_triple`
            continue
        for index, triple in enumerate(doc["extracted_triples"]):
            yield f"{where}.extracted_triples[{index}]", {"title": doc.get("title"), "text": doc.get("text"), "triple": triple}


def parse_triples(records: Iterable[tuple[str, Any]], lenient: bool = False) -> tuple[list[ImportedTriple], Counter[str]]:
    """Validate and normalise every record. Strict, the first bad one raises InputError naming where it
    is; lenient, bad ones are left out and counted by reason."""
    triples, invalid = [], Counter()
    for where, record in records:
        try:
            triples.append(parse_triple(where, record))
        except InvalidTriple as error:
            if not lenient:
                raise
            invalid[error.reason] += 1
    return triples, invalid


def parse_triple(where: str, record: Any) -> ImportedTriple:
    if isinstance(record, Mapping) and "triple" in record:
        return _parse_openie_triple(where, record)
    if not isinstance(record, Mapping):
        raise InvalidTriple("not an object", f"{where}: expected a JSON object with {', '.join(TRIPLE_FIELDS)}")
    missing = [f for f in TRIPLE_FIELDS if f not in record]
    if missing:
        raise InvalidTriple("missing field", f"{where}: missing field(s) {', '.join(missing)}")
    try:
        doc_id = document_id(record["doc_id"], where, "doc_id")  # integer ids as in JSONL corpora
    except InputError as error:
        raise InvalidTriple("bad doc_id", str(error)) from None
    return ImportedTriple(where, doc_id, *_normalised(where, record["subject"], record["predicate"], record["object"]))


def _parse_openie_triple(where: str, record: Mapping[str, Any]) -> ImportedTriple:
    title, text, triple = record.get("title"), record.get("text"), record["triple"]
    if not isinstance(title, str) or not isinstance(text, str):
        raise InvalidTriple("passage without title or text", f"{where}: the passage has no \"title\" and \"text\" strings")
    if not isinstance(triple, list) or len(triple) != 3:
        raise InvalidTriple("not three parts", f"{where}: expected [subject, predicate, object], got {json.dumps(triple)[:200]}")
    return ImportedTriple(where, None, *_normalised(where, *triple), content=(title, text))


def _normalised(where: str, subject: Any, predicate: Any, obj: Any) -> tuple[str, str, str]:
    try:
        return normalised_triple(subject, predicate, obj)
    except InvalidTriple as error:
        raise InvalidTriple(error.reason, f"{where}: {error}") from None


def normalised_triple(subject: Any, predicate: Any, obj: Any) -> tuple[str, str, str]:
    """(subject, predicate, object) normalised like extracted triples: three non-empty strings, phrases that
    name something once normalised, subject != object; else raises InvalidTriple."""
    for name, value in (("subject", subject), ("predicate", predicate), ("object", obj)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidTriple(f"empty {name}", f"\"{name}\" must be a non-empty string")
    phrases = normalize_phrase(subject), normalize_phrase(obj)
    for name, raw, phrase in (("subject", subject, phrases[0]), ("object", obj, phrases[1])):
        if not phrase:
            raise InvalidTriple(f"{name} names nothing", f"\"{name}\" {raw!r} names nothing once normalised")
    if phrases[0] == phrases[1]:  # the graph has no self-loops; such a fact would link nothing
        raise InvalidTriple("self-loop", f"subject and object are the same phrase ({phrases[0]!r})")
    return phrases[0], " ".join(predicate.lower().split()), phrases[1]


def resolve_documents(
    triples: Sequence[ImportedTriple], doc_ids: Mapping[tuple[str, str], str], lenient: bool = False
) -> tuple[list[ImportedTriple], Counter[str]]:
    """Triples of OpenIE passages with the doc_id of the stored document of the same title and text
    (`doc_ids`); others as they are. An unmatched passage raises InputError, or, lenient, is counted."""
    resolved, invalid = [], Counter()
    for triple in triples:
        if triple.content is None:
            resolved.append(triple)
        elif triple.content in doc_ids:
            resolved.append(replace(triple, doc_id=doc_ids[triple.content]))
        elif lenient:
            invalid["passage not in the store"] += 1
        else:
            title = triple.content[0]
            raise InputError(f"{triple.where}: no stored document has the title {title!r} and this passage's text; index it first")
    return resolved, invalid


def place_triples(
    triples: Sequence[ImportedTriple], passages: Mapping[str, Sequence[tuple[str, str]]], lenient: bool = False
) -> tuple[list[Triple], Counter[str]]:
    """Each triple on one passage of its document ((passage_id, text) pairs in document order).

    The passage naming both phrases, else one naming either, else the first: the passage the fact most
    likely came from, so graph search reaches the passage that states it. A triple of a document the store
    lacks raises InputError, or, lenient, is counted.
    """
    placed, invalid = [], Counter()
    for triple in triples:
        candidates = passages.get(triple.doc_id)
        if not candidates:
            if lenient:
                invalid["document not in the store"] += 1
                continue
            raise InputError(f"{triple.where}: no document {triple.doc_id!r} in the store; index it first")
        passage_id = _best_passage(triple, candidates)
        placed.append(Triple(passage_id, UNKNOWN_SENTENCE, triple.subject, triple.predicate, triple.object))
    return placed, invalid


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
