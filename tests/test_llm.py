"""The LLM path against a scripted chat-completions server on loopback: retries, timeouts, broken and
wrongly shaped replies, a server killed mid-run, the cache, the recognition filter and answers; and no
network call of any kind without `llm_base_url`. The real server's tests are in test_llm_server.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from hippograph import Config, Memory
from hippograph.answers import CLUE_SYSTEM, parse_answer, parse_kept_facts
from hippograph.llm import LLMUnavailable, llm_client
from hippograph.pipeline.llm_compress import GIST_SYSTEM
from hippograph.pipeline.llm_extract import parse_entities, parse_triples
from hippograph.types import Passage
from llm_servers import Reply, ScriptedServer, toy_llm

ADA = Passage("ada#0", "ada", 0, "Ada Marsh", "Ada Marsh was an engineer born in Kettleby. She designed the Veloria Bridge.")
LLM_STORE_TABLES = ("documents", "passages", "triples", "passage_phrases", "facts", "phrases")


def llm_config(server: ScriptedServer, tmp_path, **options) -> Config:
    return Config(extractor="llm", llm_base_url=server.base_url, llm_model="scripted",
                  llm_cache_dir=str(tmp_path / "llm-cache"), **{"llm_max_retries": 2, **options})


def replies(*scripted: Reply, then: Reply | None = None):
    """A script answering the given replies in turn, then `then` (or the toy LLM) for every other request."""

    def script(request: dict, number: int) -> Reply:
        if number < len(scripted):
            return scripted[number]
        return then if then is not None else toy_llm(request, number)

    return script


# ---- the client: retries, timeouts, the cache --------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_503_is_retried_then_succeeds(status, tmp_path):
    busy = Reply(status=status, body='{"error": {"message": "busy"}}', headers={"Retry-After": "0"})
    with ScriptedServer(replies(busy, Reply('{"entities": ["Ada Marsh"]}'))) as server:
        reply = llm_client(llm_config(server, tmp_path)).complete([{"role": "user", "content": "hi"}], "t-1")
    assert json.loads(reply.content) == {"entities": ["Ada Marsh"]}
    assert len(server.requests) == 2 and not reply.cached


def test_the_timeout_is_honoured(tmp_path):
    with ScriptedServer(lambda request, number: Reply('{"entities": ["x"]}', delay=3.0)) as server:
        client = llm_client(llm_config(server, tmp_path, llm_timeout=0.5, llm_max_retries=0))
        start = time.monotonic()
        with pytest.raises(LLMUnavailable, match="timed out"):
            client.complete([{"role": "user", "content": "hi"}], "t-1")
        assert time.monotonic() - start < 2.5


def test_failed_calls_are_never_cached_and_replies_are(tmp_path):
    down = Reply(status=503, body='{"error": {"message": "down"}}')
    with ScriptedServer(replies(down, then=Reply('{"entities": ["Ada"]}'))) as server:
        config = llm_config(server, tmp_path, llm_max_retries=0)
        message = [{"role": "user", "content": "hi"}]
        with pytest.raises(LLMUnavailable):
            llm_client(config).complete(message, "t-1")
        assert not llm_client(config).complete(message, "t-1").cached, "the failure was not kept"
        assert llm_client(config).complete(message, "t-1").cached
        assert not llm_client(config).complete(message, "t-2").cached, "the prompt version is part of the key"
        assert len(server.requests) == 3


def test_a_server_refusing_json_mode_is_asked_for_plain_text(tmp_path):
    def script(request: dict, number: int) -> Reply:
        if "response_format" in request:
            return Reply(status=400, body='{"error": {"message": "response_format is not supported"}}')
        return Reply('{"entities": ["Ada Marsh"]}')

    with ScriptedServer(script) as server:
        reply = llm_client(llm_config(server, tmp_path)).complete([{"role": "user", "content": "hi"}], "t-1")
    assert json.loads(reply.content) == {"entities": ["Ada Marsh"]}
    assert ["response_format" in r for r in server.requests] == [True, False]


def test_a_thinking_models_reasoning_is_not_taken_for_its_reply(tmp_path):
    thought = Reply('<think>The user wants {"entities": ["Wrong"]}...</think>\n{"entities": ["Ada Marsh"]}')
    with ScriptedServer(replies(then=thought)) as server:
        reply = llm_client(llm_config(server, tmp_path)).complete([{"role": "user", "content": "hi"}], "t-1")
    assert reply.content == '{"entities": ["Ada Marsh"]}'


# ---- reading replies ----------------------------------------------------------------------------------


def test_truncated_json_is_repaired_and_wrong_shapes_refused():
    assert parse_entities('{"entities": ["Ada Marsh", "Kettleby"', ADA) == ["Ada Marsh", "Kettleby"]
    assert parse_entities('```json\n["Ada Marsh", "Brenmoor", "Veloria Marsh"]\n```', ADA) == ["Ada Marsh"], "only the passage's"
    assert parse_entities('{"names": ["Ada  marsh"]}', ADA) == ["Ada  marsh"]
    assert parse_triples('{"triples": [["Ada Marsh", "born in", "Kettleby"], ["Ada Marsh", "is", "ada marsh"], '
                         '["Ada", "x"], ["Nowhere Town", "near", "Elsewhere"], ["He", "built", "Nowhere"], '
                         '{"subject": "She", "relation": '
                         '"designed", "object": "Veloria Bridge"}', ADA) == [
        ("ada marsh", "born in", "kettleby"), ("she", "designed", "veloria bridge")]
    for reply in ("", "   ", "I cannot help with that.", '{"entities": 3}', '{"a": [1], "b": [2]}', "[]", '["Brenmoor"]'):
        with pytest.raises(ValueError):
            parse_entities(reply, ADA)
    with pytest.raises(ValueError, match="no \\[subject, relation, object\\] triple"):
        parse_triples('{"entity": "Ada Marsh", "type": "person"}', ADA)


def test_an_answer_citing_a_passage_it_was_not_given_loses_that_citation():
    given = ["ada", "kettleby"]
    assert parse_answer('{"answer": "Kettleby", "citations": ["ada", "gazette", "[kettleby]", "ada"]}', given) == (
        "Kettleby", ["ada", "kettleby"])
    assert parse_answer("Kettleby, says ada (not adamant).", given) == ("Kettleby, says ada (not adamant).", ["ada"])
    nested = '{"answer": {"name": "Tobias Wren", "date": "1902"}, "citation": ["kettleby", {"id": "ada"}]}'
    assert parse_answer(nested, given) == ("Tobias Wren", ["kettleby"])
    with pytest.raises(ValueError):
        parse_answer('{"citations": ["ada"]}', given)


def test_the_recognition_filter_keeps_only_given_facts_and_at_most_four():
    facts = [("ada marsh", "born in", "kettleby"), ("ada marsh", "designed", "veloria bridge"),
             ("kettleby", "in", "orne valley"), ("tobias wren", "mayor of", "kettleby"), ("a", "b", "c")]
    assert parse_kept_facts('{"facts": [2, 9, "1", 2, ["Tobias Wren", "mayor of", "Kettleby"], ["x", "y", "z"]]}', facts) == [1, 0, 3]
    assert parse_kept_facts('{"facts": [5, 4, 3, 2, 1]}', facts) == [4, 3, 2, 1]
    with pytest.raises(ValueError):
        parse_kept_facts('{"facts": [0, 6, ["new", "fact", "here"]]}', facts)


# ---- indexing with extractor="llm" ----------------------------------------------------------------------


def test_indexing_with_the_llm_extractor_reports_what_it_cost(tmp_path, small_docs, store_tools):
    with ScriptedServer(toy_llm) as server:
        report = Memory(tmp_path / "m.duckdb", llm_config(server, tmp_path)).index(small_docs)
    assert report.indexed == 3 and report.triples > 0
    assert (report.llm.llm_calls, report.llm.cache_hits, report.llm.invalid_replies, report.llm.fallbacks) == (6, 0, 0, 0)
    assert (report.llm.tokens_in, report.llm.tokens_out) == (60, 30)
    triples = store_tools.sql(tmp_path / "m.duckdb", "SELECT subject, predicate, object FROM triples")
    assert ("kettleby gazette", "mentions", "tobias wren") in triples
    assert {p for (p,) in store_tools.sql(tmp_path / "m.duckdb", "SELECT DISTINCT predicate FROM triples")} == {"mentions"}


def test_a_second_run_over_the_same_cache_makes_no_call(tmp_path, small_docs):
    with ScriptedServer(toy_llm) as server:
        config = llm_config(server, tmp_path)
        first = Memory(tmp_path / "a.duckdb", config).index(small_docs)
        second = Memory(tmp_path / "b.duckdb", config).index(small_docs)  # a fresh store: all replies cached
        unrelated = Memory(tmp_path / "c.duckdb", config.replace(synonym_threshold=0.9)).index(small_docs)
    assert first.llm.llm_calls == 6 and len(server.requests) == 6
    assert (second.llm.llm_calls, second.llm.cache_hits, second.llm.tokens_in) == (0, 6, 0)
    assert (unrelated.llm.llm_calls, unrelated.llm.cache_hits) == (0, 6)


def test_the_cache_lives_beside_the_store_by_default(tmp_path, small_docs):
    with ScriptedServer(toy_llm) as server:
        config = llm_config(server, tmp_path).replace(llm_cache_dir=None)
        Memory(tmp_path / "m.duckdb", config).index(small_docs)
        Memory(tmp_path / "m.duckdb", config.replace(synonym_top_k=5)).index(small_docs)  # indexes again: cached
    assert (tmp_path / "m.duckdb.llm-cache").is_dir()
    assert len(server.requests) == 6


def test_invalid_replies_are_retried_once_then_the_passage_falls_back_to_spacy(tmp_path, store_tools):
    wrong_shape, empty, truncated = Reply('{"entity": 3}'), Reply(""), Reply('{"entities": ["Ada Marsh", "Kettleby"')
    doc = {"id": "ada", "title": "Ada Marsh", "text": ADA.text}
    with ScriptedServer(replies(wrong_shape, empty)) as server:  # NER fails twice: spaCy
        fell_back = Memory(tmp_path / "a.duckdb", llm_config(server, tmp_path)).index([doc])
    assert (fell_back.llm.llm_calls, fell_back.llm.invalid_replies, fell_back.llm.fallbacks) == (2, 2, 1)
    assert server.requests[1]["messages"][-1]["content"].startswith("Your reply was not what was asked for")
    spacy_triples = store_tools.sql(tmp_path / "a.duckdb", "SELECT predicate FROM triples")
    assert spacy_triples and ("mentions",) not in spacy_triples, "spaCy's triples, not the toy LLM's"

    with ScriptedServer(replies(truncated, Reply(None))) as server:  # NER repaired; triples empty, then fine
        repaired = Memory(tmp_path / "b.duckdb", llm_config(server, tmp_path / "b")).index([doc])
    assert (repaired.llm.llm_calls, repaired.llm.invalid_replies, repaired.llm.fallbacks) == (3, 1, 0)
    assert store_tools.sql(tmp_path / "b.duckdb", "SELECT DISTINCT predicate FROM triples") == [("mentions",)]


def test_sharded_runs_report_the_same_llm_usage(tmp_path, small_docs, store_tools):
    """Extraction and memory gists both by the LLM: what each cost rides with its shard's artifacts."""
    with ScriptedServer(toy_llm) as server:
        config = lambda cache: llm_config(server, cache, gist_writer="llm", memory_budget=1.0)  # noqa: E731
        in_process = Memory(tmp_path / "a.duckdb", config(tmp_path / "a")).index(small_docs)
        sharded = Memory(tmp_path / "b.duckdb", config(tmp_path / "b")).index(
            small_docs, work_dir=tmp_path / "work", shard_size=2)
    assert in_process.llm.llm_calls == 9 and in_process.llm.gist_fallbacks == 0, "NER, triples and a gist per document"
    assert sharded.to_dict() | {"seconds": {}} == in_process.to_dict() | {"seconds": {}}
    store_tools.assert_same(tmp_path / "b.duckdb", tmp_path / "a.duckdb")


