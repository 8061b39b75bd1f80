"""Publishing by bringing the previous version up to date: a write replays the last write's changes
(`<store>.delta`) into the version the last publish replaced (`<store>.prev`), adds its own, and
renames it over the store. It must make exactly what a full copy makes, fall back to the copy whenever
the twin cannot serve, and leave alone a twin someone still reads.

The batches are made without models (`synthetic_batches`), so a test can afford dozens of writes."""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest
from synthetic_batches import broken_rows, digest, dump, make_batch

from hippograph.indexing import store as store_module
from hippograph.indexing.changes import Change, Delta, Version, read_delta, write_delta
from hippograph.indexing.store import open_store, store_files, update_store
from hippograph.locks import OFD_LOCKS

pytestmark = pytest.mark.skipif(not OFD_LOCKS, reason="the twin needs open file description locks (Linux)")

TESTS = Path(__file__).resolve().parent.parent


def sibling(db: Path, suffix: str) -> Path:
    return db.with_name(db.name + suffix)


@pytest.fixture
def clock(monkeypatch) -> dict:
    """Row timestamps from a clock the test sets, so stores written alike are equal to the last byte."""
    now = {"at": datetime.datetime(2024, 1, 1)}
    monkeypatch.setattr(store_module, "_now", lambda: now["at"])
    return now


def run(db: Path, op: tuple, copy: bool = False) -> str | None:
    """Apply one operation in one `update_store` block; `copy` removes the twin first (a full copy).
    Returns how the write published (None: it published nothing)."""
    if copy:
        sibling(db, ".prev").unlink(missing_ok=True)
    kind, *args = op
    with update_store(db) as store:
        if kind == "write":
            store.write(make_batch(*args))
        elif kind == "delete":
            store.delete_documents(*args)
    return store.published_by


def script(seed: int, length: int) -> list[tuple]:
    """Writes of new documents, new versions of stored ones (with documents removed alongside),
    deletes, deletes of documents not stored, and blocks that write nothing."""
    rng = random.Random(seed)
    ops: list[tuple] = [("write", ["a", "b", "c"], 0)]
    stored = {"a", "b", "c"}
    for step in range(length):
        roll = rng.random()
        if roll < 0.35:
            new = [f"n{step}-{i}" for i in range(rng.randint(1, 3))]
            ops.append(("write", new, 0))
            stored |= set(new)
        elif roll < 0.6 and stored:
            again = rng.sample(sorted(stored), min(2, len(stored)))
            removed = rng.sample(sorted(stored - set(again)), min(1, len(stored - set(again))))
            ops.append(("write", again, step, removed))
            stored -= set(removed)
        elif roll < 0.85 and stored:
            gone = rng.sample(sorted(stored), min(rng.randint(1, 2), len(stored)))
            ops.append(("delete", gone))
            stored -= set(gone)
        elif roll < 0.93:
            ops.append(("delete", ["never-stored"]))
        else:
            ops.append(("nothing",))
    return ops


def test_many_writes_and_deletes_make_exactly_what_full_copies_make(tmp_path, clock):
    fast, full = tmp_path / "fast" / "store.duckdb", tmp_path / "full" / "store.duckdb"
    fast.parent.mkdir(), full.parent.mkdir()
    methods = []
    for number, op in enumerate(script(seed=7, length=40)):
        clock["at"] = datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=number)
        before = dump(full) if full.exists() else None
        methods.append(run(fast, op))
        assert run(full, op, copy=True) in ("new", "copy", None)
        after = dump(full)
        assert dump(fast) == after, f"step {number}: {op}"
        if sibling(fast, ".prev").exists():
            assert dump(sibling(fast, ".prev")) == before, f"step {number}: the twin is the version replaced"
        assert broken_rows(fast) == {}, f"step {number}: {op}"
    published = [m for m in methods if m is not None]
    assert published[:2] == ["new", "copy"] and set(published[2:]) == {"twin"}, methods
    assert len(published) > 25
    assert any(op[0] == "delete" for op in script(7, 40)) and None in methods


def written(db: Path, clock: dict, ops: list[tuple], copy: bool = False) -> list[str | None]:
    methods = []
    for number, op in enumerate(ops):
        clock["at"] = datetime.datetime(2024, 1, 1) + datetime.timedelta(seconds=number)
        methods.append(run(db, op, copy))
    return methods


