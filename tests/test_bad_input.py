"""Bad input through the command line: a non-zero exit, one clear message on stderr, no traceback, and nothing
half-written (an existing store is unchanged; no store file appears where there was none)."""

from __future__ import annotations

import hashlib
import json
import os
import threading

import duckdb
import pytest

from hippograph.indexing.store import update_store


def assert_one_clear_error(code: int, out: str, err: str, *words: str) -> None:
    assert code != 0
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hippograph: error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])


def stats_json(cli, db) -> dict:
    code, out, err = cli("stats", "--json", "--db", db)
    assert code == 0, err
    return json.loads(out)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- bad documents to index -----------------------------------------------------------------------------


def missing_path(tmp_path):
    return [tmp_path / "no-such-dir"], ["no such file or directory", "no-such-dir"]


def empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    return [path], ["empty.txt", "is empty"]


def whitespace_file(tmp_path):
    path = tmp_path / "blank.md"
    path.write_bytes(b"  \n\n\t \n")
    return [path], ["blank.md", "is empty"]


def binary_file(tmp_path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    return [path], ["image.txt", "binary"]


def non_utf8_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café in Dunmere, Orne valley.".encode("latin-1"))
    return [path], ["latin1.txt", "not valid UTF-8", "offset 3"]


def ten_mb_file(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_bytes(b"The Orne valley is long. " * 400_000)
    return [path], ["huge.txt", "10.0 MB", "5 MB limit", "--max-document-mb"]


def malformed_jsonl(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "Fine."}\n{"id": "b", "text": "Fine too."}\n{"id": "c", "text": "Broken\n')
    return [path], ["corpus.jsonl:3", "malformed JSON"]


def jsonl_without_text(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "a", "text": "Fine."}\n{"id": "b", "body": "No text field."}\n')
    return [path], ["corpus.jsonl:2", '"text"']


def duplicate_ids(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "dup-7", "text": "One."}\n{"id": "other", "text": "Two."}\n{"id": "dup-7", "text": "Three."}\n')
    return [path], ["duplicate", "'dup-7'"]


def duplicate_ids_across_files(tmp_path):
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "notes.txt").write_text(f"Notes from {sub}.")
    return [tmp_path / "one", tmp_path / "two"], ["duplicate", "'notes.txt'"]


def good_file_then_bad_file(tmp_path):
    """A valid document before a bad one: the batch is all or nothing."""
    (tmp_path / "good.txt").write_text("Port Veloria is a harbour town at the mouth of the Orne.")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00b\x00a\x00d")
    return [tmp_path / "good.txt", tmp_path / "bad.txt"], ["bad.txt"]


def boolean_id(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": true, "text": "Stored as True before."}\n')
    return [path], ["corpus.jsonl:1", '"id" must be a non-empty string or an integer, not true']


def deeply_nested_metadata(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"id": "d", "text": "Deep.", "meta": ' + "[" * 5000 + "]" * 5000 + "}\n")
    return [path], ["deep.jsonl:1", "nested too deeply"]


def unsupported_file(tmp_path):
    path = tmp_path / "paper.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    return [path], ["paper.pdf", "unsupported file type"]


BAD_DOCUMENTS = [
    missing_path, empty_file, whitespace_file, binary_file, non_utf8_file, ten_mb_file, malformed_jsonl,
    jsonl_without_text, duplicate_ids, duplicate_ids_across_files, good_file_then_bad_file, unsupported_file,
    deeply_nested_metadata, boolean_id,
]


@pytest.mark.parametrize("make", BAD_DOCUMENTS, ids=lambda f: f.__name__)
def test_bad_documents_leave_an_existing_store_unchanged(cli, small_store_copy, tmp_path, make):
    inputs_dir = tmp_path / "inputs"
    inputs_dir.mkdir()
    paths, words = make(inputs_dir)
    before = stats_json(cli, small_store_copy)
    code, out, err = cli("index", *paths, "--db", small_store_copy)
    assert_one_clear_error(code, out, err, *words)
    assert stats_json(cli, small_store_copy) == before


@pytest.mark.parametrize("make", BAD_DOCUMENTS, ids=lambda f: f.__name__)
def test_bad_documents_create_no_store(cli, tmp_path, make):
    inputs_dir = tmp_path / "inputs"
    inputs_dir.mkdir()
    paths, words = make(inputs_dir)
    db = tmp_path / "new.duckdb"
    code, out, err = cli("index", *paths, "--db", db, "--json")
    assert_one_clear_error(code, out, err, *words)
    assert not db.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs"]


def test_bad_stdin_is_rejected(cli, small_store_copy, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": \n')))
    before = stats_json(cli, small_store_copy)
    assert_one_clear_error(*cli("index", "-", "--db", small_store_copy), "<stdin>:2", "malformed JSON")
    assert stats_json(cli, small_store_copy) == before


def test_ten_mb_file_is_rejected_from_a_real_process(cli_subprocess, tmp_path):
    (tmp_path / "huge.txt").write_bytes(b"The Orne valley is long. " * 400_000)
    result = cli_subprocess("index", "huge.txt", "--db", "new.duckdb")
    assert_one_clear_error(result.returncode, result.stdout.decode(), result.stderr.decode(), "--max-document-mb")
    assert result.returncode == 1
    assert not (tmp_path / "new.duckdb").exists()


# ---- bad stores to query --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bm25", "hipporag"])
def test_query_against_a_missing_store(cli, tmp_path, mode):
    db = tmp_path / "missing.duckdb"
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--mode", mode, "--db", db)
    assert_one_clear_error(code, out, err, "no store at", str(db), "hippograph index")
    assert not db.exists()
    assert_one_clear_error(*cli("stats", "--db", db), "no store at")
    assert not db.exists()


def test_query_against_a_missing_default_store(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_clear_error(*cli("query", "Who?", "--mode", "bm25"), "no store at hippograph.duckdb")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["bm25", "dense", "hipporag"])
def test_query_against_an_empty_store(cli, tmp_path, mode):
    db = tmp_path / "empty.duckdb"
    with update_store(db):
        pass  # a store file with its schema and no documents
    before = stats_json(cli, db)
    assert before["documents"] == 0
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--mode", mode, "--db", db)
    assert_one_clear_error(code, out, err, "holds no passages", "hippograph index")
    assert stats_json(cli, db) == before


def test_query_questions_against_an_emptied_store(cli, small_store_copy, tmp_path):
    assert cli("delete", "ada", "kettleby", "gazette", "--db", small_store_copy)[0] == 0
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who designed the Veloria Bridge?"}\n')
    before = stats_json(cli, small_store_copy)
    code, out, err = cli("query", "--questions", questions, "--mode", "dense", "--json", "--db", small_store_copy)
    assert_one_clear_error(code, out, err, "holds no passages")
    assert stats_json(cli, small_store_copy) == before


@pytest.fixture
def newer_store(small_store_copy):
    con = duckdb.connect(str(small_store_copy))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    return small_store_copy


@pytest.mark.parametrize(
    "args",
    [
        ("query", "Who designed the Veloria Bridge?", "--mode", "bm25"),
        ("query", "Who designed the Veloria Bridge?", "--mode", "hipporag", "--json"),
        ("stats", "--json"),
        ("delete", "ada"),
        ("index", "NEW_DOC"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_store_from_a_newer_version(cli, newer_store, tmp_path, args):
    new_doc = tmp_path / "new.txt"
    new_doc.write_text("Port Veloria is a harbour town.")
    args = [str(new_doc) if a == "NEW_DOC" else a for a in args]
    before = sha256(newer_store)
    code, out, err = cli(*args, "--db", newer_store)
    assert_one_clear_error(code, out, err, "newer hippograph", "schema 99", "Upgrade")
    assert sha256(newer_store) == before


def test_store_from_a_newer_version_from_a_real_process(cli_subprocess, newer_store):
    before = sha256(newer_store)
    result = cli_subprocess("query", "Who?", "--mode", "dense", "--db", newer_store)
    assert_one_clear_error(result.returncode, result.stdout.decode(), result.stderr.decode(), "newer")
    assert result.returncode == 1
    assert sha256(newer_store) == before


def test_a_file_that_is_not_a_store(cli, tmp_path):
    db = tmp_path / "notes.txt"
    db.write_text("my notes, not a database\n" * 200)
    before = sha256(db)
    assert_one_clear_error(*cli("query", "Who?", "--mode", "bm25", "--db", db), "cannot open", "notes.txt")
    assert_one_clear_error(*cli("stats", "--db", db), "cannot open")
    assert sha256(db) == before


def test_a_directory_as_store(cli, tmp_path, small_docs):
    (tmp_path / "doc.txt").write_text("Port Veloria is a harbour town.")
    assert_one_clear_error(*cli("index", tmp_path / "doc.txt", "--db", tmp_path), "is a directory")
    assert_one_clear_error(*cli("stats", "--db", tmp_path), "is a directory")


# ---- bad question files ---------------------------------------------------------------------------------


def test_query_questions_file_with_malformed_json(cli, demo_store, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "Who?"}\n{"question": \n')
    assert_one_clear_error(*cli("query", "--questions", questions, "--db", demo_store), "questions.jsonl:2", "malformed JSON")


@pytest.mark.parametrize("command", ["query", "eval"])
def test_question_file_that_is_not_utf8(cli, demo_store_copy, repo_root, tmp_path, command):
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes('{"question": "Où est né le créateur du pont?", "supporting_ids": ["demo-18"]}\n'.encode("latin-1"))
    if command == "query":
        args = ["query", "--questions", questions, "--mode", "bm25", "--db", demo_store_copy]
    else:
        args = ["eval", "--corpus", repo_root / "examples/demo/corpus.jsonl", "--questions", questions, "--db", demo_store_copy]
    code, out, err = cli(*args)  # must be an error message, not an uncaught UnicodeDecodeError
    assert_one_clear_error(code, out, err, "questions.jsonl", "UTF-8")


def test_eval_questions_without_supporting_ids(cli, repo_root, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"id": "q1", "question": "Who?", "supporting_ids": ["demo-01"]}\n{"id": "q2", "question": "What?"}\n')
    db = tmp_path / "eval.duckdb"
    code, out, err = cli("eval", "--corpus", repo_root / "examples/demo/corpus.jsonl", "--questions", questions, "--db", db)
    assert_one_clear_error(code, out, err, "questions.jsonl:2", "supporting_ids")
    assert not db.exists()  # questions are checked before the corpus is indexed


# ---- files that are not hippograph stores ---------------------------------------------------------------


def sqlite_file(tmp_path):
    import sqlite3

    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    return path, ["notes.db", "not a hippograph store"]


def motherduck_name(tmp_path):
    return "md:notes", ["md:notes", "not a hippograph store", "local DuckDB files"]


def duckdb_with_other_tables(tmp_path):
    path = tmp_path / "other.duckdb"
    connection = duckdb.connect(str(path))
    connection.execute("CREATE TABLE meta (name VARCHAR, size INTEGER); CREATE TABLE documents (path VARCHAR)")
    connection.close()
    return path, ["other.duckdb", "not a hippograph store", "documents, meta"]


def schema_version_not_a_number(tmp_path):
    path = tmp_path / "odd.duckdb"
    with update_store(path):
        pass
    connection = duckdb.connect(str(path))
    connection.execute("UPDATE meta SET value = 'one' WHERE key = 'schema_version'")
    connection.close()
    return path, ["odd.duckdb", "not a hippograph store", "'one'"]


NOT_STORES = [sqlite_file, motherduck_name, duckdb_with_other_tables, schema_version_not_a_number]


@pytest.mark.parametrize(
    "args",
    [("stats",), ("query", "Who?", "--mode", "bm25"), ("delete", "a"), ("index", "DOC"), ("import-triples", "TRIPLES")],
    ids=lambda a: a[0],
)
@pytest.mark.parametrize("make", NOT_STORES, ids=lambda f: f.__name__)
def test_a_file_that_is_not_a_hippograph_store_is_refused(cli, tmp_path, monkeypatch, make, args):
    monkeypatch.chdir(tmp_path)  # an "md:" name must not become a file either
    db, words = make(tmp_path)
    (tmp_path / "doc.txt").write_text("Port Veloria is a harbour town.")
    (tmp_path / "t.jsonl").write_text('{"doc_id": "a", "subject": "Ada", "predicate": "built", "object": "Veloria Bridge"}\n')
    files = lambda: {p.name: sha256(p) for p in tmp_path.iterdir() if not p.name.endswith(".lock")}  # noqa: E731
    before = files()
    args = [{"DOC": "doc.txt", "TRIPLES": "t.jsonl"}.get(a, a) for a in args]
    assert_one_clear_error(*cli(*args, "--db", db), *words)
    assert files() == before


# ---- store permissions ----------------------------------------------------------------------------------

WRITES = [
    ("index", "DOC"),
    ("delete", "ada"),
    ("import-triples", "TRIPLES"),
]


def write_args(args, tmp_path) -> list[str]:
    """The command with its input files made in tmp_path."""
    doc, triples = tmp_path / "doc.txt", tmp_path / "t.jsonl"
    doc.write_text("Port Veloria is a harbour town at the mouth of the Orne.")
    triples.write_text('{"doc_id": "ada", "subject": "Ada Marsh", "predicate": "lived in", "object": "Port Veloria"}\n')
    return [str({"DOC": doc, "TRIPLES": triples}.get(a, a)) for a in args]


@pytest.mark.parametrize("mode", [0o600, 0o640], ids=oct)
@pytest.mark.parametrize("args", WRITES, ids=lambda a: a[0])
def test_a_write_keeps_the_store_mode_and_owner(cli, small_store_copy, tmp_path, mode, args):
    os.chown(small_store_copy, 65534, 65534)  # nobody: root may give a file away, and keeps that on a write
    small_store_copy.chmod(mode)
    before = small_store_copy.stat()
    code, out, err = cli(*write_args(args, tmp_path), "--db", small_store_copy)
    assert code == 0, err
    after = small_store_copy.stat()
    assert after.st_ino != before.st_ino  # a new version was published
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == (mode, 65534, 65534)


def test_the_copy_a_writer_writes_is_as_private_as_the_store(small_store_copy):
    small_store_copy.chmod(0o600)
    staging = small_store_copy.with_name(small_store_copy.name + ".next")
    with update_store(small_store_copy) as store:
        assert staging.stat().st_mode & 0o077 == 0, "others may not read the copy while it is written"
        store.delete_documents(["ada"])
    assert small_store_copy.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args", WRITES, ids=lambda a: a[0])
def test_a_read_only_store_is_not_replaced(cli, small_store_copy, tmp_path, args):
    small_store_copy.chmod(0o444)  # root may write it, but nobody should: hippograph refuses
    before = (sha256(small_store_copy), small_store_copy.stat().st_ino)
    assert_one_clear_error(*cli(*write_args(args, tmp_path), "--db", small_store_copy), "small.duckdb", "read-only")
    assert (sha256(small_store_copy), small_store_copy.stat().st_ino) == before
    assert small_store_copy.stat().st_mode & 0o777 == 0o444


@pytest.mark.parametrize("args", WRITES, ids=lambda a: a[0])
def test_a_store_in_a_read_only_directory_is_refused(cli_subprocess, small_store, store_tools, tmp_path, args):
    folder = tmp_path / "shared"
    folder.mkdir()
    db = store_tools.copy(small_store, folder / "small.duckdb")
    before = sha256(db)
    folder.chmod(0o555)
    try:
        result = cli_subprocess(*write_args(args, tmp_path), "--db", db, unprivileged=True, timeout=120)
    finally:
        folder.chmod(0o755)
    assert_one_clear_error(result.returncode, result.stdout.decode(), result.stderr.decode(), "may not write", "shared")
    assert result.returncode == 1
    assert sha256(db) == before
    assert [p.name for p in folder.iterdir()] == ["small.duckdb"]


# ---- export over the store or an existing file ----------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", ".next", ".prev", ".delta", ".lock"])
@pytest.mark.parametrize("force", [False, True])
def test_export_graph_never_writes_over_the_store_files(cli, small_store_copy, force, suffix):
    target = small_store_copy.with_name(small_store_copy.name + suffix)
    target.touch()
    before = {p.name: sha256(p) for p in small_store_copy.parent.iterdir()}
    args = ["export-graph", "--db", small_store_copy, "--out", target] + (["--force"] if force else [])
    assert_one_clear_error(*cli(*args), str(target), "store's own file")
    assert {p.name: sha256(p) for p in small_store_copy.parent.iterdir()} == before


def test_export_graph_overwrites_an_existing_file_only_when_told(cli, small_store, tmp_path):
    out = tmp_path / "graph.graphml"
    out.write_text("my own notes")
    assert_one_clear_error(*cli("export-graph", "--db", small_store, "--out", out), "graph.graphml", "exists", "--force")
    assert out.read_text() == "my own notes"
    code, _, err = cli("export-graph", "--db", small_store, "--out", out, "--force")
    assert code == 0, err
    assert out.read_text().startswith("<?xml")


# ---- configuration out of range -------------------------------------------------------------------------


@pytest.mark.parametrize("options", ['{"damping": 5}', '{"damping": NaN}', '{"linking_top_k": -1}'])
def test_a_config_option_out_of_range_is_refused(cli, small_store, options):
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--db", small_store, "--config", options, "--json")
    assert_one_clear_error(code, out, err, "config", "must be at least")


# ---- command-line values and output ---------------------------------------------------------------------


@pytest.mark.parametrize("module", ["pip", "pytest"])
def test_a_spacy_model_that_is_not_a_spacy_pipeline(cli, tmp_path, module):
    (tmp_path / "doc.txt").write_text("Port Veloria is a harbour town.")
    db = tmp_path / "new.duckdb"
    config = json.dumps({"spacy_model": module})
    assert_one_clear_error(*cli("index", tmp_path / "doc.txt", "--db", db, "--config", config), repr(module), "not a spaCy pipeline")
    assert not db.exists()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_max_document_mb_must_be_a_positive_number(cli, tmp_path, value):
    (tmp_path / "doc.txt").write_text("Port Veloria is a harbour town.")
    db = tmp_path / "new.duckdb"
    assert_one_clear_error(*cli("index", tmp_path / "doc.txt", "--db", db, "--max-document-mb", value), "--max-document-mb", value)
    assert not db.exists()


def test_output_closed_early_is_one_line_and_exit_1(small_store, tmp_path):
    """`hippograph stats | head -0`: the reader is gone before anything is written."""
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "hippograph.cli", "stats", "--db", small_store],
            stdout=write_end, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120,
        )
    finally:
        os.close(write_end)
    assert_one_clear_error(result.returncode, "", result.stderr.decode(), "output was closed")
    assert result.returncode == 1


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_is_refused(cli, small_store, tmp_path, question):
    assert_one_clear_error(*cli("query", question, "--db", small_store, "--json"), "question must be a non-empty string")
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": question}) + "\n")
    assert_one_clear_error(*cli("query", "--questions", questions, "--db", small_store), "q.jsonl:1", "non-empty")


# ---- a full disk, a busy work directory ---------------------------------------------------------------------


def test_too_little_free_space_for_the_copy_is_one_line_before_writing(cli, small_store_copy, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    before = sha256(small_store_copy)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    code, out, err = cli("delete", "ada", "--db", small_store_copy)
    assert_one_clear_error(code, out, err, "not enough free disk space", str(small_store_copy))
    assert sha256(small_store_copy) == before
    assert not small_store_copy.with_name(small_store_copy.name + ".next").exists()


def test_a_disk_filling_up_during_the_copy_leaves_no_partial_copy(cli, small_store_copy, monkeypatch):
    import errno
    import shutil

    before = sha256(small_store_copy)
    staging = small_store_copy.with_name(small_store_copy.name + ".next")

    def copy_until_full(read, write, length=0):
        write.write(read.read(4096))  # the part that fitted
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", copy_until_full)
    code, out, err = cli("delete", "ada", "--db", small_store_copy)
    assert_one_clear_error(code, out, err, "No space left on device")
    assert not staging.exists(), "the partial copy is removed, so the disk is not kept full"
    assert sha256(small_store_copy) == before


def test_a_work_directory_in_use_by_another_run_is_one_line(cli, small_store_copy, tmp_path):
    from hippograph.pipeline.shards import work_dir_lock

    source = tmp_path / "doc.txt"
    source.write_text("Harrow is a town on the river Dun.", encoding="utf-8")
    work, held, done = tmp_path / "work", threading.Event(), threading.Event()

    def other_run():  # holds the work directory as a run in another thread or process would
        with work_dir_lock(work):
            held.set()
            done.wait(60)

    thread = threading.Thread(target=other_run)
    thread.start()
    held.wait(60)
    try:
        code, out, err = cli("index", source, "--db", small_store_copy, "--work-dir", work)
    finally:
        done.set()
        thread.join()
    assert_one_clear_error(code, out, err, "another run is using the work directory", str(work))
    code, out, err = cli("index", source, "--db", small_store_copy, "--work-dir", work)
    assert code == 0, err


def test_a_work_directory_that_is_a_file_is_one_line(cli, small_store_copy, tmp_path):
    source, work = tmp_path / "doc.txt", tmp_path / "work"
    source.write_text("Harrow is a town on the river Dun.", encoding="utf-8")
    work.write_text("not a directory")
    code, out, err = cli("index", source, "--db", small_store_copy, "--work-dir", work)
    assert_one_clear_error(code, out, err, "is a file")