def test_a_server_killed_mid_run_leaves_a_complete_run_on_the_fallback(tmp_path, small_docs, demo_corpus, store_tools):
    db = tmp_path / "m.duckdb"
    with ScriptedServer(toy_llm) as server:
        Memory(db, llm_config(server, tmp_path)).index(small_docs)
        published = store_tools.sql(db, "SELECT * FROM triples ORDER BY ALL")
    # Dies after 52 requests: the 42 NER requests go first, then it answers 10 triple requests.
    with ScriptedServer(toy_llm, stop_after=52) as server:
        start = time.monotonic()
        report = Memory(db, llm_config(server, tmp_path, llm_max_retries=1)).index_paths([demo_corpus])
        elapsed = time.monotonic() - start
    assert report.indexed == 42 and report.unchanged == 0
    assert 0 < report.llm.fallbacks <= 32 and report.llm.llm_calls >= 52
    assert elapsed < 120, "a dead server is left alone after a few failures, not retried per passage"
    counts = store_tools.counts(db, LLM_STORE_TABLES)
    assert counts["documents"] == 45
    assert set(published) <= set(store_tools.sql(db, "SELECT * FROM triples ORDER BY ALL")), "nothing published was lost"
    passages_without_triples = store_tools.sql(
        db, "SELECT count(*) FROM passages WHERE passage_id NOT IN (SELECT passage_id FROM triples)")[0][0]
    assert passages_without_triples == 0


