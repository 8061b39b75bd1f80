"""How close int8 vectors stay to float32 ones, per quantisation recipe: every product int8 (recipe v1);
the first layer's attention and feed-forward output products kept float32 (v2); and v2 with each
token's activations quantised by their own range instead of one range per run (v3, what
`pipeline/embed_onnx.quantise` does now).

    python benchmarks/bench_int8_fidelity.py STORE.duckdb [--sample 1000] [--out benchmarks/results] [--name NAME]

Texts: a seeded sample of the store's phrases and facts (as indexing embeds them) and of its passages.
Per recipe and kind: cosine of each int8 vector to PyTorch's float32 one (mean, 1st percentile, min) and
CPU milliseconds per text on one thread, one text per run, and for v3 also in runs of up to 64 texts
of one length (as indexing runs them since v3). Writes int8_fidelity.json and .md (or NAME.json and .md).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import onnxruntime
from bench_index import write_results
from bench_query_latency import cpu, machine_line
from onnxruntime.quantization import QuantType, quantize_dynamic

from hippograph.pipeline.embed import Embedder
from hippograph.pipeline.embed_onnx import (
    TEXTS_PER_RUN, OnnxEncoder, export_transformer, quantise_activations_per_token, quantise_weights,
)
from hippograph.types import titled

ROOT = Path(__file__).resolve().parent


def sample_texts(store: Path, size: int, seed: int = 7) -> dict[str, list[str]]:
    """A seeded sample of `size` phrases, facts and passages of `store`, as indexing embeds them."""
    con = duckdb.connect(str(store), read_only=True)
    sample = f"USING SAMPLE {size} ROWS (reservoir, {seed})"
    texts = {
        "phrases": [r[0] for r in con.execute(f"SELECT phrase FROM phrases {sample}").fetchall()],
        "facts": [" ".join(r) for r in con.execute(f"SELECT subject, predicate, object FROM facts {sample}").fetchall()],
        "passages": [titled(*r) for r in con.execute(f"SELECT title, text FROM passages {sample}").fetchall()],
    }
    con.close()
    return texts


def measure(encoder: OnnxEncoder, texts: list[str], reference: np.ndarray, grouped: bool) -> dict[str, float]:
    inputs = encoder._unpadded(texts)
    start = time.process_time()
    vectors = np.concatenate([encoder._embed_run(one) for one in inputs])
    cpu_ms = (time.process_time() - start) * 1000 / len(texts)
    cosines = (vectors * reference).sum(axis=1)
    result = {"mean": round(float(cosines.mean()), 4), "p1": round(float(np.percentile(cosines, 1)), 4),
              "min": round(float(cosines.min()), 4), "cpu_ms": round(cpu_ms, 2)}
    if grouped:
        encoder.texts_per_run = TEXTS_PER_RUN
        start = time.process_time()
        together = encoder.encode(texts, batch_size=256)
        result["grouped_cpu_ms"] = round((time.process_time() - start) * 1000 / len(texts), 2)
        result["grouped_equals_alone"] = bool(np.array_equal(together, vectors))
        encoder.texts_per_run = 1
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--name", default="int8_fidelity", help="results file name")
    args = parser.parse_args()
    embedder = Embedder("all-MiniLM-L6-v2", precision="float32")
    texts = sample_texts(args.store, args.sample)
    passages = texts["passages"][: args.sample // 4]  # long: a quarter as many keeps the run short
    texts["passages"] = passages
    references = {kind: embedder._encode_torch(batch, batch_size=32) for kind, batch in texts.items()}
    encoder = OnnxEncoder(embedder.model, embedder.dim, "int8", threads=1)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.log_severity_level = 1, 3
    result = {"command": f"python benchmarks/bench_int8_fidelity.py {args.store.name} --sample {args.sample}",
              "machine": cpu(), "texts": {k: len(v) for k, v in texts.items()}, "recipes": {}}
    with tempfile.TemporaryDirectory() as scratch:
        exported = Path(scratch, "model.onnx")
        export_transformer(embedder.model, exported)
        v1, v2, v3 = (Path(scratch, f"v{n}.onnx") for n in (1, 2, 3))
        recipes = {"v1: every product int8": v1, "v2: first layer's output products float32": v2,
                   "v3: v2, activations quantised per token": v3}
        quantize_dynamic(str(exported), str(v1), weight_type=QuantType.QInt8, per_channel=True)
        quantise_weights(exported, v2)
        shutil.copyfile(v2, v3)
        quantise_activations_per_token(v3)  # v3 = what `quantise` makes
        for _ in range(2):  # twice, alternating, so the recipes see the same machine; the second run counts
            for name, path in recipes.items():
                encoder.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                result["recipes"][name] = {kind: measure(encoder, batch, references[kind], path == v3)
                                           for kind, batch in texts.items()}
    write_results(args.out, args.name, result, render(result))


def render(r: dict) -> str:
    lines = [
        "# int8 against float32 vectors, per quantisation recipe\n",
        f"Command: `{r['command']}`  ",
        f"{machine_line(r['machine'])}\n",
        f"Texts: {', '.join(f'{n} {k}' for k, n in r['texts'].items())}. Cosine of each int8 vector to float32 "
        "(mean / 1st percentile / min) and CPU ms per text on one thread, one text a run (and, for v3, in runs "
        "of up to 64 texts of one length, as indexing runs them; `=` where their vectors equal those run alone).\n",
        "| recipe | phrases | facts | passages |", "|---|---|---|---|",
    ]
    for name, kinds in r["recipes"].items():
        cells = [f"{v['mean']} / {v['p1']} / {v['min']}, {v['cpu_ms']} ms"
                 + (f" ({v['grouped_cpu_ms']} ms in runs{', =' if v['grouped_equals_alone'] else ', differ'})"
                    if "grouped_cpu_ms" in v else "") for v in kinds.values()]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
