"""How memorag's pooling uses its clues: every clue's hits captured once per question, then pooled in
several ways (the retrievals are the same in every row, only the pooling differs).

    python benchmarks/ablation_memorag.py musique-dev            # capture (slow: every clue retrieves) and pool
    python benchmarks/ablation_memorag.py musique-dev --captured benchmarks/.cache/memorag_musique-dev.pkl

Writes benchmarks/results/ablation_memorag_<dataset>.md. Recall@k as `hippograph eval` computes it.
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

from hippograph import Memory
from hippograph.evaluate import recall_at

ROOT = Path(__file__).resolve().parent.parent
HITS = 3  # per clue, MemoRAG's ret_hit


def capture(dataset: str) -> list[dict]:
    """Per question: the gold ids and every clue's (text, kind, weight, ranked doc ids)."""
    memory = Memory(ROOT / "benchmarks" / ".cache" / f"{dataset}.duckdb")
    retriever = memory.retriever("memorag")
    records = [json.loads(line) for line in (ROOT.parent / "shared" / "data" / dataset / "questions.jsonl").open()]
    captured = []
    for record in records:
        retrieval = retriever.retrieve_many([record["question"]], 30)[0]
        clues = []
        for clue in retrieval.clues:
            hits = memory.retrieve(clue.text, mode="hipporag", top_k=30 if clue.kind == "question" else HITS)
            clues.append((clue.text, clue.kind, clue.weight, [(p.doc_id, p.score) for p in hits.passages]))
        captured.append({"gold": record["supporting_ids"], "clues": clues})
    return captured


def pooled(item: dict, kinds: set[str] | None = None, combine=max, weighted: bool = True, then: set[str] = frozenset()) -> list[str]:
    """Doc ids: hits of the clues of `kinds` (all: None) by (weight x) score over the clue's best, combined per
    passage; then the hits of the clues in `then`; then the question's own ranking."""
    def band(selected):
        scores: dict[str, float] = {}
        for _, kind, weight, hits in item["clues"]:
            if kind not in selected:
                continue
            top = hits[:HITS]
            best = top[0][1] if top and top[0][1] > 0 else 1.0
            for doc, score in top:
                value = (weight if weighted else 1.0) * score / best
                scores[doc] = combine(scores[doc], value) if doc in scores else value
        return sorted(scores, key=lambda d: -scores[d])

    everything = {kind for _, kind, _, _ in item["clues"]}
    ranked = band(kinds or everything) + band(then)
    return ranked + [doc for doc, _ in item["clues"][0][3]]


VARIANTS = {
    "hipporag (the question alone)": lambda item: [doc for doc, _ in item["clues"][0][3]],
    "every clue, summed (unweighted)": lambda item: pooled(item, combine=lambda a, b: a + b, weighted=False),
    "every clue, weighted, summed": lambda item: pooled(item, combine=lambda a, b: a + b),
    "every clue, weighted, best hit": lambda item: pooled(item),
    "question + spans, weighted, best hit": lambda item: pooled(item, {"question", "span"}),
    "question + draft, weighted, best hit": lambda item: pooled(item, {"question", "draft"}),
    "question + surrogates only, weighted, best hit": lambda item: pooled(item, {"question", "surrogate"}),
    "**question + surrogates, then spans + draft (default)**":
        lambda item: pooled(item, {"question", "surrogate"}, then={"span", "draft"}),
}


def table(captured: list[dict]) -> str:
    lines = ["| pooling | R@2 | R@5 | R@10 |", "|---|---|---|---|"]
    for name, rank in VARIANTS.items():
        recalls = [sum(recall_at(rank(item), item["gold"], k) for item in captured) / len(captured) for k in (2, 5, 10)]
        lines.append(f"| {name} | " + " | ".join(f"{100 * r:.1f}" for r in recalls) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--captured", type=Path, help="a capture saved by an earlier run")
    args = parser.parse_args()
    path = args.captured or ROOT / "benchmarks" / ".cache" / f"memorag_{args.dataset}.pkl"
    if args.captured is None:
        path.write_bytes(pickle.dumps(capture(args.dataset)))
    text = f"# memorag pooling on {args.dataset}\n\n`python benchmarks/ablation_memorag.py {args.dataset}`\n\n"
    text += table(pickle.loads(path.read_bytes())) + "\n"
    (ROOT / "benchmarks" / "results" / f"ablation_memorag_{args.dataset}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
