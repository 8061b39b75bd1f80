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


# ---- killed while publishing through the twin --------------------------------------------------------
#
# A write replays the last write's changes into `<store>.prev` (renamed `.next` while it is written),
# applies its own, then links the published file as the new `.prev`, writes the new delta and renames
# `.next` over the store. Killed at any of those points, the store must be as it was, and the next
# writer must copy (the twin is gone or no longer matches) and make what an uninterrupted run makes.

KILLED_WRITE = """
import datetime, os, signal, sys
sys.path.insert(0, sys.argv[3])
from synthetic_batches import make_batch
from hippograph.indexing import changes, store

db, point = sys.argv[1], sys.argv[2]
store._now = lambda: datetime.datetime(2024, 1, 1)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "mid_replay":  # inside the replay's transaction
    append = store.Store._append
    def append_then_die(self, table, rows):
        append(self, table, rows)
        if table == "triples":
            die()
    store.Store._append = append_then_die
elif point == "after_replay":  # the twin is the published version; the new change is still to come
    replay = store._replay
    def replay_then_die(*args):
        replay(*args)
        die()
    store._replay = replay_then_die
elif point == "mid_delta":  # half of the new delta is on disk
    def write_half_then_die(path, parts, mode):
        data = b"".join(parts)
        with open(path, "xb") as handle:
            handle.write(data[:len(data) // 2])
            handle.flush()
            os.fsync(handle.fileno())
        die()
    changes._write_durably = write_half_then_die
elif point == "before_publish":  # `.prev` is linked and the delta renamed; `.next` is not yet the store
    store._swap_in = lambda staging, path: die()
with store.update_store(db) as writer:
    writer.write(make_batch(["k", "a"], 5, ["b"]))
"""


@pytest.mark.parametrize("point", ["mid_replay", "after_replay", "mid_delta", "before_publish"])
def test_a_writer_killed_while_publishing_through_the_twin_loses_nothing(tmp_path, point, monkeypatch):
    import datetime

    from synthetic_batches import dump, make_batch

    from hippograph.indexing import store as store_module
    from hippograph.indexing.store import update_store

    monkeypatch.setattr(store_module, "_now", lambda: datetime.datetime(2024, 1, 1))
    db, reference = tmp_path / "store.duckdb", tmp_path / "reference.duckdb"

    def write(path: Path, *batch, copy: bool = False) -> str | None:
        if copy:
            Path(f"{path}.prev").unlink(missing_ok=True)
        with update_store(path) as writer:
            writer.write(make_batch(*batch))
        return writer.published_by

    for batch in ((["a", "b"],), (["c", "d"],), (["e"], 1, ["c"])):
        write(db, *batch)
        write(reference, *batch, copy=True)
    assert Path(f"{db}.prev").exists() and Path(f"{db}.delta").exists()
    published = dump(db)

    run = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(db), point, str(Path(__file__).parent)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, f"the writer was not killed ({run.returncode}): {run.stderr[-2000:]}"
    assert dump(db) == published, "the published store is as it was"
    prev, staging = Path(f"{db}.prev"), Path(f"{db}.next")
    assert staging.exists(), "killed with the twin renamed to `.next`, being written"
    if point == "before_publish":
        assert prev.stat().st_ino == db.stat().st_ino, "the published file is linked as `.prev` already"
    else:
        assert not prev.exists()
    assert Path(f"{db}.delta.next").exists() == (point == "mid_delta")

    assert write(db, ["k", "a"], 5, ["b"]) == "copy", "the twin was spent or no longer matches: copy"
    write(reference, ["k", "a"], 5, ["b"], copy=True)
    assert dump(db) == dump(reference)
    assert write(db, ["f"]) == "twin", "the copy left a twin that the next write replays into"
    write(reference, ["f"], copy=True)
    assert dump(db) == dump(reference)
    assert not Path(f"{db}.next").exists() and not Path(f"{db}.delta.next").exists()
