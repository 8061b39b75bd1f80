"""What a cap on a reader's DuckDB memory (`store.READ_MEMORY_LIMIT`) does to the reads an indexing run
makes of the store it adds to: every stored phrase with its vector (for synonym edges) and every fact's
key, each cap in a fresh process, alternating.

    python benchmarks/bench_read_cap.py STORE.duckdb [--limits none,512MB] [--rounds 2] [--out results.jsonl]

Prints, and appends to `--out`, one JSON line a run: seconds and the process's peak RSS (MiB). The query
process's side of the cap: `bench_query_memory.py --read-memory-limit`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench_query_latency import cpu


def read_once(store_path: str, limit: str) -> dict[str, object]:
    from hippograph.indexing import store

    store.READ_MEMORY_LIMIT = None if limit == "none" else limit
    start = time.perf_counter()
    with store.open_store(store_path) as opened:
        phrases, _ = opened.phrase_vectors()
        facts = opened.fact_keys()
    return {"read_memory_limit": limit, "seconds": round(time.perf_counter() - start, 1), "phrases": len(phrases),
            "facts": len(facts), "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--limits", default="none,512MB")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process's cap
    args = parser.parse_args()
    if args.one:
        print(json.dumps(read_once(str(args.store), args.one)))
        return
    for _ in range(args.rounds):
        for limit in args.limits.split(","):
            child = subprocess.run([sys.executable, __file__, str(args.store), "--one", limit],
                                   capture_output=True, text=True, check=True)
            line = json.dumps({"store": args.store.name, **cpu(), **json.loads(child.stdout.splitlines()[-1])})
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as out:
                    out.write(line + "\n")


if __name__ == "__main__":
    main()
