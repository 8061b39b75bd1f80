"""hippograph as a LangChain retriever (`pip install "hippograph[langchain]"`).

    from hippograph.integrations.langchain import HippographRetriever

    retriever = HippographRetriever(memory="memory.duckdb", mode="hipporag", k=5)
    documents = retriever.invoke("Who designed the Veloria Bridge?")   # or await retriever.ainvoke(...)
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, field_validator

from hippograph.integrations import as_memory, passage_metadata
from hippograph.memory import Memory


class HippographRetriever(BaseRetriever):
    """Documents for a query from a hippograph `Memory`: `Memory.retrieve`'s passages, in its order.

    `memory` is a `Memory` or a store path; `mode` a query mode (hipporag, dense, bm25, memory, memorag,
    or one registered); `k` the passages returned, which `invoke(query, k=...)` overrides. Each document's
    metadata holds doc_id, passage_id, title, score, mode and seed_facts (and reason, in memory mode).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    memory: Memory
    mode: str = "hipporag"
    k: int = Field(default=5, ge=1)

    @field_validator("memory", mode="before")
    @classmethod
    def _open(cls, value: Memory | str | Path) -> Memory:
        return as_memory(value)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        retrieval = self.memory.retrieve(query, mode=self.mode, top_k=k or self.k)
        return [Document(page_content=p.text, metadata=passage_metadata(p, retrieval)) for p in retrieval.passages]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[Document]:
        # Retrieval is CPU-bound and releases the GIL in its numeric kernels: a worker thread keeps the
        # event loop free (a `Memory` is safe across threads).
        sync_manager = run_manager.get_sync()
        return await asyncio.to_thread(self._get_relevant_documents, query, run_manager=sync_manager, k=k)
