"""A store N times as large as a given one, for memory and latency at a scale no corpus here reaches
(`bench_vectors.py` on a 2wiki store x15: 101k passages).

    python benchmarks/make_scaled_store.py SOURCE.duckdb TARGET.duckdb N

Copies SOURCE to TARGET (SOURCE is only read), then adds N - 1 copies of every row: ids, passage ids and
phrases suffixed " ~i", and each copy's vectors a fixed random permutation of the dimensions, so that
they are unrelated to the questions, like other documents' (identical copies would tie with the
originals). Facts, links, synonyms and memory keys follow their phrases and documents, so the graph is
N times as large too.
"""

from __future__ import annotations

import shutil
import sys
import time

import duckdb
import numpy as np


def suffixed(column: str, i: int) -> str:
    return f"{column} || ' ~{i}'"


def copy_rows(con: duckdb.DuckDBPyConnection, i: int, vector: str) -> None:
    """Copy i of every original row (originals have no " ~" in their ids)."""
    s = suffixed
    statements = [
        f"INSERT INTO documents SELECT {s('doc_id', i)}, title, text, metadata, index_key, ingested_at FROM documents WHERE doc_id NOT LIKE '% ~%'",
        f"INSERT INTO passages SELECT {s('passage_id', i)}, {s('doc_id', i)}, position, title, text FROM passages WHERE doc_id NOT LIKE '% ~%'",
        f"INSERT INTO passage_embeddings SELECT {s('passage_id', i)}, {vector} FROM passage_embeddings WHERE passage_id NOT LIKE '% ~%'",
        f"INSERT INTO triples SELECT {s('passage_id', i)}, sentence, {s('subject', i)}, predicate, {s('object', i)} FROM triples WHERE passage_id NOT LIKE '% ~%'",
        f"INSERT INTO passage_phrases SELECT {s('passage_id', i)}, {s('phrase', i)} FROM passage_phrases WHERE passage_id NOT LIKE '% ~%'",
        f"INSERT INTO passage_entities SELECT {s('passage_id', i)}, * EXCLUDE (passage_id) FROM passage_entities WHERE passage_id NOT LIKE '% ~%'",
        f"INSERT INTO phrases SELECT {s('phrase', i)}, {vector} FROM phrases WHERE phrase NOT LIKE '% ~%'",
        f"INSERT INTO facts SELECT {s('subject', i)}, predicate, {s('object', i)}, {vector} FROM facts WHERE subject NOT LIKE '% ~%'",
        f"INSERT INTO synonyms SELECT {s('phrase_a', i)}, {s('phrase_b', i)}, similarity FROM synonyms WHERE phrase_a NOT LIKE '% ~%'",
        f"INSERT INTO memories SELECT {s('doc_id', i)}, gist, facts, source_bytes, kept_bytes, indexed_at FROM memories WHERE doc_id NOT LIKE '% ~%'",
        f"INSERT INTO memory_keys SELECT {s('doc_id', i)}, position, text, {vector} FROM memory_keys WHERE doc_id NOT LIKE '% ~%'",
    ]
    con.execute("BEGIN")
    for statement in statements:
        con.execute(statement)
    con.execute("COMMIT")


def main() -> None:
    source, target, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shutil.copyfile(source, target)
    con = duckdb.connect(target)
    con.execute("SET preserve_insertion_order = false")  # stored order does not matter: reads sort by key
    dim = con.execute("SELECT len(embedding) FROM facts LIMIT 1").fetchall()[0][0]
    rng = np.random.default_rng(13)
    for i in range(1, copies):
        start = time.time()
        permutation = ", ".join(str(int(p) + 1) for p in rng.permutation(dim))
        copy_rows(con, i, f"list_select(embedding, [{permutation}])::FLOAT[{dim}]")
        print(f"copy {i}: {time.time() - start:.1f} s", flush=True)
    con.execute("CHECKPOINT")
    for table in ("documents", "passages", "phrases", "facts", "memory_keys", "triples", "passage_phrases", "passage_entities", "synonyms"):
        print(table, con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    con.close()


if __name__ == "__main__":
    main()
