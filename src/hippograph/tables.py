"""Plain data as Arrow tables and back: the one conversion the store (DuckDB) and shard files (Parquet) share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pyarrow as pa

from hippograph.types import Document, EntityMention, LLMUsage, MemoryRecord, Passage, PassageFacts, Triple


def vector_column(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """An (n, dim) matrix as n fixed-size float32 lists (DuckDB reads them as FLOAT[dim])."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), matrix.shape[1])


def matrix_from_column(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The (n, dim) float32 matrix of a column of equal-length float lists; (0, dim) when empty, dim 0
    unless the column's type fixes it."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(array) == 0:
        return np.zeros((0, getattr(array.type, "list_size", 0)), dtype=np.float32)
    return array.values.to_numpy(zero_copy_only=False).reshape(len(array), -1).astype(np.float32, copy=False)


def documents_table(documents: Sequence[Document]) -> pa.Table:
    return pa.table({
        "doc_id": pa.array([d.doc_id for d in documents], pa.string()),
        "title": pa.array([d.title for d in documents], pa.string()),
        "text": pa.array([d.text for d in documents], pa.string()),
        "metadata": pa.array([json.dumps(d.metadata, sort_keys=True, default=str) for d in documents], pa.string()),
    })


def documents_from_table(table: pa.Table) -> list[Document]:
    return [Document(r["doc_id"], r["title"], r["text"], json.loads(r["metadata"] or "{}")) for r in table.to_pylist()]


def passages_table(passages: Sequence[Passage]) -> pa.Table:
    return pa.table({
        "passage_id": pa.array([p.passage_id for p in passages], pa.string()),
        "doc_id": pa.array([p.doc_id for p in passages], pa.string()),
        "position": pa.array([p.position for p in passages], pa.int32()),
        "title": pa.array([p.title for p in passages], pa.string()),
        "text": pa.array([p.text for p in passages], pa.string()),
    })


def passages_from_table(table: pa.Table) -> list[Passage]:
    return [Passage(**row) for row in table.select(list(passages_table([]).column_names)).to_pylist()]


def triples_table(triples: Sequence[Triple]) -> pa.Table:
    return pa.table({
        "passage_id": pa.array([t.passage_id for t in triples], pa.string()),
        "sentence": pa.array([t.sentence for t in triples], pa.int32()),
        "subject": pa.array([t.subject for t in triples], pa.string()),
        "predicate": pa.array([t.predicate for t in triples], pa.string()),
        "object": pa.array([t.object for t in triples], pa.string()),
    })


_TRIPLE = pa.struct([("sentence", pa.int32()), ("subject", pa.string()), ("predicate", pa.string()), ("object", pa.string())])
_ENTITY = pa.struct([("start_char", pa.int32()), ("end_char", pa.int32()), ("label", pa.string()),
                     ("sentence_start", pa.int32()), ("sentence_end", pa.int32())])
_USAGE = pa.struct([(name, pa.int64()) for name in LLMUsage().to_dict()])


def passage_facts_table(facts: Sequence[PassageFacts]) -> pa.Table:
    """One row per passage with its phrases and triples nested (shard files; the store keeps them flat)."""
    return pa.table({
        "passage_id": pa.array([f.passage_id for f in facts], pa.string()),
        "phrases": pa.array([f.phrases for f in facts], pa.list_(pa.string())),
        "triples": pa.array(
            [[{"sentence": t.sentence, "subject": t.subject, "predicate": t.predicate, "object": t.object}
              for t in f.triples] for f in facts],
            pa.list_(_TRIPLE),
        ),
        "usage": pa.array([f.usage.to_dict() for f in facts], _USAGE),
        "entities": pa.array([[asdict(e) for e in f.entities] for f in facts], pa.list_(_ENTITY)),
    })


def passage_facts_from_table(table: pa.Table) -> list[PassageFacts]:
    # shard files of earlier versions have no usage, nor entities
    return [
        PassageFacts(row["passage_id"], [Triple(row["passage_id"], **t) for t in row["triples"]], row["phrases"],
                     LLMUsage(**(row.get("usage") or {})), [EntityMention(**e) for e in row.get("entities") or []])
        for row in table.to_pylist()
    ]


def entities_table(mentions: Sequence[tuple[str, EntityMention]]) -> pa.Table:
    """(passage_id, mention) pairs as the store keeps them: one row per mention."""
    columns = {"passage_id": pa.array([p for p, _ in mentions], pa.string())}
    for field in _ENTITY:
        columns[field.name] = pa.array([getattr(m, field.name) for _, m in mentions], field.type)
    return pa.table(columns)


def fact_keys_table(facts: Sequence[tuple[str, str, str]]) -> pa.Table:
    return pa.table({name: pa.array([f[i] for f in facts], pa.string()) for i, name in enumerate(("subject", "predicate", "object"))})


def fact_keys_from_table(table: pa.Table) -> list[tuple[str, str, str]]:
    return list(zip(*(table[c].to_pylist() for c in ("subject", "predicate", "object"))))


def memories_table(records: Sequence[MemoryRecord], key_vectors: np.ndarray) -> pa.Table:
    """One row per record, its keys' vectors nested (`key_vectors` rows follow the records' keys in order)."""
    offsets = np.concatenate([[0], np.cumsum([len(r.keys) for r in records], dtype=np.int64)]).astype(np.int32)
    return pa.table({
        "doc_id": pa.array([r.doc_id for r in records], pa.string()),
        "gist": pa.array([r.gist for r in records], pa.string()),
        "facts": pa.array([r.facts for r in records], pa.list_(pa.string())),
        "keys": pa.array([r.keys for r in records], pa.list_(pa.string())),
        "source_bytes": pa.array([r.source_bytes for r in records], pa.int64()),
        "key_vectors": pa.ListArray.from_arrays(pa.array(offsets), vector_column(key_vectors)),
        "usage": pa.array([r.usage.to_dict() for r in records], _USAGE),
    })


def memories_from_table(table: pa.Table) -> tuple[list[MemoryRecord], np.ndarray]:
    columns = ["doc_id", "gist", "facts", "keys", "source_bytes"]
    usage = "usage" in table.column_names  # shard files of earlier versions have none
    records = [MemoryRecord(**{**row, "usage": LLMUsage(**(row.get("usage") or {}))})
               for row in table.select(columns + ["usage"] * usage).to_pylist()]
    return records, matrix_from_column(table["key_vectors"].combine_chunks().flatten())
