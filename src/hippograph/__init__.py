"""hippograph: knowledge-graph memory for retrieval-augmented generation.

    from hippograph import Memory
    memory = Memory("memory.duckdb")
    memory.index([{"id": "1", "title": "...", "text": "..."}])
    memory.retrieve("a question", mode="hipporag", top_k=5)
"""

from hippograph.config import Config, load_config
from hippograph.errors import HippographError, InputError, ModelNotFoundError, StoreError
from hippograph.memory import Memory
from hippograph.registry import register_extractor, register_retriever
from hippograph.types import (
    Answer, Clue, Document, DraftAnswer, EntityMention, GraphExport, ImportReport, IndexReport, LLMUsage, MemoryRecord,
    Passage, PassageFacts, Retrieval, RetrievedPassage, SeedFact, StoreStats, Triple,
)

__all__ = [
    "Answer", "Clue", "Config", "Document", "DraftAnswer", "EntityMention", "GraphExport", "HippographError",
    "ImportReport", "IndexReport", "InputError", "LLMUsage", "Memory", "MemoryRecord", "ModelNotFoundError", "Passage",
    "PassageFacts", "Retrieval", "RetrievedPassage", "SeedFact", "StoreError", "StoreStats", "Triple", "load_config",
    "register_extractor", "register_retriever",
]
__version__ = "0.1.0"
