"""What a gist keeps for memory-mode recall: the gist as `compress` writes it (lead sentence first, then the
most central others, within the budget) against a "telegraphic" gist of the same budget, which drops
function words so that more content words fit. Both are keyed like memory records (title and gist, one
key a document) and ranked by cosine to the question; Recall@2 / @5 as `hippograph eval` computes it.

    python benchmarks/ablation_memory_gist.py        # uses the stores run_eval.sh caches in benchmarks/.cache

Writes benchmarks/results/ablation_memory_gist.md. Key facts are left out of both, so the comparison is
of the gist alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from spacy.lang.en.stop_words import STOP_WORDS

from hippograph import Config
from hippograph.evaluate import recall_at
from hippograph.pipeline.chunk import sentences
from hippograph.pipeline.compress import key_text, select_gist
from hippograph.pipeline.embed import embedder_for
from hippograph.retrievers import Snapshot

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
BUDGET = Config().memory_budget


def plain_gist(text: str) -> str:
    return select_gist(sentences(text), [], int(BUDGET * len(text.encode())))


def telegraphic_gist(text: str) -> str:
    short = [" ".join(w for w in s.split() if w.lower().strip(".,;:\"'") not in STOP_WORDS) for s in sentences(text)]
    return select_gist(short, [], int(BUDGET * len(text.encode())))


def recall(dataset: str, gist) -> tuple[dict[int, float], float]:
    snapshot = Snapshot.read(ROOT / "benchmarks" / ".cache" / f"{dataset}.duckdb")
    documents: dict[str, tuple[str, list[str]]] = {}
    for doc_id, title, text in zip(snapshot.passages.doc_ids, snapshot.passages.titles, snapshot.passages.texts):
        documents.setdefault(doc_id, (title, []))[1].append(text)
    ids = list(documents)
    texts = {d: " ".join(documents[d][1]) for d in ids}
    gists = {d: gist(texts[d]) for d in ids}
    ratio = sum(len(g.encode()) for g in gists.values()) / sum(len(t.encode()) for t in texts.values())
    keys = embedder_for(Config()).encode([key_text(documents[d][0], gists[d]) for d in ids])
    return key_recall(dataset, ids, keys), round(ratio, 3)


def key_recall(dataset: str, ids: list[str], keys: np.ndarray) -> dict[int, float]:
    """Recall@2 / @5 of the dataset's questions, documents `ids` ranked by the cosine of their `keys` rows."""
    embedder = embedder_for(Config())
    records = [json.loads(line) for line in (DATA / dataset / "questions.jsonl").read_text().splitlines() if line.strip()]
    scores = embedder.encode([r["question"] for r in records]) @ keys.T
    found = {k: [] for k in (2, 5)}
    for record, row in zip(records, scores):
        ranked = [ids[i] for i in np.argsort(-row)[:10]]
        for k in found:
            found[k].append(recall_at(ranked, record["supporting_ids"], k))
    return {k: round(100 * float(np.mean(v)), 1) for k, v in found.items()}


def main() -> None:
    lines = ["# Memory gists: lead-first against telegraphic (gist only, budget "
             f"{BUDGET})", "", "`python benchmarks/ablation_memory_gist.py`", "",
             "| dataset | gist | ratio | R@2 | R@5 |", "|---|---|---|---|---|"]
    for dataset in ("hotpotqa-dev", "musique-dev"):
        for name, gist in (("lead first (compress)", plain_gist), ("telegraphic", telegraphic_gist)):
            found, ratio = recall(dataset, gist)
            lines.append(f"| {dataset} | {name} | {ratio} | {found[2]} | {found[5]} |")
    table = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results" / "ablation_memory_gist.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
