"""Evaluation: Recall@k over questions with `supporting_ids`, per-question latency, and, for questions with
gold answers, answer recall (a gold answer within the top-k evidence) and the exact match and token F1 of
the answers (the LLM's, or offline drafts; SQuAD's normalisation)."""

from __future__ import annotations

import re
import string
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from hippograph.errors import InputError
from hippograph.memory import Memory
from hippograph.pipeline.sources import read_jsonl_records
from hippograph.types import RetrievedPassage


WARM_UP = "Which city is the capital of the country where the longest river begins?"  # loads, asks nothing real


@dataclass(frozen=True)
class Question:
    question_id: str
    question: str
    supporting_ids: list[str]
    answers: list[str] = field(default_factory=list)  # the gold answer and its aliases, if given


@dataclass
class ModeResult:
    mode: str
    recall: dict[int, float]  # k -> Recall@k in percent
    latency_ms_p50: float
    latency_ms_p95: float
    answer_recall: dict[int, float] = field(default_factory=dict)  # k -> percent; when questions have answers
    exact_match: float | None = None  # percent, of `memory.answer`'s answers, when questions have answers
    f1: float | None = None
    answers_by: str | None = None  # "llm" or "draft" (offline), when answers were scored

    def to_dict(self) -> dict[str, object]:
        out = {
            "mode": self.mode,
            **{f"recall@{k}": round(v, 2) for k, v in self.recall.items()},
            "latency_ms_p50": round(self.latency_ms_p50, 2),
            "latency_ms_p95": round(self.latency_ms_p95, 2),
            **{f"answer_recall@{k}": round(v, 2) for k, v in self.answer_recall.items()},
        }
        if self.exact_match is not None:
            out.update(exact_match=round(self.exact_match, 2), f1=round(self.f1, 2), answers_by=self.answers_by)
        return out


def load_questions(path: str | Path) -> list[Question]:
    questions = []
    for where, record in read_question_records(path):
        supporting = record.get("supporting_ids")
        if not isinstance(supporting, list) or not supporting:
            raise InputError(f"{where}: \"supporting_ids\" must be a non-empty list of document ids")
        question_id = str(record.get("id", where.rsplit(":", 1)[1]))
        answers = [record.get("answer"), *(record.get("aliases") or [])]
        answers = [str(a) for a in answers if isinstance(a, (str, int, float)) and str(a).strip()]
        questions.append(Question(question_id, record["question"], [str(s) for s in supporting], answers))
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


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in gold))


def token_f1(prediction: str, gold: Sequence[str]) -> float:
    """SQuAD's token F1, the best over the gold answers."""
    return max((_f1(normalize_answer(prediction).split(), normalize_answer(g).split()) for g in gold), default=0.0)


def _f1(predicted: list[str], gold: list[str]) -> float:
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def answer_in_evidence(passages: Sequence[RetrievedPassage], gold: Sequence[str], k: int) -> float:
    """1 if a gold answer occurs (normalised) in the passages of the first k distinct documents."""
    top = list(dict.fromkeys(p.doc_id for p in passages))[:k]
    evidence = f" {normalize_answer(' '.join(f'{p.title} {p.text}' for p in passages if p.doc_id in top))} "
    return float(any(f" {normalize_answer(g)} " in evidence for g in gold if normalize_answer(g)))


def evaluate(
    memory: Memory, questions: Sequence[Question], modes: Sequence[str], ks: Sequence[int], answer_top_k: int = 5
) -> list[ModeResult]:
    """Recall@k for each mode, retrieving each question on its own so latency is per question; answer recall
    when questions have gold answers, with the exact match and F1 of `Memory.answer`'s answers (the LLM's
    with one configured, else the offline drafts)."""
    depth = max(ks) * 3  # passages, so that chunks of one document still leave max(ks) documents
    with_answers = [q for q in questions if q.answers]
    results = []
    for mode in modes:
        # A fresh Memory per mode: queries reuse the vectors and parses of texts asked lately, and one
        # mode's latency must not profit from the questions another asked.
        asking = Memory(memory.db_path, memory.config, memory.auto_refresh)
        asking.retrieve(WARM_UP, mode=mode, top_k=depth)  # loads the snapshot and builds the mode's indexes
        recalls = {k: [] for k in ks}
        found = {k: [] for k in ks}
        latencies = []
        answered = []
        for q in questions:
            start = time.perf_counter()
            retrieval = asking.retrieve(q.question, mode=mode, top_k=depth)
            latencies.append((time.perf_counter() - start) * 1000)
            if q.answers:  # from the same retrieval's top passages: a second retrieval would double the cost
                answered.append(asking.answer_from(replace(retrieval, passages=retrieval.passages[:answer_top_k])))
            ranked = [p.doc_id for p in retrieval.passages]
            for k in ks:
                recalls[k].append(recall_at(ranked, q.supporting_ids, k))
                if q.answers:
                    found[k].append(answer_in_evidence(retrieval.passages, q.answers, k))
        result = ModeResult(
            mode,
            {k: 100 * float(np.mean(v)) for k, v in recalls.items()},
            float(np.percentile(latencies, 50)),
            float(np.percentile(latencies, 95)),
            {k: 100 * float(np.mean(v)) for k, v in found.items() if v},
        )
        if with_answers:
            answers = [a.answer or "" for a in answered]
            result.answers_by = "llm" if memory.config.llm_base_url is not None else "draft"
            result.exact_match = 100 * float(np.mean([exact_match(a, q.answers) for a, q in zip(answers, with_answers)]))
            result.f1 = 100 * float(np.mean([token_f1(a, q.answers) for a, q in zip(answers, with_answers)]))
        results.append(result)
    return results
