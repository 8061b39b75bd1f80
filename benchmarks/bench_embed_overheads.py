"""What an int8 short text's embedding costs beyond its product: the pooling step, and one text per run.

    python benchmarks/bench_embed_overheads.py STORE.duckdb [--sample 6000] [--rounds 5] [--out benchmarks/results]

Texts: a seeded sample of the store's phrases and facts, as indexing embeds them.
1. Pooling: `Embedder.encode_corpus` (int8, a thread per core, as indexing runs it) with the model's own
   Pooling and Normalize modules against numpy's mean (`OnnxEncoder.mean_pooled`), alternating `--rounds`
   times in one process; wall ms per text.
2. One text per run against batches of 64 sorted by length (padded), on one thread: CPU ms per text of
   the ONNX Runtime runs alone. The batches show what quantising each token by its own range (which
   would make a text's vector independent of its batch-mates) could gain; they are not what indexing does.
Writes embed_overheads.json and .md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from bench_index import machine, write_results
from bench_int8_fidelity import sample_texts

from hippograph.pipeline.embed import Embedder
from hippograph.pipeline.embed_onnx import OnnxEncoder

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


def runs_cpu_ms(encoder: OnnxEncoder, model, texts: list[str], batch: int = 64) -> dict[str, float]:
    """CPU ms per text of the ONNX runs alone: one text a run, then length-sorted padded batches."""
    alone = encoder._unpadded(texts)
    for inputs in alone[:20]:
        encoder.session.run(None, inputs)
    start = time.process_time()
    for inputs in alone:
        encoder.session.run(None, inputs)
    single = time.process_time() - start
    order = sorted(range(len(texts)), key=lambda i: alone[i]["input_ids"].shape[1])
    batches = [model.preprocess([texts[i] for i in order[b : b + batch]]) for b in range(0, len(order), batch)]
    start = time.process_time()
    for features in batches:
        encoder.session.run(None, {name: features[name].numpy() for name in encoder.input_names})
    batched = time.process_time() - start
    tokens = float(np.mean([inputs["input_ids"].shape[1] for inputs in alone]))
    return {"mean_tokens": round(tokens, 1), "one_per_run_ms": round(single * 1000 / len(texts), 3),
            f"batches_of_{batch}_ms": round(batched * 1000 / len(texts), 3), "ratio": round(single / batched, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--sample", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    texts = sample_texts(args.store, args.sample, seed=5)
    del texts["passages"]
    embedder = Embedder("all-MiniLM-L6-v2", "int8")
    pooling = pooling_rounds(embedder, texts["phrases"] + texts["facts"], args.rounds)
    one_thread = OnnxEncoder(embedder.model, embedder.dim, "int8", threads=1)
    runs = {kind: runs_cpu_ms(one_thread, embedder.model, sample) for kind, sample in texts.items()}
    result = {"command": f"python benchmarks/bench_embed_overheads.py STORE --sample {args.sample} --rounds {args.rounds}",
              "texts": {kind: len(sample) for kind, sample in texts.items()},
              "pooling_wall_ms_per_text": pooling, "runs_cpu_ms_per_text": runs, "machine": machine()}
    write_results(args.out, "embed_overheads", result, render(result))


def render(r: dict) -> str:
    m = r["machine"]
    lines = [
        "# An int8 short text's embedding: pooling, and one text per run\n",
        f"Command: `{r['command']}`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, CPU features {', '.join(m['features'])}\n",
        f"Texts: {r['texts']['phrases']} phrases and {r['texts']['facts']} facts of the store.\n",
        "Pooling: `encode_corpus` (int8, a thread per core), wall ms per text, rounds alternating:\n",
        "| pooling | " + " | ".join(f"round {i + 1}" for i in range(len(r["pooling_wall_ms_per_text"]["numpy"]))) + " | median |",
        "|---|" + "---|" * (len(r["pooling_wall_ms_per_text"]["numpy"]) + 1),
    ]
    lines += [f"| {name} | {' | '.join(map(str, values))} | {float(np.median(values)):.3f} |"
              for name, values in r["pooling_wall_ms_per_text"].items()]
    lines += ["", "ONNX Runtime runs alone, one thread, CPU ms per text:\n",
              "| texts | mean tokens | one text a run | batches of 64, sorted by length | ratio |", "|---|---|---|---|---|"]
    for kind, v in r["runs_cpu_ms_per_text"].items():
        lines.append(f"| {kind} | {v['mean_tokens']} | {v['one_per_run_ms']} | {v['batches_of_64_ms']} | {v['ratio']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
