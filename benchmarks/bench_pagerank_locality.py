"""Could a hipporag PageRank touch less than the whole graph? Two ways to spend fewer sparse products,
measured on the hipporag reset vectors of the 149 dev questions on one store (counts, not timings):

- **A local walk**: push-style methods cost what the walk reaches from its seeds, which pays off when the
  seeds are few. hipporag's are not: every passage is seeded with its normalised dense score. Per run:
  the share of the reset mass on phrases (the rest is on passages), and, seeding only the phrases plus the
  M passages with the best dense scores, how often the top 5 is still the whole reset's, and how many
  vertices then hold more than 1e-7 of the mass (what a local method would have to visit).
- **Stopping once the ranking is certain**: iteration stops when the L1 error bound reaches the
  tolerance; it could stop as soon as that bound is under half of every gap between consecutive scores
  of the top k + 1 passages (no passage could then change place). Per run: the sparse products until the
  top 5 and the top 10 are certain that way, against the products to converge.

    python benchmarks/bench_pagerank_locality.py STORE.duckdb [--out benchmarks/results]

Writes pagerank_locality_<store>.json and .md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from bench_index import dev_questions, hipporag_resets, write_results
from bench_query_latency import cpu, machine_line

from hippograph import Config, Memory
from hippograph.graph.build import _chebyshev_weight
from hippograph.indexing.cosine import top_k

ROOT = Path(__file__).resolve().parent
PASSAGES_SEEDED = (0, 50, 200, 1000)
REACHED = 1e-7  # mass a vertex must hold to count as reached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    memory = Memory(args.store, Config())
    graph = memory.retriever("hipporag").graph
    offset, damping, solver = graph.graph.passage_offset, graph.config.damping, graph._power
    resets = [reset for reset, _ in hipporag_resets(memory, dev_questions()) if reset[:offset].any()]
    local = {m: {"same_top5_order": 0, "same_top5_set": 0, "reached": []} for m in PASSAGES_SEEDED}
    shares, certain5, certain10, converged = [], [], [], []
    for reset in resets:
        exact = solver(reset, damping)
        best5 = list(top_k(exact[offset:], 5))
        shares.append(float(reset[:offset].sum() / reset.sum()))
        for m, counts in local.items():
            passages = np.zeros(len(reset) - offset)
            kept = top_k(reset[offset:], m)  # the passage weights rank passages as their dense scores do
            passages[kept] = reset[offset:][kept]
            mass = solver(np.concatenate([reset[:offset], passages]), damping)
            mine = list(top_k(mass[offset:], 5))
            counts["same_top5_order"] += mine == best5
            counts["same_top5_set"] += set(mine) == set(best5)
            counts["reached"].append(int((mass > REACHED).sum()))
        steps = products_until_certain(solver, reset, damping, offset)
        certain5.append(steps[5])
        certain10.append(steps[10])
        converged.append(steps["converged"])
    result = {
        "command": f"python benchmarks/bench_pagerank_locality.py {args.store.name}", "store": args.store.name,
        "machine": cpu(), "vertices": graph.graph.graph.vcount(), "edges": graph.graph.graph.ecount(),
        "passages": graph.graph.graph.vcount() - offset, "questions": len(resets),
        "phrase_share_of_reset": {"median": float(np.median(shares)), "max": float(np.max(shares))},
        "local": [{"passages_seeded": m, "same_top5_order": c["same_top5_order"], "same_top5_set": c["same_top5_set"],
                   "reached_median": float(np.median(c["reached"])), "reached_max": int(max(c["reached"]))}
                  for m, c in local.items()],
        "products": {"certain_top5_median": float(np.median(certain5)), "certain_top10_median": float(np.median(certain10)),
                     "converged_median": float(np.median(converged))},
    }
    write_results(args.out, f"pagerank_locality_{args.store.stem}", result, render(result))


def products_until_certain(solver, reset: np.ndarray, damping: float, offset: int) -> dict:
    """`PowerIteration`'s own iteration, watching after each product whether the top 5 and top 10
    passages are certain under its L1 error bound (2 d / (1 - d) x the residual, see `_converged`)."""
    restart = torch.from_numpy(reset[:, None] / reset.sum())
    previous, ranks, weight, found = restart, restart, 1.0, {}
    for step in range(solver.max_steps):
        stepped = torch.addmm(restart, solver.transition, ranks, alpha=damping)
        residual = float((stepped - ranks).abs().sum())
        bound = 2 * damping / (1 - damping) * residual
        scores = (stepped / stepped.sum()).numpy()[offset:, 0]
        for k in (5, 10):
            if k not in found and np.all(-np.diff(scores[top_k(scores, k + 1)]) > 2 * bound):
                found[k] = step + 1
        if solver._converged(residual, damping):
            break
        weight = _chebyshev_weight(step, damping, weight)
        stepped = torch.lerp(previous, stepped, weight)
        previous, ranks = ranks, stepped
    return {5: found.get(5, step + 1), 10: found.get(10, step + 1), "converged": step + 1}


def render(r: dict) -> str:
    lines = [
        f"# Could PageRank stay local? {r['store']} ({r['vertices']} vertices, {r['passages']} of them passages)\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}\n",
        f"The hipporag reset vectors of the {r['questions']} dev questions that seed a phrase. Share of the reset "
        f"mass on phrase vertices: median {r['phrase_share_of_reset']['median']:.3f}, max "
        f"{r['phrase_share_of_reset']['max']:.3f}; the rest is on passages.\n",
        "Seeding the phrases and only the M passages with the best dense scores:\n",
        f"| M | same top-5 order | same top-5 set | vertices reached (> {REACHED:g} of the mass), median / max |",
        "|---|---|---|---|",
    ]
    for row in r["local"]:
        lines.append(f"| {row['passages_seeded']} | {row['same_top5_order']} / {r['questions']} | "
                     f"{row['same_top5_set']} / {r['questions']} | {row['reached_median']:.0f} / {row['reached_max']} |")
    p = r["products"]
    lines += [
        "",
        f"Sparse products (median) until the top 5 is certain under the L1 error bound: {p['certain_top5_median']:g}; "
        f"the top 10: {p['certain_top10_median']:g}; to converge: {p['converged_median']:g}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
