"""Query process memory, mode by mode: to compare two versions of hippograph on the same store (run it under
each version's environment, alternating, each run a fresh process).

    python benchmarks/bench_query_memory.py STORE.duckdb --label NAME [--modes bm25,dense,hipporag,memorag]
        [--out results.jsonl] [--read-memory-limit 512MB|none]

Loads the models first (the embedder, spaCy), then asks one question in each mode in turn, on one `Memory`
(the first reads the snapshot; each builds what its mode needs). Reports VmRSS in MiB after the models and
after each mode's first question, the peak (VmHWM) and the seconds to the first answer. Uses only
`Memory.retrieve`, which every version has. Appends one JSON line to `--out`, and prints it.
`--read-memory-limit` sets the cap on a reader's DuckDB memory (`store.READ_MEMORY_LIMIT`, since it
existed; `none`: DuckDB's default) to compare the two in one version.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench_query_latency import WARM_UP, cpu
from bench_vectors import status
from hippograph import Config, Memory
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.extract import load_spacy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--label", required=True)
    parser.add_argument("--modes", default="bm25,dense,hipporag,memorag")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--read-memory-limit", help="a DuckDB size, or none (default: the store's own)")
    args = parser.parse_args()
    if args.read_memory_limit:
        from hippograph.indexing import store

        store.READ_MEMORY_LIMIT = None if args.read_memory_limit == "none" else args.read_memory_limit
    config = Config()
    embedder_for(config).encode(["warm up"])
    load_spacy(config.spacy_model)("Warm up.")
    result: dict[str, object] = {"label": args.label, "store": args.store.name, **cpu(), "models": status()["VmRSS"]}
    if args.read_memory_limit:
        result["read_memory_limit"] = args.read_memory_limit
    memory = Memory(args.store, config)
    start = time.perf_counter()
    for mode in args.modes.split(","):
        memory.retrieve(WARM_UP, mode=mode)
        result[f"after_{mode}"] = status()["VmRSS"]
        result.setdefault("first_answer_seconds", round(time.perf_counter() - start, 1))
    result["peak"] = status()["VmHWM"]
    line = json.dumps(result)
    print(line)
    if args.out:
        with args.out.open("a") as out:
            out.write(line + "\n")


if __name__ == "__main__":
    main()
