"""The DuckDB store: the one place in hippograph that speaks SQL.

DuckDB lets one read-write process lock a file against every other process, readers included. So the
published store file is never opened for writing. A writer (`update_store`) copies it beside itself,
writes the copy in one transaction, and renames the copy over the published file: readers keep
reading the version they opened, the next reader sees the new one, and a writer killed at any point
leaves only a stale copy that the next writer deletes. Writers queue on an advisory lock file; readers
open read-only, copy what they need into memory and close again.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from hippograph.errors import StoreError
from hippograph.indexing.compact import CompactVectors
from hippograph.locks import FileLock, file_lock
from hippograph.tables import (
    documents_from_table, documents_table, fact_keys_from_table, fact_keys_table, matrix_from_column, passages_table,
    triples_table, vector_column,
)
from hippograph.types import Document, IndexBatch, StoreStats

SCHEMA_VERSION = 3

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
}

# Removing documents removes every row derived from them.
# (`gone_docs` is the registered list of document ids.)
_DELETE_DOCUMENTS = """
CREATE OR REPLACE TEMP TABLE gone AS SELECT passage_id FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM passage_embeddings WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM triples WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passage_phrases WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM memory_keys WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM memories WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM documents WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DROP TABLE gone;
"""

# Facts, phrases and synonym edges live as long as some passage uses them.
_DELETE_ORPHANS = """
DELETE FROM facts f WHERE NOT EXISTS (
    SELECT 1 FROM triples t WHERE t.subject = f.subject AND t.predicate = f.predicate AND t.object = f.object);
DELETE FROM phrases WHERE phrase NOT IN (SELECT phrase FROM passage_phrases);
DELETE FROM synonyms WHERE phrase_a NOT IN (SELECT phrase FROM phrases) OR phrase_b NOT IN (SELECT phrase FROM phrases);
"""


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
    float32 matrices, or `CompactVectors` when read with `read_graph_data(compact=True)`."""

    phrases: list[str]
    phrase_embeddings: np.ndarray | CompactVectors
    facts: list[tuple[str, str, str]]
    fact_embeddings: np.ndarray | CompactVectors
    fact_passages: list[tuple[str, str, str, str]]  # (subject, predicate, object, passage_id)
    passage_phrases: list[tuple[str, str]]  # (passage_id, phrase)
    synonyms: list[tuple[str, str, float]]


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


def _is_lock_conflict(error: duckdb.Error) -> bool:
    return "lock" in str(error).lower()


