"""What a small write costs DuckDB's checkpoint on a large store, by the row group size it appends with.

For each row group size (0: DuckDB's default), on a fresh copy of STORE: `--rounds` times, insert as many
facts and phrases as a 1,000-document run adds (copies of stored rows, vectors and all), commit, and
checkpoint, timing each; then how the last row groups of `facts` look. Then the whole store written
anew at that size (`COPY FROM DATABASE`): how long that takes, the file's size, and how long reading its
vector columns takes (the median of three reads), so that small row groups are seen not to slow reads.

    python benchmarks/bench_checkpoint.py STORE.duckdb [--sizes 0,2048,8192] [--rounds 6] [--name NAME]

Writes benchmarks/results/NAME.{md,jsonl}. STORE is only read; the copies go beside it and are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

import duckdb
from bench_query_latency import cpu

RESULTS = Path(__file__).resolve().parent / "results"
FACTS, PHRASES = 11_000, 10_000  # about what 1,000 generated documents add (bench_publish_steps.py)
VECTOR_TABLES = ("facts", "phrases", "passage_embeddings")


def attach(con: duckdb.DuckDBPyConnection, path: Path, alias: str, size: int, read_only: bool = False) -> None:
    options = ["READ_ONLY"] if read_only else []
    options += [f"ROW_GROUP_SIZE {size}"] if size else []
    con.execute(f"ATTACH '{path}' AS {alias}" + (f" ({', '.join(options)})" if options else ""))


def small_writes(store: Path, size: int, rounds: int) -> list[dict]:
    copy = store.with_name(store.name + ".bench")
    shutil.copyfile(store, copy)
    os.sync()  # the copy's dirty pages would otherwise be flushed by the first checkpoint
    con = duckdb.connect()
    out = []
    try:
        attach(con, copy, "s", size)
        con.execute("USE s")
        for i in range(rounds):
            start = time.perf_counter()
            con.execute("BEGIN")
            con.execute(f"INSERT INTO facts SELECT subject || ' #{i}', predicate, object, embedding FROM facts LIMIT {FACTS}")
            con.execute(f"INSERT INTO phrases SELECT phrase || ' #{i}', embedding FROM phrases LIMIT {PHRASES}")
            con.execute("COMMIT")
            inserted = time.perf_counter()
            con.execute("CHECKPOINT")
            done = time.perf_counter()
            groups = con.execute(
                "SELECT row_group_id, sum(count) FROM pragma_storage_info('facts') WHERE column_name = 'subject' "
                "GROUP BY 1 ORDER BY 1 DESC LIMIT 2"
            ).fetchall()
            out.append({"round": i, "insert_s": round(inserted - start, 3), "checkpoint_s": round(done - inserted, 3),
                        "last_facts_row_groups": [int(rows) for _, rows in groups]})
    finally:
        con.close()
        copy.unlink(missing_ok=True)
    return out


def rewrite_and_read(store: Path, size: int) -> dict:
    target = store.with_name(store.name + ".rewrite")
    target.unlink(missing_ok=True)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        attach(con, store, "a", 0, read_only=True)
        attach(con, target, "b", size)
        start = time.perf_counter()
        con.execute("COPY FROM DATABASE a TO b")
        written = time.perf_counter() - start
        con.execute("DETACH b")
        reads = []
        for _ in range(3):
            reader = duckdb.connect()
            attach(reader, target, "r", 0, read_only=True)
            start = time.perf_counter()
            for table in VECTOR_TABLES:
                reader.sql(f"SELECT embedding FROM r.{table}").to_arrow_table()
            reads.append(time.perf_counter() - start)
            reader.close()
        return {"rewrite_s": round(written, 2), "file_mb": round(target.stat().st_size / 1e6, 1),
                "read_vectors_s": round(statistics.median(reads), 3)}
    finally:
        con.close()
        target.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--sizes", default="0,2048,8192")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--name", default="checkpoint_row_groups")
    args = parser.parse_args()
    store = args.store.resolve()
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        row = {"row_group_size": size or "default", "store_mb": round(store.stat().st_size / 1e6, 1), **cpu(),
               "small_writes": small_writes(store, size, args.rounds), **rewrite_and_read(store, size)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    table = render(rows, store.name, args)
    (RESULTS / f"{args.name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (RESULTS / f"{args.name}.md").write_text(table)
    print(table)


def render(rows: list[dict], store: str, args: argparse.Namespace) -> str:
    first = rows[0]
    lines = [
        f"# Checkpoint cost of a small write, by row group size ({store}, {first['store_mb']} MB)", "",
        f"Command: `python benchmarks/bench_checkpoint.py {store} --sizes {args.sizes} --rounds {args.rounds}`  ",
        f"CPU: {first['cpu']} ({', '.join(first['features'])}), 2 cores", "",
        f"Each round inserts {FACTS:,} facts and {PHRASES:,} phrases (with their vectors), commits and checkpoints.", "",
        "| row group size | insert s, each round | checkpoint s, each round | whole store rewritten: s, MB | "
        "reading its vectors, s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        inserts = ", ".join(f"{w['insert_s']:.2f}" for w in r["small_writes"])
        checkpoints = ", ".join(f"{w['checkpoint_s']:.2f}" for w in r["small_writes"])
        lines.append(f"| {r['row_group_size']} | {inserts} | {checkpoints} | {r['rewrite_s']}, {r['file_mb']} | "
                     f"{r['read_vectors_s']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
