"""The DuckDB store: the one place in hippograph that speaks SQL.

DuckDB lets one read-write process lock a file against every other process, readers included. So the
published store file is never opened for writing. A writer (`update_store`) copies it beside itself,
writes the copy in one transaction, and renames the copy over the published file: readers keep
reading the version they opened, the next reader sees the new one, and a writer killed at any point
leaves only a stale copy that the next writer deletes. Writers queue on an advisory lock file; readers
open read-only, copy what they need into memory and close again.
"""

from __future__ import annotations

import fcntl
import json
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

from hippograph.arrays import matrix_from_column, vector_column
from hippograph.errors import StoreError
from hippograph.types import Document, IndexBatch

SCHEMA_VERSION = 1

# DuckDB picks an extension by a path's prefix ("md:name") or a file's type (a SQLite file) and would
# install it over the network; hippograph opens local DuckDB files only, with extensions left alone.
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file
_URL_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9_+.-]+:")  # "md:", "s3://"; not a drive letter

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS documents (
    doc_id VARCHAR, title VARCHAR, text VARCHAR, metadata JSON, content_hash VARCHAR, ingested_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS passages (
    passage_id VARCHAR, doc_id VARCHAR, position INTEGER, title VARCHAR, text VARCHAR);
CREATE TABLE IF NOT EXISTS triples (
    passage_id VARCHAR, sentence INTEGER, subject VARCHAR, predicate VARCHAR, object VARCHAR);
CREATE TABLE IF NOT EXISTS passage_phrases (passage_id VARCHAR, phrase VARCHAR);
CREATE TABLE IF NOT EXISTS synonyms (phrase_a VARCHAR, phrase_b VARCHAR, similarity FLOAT);
"""

# Tables with a FLOAT[dim] column are created once the embedding dimension is known.
_EMBEDDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS passage_embeddings (passage_id VARCHAR, model VARCHAR, embedding FLOAT[{dim}]);
CREATE TABLE IF NOT EXISTS phrases (phrase VARCHAR, embedding FLOAT[{dim}]);
CREATE TABLE IF NOT EXISTS facts (subject VARCHAR, predicate VARCHAR, object VARCHAR, embedding FLOAT[{dim}]);
"""

# Removing documents removes every row derived from them.
# (`gone_docs` is the registered list of document ids.)
_DELETE_DOCUMENTS = """
CREATE OR REPLACE TEMP TABLE gone AS SELECT passage_id FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs);
DELETE FROM passage_embeddings WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM triples WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passage_phrases WHERE passage_id IN (SELECT passage_id FROM gone);
DELETE FROM passages WHERE doc_id IN (SELECT doc_id FROM gone_docs);
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
    """The stored graph, as plain data: what `hippograph.graph` builds igraph from."""

    phrases: list[str]
    phrase_embeddings: np.ndarray
    facts: list[tuple[str, str, str]]
    fact_embeddings: np.ndarray
    fact_passages: list[tuple[str, str, str, str]]  # (subject, predicate, object, passage_id)
    passage_phrases: list[tuple[str, str]]  # (passage_id, phrase)
    synonyms: list[tuple[str, str, float]]


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

    def _check_version(self) -> None:
        self._check_tables()
        version = self._meta_int("schema_version")
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer hippograph (store schema {version}, this version reads "
                f"up to {SCHEMA_VERSION}). Upgrade hippograph to use it."
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
        self._run(_BASE_SCHEMA)
        if self._meta("schema_version") is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._set_meta("generation", "0")

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
        """doc_id -> `Document.index_key` of the version stored (in the content_hash column)."""
        if not self._has_table("documents"):
            return {}
        return dict(self.con.execute("SELECT doc_id, content_hash FROM documents").fetchall())

    def passage_count(self) -> int:
        if not self._has_table("passage_embeddings"):
            return 0
        return self.con.execute("SELECT count(*) FROM passage_embeddings").fetchall()[0][0]

    def load_passages(self) -> PassageTable:
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

    def load_graph_data(self) -> GraphData:
        phrases, phrase_embeddings = self.phrase_vectors()
        if not phrases:
            empty = np.zeros((0, 0), dtype=np.float32)
            return GraphData([], empty, [], empty, [], [], [])
        facts = self._arrow("SELECT subject, predicate, object, embedding FROM facts ORDER BY subject, predicate, object")
        fact_keys = list(zip(*(facts[c].to_pylist() for c in ("subject", "predicate", "object"))))
        return GraphData(
            phrases=phrases,
            phrase_embeddings=phrase_embeddings,
            facts=fact_keys,
            fact_embeddings=matrix_from_column(facts["embedding"]),
            fact_passages=self.con.execute(
                "SELECT DISTINCT subject, predicate, object, passage_id FROM triples ORDER BY ALL"
            ).fetchall(),
            passage_phrases=self.con.execute(
                "SELECT DISTINCT passage_id, phrase FROM passage_phrases ORDER BY ALL"
            ).fetchall(),
            synonyms=self.con.execute("SELECT phrase_a, phrase_b, similarity FROM synonyms ORDER BY ALL").fetchall(),
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

    def stats(self) -> dict[str, object]:
        counts = {}
        for table in ("documents", "passages", "triples", "phrases", "facts", "synonyms"):
            counts[table] = self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] if self._has_table(table) else 0
        model = self.embedding_model()
        return {
            "path": str(self.path),
            "schema_version": self._meta_int("schema_version") or SCHEMA_VERSION,
            "generation": self.generation(),
            "embedding_model": model[0] if model else None,
            "embedding_dim": model[1] if model else None,
            **counts,
        }

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
        self._insert("documents", pa.table({
            "doc_id": [d.doc_id for d in batch.documents],
            "title": [d.title for d in batch.documents],
            "text": [d.text for d in batch.documents],
            "metadata": [json.dumps(d.metadata, default=str) for d in batch.documents],
            "content_hash": [d.index_key(batch.index_settings) for d in batch.documents],
            "ingested_at": pa.array([now] * len(batch.documents), type=pa.timestamp("us")),
        }))
        self._insert("passages", pa.table({
            "passage_id": [p.passage_id for p in batch.passages],
            "doc_id": [p.doc_id for p in batch.passages],
            "position": pa.array([p.position for p in batch.passages], type=pa.int32()),
            "title": [p.title for p in batch.passages],
            "text": [p.text for p in batch.passages],
        }))
        if batch.passages:
            self._insert("passage_embeddings", pa.table({
                "passage_id": [p.passage_id for p in batch.passages],
                "model": [batch.embedding_model] * len(batch.passages),
                "embedding": vector_column(batch.passage_embeddings),
            }))
        self._insert("triples", pa.table({
            "passage_id": [t.passage_id for t in batch.triples],
            "sentence": pa.array([t.sentence for t in batch.triples], type=pa.int32()),
            "subject": [t.subject for t in batch.triples],
            "predicate": [t.predicate for t in batch.triples],
            "object": [t.object for t in batch.triples],
        }))
        self._insert("passage_phrases", pa.table({
            "passage_id": [p for p, _ in batch.passage_phrases],
            "phrase": [ph for _, ph in batch.passage_phrases],
        }))
        if batch.new_phrases:
            self._insert_new("phrases", pa.table({
                "phrase": batch.new_phrases, "embedding": vector_column(batch.phrase_embeddings),
            }), key="phrase")
        if batch.new_facts:
            self._insert_new("facts", pa.table({
                "subject": [f[0] for f in batch.new_facts],
                "predicate": [f[1] for f in batch.new_facts],
                "object": [f[2] for f in batch.new_facts],
                "embedding": vector_column(batch.fact_embeddings),
            }), key="subject, predicate, object")
        self._insert("synonyms", pa.table({
            "phrase_a": [a for a, _, _ in batch.synonyms],
            "phrase_b": [b for _, b, _ in batch.synonyms],
            "similarity": pa.array([s for _, _, s in batch.synonyms], type=pa.float32()),
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
    over the store. On an error, or if the process dies, the published store is untouched. A block that
    committed nothing publishes nothing, so readers have no new file to reload.
    """
    path = check_writable(path)
    with writer_lock(path, lock_timeout):
        staging = path.with_name(path.name + ".next")
        _remove_with_wal(staging)  # left by a writer that was killed
        if path.exists():
            _checkpoint_wal(path, lock_timeout)
            shutil.copyfile(path, staging)
        connection = _connect(staging, False, lock_timeout)
        store = Store(connection, path, read_only=False)
        publish = False
        try:
            store._check_version()
            published = store.generation() if path.exists() else None
            store._create_schema()
            yield store
            if published is None or store.generation() != published:
                store._run("CHECKPOINT")
                publish = True
        finally:
            connection.close()
            if not publish:
                _remove_with_wal(staging)
        if publish:
            _publish(staging, path)


@contextmanager
def writer_lock(path: str | Path, timeout: float = 600.0) -> Iterator[None]:
    """Hold the store's advisory writer lock (`<store>.lock`), so writers take turns.

    Re-entrant within a process. The kernel drops the lock when its holder dies, so a killed writer
    never blocks the next one.
    """
    key = str(Path(path).resolve())
    if key in _HELD_LOCKS:
        yield
        return
    lock_path = Path(path).with_name(Path(path).name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(f"another process kept writing {path} for {timeout:.0f} s; try again later") from None
                time.sleep(0.1)
        _HELD_LOCKS.add(key)
        try:
            yield
        finally:
            _HELD_LOCKS.discard(key)
            fcntl.flock(handle, fcntl.LOCK_UN)


_HELD_LOCKS: set[str] = set()


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
    path = Path(path)
    return [path.with_name(path.name + suffix) for suffix in ("", ".wal", ".next", ".next.wal", ".lock")]


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
    rows = store.con.execute("SELECT doc_id, title, text, metadata FROM documents ORDER BY doc_id").fetchall()
    return [Document(doc_id, title, text, json.loads(meta or "{}")) for doc_id, title, text, meta in rows]