class Store:
    """A DuckDB file holding documents, passages, embeddings and the graph. Use `open_store()`."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self.con = connection
        self.path = path
        self.read_only = read_only

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
        query = "SELECT count(*) FROM information_schema.tables WHERE table_name = ?"
        return self.con.execute(query, [name]).fetchall()[0][0] > 0

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
            self._run(_BASE_SCHEMA + _MEMORY_SCHEMA)
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._set_meta("generation", "0")
            return
        for version in range(self.schema_version() + 1, SCHEMA_VERSION + 1):
            self._run(_MIGRATIONS[version])
            self._set_meta("schema_version", str(version))
        model = self.embedding_model()
        if model is not None:  # embedding tables a newer schema added (memory_keys)
            self._run(_EMBEDDING_SCHEMA.format(dim=model[1]))

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
            self._run(_EMBEDDING_SCHEMA.format(dim=int(dim)))
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
        return GraphData(
            phrases=phrases["phrase"].to_pylist(),
            phrase_embeddings=phrase_embeddings,
            facts=fact_keys_from_table(facts),
            fact_embeddings=fact_embeddings,
            fact_passages=self.con.execute(
                "SELECT DISTINCT subject, predicate, object, passage_id FROM triples ORDER BY ALL"
            ).fetchall(),
            passage_phrases=self.con.execute(
                "SELECT DISTINCT passage_id, phrase FROM passage_phrases ORDER BY ALL"
            ).fetchall(),
            synonyms=self.con.execute("SELECT phrase_a, phrase_b, similarity FROM synonyms ORDER BY ALL").fetchall(),
        )

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
        with self._transaction():
            dim = batch.passage_embeddings.shape[1] if len(batch.passages) else None
            if dim is not None:
                self._ensure_embedding_tables(batch.embedding_model, dim)
            self._remove_documents([d.doc_id for d in batch.documents] + batch.removed_doc_ids)
            self._insert_batch(batch)
            self._delete_orphans()

    def delete_documents(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents and everything derived from them; returns the ids that were there."""
        present = sorted(set(doc_ids) & set(self.index_keys()))
        if present:
            with self._transaction():
                self._remove_documents(present)
                self._delete_orphans()
        return present

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._run("BEGIN TRANSACTION")
        try:
            yield
            self._set_meta("generation", str(self.generation() + 1))
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise

    def _remove_documents(self, doc_ids: list[str]) -> None:
        if doc_ids and self.embedding_model():
            self.con.register("gone_docs", pa.table({"doc_id": doc_ids}))
            try:
                self._run(_DELETE_DOCUMENTS)
            finally:
                self.con.unregister("gone_docs")

    def _delete_orphans(self) -> None:
        if self.embedding_model():
            self._run(_DELETE_ORPHANS)

    def _insert_batch(self, batch: IndexBatch) -> None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        documents = documents_table(batch.documents)
        documents = documents.append_column("index_key", pa.array(
            [d.index_key(batch.index_settings) for d in batch.documents], pa.string()))
        documents = documents.append_column("ingested_at", pa.array([now] * len(batch.documents), pa.timestamp("us")))
        self._insert("documents", documents)
        self._insert("passages", passages_table(batch.passages))
        if batch.passages:
            self._insert("passage_embeddings", pa.table({
                "passage_id": [p.passage_id for p in batch.passages],
                "embedding": vector_column(batch.passage_embeddings),
            }))
        self._insert("triples", triples_table(batch.triples))
        self._insert("passage_phrases", pa.table({
            "passage_id": pa.array([p for p, _ in batch.passage_phrases], pa.string()),
            "phrase": pa.array([ph for _, ph in batch.passage_phrases], pa.string()),
        }))
        if batch.new_phrases:
            self._insert_new("phrases", pa.table({
                "phrase": batch.new_phrases, "embedding": vector_column(batch.phrase_embeddings),
            }), key="phrase")
        if batch.new_facts:
            facts = fact_keys_table(batch.new_facts).append_column("embedding", vector_column(batch.fact_embeddings))
            self._insert_new("facts", facts, key="subject, predicate, object")
        self._insert("synonyms", pa.table({
            "phrase_a": [a for a, _, _ in batch.synonyms],
            "phrase_b": [b for _, b, _ in batch.synonyms],
            "similarity": pa.array([s for _, _, s in batch.synonyms], type=pa.float32()),
        }))
        self._insert_memories(batch, now)

    def _insert_memories(self, batch: IndexBatch, now: datetime) -> None:
        records = batch.memories
        self._insert("memories", pa.table({
            "doc_id": pa.array([r.doc_id for r in records], pa.string()),
            "gist": pa.array([r.gist for r in records], pa.string()),
            "facts": pa.array([r.facts for r in records], pa.list_(pa.string())),
            "source_bytes": pa.array([r.source_bytes for r in records], pa.int64()),
            "kept_bytes": pa.array([r.kept_bytes for r in records], pa.int64()),
            "indexed_at": pa.array([now] * len(records), pa.timestamp("us")),
        }))
        keys = [(r.doc_id, position, key) for r in records for position, key in enumerate(r.keys)]
        if keys:
            self._insert("memory_keys", pa.table({
                "doc_id": pa.array([d for d, _, _ in keys], pa.string()),
                "position": pa.array([p for _, p, _ in keys], pa.int32()),
                "text": pa.array([k for _, _, k in keys], pa.string()),
                "embedding": vector_column(batch.memory_key_vectors),
            }))

    def _insert(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows:
            self.con.register("incoming", rows)
            try:
                self._run(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
            finally:
                self.con.unregister("incoming")

    def _insert_new(self, table: str, rows: pa.Table, key: str) -> None:
        """Insert rows whose key the table does not hold yet (another document may have added it)."""
        if rows.num_rows:
            self.con.register("incoming", rows)
            try:
                self._run(
                    f"INSERT INTO {table} BY NAME SELECT * FROM incoming "
                    f"WHERE ({key}) NOT IN (SELECT ({key}) FROM {table})"
                )
            finally:
                self.con.unregister("incoming")


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

    Published files are only ever replaced, never written in place, so no hippograph writer holds a
    lock on them; a lock held by some other program is waited out for up to `lock_timeout` seconds.
    """
    path = _store_file(path)
    if not path.exists():
        raise StoreError(f"no store at {path}. Index documents first: hippograph index PATH --db {path}")
    connection = _connect(path, True, lock_timeout)
    store = Store(connection, path, read_only=True)
    try:
        store._check_version()
        yield store
    finally:
        connection.close()


@contextmanager
def update_store(path: str | Path, lock_timeout: float = 600.0) -> Iterator[Store]:
    """Write a new version of the store and publish it atomically when the block succeeds.

    The block writes a copy (`<store>.next`); on success the copy is checkpointed, synced and renamed
    over the store. On an error, or if the process dies, the published store is untouched and the copy
    is removed (a killed writer's copy is removed by the next writer). A block that committed nothing
    publishes nothing, so readers have no new file to reload.
    """
    path = check_writable(path)
    with writer_lock(path, lock_timeout) as lock:
        staging = _sibling(path, ".next")
        _remove_with_wal(staging)  # left by a writer that was killed
        publish = False
        try:
            copied = file_identity(path)
            if copied is not None:
                _checkpoint_wal(path, lock_timeout)
                _check_free_space(path)
                copied = file_identity(path)
                _copy_with_mode(path, staging)
            connection = _connect(staging, False, lock_timeout)
            try:
                store = Store(connection, path, read_only=False)
                store._check_version()
                published = store.generation() if path.exists() else None
                store._create_schema()
                yield store
                if published is None or store.generation() != published:
                    store._run("CHECKPOINT")
                    publish = True
            finally:
                connection.close()
            if publish:
                _check_nobody_else_wrote(path, lock, copied)
                _publish(staging, path)
        except BaseException as error:
            publish = False
            if isinstance(error, (OSError, duckdb.IOException)):  # a full disk, a file system gone read-only
                raise StoreError(f"cannot write {path}: {getattr(error, 'strerror', None) or error}") from None
            raise
        finally:
            if not publish:
                _remove_with_wal(staging)  # on every failure: a partial copy would keep a full disk full


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


def _publish(staging: Path, path: Path) -> None:
    """Make the written copy durable, then swap it in: a rename is atomic, so readers see old or new."""
    if path.exists():
        _copy_permissions(path, staging)
    with open(staging, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(staging, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


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
        connection = _connect(path, False, lock_timeout)
        try:
            connection.execute("CHECKPOINT").fetchall()
        finally:
            connection.close()


def _remove_with_wal(path: Path) -> None:
    for stale in (path, Path(f"{path}.wal")):
        stale.unlink(missing_ok=True)


def _connect(path: Path, read_only: bool, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + lock_timeout
    delay = 0.02
    while True:
        try:
            return _open_read_only(path) if read_only else connect(path)
        except duckdb.Error as error:
            if _is_lock_conflict(error) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if _is_lock_conflict(error):
                raise StoreError(f"{path} stayed locked by another process for {lock_timeout:.0f} s") from None
            reason = str(error).splitlines()[0]  # DuckDB adds lines of advice
            raise StoreError(f"cannot open {path} as a hippograph store: {reason}") from None


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection through a database instance of its own. `duckdb.connect(path)` reuses a
    process's open instance of the same path, which after a publish still reads the replaced file."""
    quoted = os.path.abspath(path).replace("'", "''")
    connection = connect()
    try:
        connection.execute(f"ATTACH '{quoted}' AS store (READ_ONLY)").fetchall()
        connection.execute("USE store").fetchall()
    except BaseException:
        connection.close()
        raise
    return connection


def store_files(path: str | Path) -> list[Path]:
    """Every file a store is made of: the store, the copy a writer writes (`<store>.next`), their
    write-ahead logs, and the writers' lock (`<store>.lock`)."""
    return [_sibling(Path(path), suffix) for suffix in ("", ".wal", ".next", ".next.wal", ".lock")]


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
