"""Read documents from files, directory trees and stdin, with errors that name the file and line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from hippograph.errors import InputError
from hippograph.types import Document, content_hash

log = logging.getLogger("hippograph")

TEXT_SUFFIXES = {".txt", ".md"}
JSONL_SUFFIXES = {".jsonl"}
DEFAULT_MAX_DOCUMENT_BYTES = 5_000_000


def read_documents(
    paths: Sequence[str | Path], stdin: IO[bytes] | None = None, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
) -> list[Document]:
    """Documents from every path (`-` is stdin), in a stable order, rejecting duplicate ids.

    Text and Markdown files get their path (relative to the directory given) as id, so an edited file
    replaces its earlier version; JSONL lines use their `id`, or a content hash when they have none.
    """
    documents: list[Document] = []
    origins: dict[str, str] = {}
    for path in paths:
        for origin, document in _read_path(path, stdin, max_bytes):
            if document.doc_id in origins:
                raise InputError(
                    f"duplicate document id {document.doc_id!r}: {origins[document.doc_id]} and {origin}"
                )
            origins[document.doc_id] = origin
            documents.append(document)
    return documents


def documents_from_records(records: Iterable[dict[str, Any] | Document]) -> list[Document]:
    """Documents from Python dicts ({"id"?, "title"?, "text", ...}) or Documents, for the library API."""
    documents, seen = [], set()
    for number, record in enumerate(records, start=1):
        document = record if isinstance(record, Document) else _document_from_record(record, f"record {number}")
        if document.doc_id in seen:
            raise InputError(f"duplicate document id {document.doc_id!r} (record {number})")
        seen.add(document.doc_id)
        documents.append(document)
    return documents


def _read_path(path: str | Path, stdin: IO[bytes] | None, max_bytes: int) -> Iterator[tuple[str, Document]]:
    if str(path) == "-":
        if stdin is None:
            raise InputError("'-' names standard input, but none was given")
        yield from _read_stream("<stdin>", stdin.read(max_bytes + 1), max_bytes)
        return
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or directory: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES)
        files, outside = _inside(path, files)
        if not files:
            raise InputError(f"{path} holds no .txt, .md or .jsonl files" + (" but links to files outside it" if outside else ""))
        for link in outside:
            log.warning("hippograph: skipped %s: a link to %s, outside %s", link, link.resolve(), path)
        for file in files:
            yield from _read_file(file, file.relative_to(path).as_posix(), max_bytes)
    else:
        yield from _read_file(path, path.name, max_bytes)


def _inside(root: Path, files: list[Path]) -> tuple[list[Path], list[Path]]:
    """The files that are inside `root` once symbolic links are resolved, and those that are not: a
    folder's links to files elsewhere (say /etc) are not read, so indexing a folder reads only it."""
    real_root = root.resolve()
    inside: list[Path] = []
    outside: list[Path] = []
    for file in files:
        (inside if file.resolve().is_relative_to(real_root) else outside).append(file)
    return inside, outside


def _read_file(path: Path, doc_id: str, max_bytes: int) -> Iterator[tuple[str, Document]]:
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES | JSONL_SUFFIXES:
        raise InputError(f"{path}: unsupported file type {suffix or '(none)'}; use .txt, .md or .jsonl")
    size = path.stat().st_size
    if suffix in TEXT_SUFFIXES and size > max_bytes:
        raise InputError(
            f"{path} is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit for one document. "
            "Split it into smaller files, or raise the limit with --max-document-mb."
        )
    raw = path.read_bytes()
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(str(path), _decode(str(path), raw), max_bytes)
    else:
        text = _decode(str(path), raw)
        yield str(path), _text_document(doc_id, text, path.stem, str(path))  # id = path below the root


def _read_stream(name: str, raw: bytes, max_bytes: int) -> Iterator[tuple[str, Document]]:
    if len(raw) > max_bytes:
        raise InputError(f"{name} is over the {max_bytes / 1e6:.0f} MB limit for one document")
    text = _decode(name, raw)
    if text.lstrip().startswith("{"):
        yield from _read_jsonl(name, text, max_bytes)
    else:
        yield name, _text_document(None, text, "", name)


def _decode(name: str, raw: bytes) -> str:
    if not raw.strip():
        raise InputError(f"{name} is empty")
    if b"\x00" in raw[:8192]:
        raise InputError(f"{name} looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InputError(f"{name} is not valid UTF-8 (bad byte at offset {error.start}); convert it to UTF-8") from None


def _text_document(doc_id: str | None, text: str, fallback_title: str, origin: str) -> Document:
    title, body = _split_markdown_title(text, fallback_title)
    if not body.strip():
        raise InputError(f"{origin} has a title but no text")
    # No metadata: the same file reached by another path must hash the same and cost nothing.
    return Document(doc_id or content_hash(title, body), title, body)


def _split_markdown_title(text: str, fallback: str) -> tuple[str, str]:
    """A leading '# Heading' line is the title; otherwise the file name is."""
    stripped = text.lstrip()
    first, _, rest = stripped.partition("\n")
    if first.startswith("# "):
        return first[2:].strip(), rest.strip()
    return fallback, text.strip()


def _parse_jsonl(name: str, text: str) -> Iterator[tuple[str, Any]]:
    """("name:line", parsed value) for every non-blank line, with errors that name the line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{where}: malformed JSON ({error.msg} at column {error.colno})") from None
        except RecursionError:
            raise InputError(f"{where}: JSON nested too deeply") from None
        yield where, value


def _read_jsonl(name: str, text: str, max_bytes: int) -> Iterator[tuple[str, Document]]:
    for where, record in _parse_jsonl(name, text):
        document = _document_from_record(record, where)
        if len(document.text.encode("utf-8")) > max_bytes:
            raise InputError(f"{where}: text is over the {max_bytes / 1e6:.0f} MB limit for one document")
        yield where, document


def read_jsonl_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """("file:line", object) for every non-blank line of a JSONL file, with errors that name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    for where, record in _parse_jsonl(str(path), _decode(str(path), path.read_bytes())):
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object")
        yield where, record


def _document_from_record(record: Any, where: str) -> Document:
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object with a \"text\" field")
    text, title, doc_id = record.get("text"), record.get("title", ""), record.get("id")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: \"text\" must be a non-empty string")
    if not isinstance(title, str):
        raise InputError(f"{where}: \"title\" must be a string")
    if doc_id is not None:
        doc_id = document_id(doc_id, where)
    metadata = {k: v for k, v in record.items() if k not in {"id", "title", "text"}}
    try:
        json.dumps(metadata, sort_keys=True, default=str)  # as the document is hashed and stored
    except (RecursionError, TypeError, ValueError) as error:
        raise InputError(f"{where}: metadata cannot be stored as JSON ({type(error).__name__})") from None
    return Document(doc_id if doc_id is not None else content_hash(title, text), title, text, metadata)


def document_id(value: Any, where: str, field: str = "id") -> str:
    """A record's document id as stored: a non-empty string, or an integer as its digits. Not true or
    1.5, which would be stored as "True" and "1.5" and never match the id a user types."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        shown = json.dumps(value, default=repr)
        raise InputError(f"{where}: \"{field}\" must be a non-empty string or an integer, not {shown[:40]}")
    return str(value)
