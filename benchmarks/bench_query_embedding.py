"""Query latency with questions embedded by ONNX Runtime (float32) against PyTorch, on one store, in one
process, the two alternating so both see the same machine.

    python benchmarks/bench_query_embedding.py STORE.duckdb [--rounds 2] [--out benchmarks/results]

Per backend and round: dense, hipporag and memorag p50/p95 over the 149 dev questions (memorag over every
second one), each mode on a fresh `Memory` after a warm-up question, and the split of a hipporag query
(`bench_index.hipporag_split`). Writes query_embedding_<store>.json and .md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench_index import SPLIT_PARTS, dev_questions, hipporag_split, timed_queries, write_results
from bench_query_latency import WARM_UP, cpu, machine_line

from hippograph import Config, Memory
from hippograph.pipeline.embed import embedder_for

ROOT = Path(__file__).resolve().parent
MODES = ("dense", "hipporag", "memorag")


def latencies(db: Path, config: Config, questions: list[str]) -> dict[str, dict[str, float]]:
    result = {}
    for mode in MODES:
        memory = Memory(db, config)
        memory.retrieve(WARM_UP, mode=mode)
        result[mode] = timed_queries(memory, mode, questions if mode != "memorag" else questions[::2])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    config = Config()
    questions = dev_questions()
    embedder = embedder_for(config)
    if embedder.query_backend != "onnxruntime":
        parser.error("questions do not run on ONNX Runtime here (bfloat16 CPU, or ONNX Runtime missing)")
    onnx = embedder._float32
    runs = []
    for round_ in range(args.rounds):
        for backend in ("onnxruntime", "torch"):
            embedder._float32 = onnx if backend == "onnxruntime" else None  # None: PyTorch serves `encode`
            run = {"backend": backend, "round": round_, **latencies(args.store, config, questions)}
            run["hipporag_split"] = hipporag_split(Memory(args.store, config), questions)
            print(json.dumps(run), flush=True)
            runs.append(run)
    embedder._float32 = onnx
    result = {"command": f"python benchmarks/bench_query_embedding.py {args.store.name} --rounds {args.rounds}",
              "store": args.store.name, "machine": cpu(), "questions": len(questions), "runs": runs}
    write_results(args.out, f"query_embedding_{args.store.stem}", result, render(result))


def render(r: dict) -> str:
    lines = [
        f"# Questions embedded by ONNX Runtime (float32) or PyTorch: {r['store']}\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}\n",
        f"{r['questions']} dev questions one at a time, top 5 (memorag: every second one); p50 / p95 ms; "
        "the two backends alternate in one process.\n",
        f"| backend | round | dense | hipporag | memorag | hipporag split p50: {' / '.join(SPLIT_PARTS)} |",
        "|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        split = " / ".join(str(run["hipporag_split"][part]["p50_ms"]) for part in SPLIT_PARTS)
        cells = [f"{run[m]['p50_ms']} / {run[m]['p95_ms']}" for m in MODES]
        lines.append(f"| {run['backend']} | {run['round']} | {' | '.join(cells)} | {split} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
