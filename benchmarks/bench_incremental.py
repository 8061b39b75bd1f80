"""A scheduled run after the document drop grew by 5%: does it only the new work?

    python benchmarks/bench_incremental.py [--corpus ../shared/data/2wiki-corpus/corpus.jsonl]

Indexes 95% of the 2wiki corpus through shards (as the Airflow DAG does, in one process), then the
whole corpus again, and reports both runs stage by stage. Writes benchmarks/results/incremental_2wiki.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_index import DATA, machine, peak_rss_mb, write_results

from hippograph import Config
from hippograph.pipeline.shards import DEFAULT_SHARD_SIZE, index_in_shards
from hippograph.pipeline.sources import read_documents

ROOT = Path(__file__).resolve().parent


def timed_run(db: Path, documents, work: Path, config: Config) -> dict:
    start = time.perf_counter()
    report = index_in_shards(db, documents, work, config, DEFAULT_SHARD_SIZE)
    return {"total_seconds": round(time.perf_counter() - start, 1), **report.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DATA / "2wiki-corpus" / "corpus.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    documents = read_documents([args.corpus])
    first_part = documents[: round(len(documents) * 0.95)]  # the corpus order: new documents come last
    config = Config()
    with tempfile.TemporaryDirectory() as scratch:
        db, work = Path(scratch) / "bench.duckdb", Path(scratch) / "work"
        first = timed_run(db, first_part, work, config)
        second = timed_run(db, documents, work, config)
        store_mb = round(db.stat().st_size / 1e6, 1)
    result = {
        "command": "python benchmarks/bench_incremental.py",
        "corpus": args.corpus.parent.name, "shard_size": DEFAULT_SHARD_SIZE,
        "first_run": first, "second_run": second,
        "second_vs_first": round(second["total_seconds"] / first["total_seconds"], 3),
        "store_mb": store_mb, "peak_rss_mb": peak_rss_mb(), "machine": machine(),
    }
    write_results(args.out, "incremental_2wiki", result, render(result))


def render(r: dict) -> str:
    first, second = r["first_run"], r["second_run"]
    lines = [
        f"# Incremental run: {r['corpus']} grows by 5%\n",
        f"Command: `{r['command']}` (sharded stages in one process, {r['shard_size']} documents per shard)  ",
        f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, CPU only; store {r['store_mb']} MB\n",
        "| run | documents given | indexed | unchanged | passages | seconds |",
        "|---|---|---|---|---|---|",
        f"| first (95%) | {first['documents']} | {first['indexed']} | {first['unchanged']} | {first['passages']} | {first['total_seconds']} |",
        f"| second (100%) | {second['documents']} | {second['indexed']} | {second['unchanged']} | {second['passages']} | {second['total_seconds']} |",
        "",
        f"The second run took **{round(100 * r['second_vs_first'], 1)}%** of the first.\n",
        "| stage | first run s | second run s |", "|---|---|---|",
    ]
    for stage in dict.fromkeys([*first["seconds"], *second["seconds"]]):
        lines.append(f"| {stage} | {first['seconds'].get(stage, '')} | {second['seconds'].get(stage, '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
