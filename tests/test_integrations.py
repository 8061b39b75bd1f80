"""The LangChain and LlamaIndex retrievers return exactly what `Memory.retrieve` returns, in its order, with
its metadata, sync and async; the LangChain one passes LangChain's standard retriever suite."""

from __future__ import annotations

import asyncio

import pytest
from langchain_tests.integration_tests import RetrieversIntegrationTests

from hippograph import Memory
from hippograph.integrations.langchain import HippographRetriever as LangChainRetriever
from hippograph.integrations.llamaindex import HippographRetriever as LlamaIndexRetriever

MODES = ["hipporag", "dense", "bm25", "memory", "memorag"]


class TestLangChainStandardSuite(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _store(self, demo_store):
        self.db = demo_store

    @property
    def retriever_constructor(self) -> type[LangChainRetriever]:
        return LangChainRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"memory": str(self.db), "mode": "hipporag"}

    @property
    def retriever_query_example(self) -> str:
        return "Who designed the Veloria Bridge?"


@pytest.mark.parametrize("mode", MODES)
def test_langchain_documents_are_memory_retrieve_passages(demo_store, demo_question_records, mode):
    memory = Memory(demo_store)
    retriever = LangChainRetriever(memory=memory, mode=mode, k=5)
    for record in demo_question_records:
        expected = memory.retrieve(record["question"], mode=mode, top_k=5)
        documents = retriever.invoke(record["question"])
        assert [d.metadata["passage_id"] for d in documents] == [p.passage_id for p in expected.passages]
        assert [d.page_content for d in documents] == [p.text for p in expected.passages]
        first, passage = documents[0].metadata, expected.passages[0]
        assert (first["doc_id"], first["title"], first["score"], first["mode"]) == (passage.doc_id, passage.title, passage.score, mode)
        assert first["seed_facts"] == [f.to_dict() for f in expected.facts]
        assert ("reason" in first) == (mode == "memory")


@pytest.mark.parametrize("mode", MODES)
def test_llamaindex_nodes_are_memory_retrieve_passages(demo_store, demo_question_records, mode):
    memory = Memory(demo_store)
    retriever = LlamaIndexRetriever(memory=memory, mode=mode, similarity_top_k=5)
    for record in demo_question_records:
        expected = memory.retrieve(record["question"], mode=mode, top_k=5)
        nodes = retriever.retrieve(record["question"])
        assert [n.node.node_id for n in nodes] == [p.passage_id for p in expected.passages]
        assert [n.score for n in nodes] == [p.score for p in expected.passages]
        assert [n.node.text for n in nodes] == [p.text for p in expected.passages]
        assert nodes[0].node.metadata["doc_id"] == expected.passages[0].doc_id
    # What an LLM or an embedder reads of a node: its title and text, not scores and facts.
    from llama_index.core.schema import MetadataMode

    content = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert expected.passages[0].title in content and "seed_facts" not in content


def test_both_async_calls_match_the_sync_ones(demo_store, demo_question_records):
    question = demo_question_records[0]["question"]
    langchain = LangChainRetriever(memory=demo_store, k=3)
    llamaindex = LlamaIndexRetriever(memory=demo_store, similarity_top_k=3)

    async def both():
        return await asyncio.gather(langchain.ainvoke(question), llamaindex.aretrieve(question))

    documents, nodes = asyncio.run(both())
    assert [d.metadata["passage_id"] for d in documents] == [d.metadata["passage_id"] for d in langchain.invoke(question)]
    assert [n.node.node_id for n in nodes] == [n.node.node_id for n in llamaindex.retrieve(question)]
    assert len(documents) == len(nodes) == 3


def test_a_bad_top_k_or_store_is_refused(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        LangChainRetriever(memory=tmp_path / "m.duckdb", k=0)
    with pytest.raises(ValueError):
        LlamaIndexRetriever(memory=tmp_path / "m.duckdb", similarity_top_k=0)
