"""Speed and scale: index the 2wiki corpus (6,119 passages) from scratch and time every stage, then
query latency per mode after load, with how a hipporag query splits its time.

    python benchmarks/bench_index.py [--corpus ../shared/data/2wiki-corpus/corpus.jsonl] [--no-graph]
                                     [--precision auto|float32|bfloat16|int8] [--name NAME]

Writes benchmarks/results/index_2wiki[_nograph].json and .md (or NAME.json and .md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_query_latency import cpu

from hippograph import Config, Memory
from hippograph.evaluate import WARM_UP
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.sources import read_documents

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"
QUERY_SETS = [DATA / "hotpotqa-dev" / "questions.jsonl", DATA / "musique-dev" / "questions.jsonl"]


def machine() -> dict[str, object]:
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    # cpu(): its name and the features embedding speed depends on (see README, Known gaps)
    return {**cpu(), "cores": os.cpu_count(), "memory_gb": round(memory_gb, 1), "python": platform.python_version()}


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # spaCy worker processes
    return round(max(own, children) / 1024, 1)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(samples_ms, 50)), 2), "p95_ms": round(float(np.percentile(samples_ms, 95)), 2)}


def dev_questions() -> list[str]:
    """The 149 questions of both development sets."""
    return [json.loads(line)["question"] for path in QUERY_SETS for line in path.read_text().splitlines() if line.strip()]


def timed_queries(memory: Memory, mode: str, questions: list[str]) -> dict[str, float]:
    """p50/p95 of `questions` asked one at a time (top 5) by `mode`."""
    samples = []
    for question in questions:
        start = time.perf_counter()
        memory.retrieve(question, mode=mode, top_k=5)
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def query_latencies(db: Path, config: Config, questions: list[str]) -> dict[str, dict[str, float]]:
    """p50/p95 per mode, each mode on a fresh `Memory`: a query reuses the vectors and parses of texts
    asked lately, so one mode must not find the questions another embedded."""
    result = {}
    for mode in ("bm25", "dense", "hipporag"):
        memory = Memory(db, config)
        memory.retrieve(WARM_UP, mode=mode)  # load the snapshot and build the mode's index
        result[mode] = timed_queries(memory, mode, questions)
    return result


def hipporag_split(memory: Memory, questions: list[str]) -> dict[str, dict[str, float]]:
    """Time each part of a hipporag query on its own, in the order `HippoRAGRetriever.retrieve_many` runs
    them: query phrases (spaCy), one embedding call (question and unmatched phrases), phrase linking,
    fact scoring (with the dense scores and the reset vector), PageRank."""
    parts: dict[str, list[float]] = {name: [] for name in SPLIT_PARTS}
    graph = memory.retriever("hipporag").graph
    for reset, times in hipporag_resets(memory, questions):
        start = time.perf_counter()
        graph.pagerank(reset[:, None])
        times["pagerank"] = time.perf_counter() - start
        for name, seconds in times.items():
            parts[name].append(seconds * 1000)
    return {name: percentiles(samples) for name, samples in parts.items()}


SPLIT_PARTS = ("query_phrases", "embed", "phrase_linking", "fact_scoring", "pagerank")


def hipporag_resets(memory: Memory, questions: list[str]):
    """Each question's PageRank reset vector, made as `HippoRAGRetriever.retrieve_many` makes it, with the
    seconds each part before PageRank took."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")  # as Memory.retrieve does; spinning BLAS threads slow the embedder
    retriever = memory.retriever("hipporag")
    graph = retriever.graph
    for question in questions:
        t0 = time.perf_counter()
        named = retriever.question_phrases(question)
        t1 = time.perf_counter()
        vectors = retriever.embed([question, *graph.phrases_to_embed(named)])
        t2 = time.perf_counter()
        linked = graph.link_phrases(named, vectors)
        t3 = time.perf_counter()
        dense = retriever.snapshot.passage_index.scores(vectors[question])
        seeds = graph.recognize(graph.link_facts(vectors[question]), linked)
        reset = np.concatenate([graph._fact_phrase_weights(seeds) + graph._entity_phrase_weights(linked),
                                graph._passage_weights(dense)])
        t4 = time.perf_counter()
        yield reset, {"query_phrases": t1 - t0, "embed": t2 - t1, "phrase_linking": t3 - t2, "fact_scoring": t4 - t3}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=DATA / "2wiki-corpus" / "corpus.jsonl")
    parser.add_argument("--no-graph", action="store_true", help="index passages only (bm25 and dense)")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--db", type=Path, help="keep the store at this new path (default: a temporary file)")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "int8"),
                        help="the embedding_precision option")
    parser.add_argument("--name", help="results file name (default: index_2wiki[_nograph])")
    args = parser.parse_args()
    if args.db is not None and args.db.exists():
        parser.error(f"{args.db} exists: the benchmark indexes from scratch")
    config = Config().replace(build_graph=not args.no_graph, embedding_precision=args.precision)
    documents = read_documents([args.corpus])
    questions = dev_questions()
    with tempfile.TemporaryDirectory() as scratch:
        db = args.db or Path(scratch) / "bench.duckdb"
        start = time.perf_counter()
        report = index_documents(db, documents, config, progress=False)
        total = time.perf_counter() - start
        latency = query_latencies(db, config, questions)
        split = hipporag_split(Memory(db, config), questions) if not args.no_graph else {}
        store_mb = round(db.stat().st_size / 1e6, 1)
    stage_rates = {stage: round(report.passages / s, 1) for stage, s in report.seconds.items() if s > 0}
    options = (" --no-graph" if args.no_graph else "") + (f" --precision {args.precision}" if args.precision != "auto" else "")
    options += f" --name {args.name}" if args.name else ""
    result = {
        "command": "python benchmarks/bench_index.py" + options,
        "embedding_precision": args.precision, "corpus_precision": embedder_for(config).corpus_precision,
        "corpus": args.corpus.parent.name, "documents": report.documents, "passages": report.passages,
        "triples": report.triples, "phrases": report.new_phrases, "facts": report.new_facts,
        "synonym_edges": report.synonym_edges,
        "index_seconds": round(total, 1), "index_passages_per_s": round(report.passages / total, 1),
        "stage_seconds": report.seconds, "stage_passages_per_s": stage_rates,
        "peak_rss_mb": peak_rss_mb(), "store_mb": store_mb,
        "query_latency": latency, "hipporag_split": split, "queries": len(questions), "machine": machine(),
    }
    name = args.name or ("index_2wiki_nograph" if args.no_graph else "index_2wiki")
    write_results(args.out, name, result, render(result))


