"""What compact fact and phrase vectors save and cost in a query process: float32 (as before) against
compact (two int8 codes a row), each in a fresh process of its own, alternating.

    python benchmarks/bench_vectors.py STORE.duckdb [--repeats 2] [--rounds 2] [--every 1] [--out results.json]

Per variant: bytes held per vector kind, the process's RSS once the models are loaded, then after the
first hipporag and memorag queries (the snapshot read, the graph built: VmRSS, and VmHWM, the peak), the
load's seconds, the fact scan (`fact_cosine.top`, the 5 best facts) per question and per batch of 32
questions (wall and CPU time), and hipporag p50 / p95 (and the CPU time's p50) over the 149 questions of both development sets asked one at a time
(top 5, after load, a fresh `Memory` per round, as `bench_query_latency.py` measures; `--every n` asks
every n-th of them, for a large store on a slow machine). The store is only
read. Prints one JSON object and appends it to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
QUERY_SETS = [DATA / "hotpotqa-dev" / "questions.jsonl", DATA / "musique-dev" / "questions.jsonl"]
WARM_UP = "Which city is the capital of the country where the longest river begins?"
VARIANTS = ("float32", "compact")


def status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {key: int(fields[key].split()[0]) // 1024 for key in ("VmRSS", "VmHWM")}


def cpu() -> dict[str, object]:
    info = Path("/proc/cpuinfo").read_text()
    name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
    flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split(":", 1)[1].split())
    features = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "f16c") if f in flags]
    return {"cpu": name, "cores": os.cpu_count(), "features": features}


def questions() -> list[str]:
    return [json.loads(line)["question"] for path in QUERY_SETS for line in path.read_text().splitlines() if line.strip()]


def median_ms(samples: list[float]) -> float:
    return round(float(np.median(samples)) * 1000, 2)


def timed(call) -> tuple[float, float]:
    """Seconds of wall time and of CPU time (all the process's threads) that `call()` took. On a machine
    shared with other jobs the wall time stretches with the load; the CPU time much less."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def fact_scan(index, vectors: np.ndarray, k: int = 5) -> dict[str, float]:
    """Median wall and CPU milliseconds of the k best facts for one question, and for a batch of 32."""
    single = [timed(lambda: index.top(vector, k)) for vector in vectors]
    batch = [timed(lambda: index.top_many(vectors[first : first + 32], k)) for first in range(0, len(vectors) - 31, 32)]
    return {"per_question_ms": median_ms([w for w, _ in single]), "per_question_cpu_ms": median_ms([c for _, c in single]),
            "per_batch_of_32_ms": median_ms([w for w, _ in batch]), "per_batch_of_32_cpu_ms": median_ms([c for _, c in batch])}


def child(store: Path, variant: str, rounds: int, every: int) -> dict[str, object]:
    """One variant in this process: memory, scan speed and hipporag latency."""
    from hippograph import Config, Memory
    from hippograph.pipeline.embed import embedder_for
    from hippograph.pipeline.extract import load_spacy
    from hippograph.retrievers import Snapshot

    if variant == "float32":  # the query process as before compact vectors: every vector float32
        read = Snapshot.read
        Snapshot.read = staticmethod(lambda path, identity=None: read(path, identity, compact=False))
    config = Config()
    embedder_for(config).encode(["warm up"])
    load_spacy(config.spacy_model)("Warm up.")
    result: dict[str, object] = {"variant": variant, "models_loaded": status()}
    memory = Memory(store)
    start = time.perf_counter()
    memory.retrieve(WARM_UP, mode="hipporag")
    result["load_seconds"] = round(time.perf_counter() - start, 1)
    result["after_hipporag"] = status()
    memory.retrieve(WARM_UP, mode="memorag")
    result["after_memorag"] = status()
    snapshot = memory.retriever("hipporag").snapshot
    graph = memory.retriever("hipporag").graph
    result["bytes"] = {
        "passages": snapshot.passage_index.nbytes, "facts": graph.fact_cosine.nbytes,
        "phrases": graph.phrase_cosine.nbytes, "memory_keys": memory.retriever("memory").key_index.nbytes,
    }
    result["rows"] = {"passages": len(snapshot.passage_index), "facts": len(graph.fact_cosine), "phrases": len(graph.phrase_cosine)}
    asked = questions()[::every]
    vectors = embedder_for(config).encode(asked)
    result["fact_scan"] = fact_scan(graph.fact_cosine, vectors)
    samples = []
    for round_ in range(rounds):
        memory = memory if round_ == 0 else Memory(store)  # a fresh Memory per round: no cached question vectors
        memory.retrieve(WARM_UP, mode="hipporag")
        samples += [timed(lambda: memory.retrieve(question, mode="hipporag", top_k=5)) for question in asked]
    wall = [w for w, _ in samples]
    result["hipporag"] = {"p50_ms": median_ms(wall), "p95_ms": round(float(np.percentile(wall, 95)) * 1000, 2),
                          "cpu_p50_ms": median_ms([c for _, c in samples]), "queries": len(samples)}
    result["end"] = status()
    return result


def rankings(store: Path, question_files: list[Path], k: int = 10) -> dict[str, object]:
    """hipporag's top k passages and seed facts for each question from a float32 snapshot and a compact one
    of the same store, in one process: how many rankings are identical, and the largest score difference."""
    from hippograph import Config
    from hippograph.retrievers import Snapshot

    asked = [json.loads(line)["question"] for path in question_files for line in path.read_text().splitlines() if line.strip()]
    float32 = Snapshot.read(store, compact=False).retriever("hipporag", Config()).retrieve_many(asked, k)
    compact = Snapshot.read(store).retriever("hipporag", Config()).retrieve_many(asked, k)
    same_passages = sum([p.passage_id for p in a.passages] == [p.passage_id for p in b.passages] for a, b in zip(float32, compact))
    same_facts = sum([(f.subject, f.predicate, f.object) for f in a.facts] == [(f.subject, f.predicate, f.object) for f in b.facts]
                     for a, b in zip(float32, compact))
    score_gap = max(abs(p.score - q.score) for a, b in zip(float32, compact) for p, q in zip(a.passages, b.passages))
    return {"store": store.name, "questions": len(asked), "k": k, "identical_passage_rankings": same_passages,
            "identical_seed_facts": same_facts, "largest_score_difference": score_gap}


def table(report: dict[str, object]) -> str:
    """The report as a Markdown table: each figure the median over a variant's processes."""
    runs = report["runs"]

    def figure(variant: str, get) -> float:
        return float(np.median([get(run) for run in runs if run["variant"] == variant]))

    mb = 1 << 20
    rows: list[tuple] = [(f"{kind} vectors held, MB", lambda r, kind=kind: r["bytes"][kind] / mb, 1) for kind in runs[0]["bytes"]]
    rows += [
        ("RSS with the models loaded, MB", lambda r: r["models_loaded"]["VmRSS"], 0),
        ("RSS after load (snapshot, graph, first hipporag query), MB", lambda r: r["after_hipporag"]["VmRSS"], 0),
        ("RSS after the first memorag query too, MB", lambda r: r["after_memorag"]["VmRSS"], 0),
        ("peak RSS while loading (VmHWM), MB", lambda r: r["after_memorag"]["VmHWM"], 0),
        ("load (read the store, build the graph), s", lambda r: r["load_seconds"], 1),
        ("fact scan, 5 best, one question, ms (CPU ms)", lambda r: r["fact_scan"]["per_question_ms"], 1,
         lambda r: r["fact_scan"]["per_question_cpu_ms"]),
        ("fact scan, 5 best, a batch of 32 questions, ms (CPU ms)", lambda r: r["fact_scan"]["per_batch_of_32_ms"], 1,
         lambda r: r["fact_scan"]["per_batch_of_32_cpu_ms"]),
        ("hipporag p50, ms (CPU ms)", lambda r: r["hipporag"]["p50_ms"], 1, lambda r: r["hipporag"]["cpu_p50_ms"]),
        ("hipporag p95, ms", lambda r: r["hipporag"]["p95_ms"], 1),
    ]
    lines = ["| | float32 | compact |", "|---|---|---|"]
    for label, get, digits, *cpu_time in rows:
        cells = [f"{figure(v, get):,.{digits}f}" + (f" ({figure(v, cpu_time[0]):,.{digits}f})" if cpu_time else "")
                 for v in VARIANTS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", type=Path, nargs="?")
    parser.add_argument("--repeats", type=int, default=2, help="processes per variant, alternating")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions per process")
    parser.add_argument("--every", type=int, default=1, help="ask every n-th question only")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help="print the Markdown table of a report (a line of --out) and exit")
    parser.add_argument("--rankings", type=Path, nargs="*", metavar="QUESTIONS",
                        help="compare hipporag's rankings from float32 and compact vectors (questions: JSONL files) and exit")
    args = parser.parse_args()
    if args.rankings is not None:
        print(json.dumps(rankings(args.store, args.rankings or QUERY_SETS)))
        return
    if args.table:
        print(table(json.loads(args.table.read_text().strip().splitlines()[-1])))
        return
    if args.child:
        print(json.dumps(child(args.store, args.child, args.rounds, args.every)))
        return
    report: dict[str, object] = {
        "store": args.store.name, **cpu(), "every": args.every, "load_average_before": os.getloadavg(), "runs": [],
    }
    for _ in range(args.repeats):
        for variant in VARIANTS:
            command = [sys.executable, __file__, str(args.store), "--child", variant, "--rounds", str(args.rounds),
                       "--every", str(args.every)]
            run = subprocess.run(command, check=True, capture_output=True, text=True)
            report["runs"].append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(json.dumps(report["runs"][-1]), file=sys.stderr)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report))
    if args.out:
        with args.out.open("a") as out:
            out.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
