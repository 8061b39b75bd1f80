"""What pooling costs an int8 short text's embedding: `Embedder.encode_corpus` as indexing runs it (int8, texts
of one length sharing runs, a thread per core) with the model's own Pooling and Normalize modules against
numpy's mean (`OnnxEncoder.mean_pooled`), alternating `--rounds` times in one process; wall ms per text.

    python benchmarks/bench_embed_overheads.py STORE.duckdb [--sample 6000] [--rounds 5] [--out benchmarks/results]

Texts: a seeded sample of the store's phrases and facts, as indexing embeds them. Writes embed_overheads.json
and .md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_index import machine, write_results
from bench_int8_fidelity import sample_texts
from bench_query_latency import machine_line

from hippograph.pipeline.embed import Embedder

ROOT = Path(__file__).resolve().parent


def pooling_rounds(embedder: Embedder, texts: list[str], rounds: int) -> dict[str, list[float]]:
    """Wall ms per text of `encode_corpus`, the model's pooling modules and numpy's alternating."""
    embedder.encode_corpus(texts[:500])  # makes the int8 encoder and warms it
    encoder = embedder._int8
    result: dict[str, list[float]] = {"modules": [], "numpy": []}
    for _ in range(rounds):
        for name, numpy_pooling in (("modules", False), ("numpy", True)):
            encoder.mean_pooled = numpy_pooling
            start = time.perf_counter()
            embedder.encode_corpus(texts, batch_size=256)
            result[name].append(round((time.perf_counter() - start) * 1000 / len(texts), 3))
    encoder.mean_pooled = True
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--sample", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    texts = sample_texts(args.store, args.sample, seed=5)
    short = texts["phrases"] + texts["facts"]
    pooling = pooling_rounds(Embedder("all-MiniLM-L6-v2", "int8"), short, args.rounds)
    result = {"command": f"python benchmarks/bench_embed_overheads.py STORE --sample {args.sample} --rounds {args.rounds}",
              "texts": {kind: len(texts[kind]) for kind in ("phrases", "facts")},
              "pooling_wall_ms_per_text": pooling, "machine": machine()}
    write_results(args.out, "embed_overheads", result, render(result))


def render(r: dict) -> str:
    rounds = len(r["pooling_wall_ms_per_text"]["numpy"])
    lines = [
        "# What pooling costs an int8 short text's embedding\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}, {r['machine']['cores']} cores\n",
        f"Texts: {r['texts']['phrases']} phrases and {r['texts']['facts']} facts of the store. `encode_corpus` "
        "as indexing runs it (int8, texts of one length sharing runs, a thread per core), wall ms per text, "
        "rounds alternating:\n",
        "| pooling | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median |",
        "|---|" + "---|" * (rounds + 1),
    ]
    lines += [f"| {name} | {' | '.join(map(str, values))} | {float(np.median(values)):.3f} |"
              for name, values in r["pooling_wall_ms_per_text"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
