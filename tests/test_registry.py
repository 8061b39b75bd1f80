"""Extractors and retrievers registered by name through the public API: a toy extractor and a toy retriever
(tests/plugins/toy_plugin.py) run in-process, over shards and from the CLI; the DAG runs them in
tests/test_dag.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hippograph import Config, InputError, Memory

sys.path.insert(0, str(Path(__file__).parent / "plugins"))
import toy_plugin  # noqa: E402  (registers "toy" and "title")

TOY = Config(extractor="toy")


def test_the_toy_extractor_builds_the_graph_in_process(tmp_path, small_docs, store_tools):
    db = tmp_path / "toy.duckdb"
    report = Memory(db, TOY).index(small_docs)
    assert report.indexed == 3 and report.triples > 0
    predicates = store_tools.sql(db, "SELECT DISTINCT predicate FROM triples")
    assert predicates == [("mentions",)], "every triple came from the toy extractor"
    assert ("kettleby gazette", "mentions", "tobias") in store_tools.sql(db, "SELECT subject, predicate, object FROM triples")


def test_the_toy_extractor_over_shards_equals_in_process(tmp_path, small_docs, store_tools):
    in_process, sharded = tmp_path / "one.duckdb", tmp_path / "sharded.duckdb"
    Memory(in_process, TOY).index(small_docs)
    report = Memory(sharded, TOY).index(small_docs, work_dir=tmp_path / "work", shard_size=2)
    assert report.indexed == 3
    store_tools.assert_same(sharded, in_process)


def test_changing_the_extractor_or_its_version_indexes_again(tmp_path, small_docs, monkeypatch):
    db = tmp_path / "toy.duckdb"
    assert Memory(db, TOY).index(small_docs).indexed == 3
    assert Memory(db, TOY).index(small_docs).unchanged == 3
    assert Memory(db).index(small_docs).indexed == 3, "spaCy's triples replace the toy's"
    assert Memory(db, TOY).index(small_docs).indexed == 3
    from hippograph.registry import extractors

    toy = extractors.get("toy")
    monkeypatch.setitem(extractors._entries, "toy", type(toy)(toy.name, 2, toy.extract))
    assert Memory(db, TOY).index(small_docs).indexed == 3, "a new extractor version indexes again"


def test_the_toy_retriever_answers_as_a_mode(small_store):
    memory = Memory(small_store)
    retrieval = memory.retrieve("kettleby gazette founder", mode="title", top_k=2)
    assert (retrieval.mode, [p.doc_id for p in retrieval.passages]) == ("title", ["gazette", "kettleby"])
    assert [p.score for p in retrieval.passages] == [2.0, 1.0]
    assert memory.retriever("title") is memory.retriever("title"), "built once per snapshot"


def test_the_cli_takes_registered_modes_and_extractors_from_plugins(cli, tmp_path, small_docs, monkeypatch):
    import json

    corpus = tmp_path / "small.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in small_docs), encoding="utf-8")
    db = tmp_path / "cli.duckdb"
    monkeypatch.setenv("HIPPOGRAPH_PLUGINS", "toy_plugin")
    code, out, err = cli("index", corpus, "--db", db, "--config", '{"extractor": "toy"}', "--json")
    assert code == 0, err
    assert json.loads(out)["triples"] > 0
    code, out, err = cli("query", "kettleby gazette", "--mode", "title", "--db", db, "--json")
    assert code == 0, err
    assert json.loads(out)["passages"][0]["doc_id"] == "gazette"


def test_unknown_names_are_refused_with_the_registered_ones():
    with pytest.raises(ValueError, match="extractor must be one of 'spacy', 'llm', 'toy'"):
        Config(extractor="nope")
    with pytest.raises(InputError, match="unknown mode 'nope'; registered: bm25, dense, hipporag, memorag, memory, title"):
        Memory("unused.duckdb").retrieve("q", mode="nope")


def test_a_plugin_module_that_does_not_import_is_one_clear_error(cli, monkeypatch):
    monkeypatch.setenv("HIPPOGRAPH_PLUGINS", "no_such_plugin_module")
    code, out, err = cli("stats")
    assert code == 1 and out == ""
    assert err.strip() == ("hippograph: error: cannot import plugin module 'no_such_plugin_module' "
                           "(from $HIPPOGRAPH_PLUGINS): No module named 'no_such_plugin_module'")