OPS = [("write", ["a", "b"], 0), ("write", ["c", "d"], 0), ("write", ["a"], 1, ["d"]), ("delete", ["b"]),
       ("write", ["e"], 0)]


def remove_twin(db: Path) -> None:
    sibling(db, ".prev").unlink()


def replace_twin_by_a_copy(db: Path) -> None:  # same bytes, another file: its delta no longer names it
    prev = sibling(db, ".prev")
    shutil.copyfile(prev, prev.with_name("tmp"))
    os.replace(prev.with_name("tmp"), prev)


def damage_delta(db: Path) -> None:
    delta = sibling(db, ".delta")
    data = bytearray(delta.read_bytes())
    data[-10] ^= 0xFF
    delta.write_bytes(bytes(data))


def remove_delta(db: Path) -> None:
    sibling(db, ".delta").unlink()


def delta_of_another_version(db: Path) -> None:  # the delta says the twin is a generation it is not
    delta = read_delta(sibling(db, ".delta"))
    base = Version(delta.base.identity, delta.base.generation + 1, delta.base.counts)
    sibling(db, ".delta").unlink()
    write_delta(sibling(db, ".delta"), Delta(base, delta.target, delta.changes))


@pytest.mark.parametrize("spoil", [remove_twin, replace_twin_by_a_copy, damage_delta, remove_delta, delta_of_another_version])
def test_a_twin_that_cannot_serve_makes_the_write_copy_and_the_next_one_replays(tmp_path, clock, spoil):
    db, reference = tmp_path / "store.duckdb", tmp_path / "reference.duckdb"
    assert written(db, clock, OPS[:3]) == ["new", "copy", "twin"]
    written(reference, clock, OPS[:3], copy=True)
    spoil(db)
    clock["at"] = datetime.datetime(2025, 1, 1)
    assert run(db, OPS[3]) == "copy"
    run(reference, OPS[3], copy=True)
    assert dump(db) == dump(reference)
    clock["at"] = datetime.datetime(2025, 1, 2)
    assert run(db, OPS[4]) == "twin", "the copy left a twin behind"
    run(reference, OPS[4], copy=True)
    assert dump(db) == dump(reference)


def test_the_generation_check_alone_rejects_a_twin_whose_file_matches(tmp_path, clock):
    """`delta_of_another_version` keeps both file identities: what rejects it is the replay's first check."""
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:3])
    delta_of_another_version(db)
    with store_module.connect(sibling(db, ".prev")) as connection:
        with pytest.raises(store_module._StaleTwin, match="generation"):
            store_module._replay(store_module.Store(connection, db, read_only=False), read_delta(sibling(db, ".delta")))


def test_a_store_rewritten_by_another_program_is_copied_with_its_change(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:3])
    with duckdb.connect(str(db)) as other:  # another program writes the published file in place
        other.execute("INSERT INTO meta VALUES ('note', 'added by hand')")
    assert run(db, OPS[3]) == "copy"
    assert ("note", "added by hand") in dump(db)["meta"]
    assert run(db, OPS[4]) == "twin"
    assert ("note", "added by hand") in dump(db)["meta"], "the twin was brought up to the edited version"


def test_a_twin_linked_elsewhere_is_not_written(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:3])
    backup = tmp_path / "backup.duckdb"
    os.link(sibling(db, ".prev"), backup)  # e.g. a backup made with hard links
    before = hashlib.sha256(backup.read_bytes()).hexdigest()
    assert run(db, OPS[3]) == "copy"
    assert hashlib.sha256(backup.read_bytes()).hexdigest() == before


def test_a_write_that_commits_nothing_keeps_the_twin(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:3])
    published = (db.stat().st_ino, dump(db))
    assert run(db, ("delete", ["never-stored"])) is None
    assert run(db, ("nothing",)) is None
    assert (db.stat().st_ino, dump(db)) == published, "nothing published"
    assert dump(sibling(db, ".prev")) == published[1], "the twin was brought up to the published version"
    assert run(db, OPS[3]) == "twin"


