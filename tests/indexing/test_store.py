"""The DuckDB store: schema and versioning, generations, atomic writes, replacement and deletion without orphans.

Stores are real DuckDB files written by real indexing runs; the tests look inside with duckdb directly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pytest

from hippograph import Config, Memory, StoreError
from hippograph.indexing import store as store_module
from hippograph.indexing.store import SCHEMA_VERSION, CodedRows, Store, documents_in, open_store, update_store

BASE_TABLES = {"meta", "documents", "passages", "triples", "passage_phrases", "synonyms"}
EMBEDDING_TABLES = {"passage_embeddings", "phrases", "facts"}

# Long enough for two passages at a 40-token budget; its phrases (quillmere, darrowby, zorbulon) occur nowhere else.
FOUNDRY_A = (
    "Zorbulon Vext founded the Quillmere Foundry in Darrowby in 1850. The Quillmere Foundry Works cast bells for "
    "the Darrowby Cathedral. Vext later sold the Quillmere Foundry to the Harrow Iron Company. The foundry closed "
    "in 1901 after a fire."
)
FOUNDRY_B = "Mina Orrell ran a bakery in Kettleby. She sold bread to the Harrow Iron Company."
HARROW = "The Harrow Iron Company rolled steel in Dunmere. It was founded by Lionel Harrow in 1840."
OLD_ONLY_WORDS = ("quillmere", "darrowby", "zorbulon")


def meta(path) -> dict[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()


def tables(path) -> set[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()


def dump(path, table_names) -> dict[str, list[tuple]]:
    """Every row of every table (and meta), sorted: the store's whole content."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() if t in present else None
            for t in ("meta", *table_names)
        }
    finally:
        con.close()


def generation(path) -> int:
    with open_store(path) as store:
        return store.generation()


def assert_no_orphans(path, store_tools) -> None:
    """Every derived row traces back to a stored document, and every shared row is still used by one."""
    q = lambda query: {tuple(r) for r in store_tools.sql(path, query)}  # noqa: E731
    docs = q("SELECT doc_id FROM documents")
    passages = q("SELECT passage_id FROM passages")
    assert q("SELECT doc_id FROM passages") <= docs
    assert q("SELECT passage_id FROM passage_embeddings") == passages
    assert q("SELECT passage_id FROM triples") <= passages
    assert q("SELECT passage_id FROM passage_phrases") <= passages
    # facts and phrases live exactly as long as some passage uses them
    assert q("SELECT subject, predicate, object FROM facts") == q("SELECT subject, predicate, object FROM triples")
    assert q("SELECT phrase FROM phrases") == q("SELECT phrase FROM passage_phrases")
    phrases = {p for (p,) in q("SELECT phrase FROM phrases")}
    for a, b in q("SELECT phrase_a, phrase_b FROM synonyms"):
        assert a in phrases and b in phrases, (a, b)


def mentions(path, store_tools, word: str) -> dict[str, int]:
    """Rows in each table that mention `word` (for checking that an old text left nothing behind)."""
    like = f"%{word}%"
    queries = {
        "passages": "SELECT count(*) FROM passages WHERE lower(text) LIKE ?",
        "triples": "SELECT count(*) FROM triples WHERE subject LIKE ? OR object LIKE ?",
        "passage_phrases": "SELECT count(*) FROM passage_phrases WHERE phrase LIKE ?",
        "phrases": "SELECT count(*) FROM phrases WHERE phrase LIKE ?",
        "facts": "SELECT count(*) FROM facts WHERE subject LIKE ? OR object LIKE ?",
        "synonyms": "SELECT count(*) FROM synonyms WHERE phrase_a LIKE ? OR phrase_b LIKE ?",
    }
    return {t: store_tools.sql(path, query, [like] * query.count("?"))[0][0] for t, query in queries.items()}


# ---- schema ---------------------------------------------------------------------------------------------


