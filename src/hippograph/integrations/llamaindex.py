"""hippograph as a LlamaIndex retriever (`pip install "hippograph[llamaindex]"`).

    from hippograph.integrations.llamaindex import HippographRetriever

    retriever = HippographRetriever(memory="memory.duckdb", mode="hipporag", similarity_top_k=5)
    nodes = retriever.retrieve("Who designed the Veloria Bridge?")   # or await retriever.aretrieve(...)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from hippograph.integrations import as_memory, passage_metadata
from hippograph.memory import Memory


class HippographRetriever(BaseRetriever):
    """Nodes for a query from a hippograph `Memory`: `Memory.retrieve`'s passages, in its order, each a
    `TextNode` (id: the passage id) scored by the mode's own score, with the metadata of
    `hippograph.integrations.passage_metadata`."""

    def __init__(
        self, memory: Memory | str | Path, mode: str = "hipporag", similarity_top_k: int = 5, **kwargs
    ) -> None:
        if similarity_top_k < 1:
            raise ValueError(f"similarity_top_k must be at least 1, not {similarity_top_k}")
        self.memory = as_memory(memory)
        self.mode = mode
        self.similarity_top_k = similarity_top_k
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        retrieval = self.memory.retrieve(query_bundle.query_str, mode=self.mode, top_k=self.similarity_top_k)
        return [NodeWithScore(node=_node(p, passage_metadata(p, retrieval)), score=p.score) for p in retrieval.passages]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _node(passage, metadata: dict) -> TextNode:
    """A node whose text for an LLM or an embedder is its title and text, not the scores and facts."""
    hidden = [key for key in metadata if key != "title"]
    return TextNode(id_=passage.passage_id, text=passage.text, metadata=metadata,
                    excluded_llm_metadata_keys=hidden, excluded_embed_metadata_keys=hidden)
