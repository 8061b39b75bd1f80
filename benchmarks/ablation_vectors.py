"""Which phrases and facts earn their vectors (issue 13: fewer texts to embed): hipporag's recall on a
store when some groups of phrases or facts go without vectors, simulated at query time.

    python benchmarks/ablation_vectors.py --store hotpotqa-dev=STORE.duckdb --store musique-dev=STORE.duckdb
        [--store 2wiki-corpus=STORE.duckdb] [--out benchmarks/results]

A fact's vector only links it to questions, so a fact without one is left out of `HippoRAGGraph.facts`
(its edge stays in the graph). A phrase's vector links question phrases to it and gives it synonym
edges, so a phrase without one gets a zero vector (never linked: below any positive threshold) and
loses its synonym edges. That is what an index that never embedded them would read; no re-index needed.

Groups:
- local facts: subject and object each occur in one passage only (the fact's own): seeding them reaches
  no other passage except through synonym edges;
- single-passage phrases: occur in one passage only;
- number phrases: no letter ("1998", "3,000"): a question's bare numbers are never linked (`_names`),
  and digits keep a phrase out of synonym edges (`synonym_candidate`).

Per store: the groups' shares of its phrases and facts, and hipporag Recall@2/5/10 (100 questions of
hotpotqa-dev, 49 of musique-dev) with each group's vectors dropped; a dataset without questions
(2wiki-corpus) gets the shares only. Writes ablation_vectors.json and .md.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
from bench_index import write_results

from hippograph import Config
from hippograph.evaluate import load_questions, recall_at
from hippograph.indexing.compact import CompactVectors
from hippograph.indexing.store import GraphData, check_embedding_model
from hippograph.retrievers import HippoRAGRetriever, Snapshot

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent.parent / "shared" / "data"
KS = (2, 5, 10)


def groups(data: GraphData) -> dict[str, tuple[set[str], set[int]]]:
    """Group name -> (phrases, fact rows) that go without vectors."""
    passages_of = Counter(phrase for _, phrase in data.passage_phrases)
    single = {p for p in data.phrases if passages_of[p] <= 1}
    numbers = {p for p in data.phrases if not any(ch.isalpha() for ch in p)}
    local = {row for row, (s, _, o) in enumerate(data.facts) if s in single and o in single}
    return {
        "all vectors": (set(), set()),
        "no vectors: local facts": (set(), local),
        "no vectors: number phrases": (numbers, set()),
        "no vectors: single-passage phrases": (single, set()),
        "no vectors: local facts and number phrases": (numbers, local),
    }


def without_vectors(data: GraphData, phrases: set[str], facts: set[int]) -> GraphData:
    """`data` (read with float32 vectors) as a query process would hold an index that never embedded
    `phrases` and `facts`: their vectors compact, as `Snapshot.read` makes them."""
    phrase_vectors = np.array(data.phrase_embeddings, np.float32, copy=True)
    phrase_vectors[[i for i, p in enumerate(data.phrases) if p in phrases]] = 0.0
    kept = [row for row in range(len(data.facts)) if row not in facts]
    return dataclasses.replace(
        data,
        phrase_embeddings=CompactVectors.encode(phrase_vectors),
        facts=[data.facts[row] for row in kept],
        fact_embeddings=CompactVectors.encode(np.asarray(data.fact_embeddings)[kept]),
        synonyms=[(a, b, s) for a, b, s in data.synonyms if a not in phrases and b not in phrases],
    )


def hipporag_recall(snapshot: Snapshot, config: Config, questions) -> dict[str, float]:
    from threadpoolctl import threadpool_limits

    retriever = HippoRAGRetriever(snapshot, config)
    with threadpool_limits(1, "blas"):  # one question at a time on one BLAS thread, as `hippograph eval` asks
        # 3 x k passages, so that chunks of one document still leave k documents (as `evaluate` does)
        retrievals = [retriever.retrieve_many([q.question], 3 * max(KS))[0] for q in questions]
    recalls = {k: [] for k in KS}
    for question, retrieval in zip(questions, retrievals):
        ranked = [p.doc_id for p in retrieval.passages]
        for k in KS:
            recalls[k].append(recall_at(ranked, question.supporting_ids, k))
    return {f"recall@{k}": round(100 * float(np.mean(v)), 1) for k, v in recalls.items()}


def ablate(name: str, store: Path, config: Config) -> dict:
    """The groups' sizes on `store`, and recall without each if the dataset `name` has questions."""
    questions_file = DATA / name / "questions.jsonl"
    questions = load_questions(questions_file) if questions_file.exists() else []
    snapshot = Snapshot.read(store, compact=False)
    check_embedding_model(store, snapshot.embedding_model, config.embedding_model)
    data = snapshot.graph
    rows = []
    for group, (phrases, facts) in groups(data).items():
        row = {
            "group": group, "phrases_without": len(phrases), "facts_without": len(facts),
            "phrase_share": round(len(phrases) / max(len(data.phrases), 1), 3),
            "fact_share": round(len(facts) / max(len(data.facts), 1), 3),
        }
        if questions:
            variant = dataclasses.replace(snapshot, graph=without_vectors(data, phrases, facts), retrievers={})
            row.update(hipporag_recall(variant, config, questions))
        rows.append(row)
        print(name, rows[-1], flush=True)
    return {"dataset": name, "store": store.name, "phrases": len(data.phrases), "facts": len(data.facts),
            "questions": len(questions), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", action="append", required=True, metavar="DATASET=STORE",
                        help="a dev set's name (hotpotqa-dev, musique-dev) and its indexed store")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    config = Config()
    stores = [item.split("=", 1) for item in args.store]
    result = {
        "command": "python benchmarks/ablation_vectors.py " + " ".join(f"--store {n}={Path(s).name}" for n, s in stores),
        "datasets": [ablate(name, Path(store), config) for name, store in stores],
    }
    write_results(args.out, "ablation_vectors", result, render(result))


def render(r: dict) -> str:
    lines = [
        "# Which phrases and facts earn their vectors: hipporag recall without some of them\n",
        f"Command: `{r['command']}` (vectors dropped at query time, as an index that never embedded them "
        "would read; see the script)\n",
    ]
    for d in r["datasets"]:
        lines += [
            f"## {d['dataset']} ({d['store']}: {d['phrases']} phrases, {d['facts']} facts, {d['questions']} questions)\n",
            "| vectors | phrases without | facts without | R@2 | R@5 | R@10 |", "|---|---|---|---|---|---|",
        ]
        lines += [f"| {row['group']} | {row['phrases_without']} ({row['phrase_share']:.1%}) | "
                  f"{row['facts_without']} ({row['fact_share']:.1%}) | {row.get('recall@2', '')} | "
                  f"{row.get('recall@5', '')} | {row.get('recall@10', '')} |" for row in d["rows"]]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
