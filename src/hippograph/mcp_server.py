"""hippograph as an MCP server over stdio (`pip install "hippograph[mcp]"`; `hippograph mcp --db FILE`).

Agent hosts get two tools over the store's latest published file, read-only: `retrieve` (passages that
answer a question, best first, with the facts that seeded the search) and `answer` (the LLM's cited
answer with one configured, else the offline draft, with its evidence).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from hippograph.config import Config
from hippograph.memory import Memory
from hippograph.registry import retrievers

MAX_TOP_K = 100


def create_server(db_path: str | Path, config: Config | None = None) -> MCPServer:
    """The MCP server over the store at `db_path`, with the tools `retrieve` and `answer`; `.run("stdio")`
    serves it."""
    memory = Memory(db_path, config)
    server = MCPServer("hippograph", instructions="A knowledge-graph memory of documents: retrieve passages "
                       "that answer a question, or an answer citing them.")

    def checked(question: str, mode: str, top_k: int) -> None:
        """A ToolError, which the host's model sees, for arguments it can correct."""
        if not question.strip():
            raise ToolError("the question is blank")
        if mode not in retrievers:
            raise ToolError(f"unknown mode {mode!r}; choose from {', '.join(retrievers.names())}")
        if not 1 <= top_k <= MAX_TOP_K:
            raise ToolError(f"top_k must be between 1 and {MAX_TOP_K}, not {top_k}")

    @server.tool()
    def retrieve(question: str, mode: str = "hipporag", top_k: int = 5) -> dict[str, Any]:
        """The passages of the memory that best answer `question`, best first (doc_id, title, text, score),
        with the facts that seeded the search. Modes: hipporag (graph, multi-hop), dense, bm25, memory,
        memorag (clue-driven, slower, for questions of several hops)."""
        checked(question, mode, top_k)
        return memory.retrieve(question, mode=mode, top_k=top_k).to_dict()

    @server.tool()
    def answer(question: str, mode: str = "hipporag", top_k: int = 5) -> dict[str, Any]:
        """An answer to `question` from the memory's top passages, citing them by doc_id; `source` says
        whether an LLM wrote it or it is the offline draft (an entity of the type the question asks for)."""
        checked(question, mode, top_k)
        return memory.answer(question, mode=mode, top_k=top_k).to_dict()

    return server
