"""Index batches made without models, for tests of the store's write path (and for the processes those
tests start): documents share entities, so facts, phrases and synonym edges are shared between them and
become orphans when documents go; every vector is derived from its text, so a batch made twice is equal."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np

from hippograph.types import Document, EntityMention, IndexBatch, MemoryRecord, Passage, Triple

DIM = 8
ENTITIES = [
    "Ada Marsh", "Kettleby", "Veloria Bridge", "Orne valley", "Tobias Wren", "Harrow Iron", "Dunmere", "Quillmere",
    "Port Veloria", "Lyle gorge",
]
PREDICATES = ["designed", "was born in", "lies in", "founded", "sold"]


def vector(text: str) -> np.ndarray:
    raw = np.frombuffer(hashlib.sha256(text.encode()).digest()[:DIM * 4], dtype=np.uint32).astype(np.float64)
    raw = raw / 2**32 - 0.5
    return (raw / np.linalg.norm(raw)).astype(np.float32)


def vectors(texts: Sequence[str]) -> np.ndarray:
    return np.vstack([vector(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def make_batch(doc_ids: Sequence[str], version: int = 0, removed: Sequence[str] = ()) -> IndexBatch:
    """The documents `doc_ids` in their `version` (another version has other passages and facts), with
    everything derived from them, and `removed` documents to delete."""
    documents, passages, triples, links, memories, entities = [], [], [], [], [], []
    for doc_id in doc_ids:
        rng = random.Random(f"{doc_id}/{version}")
        facts = [(rng.choice(ENTITIES), rng.choice(PREDICATES), rng.choice(ENTITIES)) for _ in range(rng.randint(1, 4))]
        text = ". ".join(f"{s} {p} {o}" for s, p, o in facts) + "."
        documents.append(Document(doc_id, f"Title of {doc_id}", text, {"version": version}))
        for position, chunk in enumerate([facts[:2], facts[2:]]):
            if not chunk:
                continue
            passage_id = f"{doc_id}#{position}"
            passages.append(Passage(passage_id, doc_id, position, f"Title of {doc_id}", ". ".join(" ".join(f) for f in chunk)))
            triples += [Triple(passage_id, i, s, p, o) for i, (s, p, o) in enumerate(chunk)]
            first = chunk[0][0]  # the first fact's subject, a named entity in its one-sentence passage
            entities.append((passage_id, EntityMention(0, len(first), "PERSON", 0, len(" ".join(chunk[0])))))
            links += sorted({(passage_id, phrase.lower()) for s, _, o in chunk for phrase in (s, o)})
        keys = [text[:30], *(" ".join(f) for f in facts[:2])]
        memories.append(MemoryRecord(doc_id, text[:30], [" ".join(f) for f in facts[:2]], keys, len(text)))
    phrases = sorted({phrase for _, phrase in links})
    fact_keys = sorted({(t.subject, t.predicate, t.object) for t in triples})
    synonyms = [(a, b, 0.9) for a in phrases for b in phrases if a < b and (len(a) + len(b)) % 3 == 0]
    return IndexBatch(
        "synthetic-model", "settings", documents, passages, vectors([p.text for p in passages]), triples, links,
        phrases, vectors(phrases), fact_keys, vectors([" ".join(f) for f in fact_keys]), synonyms, memories,
        vectors([k for m in memories for k in m.keys]), list(removed), entities,
    )


def dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, exactly (vectors, timestamps and the generation included), sorted."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


# The pipeline's invariants: each query lists the rows that break one (none, in a good store).
BROKEN = {
    "fact without a triple": "SELECT * FROM facts f WHERE NOT EXISTS (SELECT 1 FROM triples t "
                             "WHERE (t.subject, t.predicate, t.object) = (f.subject, f.predicate, f.object))",
    "triple without its fact": "SELECT * FROM triples t WHERE NOT EXISTS (SELECT 1 FROM facts f "
                               "WHERE (t.subject, t.predicate, t.object) = (f.subject, f.predicate, f.object))",
    "phrase without a passage": "SELECT * FROM phrases WHERE phrase NOT IN (SELECT phrase FROM passage_phrases)",
    "link to no phrase": "SELECT * FROM passage_phrases WHERE phrase NOT IN (SELECT phrase FROM phrases)",
    "synonym of no phrase": "SELECT * FROM synonyms WHERE phrase_a NOT IN (SELECT phrase FROM phrases) "
                            "OR phrase_b NOT IN (SELECT phrase FROM phrases)",
    "passage of no document": "SELECT * FROM passages WHERE doc_id NOT IN (SELECT doc_id FROM documents)",
    "entity of no passage": "SELECT * FROM passage_entities WHERE passage_id NOT IN (SELECT passage_id FROM passages)",
}


def broken_rows(path: Path) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {name: rows for name, sql in BROKEN.items() if (rows := con.execute(sql).fetchall())}
    finally:
        con.close()


def digest(connection: duckdb.DuckDBPyConnection) -> str:
    """Every row of every table of the connection's database, as one hash."""
    tables = [t for (t,) in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "ORDER BY 1").fetchall()]
    rows = [(t, connection.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()) for t in tables]
    return hashlib.sha256(repr(rows).encode()).hexdigest()
