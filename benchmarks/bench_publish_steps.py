"""Where a small incremental run's write step goes on a large store: index `--documents` new generated
documents (bench_scale's generator, numbered from `--start`) into STORE, `--runs` times, and print each
run's seconds: the whole run, reading the store and merging (before the write step), and the write step's
parts: prepare (the twin brought up to date, or a copy), write (the transaction) and publish (checkpoint,
fsync, delta, link, rename), beside a durable copy of the store made once before the runs.

    python benchmarks/bench_publish_steps.py STORE.duckdb [--documents 1000] [--runs 3] [--start 1100000]
        [--row-group-size N] [--out FILE.jsonl]

The store grows by every run: use a copy, and a `--start` beyond any document it holds. `--row-group-size`
sets the row group size writers append with (`hippograph.indexing.store.STAGING_ROW_GROUP_SIZE`; 0:
DuckDB's default), to compare the two.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench_publish import published_by
from bench_query_latency import cpu
from bench_scale import copy_seconds, generated_documents

from hippograph import Config
from hippograph.indexing import store as store_module
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.sources import documents_from_records

STEPS = ("read_store", "merge", "prepare", "write", "publish")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--start", type=int, default=1_100_000)
    parser.add_argument("--row-group-size", type=int, default=store_module.STAGING_ROW_GROUP_SIZE or 0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    store_module.STAGING_ROW_GROUP_SIZE = args.row_group_size or None
    copy = round(copy_seconds(args.store), 3)
    os.sync()  # so that the copy's writeback does not land in the first run's fsync
    for run in range(args.runs):
        documents = generated_documents(args.documents, start=args.start + run * args.documents)

        def index() -> dict:
            start = time.perf_counter()
            report = index_documents(args.store, documents_from_records(documents), Config(), progress=False)
            return {"seconds": round(time.perf_counter() - start, 2), "stages": report.seconds}

        method, result = published_by(index, args.store)
        line = {"store": args.store.name, "store_mb": round(args.store.stat().st_size / 1e6, 1), **cpu(),
                "row_group_size": args.row_group_size or "default", "copy_s": copy,
                "documents": args.documents, "published_by": method, "seconds": result["seconds"],
                **{step: result["stages"].get(step, 0.0) for step in STEPS}}
        line["write_step"] = round(sum(line[s] for s in ("prepare", "write", "publish")), 3)
        line["write_step_of_copy"] = round(line["write_step"] / copy, 3)
        print(json.dumps(line), flush=True)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