# ---- queries: the recognition filter and answers -------------------------------------------------------


def test_the_llm_recognition_filter_seeds_the_kept_fact_and_falls_back_on_nonsense(small_store, tmp_path):
    question = "Where was the designer of the Veloria Bridge born?"
    entity = Memory(small_store).retrieve(question)
    every_linked = Memory(small_store, Config(recognition_filter="none")).retrieve(question).facts
    with ScriptedServer(toy_llm) as server:  # keeps fact 1, the closest
        config = llm_config(server, tmp_path).replace(extractor="spacy", recognition_filter="llm")
        kept = Memory(small_store, config).retrieve(question)
    assert len(every_linked) > 1 and kept.facts == every_linked[:1]
    assert len(server.requests) == 1
    linked = server.requests[0]["messages"][1]["content"]
    assert linked.startswith(f"Question: {question}") and "1. (" in linked
    with ScriptedServer(lambda request, number: Reply("I think fact 12 and a new one.")) as server:
        config = llm_config(server, tmp_path / "other").replace(extractor="spacy", recognition_filter="llm")
        nonsense = Memory(small_store, config).retrieve(question)
    assert len(server.requests) == 2, "asked once more, then fell back"
    assert nonsense.to_dict() == entity.to_dict(), "the default filter's result"


def test_answer_cites_only_passages_it_was_given(small_store, tmp_path):
    def cites_too_much(request: dict, number: int) -> Reply:
        return Reply(json.dumps({"answer": "Kettleby", "citations": ["ada", "gazette", "not-a-doc"]}))

    with ScriptedServer(cites_too_much) as server:
        config = llm_config(server, tmp_path).replace(extractor="spacy")
        result = Memory(small_store, config).answer("Where was Ada Marsh born?", mode="bm25", top_k=1)
    assert [p.doc_id for p in result.passages] == ["ada"]
    assert (result.answer, result.citations, result.note) == ("Kettleby", ["ada"], "")
    assert "[ada] Ada Marsh" in server.requests[0]["messages"][1]["content"]