def test_a_failed_write_leaves_the_store_and_the_next_write_copies(tmp_path, clock):
    db, reference = tmp_path / "store.duckdb", tmp_path / "reference.duckdb"
    written(db, clock, OPS[:3])
    written(reference, clock, OPS[:3], copy=True)
    published = dump(db)
    with pytest.raises(RuntimeError, match="boom"):
        with update_store(db) as store:
            store.write(make_batch(["z"]))
            raise RuntimeError("boom")
    assert dump(db) == published
    assert not sibling(db, ".next").exists() and not sibling(db, ".prev").exists()
    assert run(db, OPS[3]) == "copy"
    run(reference, OPS[3], copy=True)
    assert dump(db) == dump(reference)


def test_the_delta_is_arrow_and_as_private_as_the_store(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:1])
    db.chmod(0o600)
    written(db, clock, OPS[1:3])
    assert sibling(db, ".delta").stat().st_mode & 0o777 == 0o600
    assert sibling(db, ".prev").stat().st_mode & 0o777 == 0o600
    delta = read_delta(sibling(db, ".delta"))
    (change,) = delta.changes
    assert change.exact and change.removed_doc_ids == ["a", "d"] and set(change.rows) >= {"documents", "passages"}
    assert delta.target.identity == store_module.file_identity(db)
    assert delta.base.identity == store_module.file_identity(sibling(db, ".prev"))


def test_a_delta_file_round_trips_and_a_damaged_one_reads_as_none(tmp_path):
    import pyarrow as pa

    path = tmp_path / "d.delta"
    rows = {"documents": pa.table({"doc_id": ["x"], "n": pa.array([1], pa.int32())})}
    change = Change(["gone"], rows, ("model", 8), {"phrases": pa.table({"phrase": ["p"]})}, exact=True)
    delta = Delta(Version((1, 2, 3), 4, {"documents": 1}), Version((5, 6, 7), 5, {"documents": 2}), [change])
    write_delta(path, delta)
    assert read_delta(path) == delta
    path.write_bytes(path.read_bytes()[:-3])
    assert read_delta(path) is None
    assert read_delta(tmp_path / "missing.delta") is None


def test_store_files_name_the_twin_and_its_delta(tmp_path):
    names = [p.name for p in store_files(tmp_path / "s.duckdb")]
    assert {"s.duckdb.prev", "s.duckdb.delta", "s.duckdb.delta.next", "s.duckdb.next", "s.duckdb.lock"} <= set(names)


# ---- readers -------------------------------------------------------------------------------------


def test_a_reader_in_this_process_keeps_its_version_while_writers_work(tmp_path, clock):
    """The reader holds the published file; after one publish it is the twin the next write would
    rewrite: that write copies instead, and the reader's rows never change."""
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:2])
    with open_store(db) as reader:
        seen = reader.row_counts(), reader.con.execute("SELECT * FROM documents ORDER BY ALL").fetchall()
        assert written(db, clock, OPS[2:4]) == ["twin", "copy"], "the second write left the read file alone"
        assert (reader.row_counts(), reader.con.execute("SELECT * FROM documents ORDER BY ALL").fetchall()) == seen
    assert run(db, OPS[4]) == "twin"


def test_a_plain_duckdb_connection_in_this_process_keeps_its_version(tmp_path, clock):
    """A connection opened without hippograph: DuckDB's own lock does not exclude this process's
    writer, but the writer sees it (an OFD probe) and leaves that file alone."""
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:2])
    reader = duckdb.connect(str(db), read_only=True)
    try:
        seen = reader.execute("SELECT * FROM documents ORDER BY ALL").fetchall()
        assert written(db, clock, OPS[2:4]) == ["twin", "copy"]
        assert reader.execute("SELECT * FROM documents ORDER BY ALL").fetchall() == seen
    finally:
        reader.close()


def write_many(db: Path, count: int, versions: dict[int, str], done: threading.Event) -> list[str | None]:
    """`count` writes; `versions` gets each published generation's digest, taken by the writer itself."""
    methods = []
    try:
        for number in range(count):
            with update_store(db) as store:
                if number % 3 == 2:
                    store.delete_documents([f"w{number - 2}"])
                else:
                    store.write(make_batch([f"w{number}", "shared"], number))
                versions[store.generation()] = digest(store.con)
            methods.append(store.published_by)
    finally:
        done.set()
    return methods


