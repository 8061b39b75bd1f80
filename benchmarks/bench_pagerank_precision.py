"""Does PageRank's sparse product gain from float32 values on a large graph? One product (the transition
matrix times a vector: what each power step costs) with float64 and with float32 values, interleaved, on
a store's hipporag graph.

    python benchmarks/bench_pagerank_precision.py STORE.duckdb [--products 30] [--out benchmarks/results]

Writes pagerank_precision_<store>.json and .md: the graph's size, and p50 ms of a product per precision.
A measurement for the next step, not a change: `PowerIteration` runs in float64.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from bench_index import percentiles, write_results
from bench_query_latency import cpu, machine_line

from hippograph import Config, Memory
from hippograph.graph.build import PowerIteration

ROOT = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--products", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    graph = Memory(args.store, Config()).retriever("hipporag").graph.graph.graph
    double = PowerIteration(graph).transition
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
        single = torch.sparse_csr_tensor(double.crow_indices(), double.col_indices(), double.values().float(),
                                         size=double.shape)
    vector = torch.from_numpy(np.random.default_rng(3).random((graph.vcount(), 1)))
    samples: dict[str, list[float]] = {"float64": [], "float32": []}
    for _ in range(args.products):
        for name, matrix, x in (("float64", double, vector), ("float32", single, vector.float())):
            start = time.perf_counter()
            torch.addmm(x, matrix, x, alpha=0.5)
            samples[name].append((time.perf_counter() - start) * 1000)
    result = {"command": f"python benchmarks/bench_pagerank_precision.py {args.store.name} --products {args.products}",
              "store": args.store.name, "machine": cpu(), "vertices": graph.vcount(), "edges": graph.ecount(),
              "nonzeros": int(double.values().numel()), "torch_threads": torch.get_num_threads(),
              "product_ms": {name: percentiles(s) for name, s in samples.items()}}
    write_results(args.out, f"pagerank_precision_{args.store.stem}", result, render(result))


def render(r: dict) -> str:
    lines = [
        f"# One PageRank product, float64 against float32 values: {r['store']}\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}; "
        f"{r['torch_threads']} PyTorch threads\n",
        f"{r['vertices']} vertices, {r['edges']} edges, {r['nonzeros']} non-zeros in the transition matrix.\n",
        "| values | p50 ms | p95 ms |", "|---|---|---|",
    ]
    lines += [f"| {name} | {v['p50_ms']} | {v['p95_ms']} |" for name, v in r["product_ms"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