def test_writer_creates_schema_with_version_and_generation_zero(tmp_path):
    path = tmp_path / "new.duckdb"
    with update_store(path) as store:
        assert store.generation() == 0
        assert store.embedding_model() is None
    assert path.is_file()
    assert BASE_TABLES <= tables(path)
    assert not EMBEDDING_TABLES & tables(path), "embedding tables wait for the first index (dimension unknown)"
    assert meta(path) == {"schema_version": str(SCHEMA_VERSION), "generation": "0"}


def test_indexed_store_has_every_table_and_embedding_metadata(small_store, small_docs, store_tools):
    assert BASE_TABLES | EMBEDDING_TABLES <= tables(small_store)
    stored = meta(small_store)
    assert stored["schema_version"] == str(SCHEMA_VERSION)
    assert stored["embedding_model"] == "all-MiniLM-L6-v2"
    assert stored["embedding_dim"] == "384"
    counts = store_tools.counts(small_store)
    assert counts["documents"] == len(small_docs)
    assert counts["passages"] == counts["passage_embeddings"] >= len(small_docs)
    assert counts["triples"] > 0 and counts["facts"] > 0 and counts["phrases"] > 0


def test_passage_embeddings_are_float384_and_the_model_is_named_once(small_store, store_tools):
    column_types = dict(store_tools.sql(
        small_store,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'passage_embeddings'",
    ))
    assert column_types == {"passage_id": "VARCHAR", "embedding": "FLOAT[384]"}
    for table in ("phrases", "facts"):
        types = dict(store_tools.sql(
            small_store, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", [table]
        ))
        assert types["embedding"] == "FLOAT[384]"
    meta = dict(store_tools.sql(small_store, "SELECT key, value FROM meta"))
    assert (meta["embedding_model"], meta["embedding_dim"]) == ("all-MiniLM-L6-v2", "384")
    with open_store(small_store) as store:
        table = store.read_passages()
    assert table.embeddings.shape == (len(table.passage_ids), 384)
    assert table.embeddings.dtype == np.float32
    assert np.allclose(np.linalg.norm(table.embeddings, axis=1), 1.0, atol=1e-3)


def test_stored_documents_keep_title_text_and_metadata(tmp_path):
    path = tmp_path / "meta.duckdb"
    Memory(path).index([
        {"id": "m1", "title": "Orne", "text": "The Orne is a river.", "year": 1900, "tags": ["river", "valley"]},
        {"id": 7, "text": "Seven is a number."},
    ])
    with open_store(path) as store:
        documents = {d.doc_id: d for d in documents_in(store)}
    assert set(documents) == {"m1", "7"}
    assert documents["m1"].title == "Orne"
    assert documents["m1"].text == "The Orne is a river."
    assert documents["m1"].metadata == {"year": 1900, "tags": ["river", "valley"]}
    assert documents["7"].title == "" and documents["7"].metadata == {}


# ---- generations ----------------------------------------------------------------------------------------


def test_generation_increments_with_every_write(tmp_path, small_docs):
    path = tmp_path / "gen.duckdb"
    memory = Memory(path)
    memory.index(small_docs[:1])
    assert generation(path) == 1
    memory.index(small_docs[1:2])
    assert generation(path) == 2
    changed = {**small_docs[0], "text": small_docs[0]["text"] + " She died in 1920."}
    memory.index([changed])  # a changed document
    assert generation(path) == 3
    assert memory.delete(["kettleby"]) == ["kettleby"]
    assert generation(path) == 4
    assert memory.stats().generation == 4
    # deleting nothing, and indexing nothing new, are not writes
    assert memory.delete(["no-such-document"]) == []
    assert memory.index([changed]).unchanged == 1
    assert generation(path) == 4


# ---- atomic writes --------------------------------------------------------------------------------------


class InjectedFailure(Exception):
    pass


