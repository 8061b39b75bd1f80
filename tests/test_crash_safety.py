"""Killing an index run with SIGKILL, during a stage or in the middle of the commit, loses nothing that
was published before, and the next run finishes the work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hippograph import Memory
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.sources import read_documents
from hippograph.registry import Extractor, extractors

# Index the corpus through shards, and SIGKILL this very process at a chosen point of the run.
KILLED_RUN = """
import os, signal, sys
from hippograph import Memory
from hippograph.indexing import store
from hippograph.registry import Extractor, extractors

db, corpus, work, kill_at = sys.argv[1:5]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kill_at == "commit":  # inside the write transaction: documents, passages and vectors written, the graph not
    insert = store.Store._insert
    def insert_then_die(self, table, rows):
        insert(self, table, rows)
        if table == "triples":
            die()
    store.Store._insert = insert_then_die
else:  # during the second shard's extraction stage
    spacy, calls = extractors.get("spacy"), []
    def extract_then_die(*args):
        calls.append(1)
        if len(calls) == 2:
            die()
        return spacy(*args)
    extractors.register("spacy", Extractor("spacy", spacy.version, extract_then_die))
Memory(db).index_paths([corpus], work_dir=work, shard_size=8)
"""


@pytest.fixture(scope="module")
def half_and_full(tmp_path_factory, demo_corpus):
    """A store holding the first half of the demo corpus (what was published before the killed run), and
    a store of the whole corpus indexed without interruption."""
    documents = read_documents([demo_corpus])
    root = tmp_path_factory.mktemp("crash")
    half, full = root / "half.duckdb", root / "full.duckdb"
    index_documents(half, documents[:20])
    index_documents(full, documents)
    return half, full


def killed_run(db: Path, corpus: Path, work: Path, kill_at: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(db), str(corpus), str(work), kill_at],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == -9, f"the run was not killed ({result.returncode}): {result.stderr[-2000:]}"


def test_sigkill_during_a_stage_and_during_the_commit_then_resume(
    tmp_path, demo_corpus, half_and_full, store_tools, monkeypatch
):
    half, full = half_and_full
    db, work = store_tools.copy(half, tmp_path / "store.duckdb"), tmp_path / "work"
    published = store_tools.copy(half, tmp_path / "published.duckdb")

    killed_run(db, demo_corpus, work, "stage")
    store_tools.assert_same(db, published, min_cosine=0.999999)
    finished = sorted(p.relative_to(work).as_posix() for p in work.rglob("*.parquet"))
    assert any(name.endswith("/facts.parquet") for name in finished), "the first shard's extraction was kept"

    killed_run(db, demo_corpus, work, "commit")
    assert Path(f"{db}.next").exists(), "killed inside the commit, its staging copy is left behind"
    store_tools.assert_same(db, published, min_cosine=0.999999)
    answer = Memory(db).retrieve("Who designed the Veloria Bridge?", mode="hipporag")
    assert answer.passages, "queries answer from the last published store"

    # The next run only commits: every stage finished before the kill.
    def no_more_extraction(*args):
        raise AssertionError("a finished stage ran again")

    spacy = extractors.get("spacy")
    monkeypatch.setitem(extractors._entries, "spacy", Extractor("spacy", spacy.version, no_more_extraction))
    report = Memory(db).index_paths([demo_corpus], work_dir=work, shard_size=8)
    assert (report.indexed, report.unchanged) == (22, 20)
    store_tools.assert_same(db, full)
    assert not Path(f"{db}.next").exists()
    assert list((work / "shards").iterdir()) == [], "committed shards are removed"
