"""Adapters for RAG frameworks, each an optional extra: `langchain` (`pip install "hippograph[langchain]"`)
and `llamaindex` (`pip install "hippograph[llamaindex]"`). Both return what `Memory.retrieve` returns, in
its order, with the same metadata (`passage_metadata`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hippograph.memory import Memory
from hippograph.types import Retrieval, RetrievedPassage


def as_memory(memory: Memory | str | Path) -> Memory:
    """A `Memory`, or one over the store at a path."""
    return memory if isinstance(memory, Memory) else Memory(memory)


def passage_metadata(passage: RetrievedPassage, retrieval: Retrieval) -> dict[str, Any]:
    """What a framework document carries besides the text: where the passage comes from, its score under
    the mode, and the facts that seeded the search (hipporag, memorag)."""
    metadata: dict[str, Any] = {
        "doc_id": passage.doc_id, "passage_id": passage.passage_id, "title": passage.title,
        "score": passage.score, "mode": retrieval.mode,
        "seed_facts": [fact.to_dict() for fact in retrieval.facts],
    }
    if passage.reason is not None:
        metadata["reason"] = passage.reason
    return metadata
