"""A write as data, and the file that keeps the last one beside the store.

Every write to a store is a `Change`: the documents it removes and the rows it adds, as Arrow tables.
`Store.apply` runs one in one transaction. A publish keeps the version it replaces as `<store>.prev`
and the changes that lead from that version to the published one as `<store>.delta` (a `Delta`), so
the next writer can bring `.prev` up to date by applying them again instead of copying the store.

A delta file is: 8 magic bytes, the length of a JSON header (8 bytes, little-endian), the header, then
one Arrow IPC stream per table of rows. The header names both versions, each change's removed ids and
tables (offset and length of each stream), and a SHA-256 of the rest of the header and the streams.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

_MAGIC = b"HGDELTA1"
_FORMAT = 2  # 1 checksummed the streams only, not the header (which names the documents a replay removes)
_LENGTH = struct.Struct("<Q")
FileIdentity = tuple[int, int, int]  # (inode, mtime in ns, size): see `store.file_identity`


@dataclass
class Change:
    """One write: documents removed (with all derived from them), then rows added.

    As a write asks for it, `rows` of phrases and facts may hold keys the store has already, and the
    rows that no passage uses any more are still to be found. As `Store.apply` records it (`exact`),
    it is what the write did: `removed_doc_ids` the documents that were there, `rows` the rows
    inserted, `orphans` the keys of the facts and phrases it deleted as orphans.
    """

    removed_doc_ids: list[str] = field(default_factory=list)
    rows: dict[str, pa.Table] = field(default_factory=dict)  # table name -> rows to add
    embedding_model: tuple[str, int] | None = None  # (name, dim) of the rows' vectors, if they have any
    orphans: dict[str, pa.Table] = field(default_factory=dict)  # "facts"/"phrases" -> keys deleted
    exact: bool = False


@dataclass(frozen=True)
class Version:
    """One version of a store, as a file: which file, and what it holds."""

    identity: FileIdentity | None
    generation: int
    counts: dict[str, int] = field(default_factory=dict)  # rows per table; empty when not recorded


@dataclass(frozen=True)
class Delta:
    """The changes that turn the `base` version of a store (kept as `<store>.prev`) into `target`."""

    base: Version
    target: Version
    changes: list[Change]


def write_delta(path: Path, delta: Delta, mode: int = 0o600) -> None:
    """Write `delta` to a new file `path` created with `mode` (it holds documents: as private as the store),
    and sync it. The caller renames it into place, so it appears whole or not at all."""
    header, streams = _encode(delta)
    header["sha256"] = _checksum(header, b"".join(streams))
    encoded = json.dumps(header).encode()
    _write_durably(path, [_MAGIC, _LENGTH.pack(len(encoded)), encoded, *streams], mode)


def read_delta(path: Path) -> Delta | None:
    """The delta at `path`; None when there is none, or it is not one this version wrote whole."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode(data)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, pa.ArrowException):
        return None


def _encode(delta: Delta) -> tuple[dict, list[bytes]]:
    """The header and the Arrow streams it points into (each table at [name, offset, length])."""
    streams: list[bytes] = []
    offset = 0

    def place(tables: dict[str, pa.Table]) -> list[list]:
        nonlocal offset
        entries = []
        for name, table in tables.items():
            streams.append(_ipc_bytes(table))
            entries.append([name, offset, len(streams[-1])])
            offset += len(streams[-1])
        return entries

    changes = [{
        "removed_doc_ids": c.removed_doc_ids, "embedding_model": c.embedding_model, "exact": c.exact,
        "tables": place(c.rows), "orphans": place(c.orphans),
    } for c in delta.changes]
    header = {"format": _FORMAT, "base": _version_json(delta.base), "target": _version_json(delta.target), "changes": changes}
    return header, streams


def _decode(data: bytes) -> Delta:
    if data[:len(_MAGIC)] != _MAGIC:
        raise ValueError("not a delta file")
    (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
    start = len(_MAGIC) + _LENGTH.size
    header = json.loads(data[start:start + length])
    body = memoryview(data)[start + length:]
    if header["format"] != _FORMAT or _checksum(header, body) != header.pop("sha256"):
        raise ValueError("unknown format, or damaged")
    changes = [_change(entry, body) for entry in header["changes"]]
    return Delta(_version(header["base"]), _version(header["target"]), changes)


def _checksum(header: dict, body: bytes | memoryview) -> str:
    """SHA-256 of the header (as written, without its checksum) and the streams."""
    digest = hashlib.sha256(json.dumps({k: v for k, v in header.items() if k != "sha256"}).encode())
    digest.update(body)
    return digest.hexdigest()


def _change(entry: dict, body: memoryview) -> Change:
    def tables(entries: list) -> dict[str, pa.Table]:
        return {name: _ipc_table(body[offset:offset + size]) for name, offset, size in entries}

    model = entry["embedding_model"]
    model = (str(model[0]), int(model[1])) if model else None
    return Change(list(entry["removed_doc_ids"]), tables(entry["tables"]), model, tables(entry["orphans"]),
                  bool(entry["exact"]))


def _version_json(version: Version) -> dict:
    return {"identity": version.identity, "generation": version.generation, "counts": version.counts}


def _version(data: dict) -> Version:
    identity = data["identity"]
    return Version(tuple(int(x) for x in identity) if identity else None, int(data["generation"]),
                   {str(k): int(v) for k, v in data["counts"].items()})


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _ipc_table(data: memoryview) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _write_durably(path: Path, parts: list[bytes], mode: int) -> None:
    with open(path, "xb", opener=lambda name, flags: os.open(name, flags, mode)) as handle:
        for part in parts:
            handle.write(part)
        handle.flush()
        os.fsync(handle.fileno())
