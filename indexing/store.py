"""The DuckDB store: the one place in hippograph that speaks SQL.

DuckDB lets one read-write process lock a file against every other process, readers included. So the
published store file is never opened for writing: a writer (`update_store`) writes another file and
renames it over the store, so readers keep reading the version they opened and the next reader sees
the new one. The file a publish replaces stays beside the store as `<store>.prev`, with the changes
that lead from it to the published version (`<store>.delta`, see `changes`): the next writer applies
them to `.prev` again and adds its own, so a write costs about twice its change, not a copy of the
store. When `.prev` cannot serve (none yet, a crash, a store another program wrote, a reader still on
it, a delta too large to be worth replaying), the writer copies the store. A writer killed at any point leaves the published store as it was.
Writers queue on an advisory lock file; readers pin the file they read (`locks.ReadPin`), open it
read-only, copy what they need into memory and close again.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from hippograph.errors import StoreError
from hippograph.indexing.changes import Change, Delta, FileIdentity, Version, read_delta, write_delta
from hippograph.indexing.compact import CompactVectors
from hippograph.locks import OFD_LOCKS, FileLock, ReadPin, file_in_use, file_lock
from hippograph.tables import (
    documents_from_table, documents_table, entities_table, fact_keys_table, matrix_from_column, passages_table,
    triples_table, vector_column,
)
from hippograph.types import Document, EntityMention, IndexBatch, StoreStats

SCHEMA_VERSION = 4

# DuckDB picks an extension by a path's prefix ("md:name") or a file's type (a SQLite file) and would
# install it over the network; hippograph opens local DuckDB files only, with extensions left alone.
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]+:")  # "md:", "s3://"; not a drive letter

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS documents (
    doc_id VARCHAR, title VARCHAR, text VARCHAR, metadata JSON, index_key VARCHAR, ingested_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS passages (
    passage_id VARCHAR, doc_id VARCHAR, position INTEGER, title VARCHAR, text VARCHAR);
CREATE TABLE IF NOT EXISTS triples (
    passage_id VARCHAR, sentence INTEGER, subject VARCHAR, predicate VARCHAR, object VARCHAR);
CREATE TABLE IF NOT EXISTS passage_phrases (passage_id VARCHAR, phrase VARCHAR);
CREATE TABLE IF NOT EXISTS synonyms (phrase_a VARCHAR, phrase_b VARCHAR, similarity FLOAT);
"""
# The memory bank (schema 3): one compressed record per document; its keys, with vectors, in `memory_keys`.
_MEMORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    doc_id VARCHAR, gist VARCHAR, facts VARCHAR[], source_bytes BIGINT, kept_bytes BIGINT, indexed_at TIMESTAMP);
"""
# Named entities of each passage (schema 4), by character offsets, with their sentence: for draft answers.
_ENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS passage_entities (
    passage_id VARCHAR, start_char INTEGER, end_char INTEGER, label VARCHAR,
    sentence_start INTEGER, sentence_end INTEGER);
"""

# Tables with a FLOAT[dim] column are created once the embedding dimension is known.
_EMBEDDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS passage_embeddings (passage_id VARCHAR, embedding FLOAT[{dim}]);
CREATE TABLE IF NOT EXISTS phrases (phrase VARCHAR, embedding FLOAT[{dim}]);
CREATE TABLE IF NOT EXISTS facts (subject VARCHAR, predicate VARCHAR, object VARCHAR, embedding FLOAT[{dim}]);
CREATE TABLE IF NOT EXISTS memory_keys (doc_id VARCHAR, position INTEGER, text VARCHAR, embedding FLOAT[{dim}]);
"""

# What each schema version changed, applied in order when a writer opens an older store. Readers read
# older stores as they are (see `Store._index_key_column`).
_MIGRATIONS = {
    2: """
ALTER TABLE documents RENAME COLUMN content_hash TO index_key;
ALTER TABLE IF EXISTS passage_embeddings DROP COLUMN IF EXISTS model;
""",
    3: _MEMORY_SCHEMA,  # and `memory_keys`, made with the other embedding tables (see `_create_schema`)
    4: _ENTITY_SCHEMA,  # passages indexed before have none: draft answers parse them at query time
}

# A write's rows, in the order they are inserted; phrases and facts are keyed (a row whose key the table
# holds already is skipped).
_INSERT_ORDER = (
    "documents", "passages", "passage_embeddings", "triples", "passage_phrases", "passage_entities", "phrases",
    "facts", "synonyms", "memories", "memory_keys",
)
_KEYS = {"phrases": "phrase", "facts": "subject, predicate, object"}

# Removing documents removes every row derived from them. (`gone_docs` is the registered list of
# document ids; `_GONE` lists their passages, `_DELETE_GONE` deletes them all.)
_STORED_DOCS = "SELECT doc_id FROM documents WHERE doc_id IN (SELECT doc_id FROM gone_docs) ORDER BY doc_id"
_GONE = "CREATE OR REPLACE TEMP TABLE gone AS SELECT passage_id FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs)"
_DELETE_GONE = """
DELETE FROM passage_embeddings WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM triples WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passage_phrases WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passage_entities WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM memory_keys WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM memories WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM documents WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DROP TABLE gone;
"""

# Facts, phrases and synonym edges live as long as some passage uses them. Looking for orphans among all
# of them would scan whole tables at every write; only rows a write touches can become orphans: those
# its removed passages used, and rows it adds that none of its passages uses. A write that has some
# collects them (`_WATCH_GONE`, `Store._watch_unused`), then checks those alone (`_ORPHANS`).
_WATCH = """
CREATE OR REPLACE TEMP TABLE maybe_orphan_facts (subject VARCHAR, predicate VARCHAR, object VARCHAR);
CREATE OR REPLACE TEMP TABLE maybe_orphan_phrases (phrase VARCHAR);
"""
_WATCH_GONE = """
INSERT INTO maybe_orphan_facts
    SELECT DISTINCT subject, predicate, object FROM triples WHERE passage_id IN (SELECT passage_id FROM gone);
