"""Shared fixtures: repository paths, the real embedder, indexed stores built once per session, a CLI runner.

Indexing loads the real models and costs seconds, so stores are built once per session; a test that
changes a store works on a copy (`demo_store_copy`, `small_store_copy`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from hippograph import Config, Memory
from hippograph.cli import main as cli_main
from hippograph.pipeline.embed import embedder_for

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO_ROOT / "examples" / "demo"

# Three short documents that share entities (for graph records) and index in well under a second.
SMALL_DOCS = [
    {"id": "ada", "title": "Ada Marsh", "text": "Ada Marsh was an engineer born in Kettleby. She designed the Veloria Bridge in 1897."},
    {"id": "kettleby", "title": "Kettleby", "text": "Kettleby is a town in the Orne valley. Tobias Wren was its mayor in 1902."},
    {"id": "gazette", "title": "Kettleby Gazette", "text": "The Kettleby Gazette is a newspaper founded by Tobias Wren in 1880."},
]

# Every table of a store with an embedding; what each row is derived from.
DERIVED_TABLES = (
    "passages", "passage_embeddings", "triples", "passage_phrases", "passage_entities", "facts", "phrases", "synonyms",
    "memories", "memory_keys",
)
ALL_TABLES = ("documents",) + DERIVED_TABLES


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: builds a wheel or does other slow work (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "llm_server: needs a real LLM server (make test-llm; `make test` deselects them)")


# ---- paths ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def demo_corpus() -> Path:
    return DEMO_DIR / "corpus.jsonl"


@pytest.fixture(scope="session")
def demo_questions() -> Path:
    return DEMO_DIR / "questions.jsonl"


@pytest.fixture(scope="session")
def demo_records(demo_corpus) -> dict[str, dict]:
    records = [json.loads(line) for line in demo_corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: r for r in records}


@pytest.fixture(scope="session")
def demo_question_records(demo_questions) -> list[dict]:
    return [json.loads(line) for line in demo_questions.read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- models ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def config() -> Config:
    return Config()


@pytest.fixture(scope="session")
def embedder(config):
    """The process-wide embedder, loaded with the same arguments `Memory` uses (so it is shared)."""
    return embedder_for(config)


# ---- stores ---------------------------------------------------------------------------------------------


def copy_store(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + ".wal")
    if wal.exists():
        shutil.copyfile(wal, target.with_name(target.name + ".wal"))
    return target


def table_counts(path: Path, tables=ALL_TABLES) -> dict[str, int]:
    """Row counts, read with duckdb directly (read-only), independent of the Store class."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def sql(path: Path, query: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


# Row keys of the tables with an embedding column, to line their vectors up between two stores.
EMBEDDING_KEYS = {
    "passage_embeddings": "passage_id", "phrases": "phrase", "facts": "subject, predicate, object",
    "memory_keys": "doc_id, position",
}


def store_contents(path: Path) -> dict[str, object]:
    """Everything a store holds, independent of how it was built: every table's rows sorted (without
    load timestamps and the write counter), and each embedding table's vectors by key."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = {"meta": con.execute("SELECT * FROM meta WHERE key <> 'generation' ORDER BY ALL").fetchall()}
        for table in ALL_TABLES:
            columns = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall() if c not in ("embedding", "ingested_at", "indexed_at")]
            columns = ["round(similarity, 3)" if c == "similarity" else c for c in columns]
            rows[table] = con.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY ALL").fetchall()
        for table, key in EMBEDDING_KEYS.items():
            ordered = con.execute(f"SELECT embedding FROM {table} ORDER BY {key}").fetchall()
            rows[f"{table}.vectors"] = np.array([v for (v,) in ordered], dtype=np.float32)
        return rows
    finally:
        con.close()


def assert_same_store(a: Path, b: Path, min_cosine: float = 0.9999) -> None:
    """Same rows in every table; every vector the same up to `min_cosine` (texts embedded in other
    batches differ in the last bits, more so in bfloat16)."""
    left, right = store_contents(a), store_contents(b)
    for name in left:
        if name.endswith(".vectors"):
            assert left[name].shape == right[name].shape, name
            if len(left[name]):
                cosine = (left[name] * right[name]).sum(axis=1)
                norms = np.linalg.norm(left[name], axis=1) * np.linalg.norm(right[name], axis=1)
                assert np.all(cosine[norms > 0] >= min_cosine * norms[norms > 0]), name
                assert np.array_equal(norms > 0, np.linalg.norm(right[name], axis=1) > 0), name
        else:
            assert left[name] == right[name], name


class StoreTools:
    """Helpers for looking into a store file with duckdb directly, independent of `Store`."""

    ALL_TABLES = ALL_TABLES
    DERIVED_TABLES = DERIVED_TABLES
    copy = staticmethod(copy_store)
    contents = staticmethod(store_contents)
    assert_same = staticmethod(assert_same_store)
    counts = staticmethod(table_counts)
    sql = staticmethod(sql)


@pytest.fixture(scope="session")
def store_tools() -> type[StoreTools]:
    return StoreTools


@pytest.fixture(scope="session")
def small_docs() -> list[dict]:
    return [dict(d) for d in SMALL_DOCS]


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory, demo_corpus) -> Path:
    """The 42-passage demo corpus, indexed once. Read it only; use `demo_store_copy` to change it."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    report = Memory(path).index_paths([demo_corpus])
    assert report.indexed == 42
    return path


@pytest.fixture
def demo_store_copy(demo_store, tmp_path) -> Path:
    return copy_store(demo_store, tmp_path / "demo.duckdb")


@pytest.fixture(scope="session")
def small_store(tmp_path_factory) -> Path:
    """SMALL_DOCS, indexed once. Read it only; use `small_store_copy` to change it."""
    path = tmp_path_factory.mktemp("small") / "small.duckdb"
    report = Memory(path).index(SMALL_DOCS)
    assert report.indexed == len(SMALL_DOCS)
    return path


@pytest.fixture
def small_store_copy(small_store, tmp_path) -> Path:
    return copy_store(small_store, tmp_path / "small.duckdb")


# ---- the command line -----------------------------------------------------------------------------------


@pytest.fixture
def cli(capsys):
    """Run `hippograph.cli.main(args)` in-process: returns (exit code, stdout, stderr)."""

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()  # drop anything printed before
        code = cli_main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def cli_subprocess(tmp_path):
    """Run `python -m hippograph.cli ...` in a fresh process with cwd=tmp_path and no HIPPOGRAPH_DB.

    `unprivileged=True`: as root, without the capabilities that override file permissions, so that a
    read-only file or directory binds the process as it binds any other user."""

    def run(
        *args: object, stdin: bytes | None = None, timeout: float = 300, unprivileged: bool = False
    ) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in ("HIPPOGRAPH_DB", "PYTHONPATH")}
        prefix = []
        if unprivileged and os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root, without setpriv to drop root's file-permission override")
            prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
        return subprocess.run(
            [*prefix, sys.executable, "-m", "hippograph.cli", *map(str, args)],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            cwd=tmp_path,
            env=env,
            timeout=timeout,
        )

    return run


@pytest.fixture(autouse=True)
def _no_default_store_env(monkeypatch):
    """Tests pass --db or set HIPPOGRAPH_DB themselves; never let the caller's environment leak in."""
    monkeypatch.delenv("HIPPOGRAPH_DB", raising=False)
