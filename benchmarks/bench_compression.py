"""Compression ratio of the memory bank over a corpus, without building a store:

    python benchmarks/bench_compression.py ../shared/data/2wiki-corpus/corpus.jsonl

Runs the stages the records come from (chunk, extract) and the `compress` stage's record builder
(`compress_documents`, the same function the stage calls before embedding the keys), then reports bytes
kept / source bytes, as `hippograph stats` does for an indexed store. Writes
benchmarks/results/compression_<corpus>.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_memory import cpu_name  # the script beside this one (python puts benchmarks/ on the path)

from hippograph import Config
from hippograph.pipeline.compress import compress_documents
from hippograph.pipeline.sources import read_documents
from hippograph.pipeline.stages import chunk, extract

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    args = parser.parse_args()
    config = Config()
    documents = read_documents([args.corpus])
    start = time.perf_counter()
    facts = extract(chunk(documents, config), config)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    records = compress_documents(documents, facts, config.memory_budget)
    compressed = time.perf_counter() - start
    kept, source = sum(r.kept_bytes for r in records), sum(r.source_bytes for r in records)
    name = args.corpus.parent.name
    text = (
        f"# Memory bank compression: {name} ({cpu_name()}, 2 cores)\n\n"
        f"`python benchmarks/bench_compression.py {args.corpus}` (memory_budget {config.memory_budget})\n\n"
        f"| documents | source bytes | bytes kept | compression ratio | keys per record | chunk + extract | records |\n"
        f"|---|---|---|---|---|---|---|\n"
        f"| {len(records)} | {source:,} | {kept:,} | {kept / source:.3f} | "
        f"{sum(len(r.keys) for r in records) / len(records):.2f} | {parsed:.0f} s | {compressed:.1f} s |\n"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"compression_{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
