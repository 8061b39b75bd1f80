"""The `Memory` API: indexing dicts, retrieval in every mode, batched retrieval, refresh, deletion, errors."""

from __future__ import annotations

import json
import re
from dataclasses import fields

import numpy as np
import pytest

from hippograph import (
    Config,
    Document,
    HippographError,
    InputError,
    Memory,
    ModelNotFoundError,
    Retrieval,
    RetrievedPassage,
    SeedFact,
    StoreError,
    load_config,
)
from hippograph import config as config_module

MODES = ("bm25", "dense", "hipporag")


def question(records, qid: str) -> dict:
    return next(r for r in records if r["id"] == qid)


# ---- indexing -------------------------------------------------------------------------------------------


def test_index_dicts_and_documents(tmp_path, small_docs):
    memory = Memory(tmp_path / "m.duckdb")
    report = memory.index(small_docs[:2] + [Document("doc-3", "Gazette", "The Kettleby Gazette is a newspaper.")])
    assert (report.documents, report.indexed, report.unchanged) == (3, 3, 0)
    assert report.passages == 3 and report.triples > 0 and report.new_phrases > 0
    assert set(report.seconds) >= {"chunk", "embed_passages", "extract", "write"}
    stats = memory.stats()
    assert (stats.documents, stats.passages) == (3, 3)
    assert stats.embedding_model == "all-MiniLM-L6-v2" and stats.embedding_dim == 384


def test_indexing_under_other_settings_indexes_the_documents_again(tmp_path, small_docs):
    """A store indexed without a graph gets one when indexed again with it; the same settings twice do nothing."""
    db = tmp_path / "m.duckdb"
    plain = Memory(db, Config(build_graph=False))
    assert plain.index(small_docs).indexed == len(small_docs)
    assert plain.index(small_docs).unchanged == len(small_docs)
    assert plain.stats().triples == 0

    with_graph = Memory(db)
    report = with_graph.index(small_docs)
    assert (report.indexed, report.unchanged) == (len(small_docs), 0)
    assert with_graph.stats().triples == report.triples > 0
    assert with_graph.index(small_docs).unchanged == len(small_docs)
    assert with_graph.retrieve("Who designed the Veloria Bridge?", mode="hipporag").facts


def test_index_paths_reads_files_and_stdin(tmp_path):
    import io

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Lyle gorge\nThe Lyle gorge lies east of Port Veloria.")
    memory = Memory(tmp_path / "m.duckdb")
    report = memory.index_paths([tmp_path / "docs", "-"], stdin=io.BytesIO(b'{"id": "s", "text": "Stdin text."}\n'))
    assert report.indexed == 2
    retrieval = memory.retrieve("Lyle gorge", mode="bm25", top_k=1)
    assert (retrieval.passages[0].doc_id, retrieval.passages[0].title) == ("a.md", "Lyle gorge")