def test_readers_in_threads_see_only_published_versions_while_a_thread_writes(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:2])
    with open_store(db) as store:
        versions = {store.generation(): digest(store.con)}
    done, seen, errors = threading.Event(), [], []

    def read_until_done():
        while not done.is_set():
            try:
                with open_store(db) as store:
                    seen.append((store.generation(), digest(store.con)))
            except Exception as error:  # any error fails the test
                errors.append(repr(error))

    readers = [threading.Thread(target=read_until_done) for _ in range(3)]
    for reader in readers:
        reader.start()
    methods = write_many(db, 24, versions, done)
    for reader in readers:
        reader.join()
    assert errors == []
    assert "twin" in methods
    assert len({generation for generation, _ in seen}) >= 3, "the readers saw the store change"
    assert all(versions[generation] == rows for generation, rows in seen), "a reader saw a version no writer published"


READER_PROCESS = """
import hashlib, sys
sys.path.insert(0, sys.argv[2])
from hippograph.indexing.store import open_store
from synthetic_batches import digest
db = sys.argv[1]
with open_store(db) as store:  # held while the parent writes twice
    first = (store.generation(), digest(store.con))
    print(*first, flush=True)
    sys.stdin.readline()
    assert (store.generation(), digest(store.con)) == first, "the rows changed under an open reader"
print("kept", flush=True)
while sys.stdin.readline().strip() != "stop":  # then read again and again while the parent writes
    with open_store(db) as store:
        print(store.generation(), digest(store.con), flush=True)
"""