def test_cli_answer_json_with_an_llm(cli, small_store, tmp_path):
    with ScriptedServer(toy_llm) as server:
        config = json.dumps({"llm_base_url": server.base_url, "llm_model": "scripted"})
        code, out, err = cli("answer", "Where was Ada Marsh born?", "--db", small_store, "--config", config,
                             "--mode", "dense", "--top-k", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"question", "answer", "citations", "passages", "mode", "source"}
    assert result["source"] == "llm"
    assert result["answer"] == "Kettleby" and result["mode"] == "dense"
    assert result["citations"] == [result["passages"][0]["doc_id"]]


def test_cli_answer_without_an_llm_gives_the_offline_draft_and_the_evidence(cli, small_store):
    code, out, err = cli("answer", "Where was Ada Marsh born?", "--db", small_store, "--mode", "bm25")
    assert code == 0
    assert "no LLM configured: this is the offline draft answer" in err
    assert out.splitlines()[1] == "answer: Kettleby (offline draft)    citations: ada"
    assert out.splitlines()[4].split()[2] == "ada", "then the evidence"
    code, out, err = cli("answer", "Where was Ada Marsh born?", "--db", small_store, "--mode", "bm25", "--json")
    result = json.loads(out)
    assert (result["answer"], result["citations"], result["source"]) == ("Kettleby", ["ada"], "draft")
    assert result["note"].startswith("no LLM configured") and result["passages"]