def test_reindexing_the_same_files_by_another_path_changes_nothing(tmp_path, monkeypatch):
    """Ids are relative to the directory given, so the same unchanged files, reached by an absolute path or from
    another working directory, are the same documents and must not be embedded and written again."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "k.txt").write_text("Kettleby is a town in the Orne valley.")
    memory = Memory(tmp_path / "m.duckdb")
    monkeypatch.chdir(tmp_path)
    assert memory.index_paths(["docs"]).indexed == 1
    assert memory.index_paths(["./docs/"]).unchanged == 1
    report = memory.index_paths([tmp_path / "docs"])
    assert (report.indexed, report.unchanged) == (0, 1)
    assert memory.stats().generation == 1


def test_default_path_comes_from_hippograph_db(monkeypatch, tmp_path):
    monkeypatch.setenv("HIPPOGRAPH_DB", str(tmp_path / "env.duckdb"))
    assert Memory().db_path == tmp_path / "env.duckdb"
    monkeypatch.delenv("HIPPOGRAPH_DB")
    monkeypatch.chdir(tmp_path)
    assert Memory().db_path.name == "hippograph.duckdb"


# ---- retrieval ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_retrieve_returns_typed_passages_best_first(demo_store, demo_records, demo_question_records, mode):
    q = question(demo_question_records, "q01")["question"]
    retrieval = Memory(demo_store).retrieve(q, mode=mode, top_k=7)
    assert isinstance(retrieval, Retrieval)
    assert (retrieval.question, retrieval.mode) == (q, mode)
    assert len(retrieval.passages) == 7
    assert len({p.passage_id for p in retrieval.passages}) == 7
    for p in retrieval.passages:
        assert isinstance(p, RetrievedPassage)
        assert isinstance(p.score, float) and np.isfinite(p.score)
        record = demo_records[p.doc_id]
        assert p.passage_id == f"{p.doc_id}#0"  # demo documents are one passage each
        assert p.title == record["title"]
        assert p.text == " ".join(record["text"].split())
    scores = [p.score for p in retrieval.passages]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1]


def test_dense_finds_a_supporting_passage_for_q01(demo_store, demo_question_records):
    q = question(demo_question_records, "q01")
    retrieval = Memory(demo_store).retrieve(q["question"], mode="dense", top_k=5)
    assert {p.doc_id for p in retrieval.passages} & set(q["supporting_ids"])


def test_bm25_ranks_an_exact_title_match_first(demo_store, demo_records):
    retrieval = Memory(demo_store).retrieve("Greythorn Hills Greythorn Beacon", mode="bm25", top_k=3)
    assert retrieval.passages[0].title == "Greythorn Hills"
    assert retrieval.facts == []


def test_hipporag_reports_its_seed_facts(demo_store, demo_question_records):
    q = question(demo_question_records, "q01")["question"]
    retrieval = Memory(demo_store).retrieve(q, mode="hipporag", top_k=5)
    assert retrieval.facts
    assert all(isinstance(f, SeedFact) and isinstance(f.score, float) for f in retrieval.facts)
    assert [f.score for f in retrieval.facts] == sorted((f.score for f in retrieval.facts), reverse=True)
    assert any("veloria bridge" in (f.subject, f.object) for f in retrieval.facts)
    assert Memory(demo_store).retrieve(q, mode="dense").facts == []


def test_top_k_beyond_the_store_returns_every_passage(demo_store):
    retrieval = Memory(demo_store).retrieve("Orne", mode="bm25", top_k=1000)
    assert len(retrieval.passages) == 42
    assert len({p.doc_id for p in retrieval.passages}) == 42


@pytest.mark.parametrize("mode", MODES)
def test_retrieve_many_equals_retrieve_one_by_one(demo_store, demo_question_records, mode):
    memory = Memory(demo_store)
    questions = [q["question"] for q in demo_question_records]
    many = memory.retrieve_many(questions, mode=mode, top_k=5)
    assert len(many) == len(questions)
    for q, batched in zip(questions, many):
        single = memory.retrieve(q, mode=mode, top_k=5)
        assert batched.question == single.question == q
        assert [p.passage_id for p in batched.passages] == [p.passage_id for p in single.passages]
        # batched embedding may differ from a single one in the last bits (bfloat16 on some CPUs)
        assert [p.score for p in batched.passages] == pytest.approx([p.score for p in single.passages], abs=2e-3)
        assert [(f.subject, f.predicate, f.object) for f in batched.facts] == [
            (f.subject, f.predicate, f.object) for f in single.facts
        ]


def test_retrieve_many_of_nothing(demo_store):
    assert Memory(demo_store).retrieve_many([], mode="dense") == []


def test_unknown_mode_is_a_hippograph_error(demo_store):
    with pytest.raises(HippographError, match="unknown mode 'sparse'.*bm25, dense, hipporag"):
        Memory(demo_store).retrieve("Who?", mode="sparse")


def test_retrieve_from_a_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no store"):
        Memory(tmp_path / "missing.duckdb").retrieve("Who?", mode="bm25")
    assert not (tmp_path / "missing.duckdb").exists()


# ---- refresh and deletion -------------------------------------------------------------------------------


def test_refresh_sees_what_another_instance_indexed(small_store_copy):
    reader, writer = Memory(small_store_copy, auto_refresh=False), Memory(small_store_copy)
    assert reader.refresh() is False  # nothing read yet
    before = reader.retrieve("Lyle gorge Port Veloria", mode="bm25", top_k=10)
    assert "lyle" not in {p.doc_id for p in before.passages}
    assert reader.refresh() is False  # nothing changed

    writer.index([{"id": "lyle", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}])
    stale = reader.retrieve("Lyle gorge Port Veloria", mode="bm25", top_k=10)
    assert "lyle" not in {p.doc_id for p in stale.passages}  # queries read the snapshot
    assert reader.refresh() is True
    fresh = reader.retrieve("Lyle gorge Port Veloria", mode="bm25", top_k=10)
    assert fresh.passages[0].doc_id == "lyle"
    assert reader.refresh() is False

    writer.index([{"id": "lyle", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}])  # unchanged
    assert reader.refresh() is False
    writer.delete(["lyle"])
    assert reader.refresh() is True


def test_queries_answer_from_the_newest_published_store_by_default(small_store_copy):
    reader, writer = Memory(small_store_copy), Memory(small_store_copy)
    question = "Lyle gorge Port Veloria"
    assert "lyle" not in {p.doc_id for p in reader.retrieve(question, mode="bm25", top_k=10).passages}
    generation = reader._snapshot.generation
    writer.index([{"id": "lyle", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}])
    assert reader.retrieve(question, mode="bm25", top_k=10).passages[0].doc_id == "lyle"
    assert reader._snapshot.generation == generation + 1
    snapshot = reader._snapshot
    reader.retrieve(question, mode="bm25")
    assert reader._snapshot is snapshot, "an unchanged store is not read again"


def test_own_index_and_delete_are_seen_without_refresh(small_store_copy):
    memory = Memory(small_store_copy)
    assert memory.retrieve("Tobias Wren newspaper", mode="bm25", top_k=1).passages[0].doc_id == "gazette"
    assert memory.delete(["gazette"]) == ["gazette"]
    assert "gazette" not in {p.doc_id for p in memory.retrieve("Tobias Wren newspaper", mode="bm25", top_k=10).passages}
    memory.index([{"id": "lyle", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}])
    assert memory.retrieve("Lyle gorge", mode="dense", top_k=1).passages[0].doc_id == "lyle"


def test_delete_from_a_missing_store_creates_nothing(tmp_path):
    assert Memory(tmp_path / "none.duckdb").delete(["a"]) == []
    assert not (tmp_path / "none.duckdb").exists()


# ---- configuration errors -------------------------------------------------------------------------------


def test_a_missing_spacy_model_is_a_model_not_found_error(tmp_path, small_docs):
    """`hippograph.ModelNotFoundError` is the documented error for "a configured model is not installed"."""
    memory = Memory(tmp_path / "m.duckdb", Config().replace(spacy_model="xx_no_such_spacy_model"))
    with pytest.raises(ModelNotFoundError, match="xx_no_such_spacy_model"):
        memory.index(small_docs)


def test_unknown_config_option_is_refused():
    with pytest.raises(ValueError, match="no_such_option"):
        Config().replace(no_such_option=1)


def test_queries_refuse_a_store_embedded_by_another_model(demo_store):
    """Query vectors of another model would rank passages by noise; bm25 needs no vectors and still answers."""
    memory = Memory(demo_store, Config(embedding_model="someone/other-model"))
    for mode in ("dense", "hipporag"):
        with pytest.raises(StoreError, match="'all-MiniLM-L6-v2'.*'someone/other-model'"):
            memory.retrieve("Who designed the Veloria Bridge?", mode=mode)
    assert memory.retrieve("Who designed the Veloria Bridge?", mode="bm25").passages


def test_load_config_reads_json_text_files_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("HIPPOGRAPH_CONFIG", raising=False)
    assert load_config() == Config()
    assert load_config('{"linking_top_k": 8, "damping": 0}') == Config(linking_top_k=8, damping=0.0)
    path = tmp_path / "config.json"
    path.write_text('{"build_graph": false, "chunk_max_tokens": 128}')
    assert load_config(path) == Config(build_graph=False, chunk_max_tokens=128)
    monkeypatch.setenv("HIPPOGRAPH_CONFIG", '{"spacy_model": "en_core_web_trf"}')
    assert load_config() == Config(spacy_model="en_core_web_trf")
    llm = {"llm_base_url": "http://127.0.0.1:8080/v1", "llm_model": "m", "llm_cache_dir": None, "extractor": "llm"}
    assert load_config(llm) == Config(**llm)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('{"no_such_option": 1}', "unknown config option(s): no_such_option"),
        ('{"linking_top_k": "5"}', 'linking_top_k must be an integer, not "5"'),
        ('{"build_graph": 1}', "build_graph must be true or false, not 1"),
        ('{"damping": 0.5,}', "not valid JSON"),
        ('{"recognition_filter": "entities"}', "recognition_filter must be one of 'entity', 'entity_only'"),
        ("no-such-config.json", "cannot read config file no-such-config.json"),
        ('{"damping": ' + "[" * 5000 + "]" * 5000 + "}", "JSON nested too deeply"),
        ('{"chunk_max_tokens": "64"}', 'chunk_max_tokens must be an integer or null, not "64"'),
        ('{"llm_base_url": 8080}', "llm_base_url must be a string or null, not 8080"),
        ('{"llm_api_key_env": null}', "llm_api_key_env must be a string, not null"),
        ('{"recognition_filter": "llm"}', 'recognition_filter="llm" needs llm_base_url'),
        ('{"llm_base_url": "http://127.0.0.1:8080/v1"}', "llm_base_url needs llm_model"),
    ],
    ids=lambda v: v[:40],
)
def test_load_config_errors_say_what_is_wrong(source, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(source)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"damping": 5}', "damping must be at least 0 and less than 1, not 5"),
        ('{"damping": 1}', "damping must be at least 0 and less than 1, not 1"),
        ('{"damping": NaN}', "damping must be at least 0 and less than 1, not NaN"),
        ('{"passage_node_weight": Infinity}', "passage_node_weight must be at least 0, not Infinity"),
        ('{"linking_top_k": -1}', "linking_top_k must be at least 0, not -1"),
        ('{"synonym_threshold": 1.5}', "synonym_threshold must be at least -1 and at most 1, not 1.5"),
        ('{"extract_processes": 0}', "extract_processes must be at least 1, not 0"),
        ('{"chunk_max_tokens": 0}', "chunk_max_tokens must be at least 1, not 0"),
    ],
)
def test_numeric_options_out_of_range_are_refused(options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_config(options)
    with pytest.raises(ValueError, match=re.escape(message)):
        Config(**json.loads(options))


def test_every_numeric_option_has_a_range():
    numeric = {f.name for f in fields(Config) if f.metadata["kind"] in (int, float)}
    assert numeric == set(config_module._RANGES)
    for name in numeric:  # the defaults are in range
        assert getattr(Config(), name) is None or getattr(Config(), name) in config_module._RANGES[name]


def test_chunk_max_tokens_over_the_embedders_window_is_refused(tmp_path, small_docs):
    with pytest.raises(InputError, match="chunk_max_tokens must be at most 254"):
        Memory(tmp_path / "s.duckdb", Config(chunk_max_tokens=1000)).index(small_docs)
    assert not (tmp_path / "s.duckdb").exists()


def test_hipporag_on_a_store_without_a_graph_is_dense_without_parsing_the_question(tmp_path, small_docs, monkeypatch):
    memory = Memory(tmp_path / "plain.duckdb", Config(build_graph=False))
    memory.index(small_docs)

    def no_parse(question):
        raise AssertionError("no graph: nothing to link the question's phrases to")

    monkeypatch.setattr("hippograph.pipeline.extract.load_spacy", no_parse)
    question = "Who founded the Kettleby Gazette?"
    hipporag = memory.retrieve(question, mode="hipporag", top_k=3)
    dense = memory.retrieve(question, mode="dense", top_k=3)
    assert [p.passage_id for p in hipporag.passages] == [p.passage_id for p in dense.passages]
    assert hipporag.facts == []


def test_an_empty_question_is_an_input_error(demo_store):
    memory = Memory(demo_store)
    for mode in MODES:
        with pytest.raises(InputError, match="non-empty string"):
            memory.retrieve("", mode=mode)
    with pytest.raises(InputError, match="non-empty string"):
        memory.retrieve_many(["Who designed the Veloria Bridge?", " \n"], mode="bm25")
