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
    Answer, Document, GraphExport, ImportReport, IndexReport, Passage, PassageFacts, Retrieval, RetrievedPassage, SeedFact,
    StoreStats, Triple, LLMUsage,
)

__all__ = [
    "Answer", "Config", "LLMUsage", "Document", "GraphExport", "HippographError", "ImportReport", "IndexReport", "InputError", "Memory",
    "ModelNotFoundError", "Passage", "PassageFacts", "Retrieval", "RetrievedPassage", "SeedFact", "StoreError",
    "StoreStats", "Triple", "load_config", "register_extractor", "register_retriever",
]
__version__ = "0.1.0"
