"""Retrieval evaluation: Recall@k over questions with `supporting_ids`, and per-question latency."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hippograph.errors import InputError
from hippograph.memory import Memory
from hippograph.pipeline.sources import read_jsonl_records


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
    questions = []
    for where, record in read_question_records(path):
        supporting = record.get("supporting_ids")
        if not isinstance(supporting, list) or not supporting:
            raise InputError(f"{where}: \"supporting_ids\" must be a non-empty list of document ids")
        question_id = str(record.get("id", where.rsplit(":", 1)[1]))
        questions.append(Question(question_id, record["question"], [str(s) for s in supporting]))
    return questions


def read_question_records(path: str | Path) -> list[tuple[str, dict]]:
    """("file:line", record) for each question line; each must have a "question" string."""
    records = list(read_jsonl_records(path))
    for where, record in records:
        if not isinstance(record.get("question"), str) or not record["question"].strip():
            raise InputError(f"{where}: expected an object with a non-empty \"question\" string")
    if not records:
        raise InputError(f"{path} holds no questions")
    return records


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
