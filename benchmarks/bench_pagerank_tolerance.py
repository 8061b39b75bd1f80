"""What PageRank's stopping tolerance costs and changes: the hipporag reset vectors of the 149 dev
questions on one store, solved by `PowerIteration` at several L1 tolerances, against 1e-8.

    python benchmarks/bench_pagerank_tolerance.py STORE.duckdb [--out benchmarks/results]

Per tolerance: sparse products, p50/p95 ms of a solve (one question at a time), questions whose top 5
passages come in the same order and whose top 10 are the same set as at 1e-8, and the largest L1 distance
of the passages' mass to 1e-8's. Writes pagerank_tolerance_<store>.json and .md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_index import dev_questions, hipporag_resets, percentiles, write_results
from bench_query_latency import cpu, machine_line

from hippograph import Config, Memory
from hippograph.graph.build import PowerIteration

ROOT = Path(__file__).resolve().parent
TOLERANCES = (1e-8, 1e-7, 1e-6, 1e-5, 1e-4)
REFERENCE = 1e-8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    memory = Memory(args.store, Config())
    graph = memory.retriever("hipporag").graph
    resets = [reset for reset, _ in hipporag_resets(memory, dev_questions())]
    offset = graph.graph.passage_offset
    solver = PowerIteration(graph.graph.graph)
    solver(resets[0], graph.config.damping)  # warm-up
    solved = {tolerance: ([], [], []) for tolerance in TOLERANCES}  # masses, products, ms
    for reset in resets:
        for tolerance in TOLERANCES:  # interleaved, so that every tolerance sees the same machine
            solver.tolerance = tolerance
            start = time.perf_counter()
            mass = solver(reset, graph.config.damping)[offset:]
            masses, steps, samples = solved[tolerance]
            samples.append((time.perf_counter() - start) * 1000)
            masses.append(mass)
            steps.append(solver.last_steps)
    reference = solved[REFERENCE][0]
    rows = []
    for tolerance, (masses, steps, samples) in solved.items():
        rows.append({
            "tolerance": tolerance, "median_products": float(np.median(steps)), **percentiles(samples),
            "same_top5_order": sum(list(top(m, 5)) == list(top(r, 5)) for m, r in zip(masses, reference)),
            "same_top10_set": sum(set(top(m, 10)) == set(top(r, 10)) for m, r in zip(masses, reference)),
            "max_l1_to_reference": float(max(np.abs(m - r).sum() for m, r in zip(masses, reference))),
        })
    result = {"command": f"python benchmarks/bench_pagerank_tolerance.py {args.store.name}", "store": args.store.name,
              "machine": cpu(), "vertices": graph.graph.graph.vcount(), "edges": graph.graph.graph.ecount(),
              "questions": len(resets), "rows": rows}
    write_results(args.out, f"pagerank_tolerance_{args.store.stem}", result, render(result))


def top(mass: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-mass, kind="stable")[:k]


def render(r: dict) -> str:
    lines = [
        f"# PageRank stopping tolerance: {r['store']} ({r['vertices']} vertices, {r['edges']} edges)\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}\n",
        f"The hipporag reset vectors of {r['questions']} dev questions, each solved alone. Same = as at 1e-8.\n",
        "| L1 tolerance | sparse products (median) | p50 ms | p95 ms | same top-5 order | same top-10 set | max L1 to 1e-8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(f"| {row['tolerance']:g} | {row['median_products']:g} | {row['p50_ms']} | {row['p95_ms']} | "
                     f"{row['same_top5_order']} / {r['questions']} | {row['same_top10_set']} / {r['questions']} | "
                     f"{row['max_l1_to_reference']:.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