def test_a_reader_in_another_process_sees_only_published_versions(tmp_path, clock):
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:2])
    with open_store(db) as store:
        versions = {store.generation(): digest(store.con)}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER_PROCESS, str(db), str(TESTS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    generation, rows = reader.stdout.readline().split()
    assert versions[int(generation)] == rows
    assert written(db, clock, OPS[2:4]) == ["twin", "copy"], "the file the other process reads was left alone"
    reader.stdin.write("go on\n")
    reader.stdin.flush()
    assert reader.stdout.readline().strip() == "kept", reader.stderr.read()
    with open_store(db) as store:
        versions[store.generation()] = digest(store.con)
    done, lines = threading.Event(), []

    def ask_while_writing():
        while not done.is_set():
            reader.stdin.write("read\n")
            reader.stdin.flush()
            lines.append(reader.stdout.readline().split())

    asker = threading.Thread(target=ask_while_writing)
    asker.start()
    methods = write_many(db, 12, versions, done)
    asker.join()
    reader.stdin.write("stop\n")
    reader.stdin.flush()
    assert reader.wait(timeout=60) == 0, reader.stderr.read()
    assert "twin" in methods
    assert len(lines) >= 3 and len({g for g, _ in lines}) >= 2
    assert all(versions[int(g)] == rows for g, rows in lines), "the reader saw a version no writer published"


def test_incremental_index_runs_replay_instead_of_copying(tmp_path, small_docs, store_tools, monkeypatch):
    """Through the whole index path: after the run that made the twin, index runs and deletes copy
    nothing, and the store equals one written by full copies."""
    from hippograph import Memory

    copies = []
    copy = store_module._copy_with_mode
    monkeypatch.setattr(store_module, "_copy_with_mode", lambda source, target: (copies.append(source), copy(source, target)))
    db, reference = tmp_path / "memory.duckdb", tmp_path / "reference.duckdb"
    memory, by_copies = Memory(db), Memory(reference)

    def both(call):
        sibling(reference, ".prev").unlink(missing_ok=True)
        call(by_copies)
        return call(memory)

    both(lambda m: m.index(small_docs[:1]))
    both(lambda m: m.index(small_docs[1:2]))
    made_twin = len(copies)
    report = both(lambda m: m.index(small_docs[2:]))
    assert both(lambda m: m.delete(["ada"])) == ["ada"]
    assert len(copies) == made_twin + 2, "only the store written by copies was copied again"
    assert {"prepare", "write", "publish"} <= set(report.seconds)
    store_tools.assert_same(db, reference)
    assert memory.retrieve("Who founded the Kettleby Gazette?", mode="bm25").passages


def row_group_blocks(db: Path, table: str) -> dict[int, list[int]]:
    """Each row group of `table` -> the blocks its segments lie in."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute(
            f"SELECT row_group_id, list(block_id ORDER BY column_id, segment_id) FROM pragma_storage_info('{table}') "
            "GROUP BY row_group_id").fetchall())
    finally:
        con.close()


def test_a_small_write_leaves_the_row_groups_before_it_alone(tmp_path, clock):
    """DuckDB rewrites each row group a write changed when it checkpoints, appends into it included: writers
    append in small row groups, so a small write into a large store rewrites little
    (`STAGING_ROW_GROUP_SIZE`; DuckDB's default would hold all these rows in one group, rewritten whole)."""
    db = tmp_path / "s.duckdb"
    run(db, ("write", [f"d{i}" for i in range(3000)], 0))
    before = row_group_blocks(db, "memory_keys")
    assert len(before) >= 3
    for doc_id, published_by in (("one-more", "copy"), ("two-more", "twin")):
        assert run(db, ("write", [doc_id], 0)) == published_by
        after = row_group_blocks(db, "memory_keys")
        assert [g for g in before if after.get(g) != before[g]] in ([], [max(before)])  # the last, partly filled


def test_after_a_write_that_changed_much_of_the_store_the_next_write_copies(tmp_path, clock, monkeypatch):
    """Replaying a delta nearly as large as the store costs more than copying it: past a share of the
    store's size (`_REPLAY_AT_MOST`, here set just under this delta's share), the next write copies."""
    db, reference = tmp_path / "store.duckdb", tmp_path / "reference.duckdb"
    big = ("write", [f"big{i}" for i in range(40)], 0)
    assert written(db, clock, [OPS[0], big]) == ["new", "copy"]
    share = sibling(db, ".delta").stat().st_size / db.stat().st_size
    monkeypatch.setattr(store_module, "_REPLAY_AT_MOST", share * 0.9)
    assert run(db, OPS[1]) == "copy"
    written(reference, clock, [OPS[0], big], copy=True)
    run(reference, OPS[1], copy=True)
    assert dump(db) == dump(reference)
    monkeypatch.setattr(store_module, "_REPLAY_AT_MOST", 1.0)
    assert run(db, OPS[2]) == "twin"


def test_readers_read_where_the_file_system_refuses_ofd_locks(tmp_path, clock, monkeypatch):
    """A file system or kernel without OFD locks (an old kernel under a newer libc, WSL 1, some network
    file systems) answers EINVAL or ENOLCK, not a conflict: readers read unpinned, and writers, whose
    probe fails the same way, copy rather than rewrite the twin."""
    import errno
    import fcntl

    from hippograph import locks

    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:3])
    real = fcntl.fcntl

    def no_ofd(fd, command, *args):
        if command in (fcntl.F_OFD_SETLK, fcntl.F_OFD_GETLK):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, command, *args)

    monkeypatch.setattr(locks.fcntl, "fcntl", no_ofd)
    with open_store(db, lock_timeout=0.5) as store:
        assert store.generation() == 3
    assert run(db, OPS[3]) == "copy"
    with open_store(db, lock_timeout=0.5) as store:
        assert store.generation() == 4


def test_a_reader_waiting_on_another_programs_lock_says_so(tmp_path, clock):
    """Another program holding the published file open for writing is a lock, not a publish: the reader
    gives up after `lock_timeout` saying that the store stayed locked, as it did before pins."""
    db = tmp_path / "store.duckdb"
    written(db, clock, OPS[:1])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('open', flush=True); sys.stdin.readline()",
         str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(store_module.StoreError, match="stayed locked by another process"):
            with open_store(db, lock_timeout=0.5):
                pass
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=60)


def test_a_delta_damaged_in_its_header_reads_as_none(tmp_path):
    """The header says which documents the replay removes: a damaged one must not be replayed (the row
    counts after cannot tell one removed document from another of the same size)."""
    import pyarrow as pa

    path = tmp_path / "d.delta"
    change = Change(["doc-a"], {"documents": pa.table({"doc_id": ["x"]})}, ("model", 8), {}, exact=True)
    write_delta(path, Delta(Version((1, 2, 3), 4, {"documents": 1}), Version((5, 6, 7), 5, {"documents": 1}), [change]))
    data = path.read_bytes()
    assert data.count(b'"doc-a"') == 1
    path.write_bytes(data.replace(b'"doc-a"', b'"doc-b"'))
    assert read_delta(path) is None