def test_an_llm_without_a_usable_answer_falls_back_to_the_draft(small_store, tmp_path):
    with ScriptedServer(lambda request, number: Reply('{"reply": "no idea"}')) as server:
        config = llm_config(server, tmp_path).replace(extractor="spacy")
        result = Memory(small_store, config).answer("Where was Ada Marsh born?", mode="bm25", top_k=2)
    assert len(server.requests) == 2, "asked once more, then drafted"
    assert (result.answer, result.citations, result.source) == ("Kettleby", ["ada"], "draft")
    assert result.note.startswith("the LLM gave no usable answer") and result.note.endswith("offline draft answer")


def test_what_needs_an_llm_is_refused_without_one():
    with pytest.raises(ValueError, match='extractor="llm" needs llm_base_url'):
        Config(extractor="llm")
    with pytest.raises(ValueError, match='recognition_filter="llm" needs llm_base_url'):
        Config(recognition_filter="llm")
    with pytest.raises(ValueError, match='gist_writer="llm" needs llm_base_url'):
        Config(gist_writer="llm")
    with pytest.raises(ValueError, match="llm_base_url needs llm_model"):
        Config(llm_base_url="http://127.0.0.1:1/v1")


NO_NETWORK_SCRIPT = """
import socket, sys
connections = []
original = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        connections.append(address)
    return original(self, address)
socket.socket.connect = connect
from hippograph import Memory
memory = Memory(sys.argv[1])
memory.index([{"id": "ada", "title": "Ada Marsh", "text": "Ada Marsh designed the Veloria Bridge in Kettleby."}])
for mode in ("bm25", "dense", "hipporag"):
    result = memory.answer("Who designed the Veloria Bridge?", mode=mode)
    assert result.source == "draft" and result.passages[0].doc_id == "ada", result
print("connections", connections, "openai imported", "openai" in sys.modules)
"""


def test_no_network_call_of_any_kind_without_llm_base_url(tmp_path):
    env = {"HF_HUB_OFFLINE": "0", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_NETWORK_SCRIPT), str(tmp_path / "m.duckdb")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "connections [] openai imported False"


# ---- eval: answer metrics -----------------------------------------------------------------------------------


def test_squad_normalisation_exact_match_and_token_f1():
    from hippograph.evaluate import exact_match, normalize_answer, token_f1

    assert normalize_answer("The  Kettleby-Gazette, Ltd.") == "kettlebygazette ltd"
    assert exact_match("the Kettleby", ["Dunmere", "kettleby!"]) == 1.0
    assert token_f1("Kettleby town", ["Kettleby"]) == pytest.approx(2 / 3)
    assert token_f1("nothing alike", ["Kettleby"]) == 0.0 == token_f1("", ["Kettleby"])


def test_eval_scores_the_llms_answers_when_one_is_configured(demo_store, demo_questions, tmp_path):
    from hippograph.evaluate import evaluate, load_questions, normalize_answer

    questions = load_questions(demo_questions)
    with ScriptedServer(toy_llm) as server:  # answers "Kettleby" to everything
        memory = Memory(demo_store, llm_config(server, tmp_path).replace(extractor="spacy"))
        [result] = evaluate(memory, questions, ["bm25"], [2, 5], answer_top_k=3)
    assert len(server.requests) == len(questions)
    right = [q for q in questions if "kettleby" in map(normalize_answer, q.answers)]
    assert 0 < len(right) < len(questions)
    assert result.exact_match == pytest.approx(100 * len(right) / len(questions))
    assert result.f1 >= result.exact_match
    assert set(result.to_dict()) >= {"exact_match", "f1", "answer_recall@2", "answer_recall@5"}


# ---- MemoRAG's clues written by the LLM -------------------------------------------------------------------

MAYOR_QUESTION = "Who was mayor in 1902 of the town where Ada Marsh was born?"


def clue_config(server: ScriptedServer, tmp_path) -> Config:
    return llm_config(server, tmp_path).replace(extractor="spacy", clue_writer="llm")


