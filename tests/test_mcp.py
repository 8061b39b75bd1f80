"""`hippograph mcp` serves its tools over stdio to the MCP SDK's own client: they answer what `Memory`
answers, and a bad argument comes back as a tool error, not a dead server."""

from __future__ import annotations

import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from hippograph import Memory


async def test_the_sdk_client_lists_and_calls_the_tools(demo_store, demo_question_records):
    question = demo_question_records[0]["question"]
    server = StdioServerParameters(command=sys.executable, args=["-m", "hippograph.cli", "mcp", "--db", str(demo_store)])
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert {tool.name for tool in (await session.list_tools()).tools} == {"retrieve", "answer"}
        retrieved = await session.call_tool("retrieve", {"question": question, "mode": "hipporag", "top_k": 3})
        answered = await session.call_tool("answer", {"question": question})
        refused = await session.call_tool("retrieve", {"question": question, "mode": "psychic"})
        too_many = await session.call_tool("retrieve", {"question": question, "top_k": 1000})
    memory = Memory(demo_store)
    expected = memory.retrieve(question, mode="hipporag", top_k=3)
    assert not retrieved.is_error
    assert [p["passage_id"] for p in retrieved.structured_content["passages"]] == [p.passage_id for p in expected.passages]
    assert answered.structured_content["answer"] == memory.answer(question).answer
    assert refused.is_error and "unknown mode 'psychic'" in refused.content[0].text
    assert too_many.is_error and "top_k must be between 1 and 100" in too_many.content[0].text
