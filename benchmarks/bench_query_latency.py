"""Query latency per mode on an existing store, after load: to compare two versions of hippograph on the
same store and machine (run it under each version's environment, one after the other, on a quiet machine).

    python benchmarks/bench_query_latency.py STORE.duckdb --label NAME [--rounds 3] [--out results.json]
        [--modes bm25,dense,hipporag] [--every N]

Asks the 149 questions of both development sets one at a time (top 5), `--rounds` times per mode, and
reports p50/p95 over all of them. Uses only `Memory.retrieve`, which every version has. Appends one JSON
line per run to `--out`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hippograph import Memory

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
QUERY_SETS = [DATA / "hotpotqa-dev" / "questions.jsonl", DATA / "musique-dev" / "questions.jsonl"]
# Asked by none of the questions; kept here rather than imported, so the script runs against any version.
WARM_UP = "Which city is the capital of the country where the longest river begins?"


def cpu() -> dict[str, object]:
    info = Path("/proc/cpuinfo").read_text()
    name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    features = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags]
    return {"cpu": name, "features": features}


def machine_line(machine: dict) -> str:
    """`cpu()`'s result as a results table states it."""
    return f"Machine: {machine['cpu']}, CPU features {', '.join(machine['features'])}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--label", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--modes", default="bm25,dense,hipporag")
    parser.add_argument("--every", type=int, default=1, help="ask every n-th question only (slow modes)")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for path in QUERY_SETS for line in path.read_text().splitlines() if line.strip()]
    questions = questions[:: args.every]
    result: dict[str, object] = {"label": args.label, "store": args.store.name, "queries": len(questions) * args.rounds, **cpu()}
    for mode in args.modes.split(","):
        samples = []
        for _ in range(args.rounds):
            # A fresh Memory per mode and round: queries reuse the vectors and parses of texts asked lately.
            memory = Memory(args.store)
            memory.retrieve(WARM_UP, mode=mode)  # load the snapshot and build the mode's index
            for question in questions:
                start = time.perf_counter()
                memory.retrieve(question, mode=mode, top_k=5)
                samples.append((time.perf_counter() - start) * 1000)
        result[mode] = {"p50_ms": round(float(np.percentile(samples, 50)), 2), "p95_ms": round(float(np.percentile(samples, 95)), 2)}
    print(json.dumps(result))
    if args.out:
        with args.out.open("a") as out:
            out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
