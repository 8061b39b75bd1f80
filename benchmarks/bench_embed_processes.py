"""Can two processes of one thread each embed faster than one process of two threads (2-core machine)?

    python benchmarks/bench_embed_processes.py

Embeds 2wiki texts both ways: 6,000 short texts (six words, like phrases and facts) and 800 passages.
Writes benchmarks/results/embed_processes.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench_index import DATA, machine

ROOT = Path(__file__).resolve().parent
CORPUS = DATA / "2wiki-corpus" / "corpus.jsonl"

# Embed every `parts`-th text starting at `part`, with `threads` torch threads; print the seconds taken.
WORKER = """
import json, sys, time
threads, part, parts, kind, corpus = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
import torch
torch.set_num_threads(threads)
from hippograph import Config
from hippograph.pipeline.embed import embedder_for
records = [json.loads(line) for line in open(corpus, encoding="utf-8")][:3000]
if kind == "short":
    texts, batch = [" ".join(r["text"].split()[i:i + 6]) for r in records for i in (0, 6)][:6000], 256
else:
    texts, batch = [r["title"] + "\\n" + r["text"] for r in records][:800], 64
texts = texts[part::parts]
embedder = embedder_for(Config())
embedder.encode(texts[:8])
start = time.perf_counter()
embedder.encode(texts, batch_size=batch)
print(time.perf_counter() - start)
"""


def run(threads: int, parts: int, kind: str) -> float:
    """Wall time until every process has embedded its share (model loading excluded)."""
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(threads), str(part), str(parts), kind, str(CORPUS)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for part in range(parts)
    ]
    return max(float(worker.communicate()[0]) for worker in workers)


def main() -> None:
    rows = []
    for kind, count in (("short", 6000), ("long", 800)):
        one = run(2, 1, kind)
        two = run(1, 2, kind)
        rows.append(f"| {count} {'short texts' if kind == 'short' else 'passages'} | {one:.1f} | {two:.1f} | {one / two:.2f}x |")
    m = machine()
    text = "\n".join([
        "# One two-thread embedder process vs two one-thread processes\n",
        "Command: `python benchmarks/bench_embed_processes.py`  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, CPU only; all-MiniLM-L6-v2, bf16 autocast as configured\n",
        "| texts | 1 process x 2 threads, s | 2 processes x 1 thread, s | speed-up |", "|---|---|---|---|", *rows,
    ]) + "\n"
    (ROOT / "results" / "embed_processes.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