INSERT INTO maybe_orphan_phrases SELECT DISTINCT phrase FROM passage_phrases WHERE passage_id IN (SELECT passage_id FROM gone);
"""
_WATCHED = "SELECT (SELECT count(*) FROM maybe_orphan_facts) + (SELECT count(*) FROM maybe_orphan_phrases)"
_ORPHANS = {
    "facts": "SELECT DISTINCT subject, predicate, object FROM maybe_orphan_facts "
             "ANTI JOIN triples USING (subject, predicate, object) ORDER BY ALL",
    "phrases": "SELECT DISTINCT phrase FROM maybe_orphan_phrases ANTI JOIN passage_phrases USING (phrase) ORDER BY ALL",
}
_FORGET = "DROP TABLE maybe_orphan_facts; DROP TABLE maybe_orphan_phrases;"
# Delete the orphans found (registered as `orphans`), and the synonym edges of orphan phrases.
_DELETE_ORPHANS = {
    "facts": "DELETE FROM facts f USING orphans o "
             "WHERE f.subject = o.subject AND f.predicate = o.predicate AND f.object = o.object",
    "phrases": "DELETE FROM phrases WHERE phrase IN (SELECT phrase FROM orphans); DELETE FROM synonyms "
               "WHERE phrase_a IN (SELECT phrase FROM orphans) OR phrase_b IN (SELECT phrase FROM orphans)",
}


@dataclass(frozen=True)
class PassageTable:
    """All passages with their embeddings, row-aligned, as plain Python and numpy data."""

    passage_ids: list[str]
    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    embeddings: np.ndarray  # (n, dim) float32, L2-normalised


@dataclass(frozen=True)
class GraphData:
    """The stored graph, as plain data: what `hippograph.graph` builds igraph from. The embeddings are
    float32 matrices, or `CompactVectors` when read with `read_graph_data(compact=True)`; the rows of
    facts, links and synonyms are `CodedRows` as read from a store (any sequence of tuples will do)."""

    phrases: list[str]
    phrase_embeddings: np.ndarray | CompactVectors
    facts: Sequence[tuple[str, str, str]]
    fact_embeddings: np.ndarray | CompactVectors
    fact_passages: Sequence[tuple[str, str, str, str]]  # (subject, predicate, object, passage_id)
    passage_phrases: Sequence[tuple[str, str]]  # (passage_id, phrase)
    synonyms: Sequence[tuple[str, str, float]]


@dataclass(frozen=True)
class MemoryBankData:
    """The stored memory bank, as plain data: one entry per memory, and every key with its vector."""

    doc_ids: list[str]
    gists: list[str]
    facts: list[list[str]]
    key_memories: np.ndarray  # the memory (row of `doc_ids`) each key belongs to
    key_texts: list[str]
    key_embeddings: np.ndarray

    @staticmethod
    def empty() -> "MemoryBankData":
        return MemoryBankData([], [], [], np.zeros(0, np.int64), [], np.zeros((0, 0), np.float32))


@dataclass(frozen=True)
class EntityTable:
    """The stored entity mentions, as numpy columns grouped by passage (a few bytes a mention)."""

    spans: dict[str, tuple[int, int]]  # passage id -> (first row, end row) of its mentions
    columns: dict[str, np.ndarray]  # start_char, end_char, sentence_start, sentence_end; label: codes
    labels: list[str]  # label code -> spaCy label

    @staticmethod
    def empty() -> "EntityTable":
        return EntityTable({}, {}, [])

    def of(self, passage_id: str) -> list[EntityMention] | None:
        """The mentions of a passage, or None if the store has none for it (indexed by an LLM extractor,
        or before schema 4, or naming no entity)."""
        if passage_id not in self.spans:
            return None
        first, end = self.spans[passage_id]
        c = self.columns
        return [
            EntityMention(int(c["start_char"][i]), int(c["end_char"][i]), self.labels[c["label"][i]],
                          int(c["sentence_start"][i]), int(c["sentence_end"][i]))
            for i in range(first, end)
        ]


class CodedRows(Sequence):
    """Rows held as columns of codes, each into the column's list of distinct values (numbers are held as
    they are): a few bytes a row, where a list of tuples takes tens, and no millions of small objects for
    the heap to keep. Reading makes each row's tuple as it goes; rows equal a list of the same tuples."""

    _CHUNK = 65536  # rows whose codes are made Python ints at a time while iterating

    def __init__(self, columns: Sequence[tuple[np.ndarray, list | None]]):
        self.columns = list(columns)  # (codes, values); values None: the codes are the values

    def __len__(self) -> int:
        return len(self.columns[0][0]) if self.columns else 0

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        return tuple(codes[row].item() if values is None else values[codes[row]] for codes, values in self.columns)

    def __iter__(self):
        for start in range(0, len(self), self._CHUNK):
            chunks = [codes[start : start + self._CHUNK].tolist() for codes, _ in self.columns]
            yield from zip(*(
                chunk if values is None else map(values.__getitem__, chunk)
                for chunk, (_, values) in zip(chunks, self.columns)
            ))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __repr__(self) -> str:
        return f"CodedRows({len(self)} rows)"


def _coded_column(column: pa.ChunkedArray, strings: dict[str, str]) -> tuple[np.ndarray, list | None]:
    """A column as (codes, values): a string column dictionary-encoded, its values from `strings` (Arrow
    makes a Python string once per distinct value, not once per row); another as its values, with no list."""
    if not pa.types.is_string(column.type) or column.null_count:
        return column.to_numpy(), None
    encoded = column.combine_chunks().dictionary_encode()
    values = [strings.setdefault(value, value) for value in encoded.dictionary.to_pylist()]
    return encoded.indices.to_numpy().astype(np.int32), values


def _shared_column(column: pa.ChunkedArray, strings: dict[str, str]) -> list:
    """A column's values as a list; a string column's from `strings`, one object per distinct string."""
    codes, values = _coded_column(column, strings)
    return codes.tolist() if values is None else list(map(values.__getitem__, codes.tolist()))


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


