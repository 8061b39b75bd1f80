#!/usr/bin/env bash
# Recall@k of bm25, dense, hipporag, memory and memorag on the development sets, as committed in benchmarks/results/.
# The index is cached in benchmarks/.cache/ (re-runs skip unchanged documents); delete it to start fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
mkdir -p benchmarks/results benchmarks/.cache
for dataset in hotpotqa-dev musique-dev; do
  args=(--corpus "$DATA/$dataset/corpus.jsonl" --questions "$DATA/$dataset/questions.jsonl"
        --modes bm25,dense,hipporag,memory,memorag --k 2,5,10 --db "benchmarks/.cache/$dataset.duckdb")
  .venv/bin/hippograph eval "${args[@]}" --save "benchmarks/results/eval_$dataset.json" | tee "benchmarks/results/eval_$dataset.txt"
done