@pytest.fixture
def fail_on_triples(monkeypatch):
    """Make the store's write fail halfway: after documents and passages were inserted, on the triples."""
    inserted: list[str] = []
    original = Store._insert

    def failing_insert(self, table, rows):
        if table == "triples":
            raise InjectedFailure("disk full while writing triples")
        inserted.append(table)
        return original(self, table, rows)

    monkeypatch.setattr(store_module.Store, "_insert", failing_insert)
    return inserted


def test_write_failing_halfway_leaves_store_unchanged(small_store_copy, store_tools, fail_on_triples):
    before = dump(small_store_copy, store_tools.ALL_TABLES)
    with pytest.raises(InjectedFailure):
        Memory(small_store_copy).index([
            {"id": "new", "title": "Port Veloria", "text": "Port Veloria is a harbour town at the mouth of the Orne."},
            {"id": "ada", "title": "Ada Marsh", "text": "Ada Marsh was a painter from Dunmere."},  # a replacement
        ])
    assert {"documents", "passages", "passage_embeddings"} <= set(fail_on_triples), "the failure must come mid-write"
    after = dump(small_store_copy, store_tools.ALL_TABLES)
    assert after["meta"] == before["meta"]  # same generation
    assert {t: len(r) for t, r in after.items()} == {t: len(r) for t, r in before.items()}
    assert after == before


def test_failed_first_write_leaves_no_store_and_indexes_later(tmp_path, small_docs, store_tools, monkeypatch):
    path = tmp_path / "first.duckdb"
    original = Store._insert

    def failing_insert(self, table, rows):
        if table == "triples":
            raise InjectedFailure("boom")
        return original(self, table, rows)

    monkeypatch.setattr(store_module.Store, "_insert", failing_insert)
    with pytest.raises(InjectedFailure):
        Memory(path).index(small_docs)
    assert not path.exists(), "nothing is published until the write succeeds"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.duckdb.lock"], "the staging copy is removed"
    monkeypatch.undo()
    report = Memory(path).index(small_docs)
    assert report.indexed == len(small_docs)
    assert store_tools.counts(path)["documents"] == len(small_docs)
    assert generation(path) == 1


# ---- re-indexing ----------------------------------------------------------------------------------------


def test_reindexing_unchanged_documents_writes_nothing(small_store_copy, small_docs, store_tools):
    before = dump(small_store_copy, store_tools.ALL_TABLES)
    report = Memory(small_store_copy).index(small_docs)
    assert (report.documents, report.indexed, report.unchanged) == (len(small_docs), 0, len(small_docs))
    assert report.passages == report.triples == 0
    assert dump(small_store_copy, store_tools.ALL_TABLES) == before


def test_reindexing_indexes_only_new_and_changed_documents(small_store_copy, small_docs, store_tools):
    changed = {**small_docs[1], "text": small_docs[1]["text"] + " The town has a glassworks."}
    new = {"id": "new", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}
    report = Memory(small_store_copy).index([small_docs[0], changed, small_docs[2], new])
    assert (report.indexed, report.unchanged) == (2, 2)
    texts = dict(store_tools.sql(small_store_copy, "SELECT doc_id, text FROM documents"))
    assert texts["kettleby"] == changed["text"] and texts["new"] == new["text"]
    assert len(texts) == len(small_docs) + 1