def test_the_llm_writes_memorags_clues_from_the_nearest_memories(small_store, tmp_path):
    reply = {"spans": ["Tobias Wren was the mayor of Kettleby in 1902", "Kettleby"],
             "questions": ["Who was the mayor of Kettleby in 1902?"], "answer": "Tobias Wren"}
    with ScriptedServer(lambda request, number: Reply(json.dumps(reply))) as server:
        retrieval = Memory(small_store, clue_config(server, tmp_path)).retrieve(MAYOR_QUESTION, mode="memorag")
    [request] = server.requests
    assert request["messages"][0]["content"] == CLUE_SYSTEM
    prompt = request["messages"][1]["content"]
    assert prompt.endswith(f"Question: {MAYOR_QUESTION}") and "\n- Ada Marsh: Ada Marsh was an" in prompt
    clues = [(c.text, c.kind) for c in retrieval.clues]
    assert clues[0] == (MAYOR_QUESTION, "question")
    assert ("Who was the mayor of Kettleby in 1902?", "surrogate") in clues
    assert ("Tobias Wren was the mayor of Kettleby in 1902", "span") in clues
    assert ("Kettleby", "span") not in clues and ("Tobias Wren", "draft") not in clues, "three words or fewer: dropped"
    assert "kettleby" in [p.doc_id for p in retrieval.passages[:2]]


@pytest.mark.parametrize("content", [
    "no clues here", '{"spans": true, "questions": [null, {}]}', "", '["", "  "]',
    '{"spans": ["Kettleby", "the mayor"], "questions": ["Who?"], "answer": "Tobias Wren"}',  # fragments only
])
def test_malformed_clue_replies_are_ignored(small_store, tmp_path, content):
    offline = Memory(small_store).retrieve(MAYOR_QUESTION, mode="memorag")
    with ScriptedServer(lambda request, number: Reply(content)) as server:
        retrieval = Memory(small_store, clue_config(server, tmp_path)).retrieve(MAYOR_QUESTION, mode="memorag")
    assert len(server.requests) == 2, "asked once more, then the offline clues"
    assert retrieval.to_dict() == offline.to_dict()


def test_clues_without_a_server_are_the_offline_ones(small_store, tmp_path):
    offline = Memory(small_store).retrieve(MAYOR_QUESTION, mode="memorag")
    config = Config(llm_base_url="http://127.0.0.1:9/v1", llm_model="none", llm_max_retries=0, clue_writer="llm",
                    llm_cache_dir=str(tmp_path / "cache"))
    assert Memory(small_store, config).retrieve(MAYOR_QUESTION, mode="memorag").to_dict() == offline.to_dict()


def test_clue_writer_llm_needs_an_llm():
    with pytest.raises(ValueError, match='clue_writer="llm" needs llm_base_url'):
        Config(clue_writer="llm")


# ---- memory gists written by the LLM -------------------------------------------------------------------

ADA_DOC = {"id": "ada", "title": "Ada Marsh",
           "text": "Ada Marsh was an engineer born in Kettleby. She designed the Veloria Bridge in 1897. She retired to the coast."}
MEMORY_ROWS = "SELECT doc_id, gist, facts, kept_bytes, source_bytes FROM memories ORDER BY doc_id"


def gist_config(server: ScriptedServer, tmp_path, **options) -> Config:
    return llm_config(server, tmp_path).replace(**{"extractor": "spacy", "gist_writer": "llm", "memory_budget": 0.8, **options})


