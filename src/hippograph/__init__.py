"""hippograph: knowledge-graph memory for retrieval-augmented generation.

    from hippograph import Memory
    memory = Memory("memory.duckdb")
    memory.index([{"id": "1", "title": "...", "text": "..."}])
    memory.retrieve("a question", mode="hipporag", top_k=5)
"""

from hippograph.config import Config, load_config
from hippograph.errors import HippographError, InputError, ModelNotFoundError, StoreError
from hippograph.memory import MODES, Memory
from hippograph.types import Document, Passage, Retrieval, RetrievedPassage, SeedFact, Triple

__all__ = [
    "Config", "Document", "HippographError", "InputError", "MODES", "Memory", "ModelNotFoundError",
    "Passage", "Retrieval", "RetrievedPassage", "SeedFact", "StoreError", "Triple", "load_config",
]
__version__ = "0.1.0"