def test_changed_document_replaces_its_passages_and_graph_records(tmp_path, store_tools):
    path = tmp_path / "changed.duckdb"
    memory = Memory(path, Config().replace(chunk_max_tokens=40))
    memory.index([
        {"id": "x", "title": "Quillmere Foundry", "text": FOUNDRY_A},
        {"id": "y", "title": "Harrow Iron Company", "text": HARROW},
    ])
    x_passages = store_tools.sql(path, "SELECT passage_id FROM passages WHERE doc_id = 'x' ORDER BY position")
    assert len(x_passages) >= 2, "precondition: the old text spans several passages"
    old = {w: mentions(path, store_tools, w) for w in OLD_ONLY_WORDS}
    assert old["quillmere"]["phrases"] and old["quillmere"]["facts"] and old["quillmere"]["triples"]
    assert old["quillmere"]["synonyms"], "precondition: an old-only phrase has a synonym edge"
    y_before = {
        t: store_tools.sql(path, f"SELECT * FROM {t} WHERE passage_id LIKE 'y#%' ORDER BY ALL")
        for t in ("passages", "triples", "passage_phrases")
    }

    # new title too: extraction uses the title as a phrase
    report = memory.index([{"id": "x", "title": "Mina Orrell", "text": FOUNDRY_B}])
    assert report.indexed == 1

    assert store_tools.sql(path, "SELECT text FROM documents WHERE doc_id = 'x'") == [(FOUNDRY_B,)]
    assert store_tools.sql(path, "SELECT passage_id, position, text FROM passages WHERE doc_id = 'x'") == [
        ("x#0", 0, FOUNDRY_B)
    ]
    for word in OLD_ONLY_WORDS:
        assert mentions(path, store_tools, word) == dict.fromkeys(old[word], 0), word
    assert store_tools.sql(path, "SELECT count(*) FROM triples WHERE passage_id LIKE 'x#%'")[0][0] > 0
    # the untouched document keeps everything, including a phrase it shares with the old text
    for t, rows in y_before.items():
        assert store_tools.sql(path, f"SELECT * FROM {t} WHERE passage_id LIKE 'y#%' ORDER BY ALL") == rows
    assert store_tools.sql(path, "SELECT count(*) FROM phrases WHERE phrase = 'harrow iron company'") == [(1,)]
    assert_no_orphans(path, store_tools)
    assert store_tools.counts(path)["documents"] == 2


# ---- deletion -------------------------------------------------------------------------------------------


def test_delete_removes_a_document_and_everything_derived_from_it(small_store_copy, store_tools):
    gone = store_tools.sql(small_store_copy, "SELECT passage_id FROM passages WHERE doc_id = 'gazette'")
    assert gone, "precondition"
    kept_before = store_tools.sql(small_store_copy, "SELECT * FROM passages WHERE doc_id <> 'gazette' ORDER BY ALL")
    before = store_tools.counts(small_store_copy)

    assert Memory(small_store_copy).delete(["gazette", "not-there"]) == ["gazette"]

    assert store_tools.sql(small_store_copy, "SELECT doc_id FROM documents ORDER BY doc_id") == [("ada",), ("kettleby",)]
    for table in ("passages", "passage_embeddings", "triples", "passage_phrases"):
        rows = store_tools.sql(small_store_copy, f"SELECT count(*) FROM {table} WHERE passage_id LIKE 'gazette#%'")
        assert rows == [(0,)], table
    assert store_tools.sql(small_store_copy, "SELECT * FROM passages ORDER BY ALL") == kept_before
    assert_no_orphans(small_store_copy, store_tools)
    after = store_tools.counts(small_store_copy)
    assert after["facts"] < before["facts"] and after["triples"] < before["triples"]
    # "kettleby gazette" was only in the deleted document
    assert store_tools.sql(small_store_copy, "SELECT count(*) FROM phrases WHERE phrase LIKE '%gazette%'") == [(0,)]


def test_deleting_every_document_empties_every_table(demo_store_copy, store_tools):
    before = store_tools.counts(demo_store_copy)
    assert all(before[t] > 0 for t in store_tools.ALL_TABLES), before
    ids = [doc_id for (doc_id,) in store_tools.sql(demo_store_copy, "SELECT doc_id FROM documents")]
    assert sorted(Memory(demo_store_copy).delete(ids)) == sorted(ids)
    assert store_tools.counts(demo_store_copy) == dict.fromkeys(store_tools.ALL_TABLES, 0)
    with pytest.raises(StoreError, match="no passages"):
        with open_store(demo_store_copy) as store:
            store.read_passages()


# ---- versions and bad stores ----------------------------------------------------------------------------