class Store:
    """A DuckDB file holding documents, passages, embeddings and the graph. Use `open_store()`."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self.con = connection
        self.path = path
        self.read_only = read_only
        self.changes: list[Change] = []  # what this connection wrote, one `Change` per transaction
        self.published_by: str | None = None  # set by `update_store` after the block: how it published
        self.timings: dict[str, float] = {}  # set by `update_store`: seconds to prepare and to publish
        self._tables: set[str] | None = None  # names of the store's tables, once listed (`_has_table`)
        self._watching = False  # whether this write made the tables of rows that may be orphans

    def _run(self, sql: str, params: object = None) -> None:
        """Execute for effect; DuckDB wants every result consumed before the next statement."""
        self.con.execute(sql, params).fetchall()

    def _arrow(self, sql: str) -> pa.Table:
        relation = self.con.sql(sql)
        # DuckDB 2 names it to_arrow_table(); 1.x calls it arrow()
        fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
        return fetch()

    # ---- schema -------------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        if not self._has_table("meta"):
            return None
        rows = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self._run("DELETE FROM meta WHERE key = ?", [key])
        self._run("INSERT INTO meta VALUES (?, ?)", [key, value])

    def _meta_int(self, key: str) -> int | None:
        value = self._meta(key)
        try:
            return None if value is None else int(value)
        except ValueError:
            raise StoreError(f"{self.path} is not a hippograph store: its {key} is {value!r}, not a number") from None

    def _has_table(self, name: str) -> bool:
        # A write asks a few dozen times: the tables are listed once, and again after a change of schema.
        if self._tables is None:
            self._tables = {t for (t,) in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = 'main'").fetchall()}
        return name in self._tables

    def _ddl(self, sql: str) -> None:
        """Run statements that change the schema."""
        self._tables = None
        self._run(sql)

    def schema_version(self) -> int:
        version = self._meta_int("schema_version")
        return SCHEMA_VERSION if version is None else version

    def _check_version(self) -> None:
        self._check_tables()
        if self.schema_version() > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer hippograph (store schema {self.schema_version()}, this version "
                f"reads up to {SCHEMA_VERSION}). Upgrade hippograph to use it."
            )

    def _check_tables(self) -> None:
        """Refuse a DuckDB file of another program: one with tables, but no meta table of keys and values
        that names a schema version."""
        rows = self.con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
        tables, meta_columns = {t for t, _ in rows}, {c for t, c in rows if t == "meta"}
        if tables and not ({"key", "value"} <= meta_columns and self._meta("schema_version") is not None):
            raise StoreError(f"{self.path} is not a hippograph store: its tables ({', '.join(sorted(tables))}) are not hippograph's")

    def _create_schema(self) -> None:
        """Create the tables of a new store, or bring an older store's up to this version."""
        if self._meta("schema_version") is None:
            self._ddl(_BASE_SCHEMA + _MEMORY_SCHEMA + _ENTITY_SCHEMA)
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._set_meta("generation", "0")
            return
        for version in range(self.schema_version() + 1, SCHEMA_VERSION + 1):
            self._ddl(_MIGRATIONS[version])
            self._set_meta("schema_version", str(version))
        model = self.embedding_model()
        if model is not None:  # embedding tables a newer schema added (memory_keys)
            self._ddl(_EMBEDDING_SCHEMA.format(dim=model[1]))

    @property
    def _index_key_column(self) -> str:
        return "content_hash" if self.schema_version() < 2 else "index_key"

    def embedding_model(self) -> tuple[str, int] | None:
        """(model name, dimension) the store's vectors were made with, or None before the first index."""
        name, dim = self._meta("embedding_model"), self._meta_int("embedding_dim")
        return (name, dim) if name and dim else None

    def _ensure_embedding_tables(self, model: str, dim: int) -> None:
        stored = self.embedding_model()
        if stored is None:
            self._ddl(_EMBEDDING_SCHEMA.format(dim=int(dim)))
            self._set_meta("embedding_model", model)
            self._set_meta("embedding_dim", str(dim))
        else:
            check_embedding_model(self.path, stored, model, dim)

    def generation(self) -> int:
        """Increases with every committed write; readers compare it to know when to reload."""
        return self._meta_int("generation") or 0

    # ---- reads --------------------------------------------------------------------------------

    def index_keys(self) -> dict[str, str]:
        """doc_id -> `Document.index_key` of the version stored."""
        if not self._has_table("documents"):
            return {}
        return dict(self.con.execute(f"SELECT doc_id, {self._index_key_column} FROM documents").fetchall())

    def passage_count(self) -> int:
        if not self._has_table("passage_embeddings"):
            return 0
        return self.con.execute("SELECT count(*) FROM passage_embeddings").fetchall()[0][0]

    def read_passages(self) -> PassageTable:
        if self.passage_count() == 0:
            raise StoreError(f"{self.path} holds no passages yet. Index some documents first: hippograph index PATH")
        table = self._arrow(
            """SELECT p.passage_id, p.doc_id, p.title, p.text, e.embedding
               FROM passages p JOIN passage_embeddings e USING (passage_id)
               ORDER BY p.doc_id, p.position"""
        )
        return PassageTable(
            passage_ids=table["passage_id"].to_pylist(),
            doc_ids=table["doc_id"].to_pylist(),
            titles=table["title"].to_pylist(),
            texts=table["text"].to_pylist(),
            embeddings=matrix_from_column(table["embedding"]),
        )

    def read_entities(self) -> EntityTable:
        if not self._has_table("passage_entities"):
            return EntityTable.empty()
        table = self._arrow("SELECT * FROM passage_entities ORDER BY passage_id, start_char")
        passages = table["passage_id"].combine_chunks().dictionary_encode()  # sorted: one run per passage
        codes = passages.indices.to_numpy()
        firsts = np.flatnonzero(np.diff(codes, prepend=-1))
        ends = np.append(firsts[1:], len(codes))
        ids = passages.dictionary.to_pylist()
        labels = table["label"].combine_chunks().dictionary_encode()
        columns = {name: table[name].to_numpy().astype(np.int32)
                   for name in ("start_char", "end_char", "sentence_start", "sentence_end")}
        columns["label"] = labels.indices.to_numpy().astype(np.int16)
        spans = {ids[codes[f]]: (int(f), int(e)) for f, e in zip(firsts, ends)}
        return EntityTable(spans, columns, labels.dictionary.to_pylist())

    def phrases(self) -> list[str]:
        if not self._has_table("phrases"):
            return []
        return [phrase for (phrase,) in self.con.execute("SELECT phrase FROM phrases ORDER BY phrase").fetchall()]

    def phrase_vectors(self) -> tuple[list[str], np.ndarray]:
        """Every stored phrase with its embedding (for synonym edges against new phrases)."""
        if not self._has_table("phrases"):
            return [], np.zeros((0, 0), dtype=np.float32)
        table = self._arrow("SELECT phrase, embedding FROM phrases ORDER BY phrase")
        return table["phrase"].to_pylist(), matrix_from_column(table["embedding"])

    def fact_keys(self) -> set[tuple[str, str, str]]:
        if not self._has_table("facts"):
            return set()
        return set(self.con.execute("SELECT subject, predicate, object FROM facts").fetchall())

    def read_graph_data(self, compact: bool = False) -> GraphData:
        """The graph; with `compact`, its phrase and fact embeddings as `CompactVectors`, encoded while
        they are read, so that no float32 copy of them all is ever held (what a query process keeps)."""
        if not self._has_table("phrases") or not self.con.execute("SELECT count(*) FROM phrases").fetchall()[0][0]:
            empty = np.zeros((0, 0), dtype=np.float32)
            return GraphData([], empty, [], empty, [], [], [])
        if compact:
            phrases, phrase_embeddings = self._compact_vectors("phrases", ("phrase",))
            facts, fact_embeddings = self._compact_vectors("facts", ("subject", "predicate", "object"))
        else:
            phrases = self._arrow("SELECT phrase, embedding FROM phrases ORDER BY phrase")
            facts = self._arrow("SELECT subject, predicate, object, embedding FROM facts ORDER BY subject, predicate, object")
            phrase_embeddings, fact_embeddings = matrix_from_column(phrases["embedding"]), matrix_from_column(facts["embedding"])
        # Each row would otherwise hold its own copy of every string it names (a phrase is named by its
        # facts, passages and synonyms): one object per distinct string, shared by every row and list.
        strings: dict[str, str] = {}
        return GraphData(
            phrases=_shared_column(phrases["phrase"], strings),
            phrase_embeddings=phrase_embeddings,
            facts=CodedRows([_coded_column(facts[c], strings) for c in ("subject", "predicate", "object")]),
            fact_embeddings=fact_embeddings,
            fact_passages=self._fetch_coded(
                "SELECT DISTINCT subject, predicate, object, passage_id FROM triples ORDER BY ALL", strings),
            passage_phrases=self._fetch_coded(
                "SELECT DISTINCT passage_id, phrase FROM passage_phrases ORDER BY ALL", strings),
            synonyms=self._fetch_coded("SELECT phrase_a, phrase_b, similarity FROM synonyms ORDER BY ALL", strings),
        )

    def _fetch_coded(self, sql: str, strings: dict[str, str]) -> CodedRows:
        """The rows of `sql` as `CodedRows`, whose strings are taken from (and added to) `strings`."""
        table = self._arrow(sql)
        return CodedRows([_coded_column(column, strings) for column in table.columns])

    def _compact_vectors(self, table: str, key: Sequence[str], batch_rows: int = 16384) -> tuple[pa.Table, CompactVectors]:
        """The rows of `table` ordered by `key` (its key columns), and their embeddings as `CompactVectors`
        in that order. The embeddings stream in storage order, a batch at a time, each put in the row its
        key sorts to: sorting them along with the keys would make DuckDB hold them all."""
        columns = ", ".join(key)
        keys = self._arrow(f"SELECT rowid AS stored_row, {columns} FROM {table} ORDER BY {columns}")
        stored_rows = keys["stored_row"].to_numpy()
        position = np.zeros(int(stored_rows.max(initial=-1)) + 1, np.int64)
        position[stored_rows] = np.arange(len(stored_rows))
        relation = self.con.sql(f"SELECT rowid AS stored_row, embedding FROM {table}")
        reader = (getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch)(batch_rows)
        compact = CompactVectors.allocate(len(stored_rows), reader.schema.field("embedding").type.list_size)
        for batch in reader:
            compact.put(position[batch.column(0).to_numpy()], matrix_from_column(batch.column(1)))
        return keys, compact

    def read_memory_bank(self) -> MemoryBankData:
        """Every memory record and key (empty for a store without a memory bank, or of schema < 3)."""
        if not self._has_table("memory_keys"):
            return MemoryBankData.empty()
        memories = self.con.execute("SELECT doc_id, gist, facts FROM memories ORDER BY doc_id").fetchall()
        keys = self._arrow("SELECT doc_id, text, embedding FROM memory_keys ORDER BY doc_id, position")
        row = {doc_id: i for i, (doc_id, _, _) in enumerate(memories)}
        return MemoryBankData(
            doc_ids=[doc_id for doc_id, _, _ in memories],
            gists=[gist for _, gist, _ in memories],
            facts=[list(facts) for _, _, facts in memories],
            key_memories=np.array([row[d] for d in keys["doc_id"].to_pylist()], dtype=np.int64),
            key_texts=keys["text"].to_pylist(),
            key_embeddings=matrix_from_column(keys["embedding"]),
        )

    def document_passages(self, doc_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
        """(passage_id, text) of each stored document among `doc_ids`, in document order."""
        if not doc_ids or not self._has_table("passages"):
            return {}
        rows = self._select_in(
            "SELECT doc_id, passage_id, text FROM passages WHERE doc_id IN (SELECT id FROM wanted) "
            "ORDER BY doc_id, position", doc_ids,
        )
        out: dict[str, list[tuple[str, str]]] = {}
        for doc_id, passage_id, text in rows:
            out.setdefault(doc_id, []).append((passage_id, text))
        return out

    def doc_ids_by_content(self, contents: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """(title, text) -> doc_id of the stored documents with exactly that title and text."""
        if not contents or not self._has_table("documents"):
            return {}
        wanted = pa.table({"title": pa.array([c[0] for c in contents], pa.string()),
                           "text": pa.array([c[1] for c in contents], pa.string())})
        self.con.register("wanted_content", wanted)
        try:
            rows = self.con.execute(
                "SELECT DISTINCT d.title, d.text, d.doc_id FROM documents d JOIN wanted_content w "
                "ON d.title = w.title AND d.text = w.text").fetchall()
        finally:
            self.con.unregister("wanted_content")
        return {(title, text): doc_id for title, text, doc_id in rows}

    def passage_records(
        self, passage_ids: Sequence[str]
    ) -> tuple[set[tuple[str, str, str, str]], set[tuple[str, str]]]:
        """Stored (passage_id, subject, predicate, object) triples and (passage_id, phrase) links of the passages."""
        if not passage_ids:
            return set(), set()
        triples = self._select_in(
            "SELECT passage_id, subject, predicate, object FROM triples WHERE passage_id IN (SELECT id FROM wanted)",
            passage_ids,
        )
        links = self._select_in(
            "SELECT passage_id, phrase FROM passage_phrases WHERE passage_id IN (SELECT id FROM wanted)", passage_ids
        )
        return set(triples), set(links)

    def _select_in(self, sql: str, ids: Sequence[str]) -> list[tuple]:
        """Run `sql` with the ids registered as the one-column table `wanted(id)` (any number of ids)."""
        self.con.register("wanted", pa.table({"id": pa.array(list(ids), type=pa.string())}))
        try:
            return self.con.execute(sql).fetchall()
        finally:
            self.con.unregister("wanted")

    def stats(self) -> StoreStats:
        counts = {}
        for table in ("documents", "passages", "triples", "phrases", "facts", "synonyms", "memories", "memory_keys"):
            counts[table] = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] if self._has_table(table) else 0
        ratio = None
        if counts["memories"]:
            kept, source = self.con.execute("SELECT sum(kept_bytes), sum(source_bytes) FROM memories").fetchall()[0]
            ratio = kept / source if source else 0.0
        model = self.embedding_model()
        return StoreStats(
            path=str(self.path),
            schema_version=self.schema_version(),
            generation=self.generation(),
            embedding_model=model[0] if model else None,
            embedding_dim=model[1] if model else None,
            compression_ratio=ratio,
            **counts,
        )

    # ---- writes (each one transaction) ---------------------------------------------------------

    def write(self, batch: IndexBatch) -> None:
        """Replace the batch's documents, add everything derived from them and delete its removed
        documents, atomically."""
        dim = batch.passage_embeddings.shape[1] if len(batch.passages) else None
        self.apply(Change(
            removed_doc_ids=[d.doc_id for d in batch.documents] + batch.removed_doc_ids,
            rows=_batch_rows(batch, _now()),
            embedding_model=(batch.embedding_model, int(dim)) if dim is not None else None,
        ))

    def delete_documents(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents and everything derived from them; returns the ids that were there."""
        present = sorted(set(doc_ids) & set(self.index_keys()))
        if present:
            self.apply(Change(removed_doc_ids=present))
        return present

    def apply(self, change: Change) -> None:
        """Run `change` in one transaction and remember, in `changes`, exactly what it did: the documents
        it removed, the rows it added and the orphans it deleted. Every write goes through here, so a
        write's `changes`, applied again to the version it started from, make the version it wrote, and
        cost only what they hold (`Change.exact`: no key checks, no search for orphans)."""
        with self._transaction():
            if change.embedding_model is not None:
                self._ensure_embedding_tables(*change.embedding_model)
            done = self._apply_exact(change) if change.exact else self._apply_new(change)
        self.changes.append(done)

    def _apply_new(self, change: Change) -> Change:
        removed = self._remove_documents(change.removed_doc_ids, watch=True)
        rows = {t: self._insert(t, change.rows[t]) for t in _INSERT_ORDER if t in change.rows}
        self._watch_unused(change)
        orphans = self._find_orphans()
        self._delete_orphans(orphans)
        rows = {table: added for table, added in rows.items() if added.num_rows}
        return Change(removed, rows, change.embedding_model, orphans, exact=True)

    def _apply_exact(self, change: Change) -> Change:
        self._remove_documents(change.removed_doc_ids, watch=False)
        for table in _INSERT_ORDER:
            if table in change.rows:
                self._append(table, change.rows[table])
        self._delete_orphans(change.orphans)
        return change

    def row_counts(self) -> dict[str, int]:
        """Rows per table: after a replay, they must be those of the version it makes."""
        tables = [t for (t,) in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY table_name").fetchall()]
        if not tables:
            return {}
        # one UNION ALL: a SELECT of scalar subqueries takes DuckDB twenty times as long to run
        counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return dict(self.con.execute(counts).fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._run("BEGIN TRANSACTION")
        try:
            yield
            self._set_meta("generation", str(self.generation() + 1))
            self._run("COMMIT")
        except BaseException:
            self._tables, self._watching = None, False  # tables the transaction made are gone
            self._run("ROLLBACK")
            raise

    def _remove_documents(self, doc_ids: list[str], watch: bool) -> list[str]:
        """Remove the stored documents among `doc_ids` (their rows watched for orphans); returns their ids."""
        if not doc_ids or not self.embedding_model():
            return []
        self.con.register("gone_docs", pa.table({"doc_id": pa.array(doc_ids, pa.string())}))
        try:
            # Most writes add new documents: then the passages' tables need no scan for them.
            stored = [doc_id for (doc_id,) in self.con.execute(_STORED_DOCS).fetchall()]
            if stored:
                self._run(_GONE)
                if watch:
                    self._watch()
                    self._run(_WATCH_GONE)
                self._run(_DELETE_GONE)
            return stored
        finally:
            self.con.unregister("gone_docs")

    def _watch_unused(self, change: Change) -> None:
        """Watch the facts and phrases `change` adds that none of its own passages uses (orphans, unless
        a stored passage uses them)."""
        for table, users in (("facts", "triples"), ("phrases", "passage_phrases")):
            if table not in change.rows:
                continue
            names = [c.strip() for c in _KEYS[table].split(",")]
            used = set(zip(*(change.rows[users][n].to_pylist() for n in names))) if users in change.rows else set()
            added = change.rows[table].select(names)
            unused = [i for i, key in enumerate(zip(*(added[n].to_pylist() for n in names))) if key not in used]
            if unused:
                self._watch()
                self._append(f"maybe_orphan_{table}", added.take(unused))

    def _watch(self) -> None:
        """Make the tables of rows that may be orphans, once a write has some (most writes have none)."""
        if not self._watching:
            self._run(_WATCH)
            self._watching = True

    def _find_orphans(self) -> dict[str, pa.Table]:
        """The watched rows no passage uses (the watch tables are dropped)."""
        if not self._watching:
            return {}
        found = {}
        if self.embedding_model() and self.con.execute(_WATCHED).fetchall()[0][0]:
            found = {table: self._arrow(sql) for table, sql in _ORPHANS.items()}
        self._run(_FORGET)
        self._watching = False
        return {table: keys for table, keys in found.items() if keys.num_rows}

    def _delete_orphans(self, orphans: dict[str, pa.Table]) -> None:
        for table, keys in orphans.items():
            self.con.register("orphans", keys)
            try:
                self._run(_DELETE_ORPHANS[table])
            finally:
                self.con.unregister("orphans")

    def _insert(self, table: str, rows: pa.Table) -> pa.Table:
        """Insert `rows` and return those inserted: into a keyed table (phrases, facts), only rows whose
        key it does not hold yet (another document may have added it)."""
        key = _KEYS.get(table)
        if key is not None and rows.num_rows:
            self.con.register("incoming", rows)
            try:
                rows = self._arrow(f"SELECT incoming.* FROM incoming ANTI JOIN {table} USING ({key})").cast(rows.schema)
            finally:
                self.con.unregister("incoming")
        self._append(table, rows)
        return rows

    def _append(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            self.con.register("incoming", rows)
            try:
                self._run(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            finally:
                self.con.unregister("incoming")


def _now() -> datetime:
    """When a write's rows were made (stored with documents and memories; a replay keeps the original)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _batch_rows(batch: IndexBatch, now: datetime) -> dict[str, pa.Table]:
    """The rows `batch` adds, by table (empty tables left out)."""
    documents = documents_table(batch.documents)
    documents = documents.append_column("index_key", pa.array(
        [d.index_key(batch.index_settings) for d in batch.documents], pa.string()))
    documents = documents.append_column("ingested_at", pa.array([now] * len(batch.documents), pa.timestamp("us")))
    rows = {
        "documents": documents,
        "passages": passages_table(batch.passages),
        "triples": triples_table(batch.triples),
        "passage_phrases": pa.table({
            "passage_id": pa.array([p for p, _ in batch.passage_phrases], pa.string()),
            "phrase": pa.array([ph for _, ph in batch.passage_phrases], pa.string()),
        }),
        "passage_entities": entities_table(batch.passage_entities),
        "synonyms": pa.table({
            "phrase_a": pa.array([a for a, _, _ in batch.synonyms], pa.string()),
            "phrase_b": pa.array([b for _, b, _ in batch.synonyms], pa.string()),
            "similarity": pa.array([s for _, _, s in batch.synonyms], type=pa.float32()),
        }),
        **_memory_rows(batch, now),
    }
    if batch.passages:
        rows["passage_embeddings"] = pa.table({
            "passage_id": pa.array([p.passage_id for p in batch.passages], pa.string()),
            "embedding": vector_column(batch.passage_embeddings),
        })
    if batch.new_phrases:
        rows["phrases"] = pa.table({"phrase": pa.array(batch.new_phrases, pa.string()),
                                    "embedding": vector_column(batch.phrase_embeddings)})
    if batch.new_facts:
        rows["facts"] = fact_keys_table(batch.new_facts).append_column("embedding", vector_column(batch.fact_embeddings))
    return {table: table_rows for table, table_rows in rows.items() if table_rows.num_rows}


def _memory_rows(batch: IndexBatch, now: datetime) -> dict[str, pa.Table]:
    records = batch.memories
    rows = {"memories": pa.table({
        "doc_id": pa.array([r.doc_id for r in records], pa.string()),
        "gist": pa.array([r.gist for r in records], pa.string()),
        "facts": pa.array([r.facts for r in records], pa.list_(pa.string())),
        "source_bytes": pa.array([r.source_bytes for r in records], pa.int64()),
        "kept_bytes": pa.array([r.kept_bytes for r in records], pa.int64()),
        "indexed_at": pa.array([now] * len(records), pa.timestamp("us")),
    })}
    keys = [(r.doc_id, position, key) for r in records for position, key in enumerate(r.keys)]
    if keys:
        rows["memory_keys"] = pa.table({
            "doc_id": pa.array([d for d, _, _ in keys], pa.string()),
            "position": pa.array([p for _, p, _ in keys], pa.int32()),
            "text": pa.array([k for _, _, k in keys], pa.string()),
            "embedding": vector_column(batch.memory_key_vectors),
        })
    return rows


def check_embedding_model(path: str | Path, stored: tuple[str, int] | None, model: str, dim: int | None = None) -> None:
    """Refuse to mix vectors of `model` with the `stored` ones (None: the store has none yet): they would
    rank by noise, or fail on shape. Without `dim`, only the names are compared (no model loaded)."""
    if stored is None or (stored[0] == model and dim in (None, stored[1])):
        return
    raise StoreError(
        f"{path} holds vectors from {stored[0]!r} ({stored[1]}-d), not {model!r}: use "
        f"Config(embedding_model={stored[0]!r}) (CLI: --config) with this store, or a new store file."
    )


@contextmanager
def open_store(path: str | Path, lock_timeout: float = 30.0) -> Iterator[Store]:
    """Open the published store read-only, briefly. Writing goes through `update_store`.

    The published file is never written in place, so no hippograph writer holds a lock on it; a lock
    held by some other program is waited out for up to `lock_timeout` seconds. Once replaced, the file
    becomes `<store>.prev`, which the next writer rewrites: the reader pins the file it reads
    (`ReadPin`), and a writer leaves a pinned file alone.
    """
    path = _store_file(path)
    if not path.exists():
        raise StoreError(f"no store at {path}. Index documents first: hippograph index PATH --db {path}")
    with _pinned_connection(path, lock_timeout) as connection:
        store = Store(connection, path, read_only=True)
        store._check_version()
        yield store


@contextmanager
def _pinned_connection(path: Path, lock_timeout: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published file, pinned while it is open. DuckDB opens the file by
    its path, so the pin is checked once more after: if the path named another file meanwhile, DuckDB
    may have opened that one, unpinned, and the reader starts over."""
    deadline = time.monotonic() + lock_timeout
    while True:
        pin = _pin(path, deadline, lock_timeout)
        try:
            connection = _connect(path, max(0.0, deadline - time.monotonic()), _open_read_only)
        except BaseException:
            if pin is not None:
                pin.release()
            raise
        if pin is None or pin.still_at(path):
            break
        connection.close()
        pin.release()
    try:
        yield connection
    finally:
        connection.close()
        if pin is not None:
            pin.release()


def _pin(path: Path, deadline: float, lock_timeout: float) -> ReadPin | None:
    """Pin the file at `path`, retrying while writers replace it. None without OFD locks (writers then
    never rewrite a file in place), if the file cannot be opened (DuckDB will say why) or its file system
    cannot lock it (a writer's probe fails there too, so it copies rather than rewrite a file)."""
    if not OFD_LOCKS:
        return None
    while True:
        locked = False
        try:
            pin = ReadPin.take(path)
        except FileNotFoundError:
            raise StoreError(f"no store at {path}. Index documents first: hippograph index PATH --db {path}") from None
        except BlockingIOError:  # another program holds the published file for writing
            pin, locked = None, True
        except OSError:
            return None
        if pin is not None:
            return pin
        if time.monotonic() >= deadline:
            if locked:
                raise StoreError(f"{path} stayed locked by another process for {lock_timeout:.0f} s")
            raise StoreError(f"{path} kept being replaced while this reader tried to open it; try again")
        time.sleep(0.01)


@dataclass(frozen=True)
class StoreFiles:
    """The files a store is made of, by role (see `store_files`)."""

    store: Path

    def sibling(self, suffix: str) -> Path:
        return self.store.with_name(self.store.name + suffix)

    @property
    def next(self) -> Path:
        """The version a writer writes, renamed over the store when it is done."""
        return self.sibling(".next")

    @property
    def prev(self) -> Path:
        """The version the last publish replaced (a hard link made before the rename)."""
        return self.sibling(".prev")

    @property
    def delta(self) -> Path:
        """The changes that turn `.prev` into the published version."""
        return self.sibling(".delta")

    @property
    def delta_next(self) -> Path:
        return self.sibling(".delta.next")

    def remove_unfinished(self) -> None:
        """Remove what a killed writer left half done."""
        _remove_with_wal(self.next)
        self.delta_next.unlink(missing_ok=True)

    def drop_twin(self) -> None:
        """Remove the previous version and its delta (when they cannot serve, or before a full copy, whose
        room they would take)."""
        _remove_with_wal(self.prev)
        self.delta.unlink(missing_ok=True)


@dataclass
class _Staged:
    """The version a write starts from, open for writing as `<store>.next`."""

    store: Store
    method: str  # "twin": `.prev` brought up to date; "copy": a copy of the store; "new": no store yet
    copied: FileIdentity | None  # the published file it equals (None: there is none)
    generation: int | None  # the published generation (None: no store yet)

    def changed(self) -> bool:
        return self.generation is None or self.store.generation() != self.generation

    def delta(self) -> Delta:
        """This write's changes, from the published version to the one it writes (whose file identity is
        known only once it is closed and synced)."""
        assert self.copied is not None and self.generation is not None
        target = Version(None, self.store.generation(), self.store.row_counts())
        return Delta(Version(self.copied, self.generation), target, list(self.store.changes))


_REPLAY_AT_MOST = 0.1  # of the store's size: a larger delta is copied over instead (see `_worth_replaying`)


class _StaleTwin(Exception):
    """`.prev` and its delta do not make the published version: the write copies the store instead."""


@contextmanager
def update_store(path: str | Path, lock_timeout: float = 600.0) -> Iterator[Store]:
    """Write a new version of the store and publish it atomically when the block succeeds.

    The block writes `<store>.next`: the previous version (`<store>.prev`) brought up to date by applying
    the last write's changes again (`<store>.delta`), or, when those do not fit the store, a copy of it.
    On success `.next` is checkpointed, synced and renamed over the store; the version it replaces stays
    as `.prev`, with this block's changes as the new delta. A write thus costs about twice its changes,
    not a copy of the store. On an error, or if the process dies, the published store is untouched and
    `.next` is removed (a killed writer's by the next writer, which then copies). A block that committed
    nothing publishes nothing, so readers have no new file to reload.

    After the block, `Store.published_by` says how it published ("twin", "copy" or "new"; None: nothing)
    and `Store.timings` the seconds it took to prepare `.next` and to publish it.
    """
    path = check_writable(path)
    with writer_lock(path, lock_timeout) as lock:
        files = StoreFiles(path)
        files.remove_unfinished()
        published = False
        try:
            timings: dict[str, float] = {}
            with _timed(timings, "prepare"):
                staged = _stage(files, lock_timeout)
            store = staged.store
            store.timings = timings
            try:
                yield store
                with _timed(timings, "publish"):
                    changed = staged.changed()
                    if changed or staged.method == "twin":
                        store._run("CHECKPOINT")
                    # Without OFD locks no writer may rewrite a file in place: no twin is kept.
                    keep = OFD_LOCKS and staged.copied is not None and (changed or staged.method == "twin")
                    delta = staged.delta() if keep else None
            finally:
                store.con.close()
            with _timed(timings, "publish"):
                if changed:
                    _check_nobody_else_wrote(path, lock, staged.copied)
                    _publish(files, delta)
                    published = True
                    store.published_by = staged.method
                elif staged.method == "twin" and delta is not None:
                    _keep_twin(files, delta)
        except BaseException as error:
            published = False
            if isinstance(error, (OSError, duckdb.IOException)):  # a full disk, a file system gone read-only
                raise StoreError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None
            raise
        finally:
            if not published:
                _remove_with_wal(files.next)  # on every failure: a partial copy would keep a full disk full


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = round(seconds.get(step, 0.0) + time.perf_counter() - start, 4)


def _stage(files: StoreFiles, lock_timeout: float) -> _Staged:
    """Open the version this write starts from as `.next`: the twin brought up to date, else a copy of the
    store, else (no store yet) a new file."""
    if not files.store.exists():
        files.drop_twin()
        return _open_staged(files, "new", None, lock_timeout)
    _checkpoint_wal(files.store, lock_timeout)
    published = file_identity(files.store)
    return _stage_twin(files, published) or _stage_copy(files, published, lock_timeout)


def _stage_copy(files: StoreFiles, published: FileIdentity | None, lock_timeout: float) -> _Staged:
    files.drop_twin()
    _check_free_space(files.store)
    _copy_with_mode(files.store, files.next)
    return _open_staged(files, "copy", published, lock_timeout)


def _open_staged(files: StoreFiles, method: str, copied: FileIdentity | None, lock_timeout: float) -> _Staged:
    connection = _connect(files.next, lock_timeout, _open_staging)
    store = Store(connection, files.store, read_only=False)
    try:
        store._check_version()
        generation = store.generation() if copied is not None else None
        store._create_schema()
    except BaseException:
        connection.close()
        raise
    return _Staged(store, method, copied, generation)


def _stage_twin(files: StoreFiles, published: FileIdentity | None) -> _Staged | None:
    """`.prev` brought up to date as `.next`, or None when it cannot be: there is none, its delta does not
    lead to the published file, or it is still read (pinned, or open in some DuckDB connection)."""
    if not OFD_LOCKS or published is None or not _worth_replaying(files):
        return None
    delta = read_delta(files.delta)
    if delta is None or delta.target.identity != published or file_identity(files.prev) != delta.base.identity:
        return None
    os.replace(files.prev, files.next)  # from here on, a crash leaves no twin: the next writer copies
    try:
        if os.stat(files.next).st_nlink != 1 or file_in_use(files.next):  # a link elsewhere, or a reader
            raise _StaleTwin("in use")
        _copy_permissions(files.store, files.next)  # while it is written, as private as the store
        connection = _connect(files.next, 0.0, _open_staging)
    except (_StaleTwin, StoreError, OSError):
        _remove_with_wal(files.next)
        return None
    store = Store(connection, files.store, read_only=False)
    try:
        store._check_version()
        _replay(store, delta)
    except (_StaleTwin, StoreError, duckdb.Error):
        connection.close()
        _remove_with_wal(files.next)
        return None
    except BaseException:
        connection.close()
        raise
    return _Staged(store, "twin", published, store.generation())


def _worth_replaying(files: StoreFiles) -> bool:
    """Whether the delta is small beside the store. Inserting a row costs DuckDB far more than copying
    its bytes: after a write that changed much of the store (a re-index under other settings), the next
    write copies rather than replay it."""
    try:
        return files.delta.stat().st_size <= _REPLAY_AT_MOST * files.store.stat().st_size
    except FileNotFoundError:
        return False


def _replay(store: Store, delta: Delta) -> None:
    """Bring the previous version up to the published one: the schema, then the last write's changes, as
    that write made them. Checked by generation before, and by generation and row counts after."""
    if store.generation() != delta.base.generation:
        raise _StaleTwin(f"generation {store.generation()}, the delta starts from {delta.base.generation}")
    store._create_schema()
    for change in delta.changes:
        store.apply(change)
    if store.generation() != delta.target.generation or store.row_counts() != delta.target.counts:
        raise _StaleTwin("the replayed changes did not make the published version")
    store.changes.clear()  # the last write's; this write records its own


def _publish(files: StoreFiles, delta: Delta | None) -> None:
    """Make `.next` durable and swap it in: a rename is atomic, so readers see old or new. The version it
    replaces stays as `.prev`, with `delta` (the changes from it to `.next`) beside it."""
    staging, path = files.next, files.store
    if path.exists():
        _copy_permissions(path, staging)
    _fsync(staging)
    if delta is None or not _keep_previous(files, delta):
        files.drop_twin()
    _swap_in(staging, path)


def _keep_previous(files: StoreFiles, delta: Delta) -> bool:
    """Link the published file as `.prev` and write the delta from it to `.next`; False where the file
    system has no hard links. The delta names both files, so a crash between these steps leaves a pair
    the next writer rejects (and copies)."""
    target = replace(delta.target, identity=file_identity(files.next))
    _write_delta(files, replace(delta, target=target))
    files.prev.unlink(missing_ok=True)
    try:
        os.link(files.store, files.prev)
    except OSError:
        files.delta_next.unlink(missing_ok=True)
        return False
    os.replace(files.delta_next, files.delta)
    return True


def _keep_twin(files: StoreFiles, delta: Delta) -> None:
    """A write that committed nothing leaves `.next` equal to the published version: keep it as `.prev`,
    with a delta of no changes, so the next write need not copy the store."""
    _fsync(files.next)
    base = replace(delta.base, identity=file_identity(files.next))
    target = Version(delta.base.identity, delta.target.generation, delta.target.counts)
    _write_delta(files, Delta(base, target, []))
    os.replace(files.delta_next, files.delta)
    os.replace(files.next, files.prev)
    _fsync_directory(files.store.parent)


def _write_delta(files: StoreFiles, delta: Delta) -> None:
    write_delta(files.delta_next, delta, files.store.stat().st_mode & 0o777)
    _copy_permissions(files.store, files.delta_next)


def _swap_in(staging: Path, path: Path) -> None:
    os.replace(staging, path)
    _fsync_directory(path.parent)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def writer_lock(path: str | Path, timeout: float = 600.0) -> Iterator[FileLock]:
    """Hold the store's advisory writer lock (`<store>.lock`), so writers (processes or threads) take turns.

    Re-entrant within a thread. The kernel drops the lock when its holder dies, so a killed writer
    never blocks the next one.
    """
    lock_path = _sibling(Path(path), ".lock")
    busy = f"another writer kept {path} locked for {timeout:.0f} s; try again later"
    with file_lock(lock_path, timeout, busy) as lock:
        yield lock


def _check_nobody_else_wrote(path: Path, lock: FileLock, copied: tuple[int, int, int] | None) -> None:
    """Refuse to publish over another writer's work: possible only if someone removed the lock file
    while this writer held it, letting a second writer in."""
    if lock.intact() and file_identity(path) == copied:
        return
    raise StoreError(
        f"{lock.path} was removed or replaced while this write held it, so another writer may have written "
        f"{path} meanwhile; nothing was published. Run the command again."
    )


def _copy_with_mode(source: Path, target: Path) -> None:
    """Copy the store into a file created with the store's own mode, so that a private store's copy is
    never readable by others while it is written."""
    mode = source.stat().st_mode & 0o777
    with open(source, "rb") as read, open(target, "xb", opener=lambda name, flags: os.open(name, flags, mode)) as write:
        shutil.copyfileobj(read, write, 1 << 20)


def _check_free_space(path: Path) -> None:
    """The copy needs room for the whole store; fail before writing rather than fill the disk."""
    needed = path.stat().st_size
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return  # the file system cannot say; the copy itself will fail cleanly if it runs out
    if free < needed * 1.1 + 16_000_000:
        raise StoreError(
            f"not enough free disk space to write {path}: a write copies the store ({needed / 1e6:.0f} MB) and "
            f"{free / 1e6:.0f} MB are free"
        )


def file_identity(path: str | Path) -> tuple[int, int, int] | None:
    """(inode, mtime, size), None if there is no file: every publish renames a new file over the store,
    so this changes with it."""
    try:
        stat = Path(path).stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _copy_permissions(source: Path, target: Path) -> None:
    """Give `target` the mode of `source` and, where this process may set them, its owner and group:
    the new version of a private store stays private."""
    info = source.stat()
    for uid, gid in ((info.st_uid, info.st_gid), (-1, info.st_gid)):  # only root may give a file away
        try:
            os.chown(target, uid, gid)
            break
        except PermissionError:
            continue
    os.chmod(target, info.st_mode & 0o7777)  # after chown, which clears set-id bits


def _checkpoint_wal(path: Path, lock_timeout: float) -> None:
    """Fold a write-ahead log left beside the store into it (a store written by other tools), so a
    file copy holds every committed row."""
    if Path(f"{path}.wal").exists():
        connection = _connect(path, lock_timeout)
        try:
            connection.execute("CHECKPOINT").fetchall()
        finally:
            connection.close()


def _remove_with_wal(path: Path) -> None:
    for stale in (path, Path(f"{path}.wal")):
        stale.unlink(missing_ok=True)


def _connect(
    path: Path, lock_timeout: float, opener: Callable[[Path], duckdb.DuckDBPyConnection] | None = None,
) -> duckdb.DuckDBPyConnection:
    """`opener(path)` (default: `connect`), waiting up to `lock_timeout` seconds while another process
    holds the file."""
    opener = opener or connect
    deadline = time.monotonic() + lock_timeout
    delay = 0.02
    while True:
        try:
            return opener(path)
        except duckdb.Error as error:
            if _is_lock_conflict(error) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if _is_lock_conflict(error):
                raise StoreError(f"{path} stayed locked by another process for {lock_timeout:.0f} s") from None
            reason = str(error).splitlines()[0]  # DuckDB adds lines of advice
            raise StoreError(f"cannot open {path} as a hippograph store: {reason}") from None


# A reader copies what it reads into Python, but DuckDB's buffer pool keeps every block a scan loaded
# until the connection closes (up to 80% of RAM by default): reading the 2wiki store grown to 101k passages
# peaked at 6.9 GB for the 3.0 GB a query process keeps. Capped, scanned blocks are evicted as the scan
# goes on; a sort larger than the cap spills to a directory of its own, which DuckDB removes on close
# (its default would be `.tmp` in the working directory). None: DuckDB's defaults.
READ_MEMORY_LIMIT: str | None = "512MB"


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection through a database instance of its own. `duckdb.connect(path)` reuses a
    process's open instance of the same path, which after a publish still reads the replaced file."""
    connection = _attach(path, "READ_ONLY")
    if READ_MEMORY_LIMIT:
        spill = os.path.join(tempfile.gettempdir(), f"hippograph-read-{uuid.uuid4().hex}").replace("'", "''")
        try:
            connection.execute(f"SET memory_limit = '{READ_MEMORY_LIMIT}'").fetchall()
            connection.execute(f"SET temp_directory = '{spill}'").fetchall()
        except BaseException:
            connection.close()
            raise
    return connection


# Rows per row group of what a writer appends. DuckDB appends to a table's last row group while it has
# room, and at a checkpoint rewrites the row groups a write changed, merging small ones into it: at its
# default (122,880 rows, 1.5 KB a vector row) a 1% write into a 4 GB store could rewrite hundreds of
# megabytes, checkpoints of up to 9 s. DuckDB's smallest size (its vector size) bounds that, reads as fast
# (`benchmarks/bench_checkpoint.py`, `bench_publish_steps.py --row-group-size`). None: DuckDB's default.
STAGING_ROW_GROUP_SIZE: int | None = 2048


def _open_staging(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection to write `<store>.next` with. It is checkpointed before it is published, and thrown
    away if the writer fails or dies, so a write-ahead log would only write every change twice."""
    options = "RECOVERY_MODE no_wal_writes"
    if STAGING_ROW_GROUP_SIZE:
        options += f", ROW_GROUP_SIZE {STAGING_ROW_GROUP_SIZE}"
    return _attach(path, options)


def _attach(path: Path, options: str) -> duckdb.DuckDBPyConnection:
    quoted = os.path.abspath(path).replace("'", "''")
    connection = connect()
    try:
        connection.execute(f"ATTACH '{quoted}' AS store ({options})").fetchall()
        connection.execute("USE store").fetchall()
    except BaseException:
        connection.close()
        raise
    return connection


def store_files(path: str | Path) -> list[Path]:
    """Every file a store is made of: the store; the version a writer writes (`<store>.next`); the version
    the last publish replaced (`<store>.prev`) and the changes from it to the store (`<store>.delta`, and
    `<store>.delta.next` while it is written); the write-ahead logs of the DuckDB files; and the writers'
    lock (`<store>.lock`)."""
    suffixes = ("", ".wal", ".next", ".next.wal", ".prev", ".prev.wal", ".delta", ".delta.next", ".lock")
    return [_sibling(Path(path), suffix) for suffix in suffixes]


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def connect(path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """A connection to the local DuckDB file `path` (None: a new in-memory database) with extension
    auto-install and auto-load off. Every connection hippograph opens is made here."""
    database = ":memory:" if path is None else os.path.abspath(path)  # absolute: DuckDB reads no prefix
    return duckdb.connect(database, config=_DUCKDB_CONFIG)


def check_writable(path: str | Path) -> Path:
    """Refuse to write `path` unless it names a local DuckDB file or nothing yet, in a directory this
    process may write, and is not read-only. Writers call this before any work, so they fail at once.

    A store with no write bit for anyone is read-only even to root, whom `os.access` lets write anything.
    """
    path = _store_file(path)
    if path.exists():
        mode = path.stat().st_mode
        if not mode & 0o222 or not os.access(path, os.W_OK):
            raise StoreError(f"{path} is read-only (mode {mode & 0o777:o}); make it writable to change it")
    directory = path.absolute().parent
    while not directory.exists():  # the writer creates missing directories
        directory = directory.parent
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StoreError(f"cannot write {path}: this process may not write the directory {directory}")
    return path


def _store_file(path: str | Path) -> Path:
    """`path` if it names a local DuckDB file or nothing yet; anything else is refused before DuckDB sees it."""
    if _URL_PREFIX.match(str(path)):
        raise StoreError(
            f"{path} is not a hippograph store: hippograph opens local DuckDB files only (a file of that name: ./{path})"
        )
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a store file")
    if path.is_file():
        with open(path, "rb") as handle:
            if handle.read(12)[8:] != _DUCKDB_MAGIC:
                raise StoreError(f"cannot open {path}: not a hippograph store (not a DuckDB file)")
    return path


def documents_in(store: Store) -> list[Document]:
    """All stored documents (used by tests and export)."""
    return documents_from_table(store._arrow("SELECT doc_id, title, text, metadata FROM documents ORDER BY doc_id"))