def test_the_llm_writes_a_memorys_gist_from_its_document_within_the_budget(tmp_path, store_tools):
    reply = {"facts": [
        "Ada Marsh designed the Veloria Bridge in 1897",  # kept, as a sentence
        "Lake Orvan supplies Brenmoor.",  # the prompt's example, not the document's
        "Ada Marsh, engineer",  # three words
        "Ada Marsh won the Nobel Prize in physics.",  # mostly words the document does not have
        "Ada Marsh was born in Kettleby.",  # kept
        "Ada Marsh was an engineer born in Kettleby who designed the Veloria Bridge in 1897.",  # no room left
    ]}
    db = tmp_path / "m.duckdb"
    with ScriptedServer(lambda request, number: Reply(json.dumps(reply))) as server:
        report = Memory(db, gist_config(server, tmp_path)).index([ADA_DOC])
    [request] = server.requests
    budget = int(0.8 * len(ADA_DOC["text"].encode()))
    assert request["messages"][0]["content"] == GIST_SYSTEM
    assert request["messages"][-1]["content"] == f"Budget: {budget} characters\n\nDocument:\nAda Marsh\n{ADA_DOC['text']}"
    [(_, gist, facts, kept, source)] = store_tools.sql(db, MEMORY_ROWS)
    assert gist == "Ada Marsh designed the Veloria Bridge in 1897. Ada Marsh was born in Kettleby."
    assert kept <= 0.8 * source
    record_key = store_tools.sql(db, "SELECT text FROM memory_keys ORDER BY position LIMIT 1")[0][0]
    assert record_key.startswith(gist), "the record is keyed by what the LLM wrote"
    assert (report.llm.llm_calls, report.llm.invalid_replies, report.llm.gist_fallbacks) == (1, 0, 0)


@pytest.mark.parametrize("content", [
    "no facts here", '{"facts": [null, 3, ""]}', "",
    '{"facts": ["Ada Marsh", "Lake Orvan supplies Brenmoor."]}',  # a fragment and the example only
    '{"facts": ["Ada Marsh was an engineer born in Kettleby who designed the Veloria Bridge in 1897 and retired to the coast."]}',  # too long
])
def test_an_unusable_gist_reply_leaves_the_offline_gist(tmp_path, store_tools, content):
    Memory(tmp_path / "offline.duckdb", Config(memory_budget=0.8)).index([ADA_DOC])
    with ScriptedServer(lambda request, number: Reply(content)) as server:
        report = Memory(tmp_path / "llm.duckdb", gist_config(server, tmp_path)).index([ADA_DOC])
    assert len(server.requests) == 2, "asked once more, then the offline gist"
    assert (report.llm.invalid_replies, report.llm.gist_fallbacks) == (2, 1)
    assert store_tools.sql(tmp_path / "llm.duckdb", MEMORY_ROWS) == store_tools.sql(tmp_path / "offline.duckdb", MEMORY_ROWS)


def test_gists_without_a_server_are_the_offline_ones(tmp_path, store_tools):
    Memory(tmp_path / "offline.duckdb", Config(memory_budget=0.8)).index([ADA_DOC])
    config = Config(llm_base_url="http://127.0.0.1:9/v1", llm_model="none", llm_max_retries=0, gist_writer="llm",
                    memory_budget=0.8, llm_cache_dir=str(tmp_path / "cache"))
    report = Memory(tmp_path / "llm.duckdb", config).index([ADA_DOC])
    assert report.indexed == 1 and report.llm.gist_fallbacks == 1
    assert store_tools.sql(tmp_path / "llm.duckdb", MEMORY_ROWS) == store_tools.sql(tmp_path / "offline.duckdb", MEMORY_ROWS)


def test_turning_llm_gists_on_compresses_the_stored_documents_again(tmp_path, small_docs, store_tools):
    db = tmp_path / "m.duckdb"
    assert "gist_writer" not in Config().index_settings(), "stores indexed before the option keep their keys"
    Memory(db, Config(memory_budget=1.0)).index(small_docs)
    with ScriptedServer(toy_llm) as server:
        config = gist_config(server, tmp_path, memory_budget=1.0)
        again = Memory(db, config).index(small_docs)
        unchanged = Memory(db, config).index(small_docs)
    assert (again.indexed, again.llm.llm_calls) == (3, 3)
    assert (unchanged.indexed, unchanged.unchanged, unchanged.llm.llm_calls) == (0, 3, 0)
    gists = dict(store_tools.sql(db, "SELECT doc_id, gist FROM memories"))
    assert gists["ada"] == "Ada Marsh was an engineer born in Kettleby. She designed the Veloria Bridge in 1897."


def test_cli_index_says_how_many_gists_fell_back(cli, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ada.txt").write_text(ADA_DOC["text"])
    config = json.dumps({"llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "none", "llm_max_retries": 0,
                         "gist_writer": "llm", "llm_cache_dir": str(tmp_path / "cache")})
    code, out, _ = cli("index", docs, "--db", tmp_path / "m.duckdb", "--config", config)
    assert code == 0
    assert "1 documents to the offline gist" in out.splitlines()[-1]
