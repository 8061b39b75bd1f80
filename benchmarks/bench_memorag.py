"""memorag query latency on an existing store, after load, split into its parts, with hipporag beside it.

    python benchmarks/bench_memorag.py STORE.duckdb [--name memorag_latency_2wiki] [--rounds 1]

Asks the 149 questions of both development sets one at a time (top 5). Each mode and round gets a fresh
`Memory`, so no question finds its vector or parse kept from an earlier ask. The split times the parts of a memorag search:
- retrievals: the batched hipporag searches of the question and its clues (`hipporag.retrieve_many`);
- draft: the offline draft answer of the evidence (`_draft`), itself a clue;
- clue making: the rest (the nearest memories, bridge entities, surrogate questions, pooling).
Writes benchmarks/results/<name>.json and .md; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench_query_latency import QUERY_SETS, WARM_UP, cpu
from hippograph import Memory

RESULTS = Path(__file__).resolve().parent / "results"


def percentiles(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(samples, 50)), 1), "p95_ms": round(float(np.percentile(samples, 95)), 1)}


def timed(owner: object, name: str, spent: list[float], calls: list[int]) -> None:
    """Wrap `owner.name` so each call adds its seconds to spent[0] and one to calls[0]."""
    method = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start
            calls[0] += 1

    setattr(owner, name, wrapper)


def hipporag_latency(store: Path, questions: list[str], rounds: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        memory = Memory(store)  # fresh each round: nothing asked before
        memory.retrieve(WARM_UP, mode="hipporag")
        for question in questions:
            start = time.perf_counter()
            memory.retrieve(question, mode="hipporag", top_k=5)
            samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def memorag_latency(store: Path, questions: list[str], rounds: int) -> dict[str, object]:
    retrieval_time, retrieval_calls, draft_time, draft_calls = [0.0], [0], [0.0], [0]
    parts: dict[str, list[float]] = {"total": [], "clue_making": [], "retrievals": [], "draft": []}
    searches = []
    for _ in range(rounds):
        memory = Memory(store)  # fresh each round: nothing asked before
        memory.retrieve(WARM_UP, mode="memorag")  # load the snapshot, the graph and the memory bank
        retriever = memory.retriever("memorag")
        timed(retriever.hipporag, "retrieve_many", retrieval_time, retrieval_calls)
        timed(retriever, "_draft", draft_time, draft_calls)
        for question in questions:
            retrieval_time[0] = draft_time[0] = 0.0
            retrieval_calls[0] = 0
            start = time.perf_counter()
            retrieval = memory.retrieve(question, mode="memorag", top_k=5)
            total = time.perf_counter() - start
            parts["total"].append(total * 1000)
            parts["retrievals"].append(retrieval_time[0] * 1000)
            parts["draft"].append(draft_time[0] * 1000)
            parts["clue_making"].append((total - retrieval_time[0] - draft_time[0]) * 1000)
            searches.append((retrieval_calls[0], len(retrieval.clues)))
    return {
        **{part: percentiles(samples) for part, samples in parts.items()},
        "hipporag_batches_per_question": float(np.mean([b for b, _ in searches])),
        "clues_per_question": float(np.mean([c for _, c in searches])),
    }


def render(r: dict) -> str:
    m = r["memorag"]
    lines = [
        f"# memorag query latency: {r['store']} ({r['cpu']}, {', '.join(r['features'])})", "",
        f"`{r['command']}`: {r['queries']} questions one at a time, top 5, after load.", "",
        "| | p50 ms | p95 ms |", "|---|---|---|",
        f"| hipporag | {r['hipporag']['p50_ms']} | {r['hipporag']['p95_ms']} |",
        *(f"| memorag: {part.replace('_', ' ')} | {m[part]['p50_ms']} | {m[part]['p95_ms']} |"
          for part in ("total", "clue_making", "retrievals", "draft")), "",
        f"Per question: {m['clues_per_question']:.1f} clues (the question included), searched in "
        f"{m['hipporag_batches_per_question']:.1f} batches of hipporag searches. The parts' p50s need not add "
        "up to the total's.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--name", default="memorag_latency_2wiki", help="results file name, without extension")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for path in QUERY_SETS for line in path.read_text().splitlines() if line.strip()]
    result = {
        "command": f"python benchmarks/bench_memorag.py {args.store.name} --rounds {args.rounds}",
        "store": args.store.name, "queries": len(questions) * args.rounds, **cpu(),
        "hipporag": hipporag_latency(args.store, questions, args.rounds),
        "memorag": memorag_latency(args.store, questions, args.rounds),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.name}.md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
