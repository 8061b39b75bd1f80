"""Answers from the memory modes: answer recall in the top-5 evidence, draft-answer EM / F1 beside a
baseline, the demo's 14 questions, and the memory bank's compression ratio.

    python benchmarks/bench_memory.py                  # hotpotqa-dev, musique-dev and the demo
    python benchmarks/bench_memory.py --2wiki          # also the 2wiki corpus: compression ratio, index time

Recall@k is computed as `hippograph eval` does (`hippograph.evaluate.recall_at`, 30 passages deep), from
the same retrievals as the answer figures, so each mode retrieves once per question. Stores are cached in
benchmarks/.cache/ (the files run_eval.sh uses). Writes benchmarks/results/memory.md and memory.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import string
import time
from collections import Counter
from pathlib import Path

from hippograph import Config, Memory
from hippograph.draft import draft_answer, expected_labels
from hippograph.evaluate import recall_at
from hippograph.pipeline.extract import load_spacy

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
EVIDENCE = 5  # passages an answer is looked for in
MODES = ("dense", "hipporag", "memory", "memorag")
KS = (2, 5, 10)
DEPTH = max(KS) * 3  # passages retrieved, as `hippograph eval` does


# ---- SQuAD answer normalisation and scores ------------------------------------------------------------


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: list[str]) -> float:
    return max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds)


def f1(prediction: str, golds: list[str]) -> float:
    def one(gold: str) -> float:
        predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(predicted), common / len(wanted)
        return 2 * precision * recall / (precision + recall)

    return max(one(g) for g in golds)


def answer_in(passages, golds: list[str]) -> bool:
    """Whether a gold answer (or alias) appears in the text of the passages, both normalised."""
    texts = [f" {normalize_answer(p.title + ' ' + p.text)} " for p in passages]
    return any(f" {normalize_answer(g)} " in text for g in golds if normalize_answer(g) for text in texts)


# ---- the baseline: the entity of the expected type nearest the question's words in the top dense passage ----


def baseline_answer(question: str, passage_text: str, nlp) -> str:
    labels = expected_labels(question)
    asked = {w for w in re.findall(r"\w+", question.lower()) if len(w) > 3}
    doc = nlp(passage_text)
    anchors = [t.i for t in doc if t.lower_ in asked]
    best, distance = "", None
    for entity in doc.ents:
        if (labels is not None and entity.label_ not in labels) or entity.text.lower() in question.lower():
            continue
        gap = min((min(abs(a - entity.start), abs(a - entity.end + 1)) for a in anchors), default=len(doc))
        if distance is None or gap < distance:
            best, distance = entity.text, gap
    return best


# ---- runs ---------------------------------------------------------------------------------------------


def golds(record: dict) -> list[str]:
    return [record["answer"], *record.get("aliases", [])]


def answers_on(memory: Memory, records: list[dict], nlp) -> dict:
    """One retrieval per question and mode, at `hippograph eval`'s depth: Recall@k (as `hippograph eval`
    computes it), answer recall in the top 5, mean seconds per question; draft EM / F1 (the baseline,
    drafts over hipporag's and memorag's evidence)."""
    questions = [r["question"] for r in records]
    found, seconds = {}, {}
    for mode in MODES:
        memory.retrieve(questions[0], mode=mode, top_k=DEPTH)  # warm-up: snapshot, indexes, models
        start = time.perf_counter()
        found[mode] = memory.retrieve_many(questions, mode=mode, top_k=DEPTH)
        seconds[mode] = (time.perf_counter() - start) / len(questions)
    config, n = memory.config, len(records)
    drafts = {
        "baseline (nearest typed entity, top dense passage)": [
            baseline_answer(q, d.passages[0].text, nlp) if d.passages else "" for q, d in zip(questions, found["dense"])],
        "draft over hipporag's top 5": [
            draft_answer(q, r, config.spacy_model).text for q, r in zip(questions, found["hipporag"])],
        "draft over memorag's top 5 (its draft_answer)": [r.draft_answer.text for r in found["memorag"]],
    }
    return {
        "questions": n,
        "recall": {mode: {k: 100 * sum(recall_at([p.doc_id for p in r.passages], g["supporting_ids"], k)
                                       for r, g in zip(found[mode], records)) / n for k in KS} for mode in MODES},
        "seconds_per_question": seconds,
        "answer_recall@5": {
            mode: 100 * sum(answer_in(r.passages[:EVIDENCE], golds(g)) for r, g in zip(found[mode], records)) / n
            for mode in MODES
        },
        "drafts": {
            name: {"EM": 100 * sum(exact_match(a, golds(g)) for a, g in zip(answers, records)) / n,
                   "F1": 100 * sum(f1(a, golds(g)) for a, g in zip(answers, records)) / n}
            for name, answers in drafts.items()
        },
    }


def demo_table(memory: Memory, records: list[dict]) -> list[dict]:
    rows = []
    for record in records:
        row = {"id": record["id"], "answer": record["answer"]}
        for mode in ("hipporag", "memorag"):
            retrieval = memory.retrieve(record["question"], mode=mode, top_k=EVIDENCE)
            draft = retrieval.draft_answer or draft_answer(record["question"], retrieval, memory.config.spacy_model)
            found = {p.doc_id for p in retrieval.passages}
            row[mode] = {
                "gold_passages_in_top5": f"{len(found & set(record['supporting_ids']))}/{len(record['supporting_ids'])}",
                "answer_in_top5": answer_in(retrieval.passages, golds(record)),
                "draft": draft.text,
                "draft_right": bool(exact_match(draft.text, golds(record))),
            }
        rows.append(row)
    return rows


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def indexed(corpus: Path, db: Path, config: Config = Config()) -> tuple[Memory, dict]:
    memory = Memory(db, config)
    report = memory.index_paths([corpus])
    return memory, report.to_dict()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--2wiki", dest="wiki", action="store_true", help="also index the 2wiki corpus (many minutes)")
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    nlp = load_spacy(Config().spacy_model)
    out: dict = {"cpu": cpu_name(), "datasets": {}}
    for name in ("hotpotqa-dev", "musique-dev"):
        memory, _ = indexed(DATA / name / "corpus.jsonl", CACHE / f"{name}.duckdb")
        out["datasets"][name] = {**answers_on(memory, read_jsonl(DATA / name / "questions.jsonl"), nlp),
                                 "compression_ratio": memory.stats().compression_ratio}
    demo = ROOT / "examples" / "demo"
    memory, _ = indexed(demo / "corpus.jsonl", CACHE / "demo.duckdb")
    out["demo"] = demo_table(memory, read_jsonl(demo / "questions.jsonl"))
    if args.wiki:
        start = time.perf_counter()
        memory, report = indexed(DATA / "2wiki-corpus" / "corpus.jsonl", CACHE / "2wiki.duckdb")
        stats = memory.stats()
        out["2wiki"] = {"index_seconds": round(time.perf_counter() - start, 1), "report": report,
                        "memories": stats.memories, "compression_ratio": stats.compression_ratio}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(out, indent=1) + "\n")
    (RESULTS / "memory.md").write_text(markdown(out))
    print(markdown(out))


def markdown(out: dict) -> str:
    lines = [f"# Memory modes: answers and compression ({out['cpu']}, 2 cores)", "",
             "`python benchmarks/bench_memory.py" + (" --2wiki" if "2wiki" in out else "") + "`. Seconds per "
             "question were measured on a machine shared with other jobs (load average above 10 on 2 cores): "
             "compare them with each other, not with the README's speed table.", ""]
    for name, result in out["datasets"].items():
        lines += [f"## {name} ({result['questions']} questions; memory bank compression ratio "
                  f"{result['compression_ratio']:.3f})", "",
                  "| mode | R@2 | R@5 | R@10 | answer in top 5 | s / question |", "|---|---|---|---|---|---|"]
        for mode in MODES:
            recall = result["recall"][mode]
            lines.append(f"| {mode} | " + " | ".join(f"{recall[k]:.1f}" for k in KS)
                         + f" | {result['answer_recall@5'][mode]:.1f} | {result['seconds_per_question'][mode]:.2f} |")
        lines += ["", "| draft answer | EM | F1 |", "|---|---|---|"]
        lines += [f"| {draft} | {s['EM']:.1f} | {s['F1']:.1f} |" for draft, s in result["drafts"].items()]
        lines.append("")
    lines += ["## Demo questions (examples/demo)", "",
              "| question | answer | hipporag: gold in top 5 / answer in top 5 / draft | memorag: gold in top 5 / answer in top 5 / draft |",
              "|---|---|---|---|"]
    for row in out["demo"]:
        cells = []
        for mode in ("hipporag", "memorag"):
            r = row[mode]
            mark = "right" if r["draft_right"] else "wrong"
            cells.append(f"{r['gold_passages_in_top5']} / {'yes' if r['answer_in_top5'] else 'no'} / {r['draft'] or '-'} ({mark})")
        lines.append(f"| {row['id']} | {row['answer']} | {cells[0]} | {cells[1]} |")
    for mode in ("hipporag", "memorag"):
        full = sum(r[mode]["gold_passages_in_top5"].split("/")[0] == r[mode]["gold_passages_in_top5"].split("/")[1] for r in out["demo"])
        found = sum(r[mode]["answer_in_top5"] for r in out["demo"])
        right = sum(r[mode]["draft_right"] for r in out["demo"])
        lines.append(f"\n{mode}: every gold passage in the top 5 for {full} of 14, answer in the top 5 for {found}, "
                     f"draft answer right for {right}.")
    if "2wiki" in out:
        wiki = out["2wiki"]
        lines += ["", "## 2wiki corpus", "",
                  f"{wiki['memories']} memory records, compression ratio {wiki['compression_ratio']:.3f}; index "
                  f"{wiki['index_seconds']} s, stage seconds: {json.dumps(wiki['report']['seconds'])}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