def test_store_from_a_newer_schema_version_is_refused(small_store_copy, small_docs, store_tools):
    con = duckdb.connect(str(small_store_copy))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = dump(small_store_copy, store_tools.ALL_TABLES)
    for opener in (open_store, update_store):
        with pytest.raises(StoreError, match="newer") as error:
            with opener(small_store_copy):
                pass
        assert "99" in str(error.value)
    with pytest.raises(StoreError, match="newer"):
        Memory(small_store_copy).index([{"id": "z", "text": "Zed is a letter."}])
    with pytest.raises(StoreError, match="newer"):
        Memory(small_store_copy).retrieve("Who designed the Veloria Bridge?", mode="bm25")
    assert dump(small_store_copy, store_tools.ALL_TABLES) == before


def test_read_only_open_of_a_missing_store_fails_without_creating_it(tmp_path):
    path = tmp_path / "missing.duckdb"
    with pytest.raises(StoreError, match="no store"):
        with open_store(path):
            pass
    assert not path.exists()


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="directory"):
        with update_store(tmp_path):
            pass


def test_a_file_that_is_not_duckdb_is_refused(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        with open_store(path):
            pass
    assert path.read_text() == "these are my notes, not a database\n" * 100


# ---- a store written by an earlier schema -----------------------------------------------------------------

# tests/data/store_v1.duckdb holds SMALL_DOCS (the gazette with metadata {"source": "demo"}) as written by
# hippograph at commit fe61681, store schema 1: documents.content_hash, passage_embeddings.model.
V1_STORE = Path(__file__).resolve().parent.parent / "data" / "store_v1.duckdb"


def test_a_version_1_store_opens_and_answers_every_mode(tmp_path, store_tools):
    db = store_tools.copy(V1_STORE, tmp_path / "v1.duckdb")
    with open_store(db) as store:
        assert store.schema_version() == 1 and set(store.index_keys()) == {"ada", "kettleby", "gazette"}
    memory = Memory(db)
    for mode in ("bm25", "dense", "hipporag"):
        retrieval = memory.retrieve("Who founded the Kettleby Gazette?", mode=mode, top_k=3)
        assert retrieval.passages[0].doc_id == "gazette", mode
    assert memory.stats().schema_version == 1 and memory.stats().documents == 3
    assert store_tools.sql(db, "SELECT count(*) FROM meta WHERE key = 'schema_version' AND value = '1'") == [(1,)]


def test_a_version_1_store_is_migrated_by_its_next_write_and_reindexes_once(tmp_path, small_docs, store_tools):
    db = store_tools.copy(V1_STORE, tmp_path / "v1.duckdb")
    docs = [dict(d) for d in small_docs]
    docs[2]["source"] = "demo"  # as the committed store holds it
    # float32, as the committed store was made: its phrases and facts keep their vectors, so int8 ones
    # for the re-indexed documents would tell the precisions apart, not the migration.
    float32 = Config(embedding_precision="float32")
    memory = Memory(db, float32)
    # Index keys are derived anew in schema 2, so each document is indexed once more, then never again.
    assert memory.index(docs).indexed == 3
    assert memory.index(docs).unchanged == 3
    assert memory.stats().schema_version == SCHEMA_VERSION == 4
    assert memory.stats().memories == 3, "the re-index compressed each document into the memory bank"
    columns = {(t, c) for t, c in store_tools.sql(db, "SELECT table_name, column_name FROM information_schema.columns")}
    assert ("documents", "index_key") in columns and ("documents", "content_hash") not in columns
    assert ("passage_embeddings", "model") not in columns
    fresh = tmp_path / "fresh.duckdb"
    Memory(fresh, float32).index(docs)
    store_tools.assert_same(db, fresh)
    with open_store(db) as store:
        assert {d.doc_id: d.metadata for d in documents_in(store)}["gazette"] == {"source": "demo"}


def test_deleting_from_a_version_1_store_migrates_it(tmp_path, store_tools):
    db = store_tools.copy(V1_STORE, tmp_path / "v1.duckdb")
    assert Memory(db).delete(["ada"]) == ["ada"]
    with open_store(db) as store:
        assert store.schema_version() == SCHEMA_VERSION and set(store.index_keys()) == {"kettleby", "gazette"}


# ---- writers in threads -----------------------------------------------------------------------------------


def test_two_threads_indexing_one_store_take_turns_and_equal_a_serial_run(tmp_path, demo_records, store_tools):
    records = list(demo_records.values())
    halves = [records[: len(records) // 2], records[len(records) // 2 :]]
    db, errors, reports = tmp_path / "threads.duckdb", [], []
    config = Config(extract_processes=1)

    def index(documents):
        try:
            reports.append(Memory(db, config).index(documents))
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=index, args=(half,)) for half in halves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert sorted(r.indexed for r in reports) == sorted(len(h) for h in halves)
    assert Memory(db).stats().generation == 2, "two commits, one after the other"
    serial = tmp_path / "serial.duckdb"
    for half in halves:
        Memory(serial, config).index(half)
    store_tools.assert_same(db, serial)


def test_a_lock_file_removed_during_a_write_fails_that_write_loudly(small_store_copy, store_tools):
    before = store_tools.copy(small_store_copy, small_store_copy.with_name("before.duckdb"))
    lock = small_store_copy.with_name(small_store_copy.name + ".lock")
    with pytest.raises(StoreError, match="was removed or replaced while this write held it"):
        with update_store(small_store_copy) as store:
            store.delete_documents(["ada"])
            lock.unlink()  # what a careless clean-up does while a writer runs
    store_tools.assert_same(small_store_copy, before)
    assert not small_store_copy.with_name(small_store_copy.name + ".next").exists()
    assert Memory(small_store_copy).delete(["ada"]) == ["ada"], "the next writer takes a new lock"


def test_a_second_writer_let_in_by_a_removed_lock_is_not_overwritten(small_store_copy):
    lock = small_store_copy.with_name(small_store_copy.name + ".lock")
    second_writer = f"from hippograph import Memory; Memory({str(small_store_copy)!r}).delete(['kettleby'])"
    with pytest.raises(StoreError, match="was removed or replaced"):
        with update_store(small_store_copy) as first:
            first.delete_documents(["ada"])
            lock.unlink()  # another process now takes a new lock file, writes and publishes
            run = subprocess.run([sys.executable, "-c", second_writer], capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stderr
    with open_store(small_store_copy) as store:
        assert set(store.index_keys()) == {"ada", "gazette"}, "the second writer's delete stands; the first failed"


# ---- DuckDB extensions ----------------------------------------------------------------------------------

EXTENSION_SETTINGS = "SELECT current_setting('autoinstall_known_extensions'), current_setting('autoload_known_extensions')"


def test_connect_turns_extension_install_and_load_off(tmp_path):
    for path in (None, tmp_path / "new.duckdb"):
        connection = store_module.connect(path)
        try:
            assert connection.execute(EXTENSION_SETTINGS).fetchone() == (False, False)
        finally:
            connection.close()


def test_every_connection_hippograph_opens_has_extensions_off(small_store_copy, tmp_path, monkeypatch):
    """Index, query, import, export, stats and delete open DuckDB only through `connect`."""
    settings = []
    real_connect = duckdb.connect

    def recording_connect(*args, **kwargs):
        connection = real_connect(*args, **kwargs)
        settings.append(connection.execute(EXTENSION_SETTINGS).fetchone())
        return connection

    monkeypatch.setattr(duckdb, "connect", recording_connect)
    memory = Memory(small_store_copy)
    memory.index([{"id": "harrow", "text": HARROW}])
    memory.retrieve("Who founded the Harrow Iron Company?", mode="hipporag")
    memory.import_triples([{"doc_id": "harrow", "subject": "Lionel Harrow", "predicate": "built", "object": "Dunmere"}])
    memory.export_graph(tmp_path / "graph.graphml")
    memory.stats()
    memory.delete(["harrow"])
    assert len(settings) > 6
    assert set(settings) == {(False, False)}


def test_coded_rows_read_as_the_tuples_they_hold(monkeypatch):
    monkeypatch.setattr(CodedRows, "_CHUNK", 2)  # iteration crosses chunk boundaries
    names = ["ada", "kettleby", "orne"]
    rows = CodedRows([(np.array([0, 1, 1, 2, 0], np.int32), names), (np.array([0.5, 1.0, 0.25, 2.0, 3.0]), None)])
    expected = [("ada", 0.5), ("kettleby", 1.0), ("kettleby", 0.25), ("orne", 2.0), ("ada", 3.0)]
    assert list(rows) == expected and len(rows) == 5 and rows == expected and rows != expected[:4]
    assert rows[3] == ("orne", 2.0) and rows[np.int64(1)] == ("kettleby", 1.0) and rows[1:4] == expected[1:4]
    assert all(type(number) is float for _, number in rows)
    assert rows[1][0] is rows[2][0] is names[1]
    assert list(CodedRows([(np.zeros(0, np.int32), [])])) == [] and not CodedRows([])


@pytest.mark.parametrize("compact", [False, True])
def test_graph_data_holds_each_distinct_string_once_and_equals_the_tables(demo_store, compact):
    with open_store(demo_store) as store:
        data = store.read_graph_data(compact=compact)
        con = store.con
        assert data.fact_passages == con.execute("SELECT DISTINCT subject, predicate, object, passage_id FROM triples ORDER BY ALL").fetchall()
        assert data.passage_phrases == con.execute("SELECT DISTINCT passage_id, phrase FROM passage_phrases ORDER BY ALL").fetchall()
        assert data.synonyms == con.execute("SELECT phrase_a, phrase_b, similarity FROM synonyms ORDER BY ALL").fetchall()
        assert data.facts == con.execute("SELECT subject, predicate, object FROM facts ORDER BY ALL").fetchall()
        assert data.phrases == [p for (p,) in con.execute("SELECT phrase FROM phrases ORDER BY phrase").fetchall()]
    # One object per distinct string, whichever list or row names it (what keeps a large graph small).
    phrases = [x for s, _, o in data.facts for x in (s, o)] + [p for _, p in data.passage_phrases]
    passage_ids = [pid for pid, _ in data.passage_phrases] + [pid for *_, pid in data.fact_passages]
    objects = {}
    for text in data.phrases + phrases + [a for a, _, _ in data.synonyms] + passage_ids:
        assert objects.setdefault(text, text) is text
    assert data.synonyms and data.fact_passages


def test_a_reader_caps_duckdbs_memory_and_spills_outside_the_working_directory(small_store, tmp_path, monkeypatch):
    """A reader's DuckDB would otherwise cache every block it scans (a 101k-passage store's read peaked at
    6.9 GB); capped, a sort larger than the cap spills to a directory of its own, not `.tmp` in the
    working directory, and the directory goes with the connection."""
    working = tmp_path / "working"
    working.mkdir()
    monkeypatch.chdir(working)
    monkeypatch.setattr(store_module, "READ_MEMORY_LIMIT", "128MB")
    with open_store(small_store) as store:
        limit = store.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = Path(store.con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0])
        sorted_rows = store.con.execute(  # about 200 MB of strings to sort under a 128 MB cap
            "SELECT count(*) FROM (SELECT repeat('x', 200) || i::VARCHAR AS s FROM range(1000000) t(i) ORDER BY s)"
        ).fetchall()[0][0]
        assert spill.is_dir()  # the sort spilled
        assert spill.is_absolute() and working not in spill.parents
    assert limit == "122.0 MiB"  # 128 MB
    assert sorted_rows == 1_000_000
    assert not spill.exists()
    assert list(working.iterdir()) == []
