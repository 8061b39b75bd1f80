"""Retrieval evaluation: Recall@k over questions with `supporting_ids`, and per-question latency."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hippograph.errors import InputError
from hippograph.memory import Memory


@dataclass(frozen=True)
class Question:
    question_id: str
    question: str
    supporting_ids: list[str]


@dataclass
class ModeResult:
    mode: str
    recall: dict[int, float]  # k -> Recall@k in percent
    latency_ms_p50: float
    latency_ms_p95: float

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            **{f"recall@{k}": round(v, 2) for k, v in self.recall.items()},
            "latency_ms_p50": round(self.latency_ms_p50, 2),
            "latency_ms_p95": round(self.latency_ms_p95, 2),
        }


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such questions file: {path}")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}:{number}: malformed JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise InputError(f"{path}:{number}: expected an object with a \"question\" string")
        supporting = record.get("supporting_ids")
        if not isinstance(supporting, list) or not supporting:
            raise InputError(f"{path}:{number}: \"supporting_ids\" must be a non-empty list of document ids")
        questions.append(Question(str(record.get("id", number)), record["question"], [str(s) for s in supporting]))
    if not questions:
        raise InputError(f"{path} holds no questions")
    return questions


def recall_at(ranked_doc_ids: Sequence[str], gold: Sequence[str], k: int) -> float:
    """Share of the gold documents among the first k distinct documents retrieved."""
    top = list(dict.fromkeys(ranked_doc_ids))[:k]
    return len(set(top) & set(gold)) / len(set(gold))


def evaluate(memory: Memory, questions: Sequence[Question], modes: Sequence[str], ks: Sequence[int]) -> list[ModeResult]:
    """Recall@k for each mode, retrieving each question on its own so latency is per question."""
    depth = max(ks) * 3  # passages, so that chunks of one document still leave max(ks) documents
    results = []
    for mode in modes:
        memory.retrieve(questions[0].question, mode=mode, top_k=depth)  # warm-up: loads snapshot and indexes
        recalls = {k: [] for k in ks}
        latencies = []
        for q in questions:
            start = time.perf_counter()
            retrieval = memory.retrieve(q.question, mode=mode, top_k=depth)
            latencies.append((time.perf_counter() - start) * 1000)
            ranked = [p.doc_id for p in retrieval.passages]
            for k in ks:
                recalls[k].append(recall_at(ranked, q.supporting_ids, k))
        results.append(ModeResult(
            mode,
            {k: 100 * float(np.mean(v)) for k, v in recalls.items()},
            float(np.percentile(latencies, 50)),
            float(np.percentile(latencies, 95)),
        ))
    return results
