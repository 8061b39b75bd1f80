"""How memory mode ranks memories, and what else was tried to close its gap to dense on hotpotqa-dev: the
same memory bank and question vectors, ranked by
- the whole-record key (what `MemoryRetriever` does);
- the best statement key of each memory, and the two added;
- BM25 over each memory's title and record text, alone and fused with the record key (reciprocal rank);
- pseudo-relevance feedback (Rocchio): the question moved towards the record keys of its first m memories.
Dense over full passages is the reference. Recall@2 / @5 as `hippograph eval` computes it.

    python benchmarks/ablation_memory_ranking.py [STORE_DIR]   # hotpotqa-dev.duckdb, musique-dev.duckdb in it

STORE_DIR defaults to benchmarks/.cache (where run_eval.sh indexes). Writes
benchmarks/results/ablation_memory_ranking.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from hippograph import Memory
from hippograph.evaluate import recall_at
from hippograph.graph.hipporag import reciprocal_rank_fusion
from hippograph.indexing.bm25 import BM25Index
from hippograph.indexing.cosine import top_k

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def rankings(memory: Memory, questions: list[str]) -> dict[str, list[list[str]]]:
    """Document ids ranked by each variant, per question."""
    retriever = memory.retriever("memory")
    bank, snapshot = retriever.bank, retriever.snapshot
    titles = dict(zip(reversed(snapshot.passages.doc_ids), reversed(snapshot.passages.titles)))
    records = retriever.key_starts  # each memory's whole-record key row
    keys = np.asarray(bank.key_embeddings, np.float32)
    bm25 = BM25Index([f"{titles.get(d, '')} {bank.key_texts[row]}" for d, row in zip(bank.doc_ids, records)])
    vectors = retriever.rows(retriever.embed(questions), questions)
    dense = snapshot.passage_index.scores_many(vectors)
    doc_ids, passage_docs = np.array(bank.doc_ids), np.array(snapshot.passages.doc_ids)
    out: dict[str, list[list[str]]] = {}
    for question, vector, passage_scores in zip(questions, vectors, dense):
        key_scores = keys @ vector
        record = key_scores[records]
        best_statement = np.maximum.reduceat(key_scores, records)
        lexical = bm25.scores(question)
        variants = {
            "record key (memory mode)": record,
            "best statement key": best_statement,
            "record + best statement": record + best_statement,
            "bm25 over records": lexical,
            "rrf(record key, bm25)": reciprocal_rank_fusion([record, lexical]),
        }
        for m in (1, 3):
            moved = vector + keys[records[top_k(record, m)]].mean(axis=0)
            variants[f"rocchio, first {m}"] = keys[records] @ (moved / np.linalg.norm(moved))
        for name, scores in variants.items():
            out.setdefault(name, []).append(list(doc_ids[top_k(scores, 10)]))
        ranked_docs = list(dict.fromkeys(passage_docs[top_k(passage_scores, 50)]))
        out.setdefault("dense over full passages (reference)", []).append(ranked_docs)
    return out


def main() -> None:
    stores = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / ".cache"
    lines = ["# Memory mode: ranking memories", "", "`python benchmarks/ablation_memory_ranking.py`", "",
             "| dataset | ranked by | R@2 | R@5 |", "|---|---|---|---|"]
    for dataset in ("hotpotqa-dev", "musique-dev"):
        records = [json.loads(line) for line in (DATA / dataset / "questions.jsonl").read_text().splitlines() if line.strip()]
        ranked = rankings(Memory(stores / f"{dataset}.duckdb"), [r["question"] for r in records])
        for name, lists in ranked.items():
            found = [[recall_at(docs, r["supporting_ids"], k) for docs, r in zip(lists, records)] for k in (2, 5)]
            lines.append(f"| {dataset} | {name} | {100 * np.mean(found[0]):.1f} | {100 * np.mean(found[1]):.1f} |")
    table = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results" / "ablation_memory_ranking.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
