"""Queries while another process indexes: every query answers from a published store, none errors, and
the index run never fails because someone is reading."""

from __future__ import annotations

import subprocess
import sys

import duckdb

from hippograph import Memory

# Publish eight times: index the demo corpus in batches, then delete a batch and index it again.
INDEXING = """
import sys
from hippograph import Memory
from hippograph.pipeline.sources import read_documents

memory = Memory(sys.argv[1])
documents = read_documents([sys.argv[2]])
for start in range(0, len(documents), 7):
    memory.index(documents[start:start + 7])
memory.delete([d.doc_id for d in documents[:7]])
memory.index(documents[:7])
"""


def test_a_query_loop_answers_every_query_while_another_process_indexes(tmp_path, demo_corpus, small_docs):
    db = tmp_path / "live.duckdb"
    Memory(db).index(small_docs)
    writer = subprocess.Popen([sys.executable, "-c", INDEXING, str(db), str(demo_corpus)],
                              stderr=subprocess.PIPE, text=True)
    reader = Memory(db)  # refreshes by itself when a new store is published
    answered, errors, generations = 0, [], set()
    while writer.poll() is None:
        for mode in ("hipporag", "bm25"):
            try:
                answer = reader.retrieve("Who designed the Veloria Bridge?", mode=mode, top_k=3)
                assert answer.passages
                answered += 1
                generations.add(reader._snapshot.generation)
            except Exception as error:  # any error at all fails the test, lock errors included
                errors.append(repr(error))
    _, stderr = writer.communicate()
    assert writer.returncode == 0, stderr
    assert errors == []
    assert answered >= 10
    assert len(generations) >= 2, "the loop saw the store change while it ran"
    assert reader.retrieve("Who designed the Veloria Bridge?", mode="bm25").passages
    assert reader._snapshot.generation == 1 + 6 + 1 + 1  # small docs, six batches, delete, re-index


def test_an_open_reader_never_blocks_an_index_run(small_store_copy, tmp_path):
    """Another program (or thread) holds a read-only DuckDB connection to the store, which would lock out
    a writer that wrote the file in place (it would fail after its 30 s lock wait)."""
    reader = duckdb.connect(str(small_store_copy), read_only=True)
    try:
        report = Memory(small_store_copy).index([{"id": "lyle", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}])
        assert report.indexed == 1
        assert reader.execute("SELECT count(*) FROM documents").fetchone()[0] == 3, "the reader keeps its version"
        # DuckDB hands a new `connect` of a path this process holds open the same (replaced) file
        assert Memory(small_store_copy).stats().documents == 4, "a new read sees the new store"
    finally:
        reader.close()
    assert Memory(small_store_copy).stats().documents == 4


def test_threads_sharing_one_memory_get_what_serial_calls_get(demo_store, demo_question_records):
    """Eight threads on one `Memory` (one snapshot, its retrievers and its caches of recent vectors and
    parses), every mode that keeps state, each question asked from two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    questions = [q["question"] for q in demo_question_records]
    asks = [(q, mode) for mode in ("dense", "hipporag", "memory", "memorag") for q in questions] * 2

    def ids(retrieval):
        return [p.passage_id for p in retrieval.passages], [c.text for c in retrieval.clues]

    alone = Memory(demo_store)
    serial = {ask: ids(alone.retrieve(ask[0], mode=ask[1])) for ask in dict.fromkeys(asks)}
    shared = Memory(demo_store)
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda ask: ids(shared.retrieve(ask[0], mode=ask[1])), asks))
    assert concurrent == [serial[ask] for ask in asks]
