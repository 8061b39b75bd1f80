"""Evidence for two speed choices: bf16 autocast for the embedder, and power iteration for PageRank.

    python benchmarks/bench_choices.py

Needs benchmarks/.cache/musique-dev.duckdb (benchmarks/run_eval.sh makes it) and benchmarks/.cache/2wiki.duckdb
(`hippograph index ../shared/data/2wiki-corpus/corpus.jsonl --db benchmarks/.cache/2wiki.duckdb`).

Writes benchmarks/results/choices.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench_index import machine
from hippograph import Memory
from hippograph.graph.build import PowerIteration, personalized_pagerank
from hippograph.pipeline.embed import Embedder

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"


def embedder_precision(texts: list[str]) -> list[str]:
    rows = []
    vectors = {}
    for precision in ("float32", "bfloat16"):
        embedder = Embedder("all-MiniLM-L6-v2", precision)
        embedder.encode(texts[:64])  # warm-up
        start = time.perf_counter()
        vectors[precision] = embedder.encode(texts)
        rows.append(f"| {precision} | {len(texts) / (time.perf_counter() - start):.1f} |")
    cosine = (vectors["float32"] * vectors["bfloat16"]).sum(axis=1)
    return ["| precision | passages/s |", "|---|---|", *rows, "",
            f"cosine(float32, bfloat16) per passage: min {cosine.min():.5f}, mean {cosine.mean():.5f}"]


def pagerank_solvers(store: Path) -> list[str]:
    """p50 time of each solver over 30 random resets, and how far apart their scores are."""
    retriever = Memory(store).retriever("hipporag").graph
    graph = retriever.graph.graph
    rng = np.random.default_rng(0)
    resets = []
    for _ in range(30):
        reset = np.zeros(graph.vcount())
        reset[rng.choice(retriever.graph.passage_offset, 4, replace=False)] = 1.0
        reset[retriever.graph.passage_offset:] = 0.05 * rng.random(graph.vcount() - retriever.graph.passage_offset)
        resets.append(reset)
    power = PowerIteration(graph)
    timings, gap = {}, 0.0
    with threadpool_limits(1, "blas"):
        for name, solve in (("prpack", lambda r: personalized_pagerank(graph, r, 0.5)), ("power", lambda r: power(r, 0.5))):
            samples = []
            for reset in resets:
                start = time.perf_counter()
                solve(reset)
                samples.append((time.perf_counter() - start) * 1000)
            timings[name] = float(np.median(samples))
        gap = max(float(np.abs(personalized_pagerank(graph, r, 0.5) - power(r, 0.5)).max()) for r in resets)
    return [f"graph: {graph.vcount()} vertices, {graph.ecount()} edges ({store.stem})", "",
            "| solver | p50 ms per query |", "|---|---|",
            *[f"| {name} | {ms:.2f} |" for name, ms in timings.items()], "",
            f"largest difference between the two solvers' scores over 30 queries: {gap:.2e}"]


def main() -> None:
    texts = [f"{r['title']}\n{r['text']}" for r in map(json.loads, (DATA / "hotpotqa-dev" / "corpus.jsonl").read_text().splitlines()[:500])]
    about = machine()
    lines = ["# Speed choices\n", "Command: `python benchmarks/bench_choices.py`  ",
             f"Machine: {about['cpu']}, {about['cores']} cores, CPU only\n",
             "## Embedder precision (500 hotpotqa-dev passages)\n", *embedder_precision(texts), ""]
    for store in ("musique-dev", "2wiki"):
        lines += ["## PageRank solver\n", *pagerank_solvers(ROOT / ".cache" / f"{store}.duckdb"), ""]
    (ROOT / "results" / "choices.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