def write_results(folder: Path, name: str, result: dict, table: str) -> None:
    """`result` as <folder>/<name>.json and its `table` as <name>.md; the table is printed too."""
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / f"{name}.md").write_text(table)
    print(table)


def render(r: dict) -> str:
    lines = [
        f"# Index benchmark: {r['corpus']} ({r['documents']} documents, {r['passages']} passages)\n",
        f"Command: `{r['command']}`  ",
        f"Machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, {r['machine']['memory_gb']} GB, "
        f"Python {r['machine']['python']}, CPU only; CPU features: {', '.join(r['machine'].get('features', [])) or 'not recorded'}  ",
        f"Embedding precision: {r.get('embedding_precision', 'auto')} (indexing computed in {r.get('corpus_precision', 'not recorded')})\n",
        f"Whole index: **{r['index_seconds']} s, {r['index_passages_per_s']} passages/s**; peak RSS {r['peak_rss_mb']} MB; "
        f"store {r['store_mb']} MB; {r['triples']} triples, {r['phrases']} phrases, {r['facts']} facts, "
        f"{r['synonym_edges']} synonym edges\n",
        "| stage | seconds | passages/s |", "|---|---|---|",
    ]
    lines += [f"| {s} | {sec} | {r['stage_passages_per_s'].get(s, '')} |" for s, sec in r["stage_seconds"].items()]
    lines += ["", f"Query latency after load ({r['queries']} questions, one at a time, top 5):\n",
              "| mode | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {m} | {v['p50_ms']} | {v['p95_ms']} |" for m, v in r["query_latency"].items()]
    if r["hipporag_split"]:
        lines += ["", "Where a hipporag query spends its time:\n", "| part | p50 ms | p95 ms |", "|---|---|---|"]
        lines += [f"| {m} | {v['p50_ms']} | {v['p95_ms']} |" for m, v in r["hipporag_split"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
