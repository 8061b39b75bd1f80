"""The `hippograph` command line, run in-process through `main()` (and twice as a real process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hippograph import Config

REPORT_KEYS = {
    "documents", "indexed", "unchanged", "passages", "triples", "new_phrases", "new_facts", "synonym_edges", "deleted",
    "llm", "seconds",
}
PASSAGE_KEYS = {"doc_id", "passage_id", "title", "text", "score"}
STATS_KEYS = {
    "path", "schema_version", "generation", "embedding_model", "embedding_dim",
    "documents", "passages", "triples", "phrases", "facts", "synonyms", "memories", "memory_keys", "compression_ratio",
}


@pytest.fixture
def docs_dir(tmp_path):
    root = tmp_path / "docs"
    (root / "towns").mkdir(parents=True)
    (root / "ada.md").write_text("# Ada Marsh\nAda Marsh was an engineer born in Kettleby. She designed the Veloria Bridge.")
    (root / "towns" / "kettleby.txt").write_text("Kettleby is a town in the Orne valley. Tobias Wren was its mayor in 1902.")
    return root


def stats(cli, db) -> dict:
    code, out, err = cli("stats", "--db", db, "--json")
    assert code == 0, err
    return json.loads(out)


# ---- index ----------------------------------------------------------------------------------------------


def test_index_prints_a_summary_and_reindexing_changes_nothing(cli, docs_dir, tmp_path):
    db = tmp_path / "m.duckdb"
    code, out, err = cli("index", docs_dir, "--db", db)
    assert code == 0, err
    assert out.startswith(f"{db}: 2 indexed, 0 unchanged, 2 passages, ")
    assert "triples" in out and "synonym edges" in out
    assert "Traceback" not in err

    code, out, _ = cli("index", docs_dir, "--db", db)
    assert code == 0
    assert out.startswith(f"{db}: 0 indexed, 2 unchanged, 0 passages, ")
    assert stats(cli, db)["generation"] == 1


def test_index_json_report(cli, docs_dir, tmp_path):
    db = tmp_path / "m.duckdb"
    code, out, _ = cli("index", docs_dir, "--db", db, "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == REPORT_KEYS
    assert (report["documents"], report["indexed"], report["unchanged"], report["passages"]) == (2, 2, 0, 2)
    assert report["triples"] > 0 and report["new_phrases"] > 0
    assert report["llm"] == {"llm_calls": 0, "cache_hits": 0, "invalid_replies": 0, "fallbacks": 0, "tokens_in": 0,
                             "tokens_out": 0, "gist_fallbacks": 0}, "spaCy and offline gists need no LLM"
    assert all(isinstance(v, float) and v >= 0 for v in report["seconds"].values())
    docs = {p["doc_id"] for p in json.loads(cli("query", "Kettleby", "--db", db, "--mode", "bm25", "--json")[1])["passages"]}
    assert docs == {"ada.md", "towns/kettleby.txt"}


def test_index_with_a_work_dir_runs_shards_and_cleans_up(cli, docs_dir, tmp_path):
    db, work = tmp_path / "m.duckdb", tmp_path / "work"
    code, out, err = cli("index", docs_dir, "--db", db, "--work-dir", work, "--shard-size", 1, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == REPORT_KEYS
    assert (report["indexed"], report["passages"]) == (2, 2)
    assert {"plan", "chunk", "embed_passages", "extract", "embed_graph", "write"} <= set(report["seconds"])
    assert list((work / "shards").iterdir()) == []
    assert stats(cli, db)["documents"] == 2


def test_index_shard_size_must_be_positive(cli, docs_dir, tmp_path):
    code, out, err = cli("index", docs_dir, "--db", tmp_path / "m.duckdb", "--work-dir", tmp_path / "w", "--shard-size", 0)
    assert code == 1 and out == ""
    assert err.strip() == "hippograph: error: shard size must be at least 1"
    assert not (tmp_path / "m.duckdb").exists()


def test_index_stdin(cli, tmp_path, monkeypatch):
    import io

    db = tmp_path / "m.duckdb"
    stdin = io.TextIOWrapper(io.BytesIO(b'{"id": "s1", "title": "Lyle gorge", "text": "The Lyle gorge lies east of Port Veloria."}\n'))
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = cli("index", "-", "--db", db, "--json")
    assert code == 0, err
    assert json.loads(out)["indexed"] == 1
    top = json.loads(cli("query", "Lyle gorge", "--db", db, "--mode", "bm25", "--json")[1])["passages"][0]
    assert (top["doc_id"], top["title"]) == ("s1", "Lyle gorge")


def test_hippograph_db_environment_variable_is_the_default_store(cli, docs_dir, tmp_path, monkeypatch):
    db = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("HIPPOGRAPH_DB", str(db))
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("index", docs_dir)
    assert code == 0 and out.startswith(f"{db}: 2 indexed")
    assert db.is_file()
    assert not (tmp_path / "hippograph.duckdb").exists()
    code, out, _ = cli("stats", "--json")
    assert code == 0 and json.loads(out)["path"] == str(db) and json.loads(out)["documents"] == 2
    # --db still wins over the environment
    other = tmp_path / "other.duckdb"
    assert cli("index", docs_dir / "ada.md", "--db", other)[0] == 0
    assert stats(cli, other)["documents"] == 1 and stats(cli, db)["documents"] == 2


# ---- query ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bm25", "dense"])
def test_query_json_shape(cli, demo_store, mode):
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--db", demo_store, "--mode", mode, "--top-k", "3", "--json")
    assert code == 0, err
    assert out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == {"question", "mode", "passages"}
    assert (result["question"], result["mode"]) == ("Who designed the Veloria Bridge?", mode)
    assert len(result["passages"]) == 3
    for passage in result["passages"]:
        assert set(passage) == PASSAGE_KEYS
        assert all(isinstance(passage[k], str) for k in PASSAGE_KEYS - {"score"})
        assert isinstance(passage["score"], float)
    scores = [p["score"] for p in result["passages"]]
    assert scores == sorted(scores, reverse=True)
    assert result["passages"][0]["doc_id"] == "demo-18"  # "Veloria Bridge ... designed by the engineer Ada Marsh"


def test_query_hipporag_json_adds_seed_facts(cli, demo_store, demo_question_records):
    q = demo_question_records[0]["question"]
    code, out, _ = cli("query", q, "--db", demo_store, "--json")  # hipporag is the default mode
    assert code == 0
    result = json.loads(out)
    assert set(result) == {"question", "mode", "passages", "facts"}
    assert result["mode"] == "hipporag" and len(result["passages"]) == 5
    assert all(set(p) == PASSAGE_KEYS for p in result["passages"])
    assert result["facts"]
    for fact in result["facts"]:
        assert set(fact) == {"subject", "predicate", "object", "score"}
        assert isinstance(fact["score"], float)


def test_query_table_for_people(cli, demo_store):
    code, out, _ = cli("query", "Who designed the Veloria Bridge?", "--db", demo_store, "--mode", "bm25", "--top-k", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Who designed the Veloria Bridge?  [bm25]"
    assert lines[1].split() == ["#", "score", "doc_id", "title", "text"]
    assert len(lines) == 5 and lines[3].split()[0] == "1" and "demo-18" in lines[3]


def test_query_questions_file_gives_one_json_line_per_question_in_order(cli, demo_store, demo_question_records, tmp_path):
    records = demo_question_records[:4]
    lines = [json.dumps(records[0]), "", json.dumps({"question": "Where is Dunmere?"})] + [json.dumps(r) for r in records[1:]]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = cli("query", "--questions", path, "--db", demo_store, "--mode", "dense", "--top-k", "2", "--json")
    assert code == 0, err
    results = [json.loads(line) for line in out.splitlines()]
    expected = [records[0], {"question": "Where is Dunmere?"}] + records[1:]
    assert [r["question"] for r in results] == [e["question"] for e in expected]
    for result, record in zip(results, expected):
        if "id" in record:
            assert list(result)[0] == "id" and result["id"] == record["id"]
            assert set(result) == {"id", "question", "mode", "passages"}
        else:
            assert set(result) == {"question", "mode", "passages"}
        assert result["mode"] == "dense" and len(result["passages"]) == 2
    single = json.loads(cli("query", records[2]["question"], "--db", demo_store, "--mode", "dense", "--top-k", "2", "--json")[1])
    assert [p["passage_id"] for p in results[3]["passages"]] == [p["passage_id"] for p in single["passages"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either a QUESTION or --questions"),
        (("Who?", "--questions", "q.jsonl"), "give either a QUESTION or --questions"),
        (("Who?", "--top-k", "0"), "--top-k must be at least 1"),
        (("--questions", "no-such-file.jsonl"), "no such file: no-such-file.jsonl"),
    ],
)
def test_query_usage_errors(cli, demo_store, args, message):
    code, out, err = cli("query", *args, "--db", demo_store)
    assert code == 1 and out == ""
    assert err.startswith("hippograph: error: ") and message in err


def test_query_questions_file_with_a_bad_line(cli, demo_store, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Who?"}\n{"q": "missing key"}\n')
    code, _, err = cli("query", "--questions", path, "--db", demo_store, "--mode", "bm25")
    assert code == 1 and f"{path}:2" in err and '"question" string' in err


# ---- delete and stats -----------------------------------------------------------------------------------


def test_delete_then_stats_shows_one_document_fewer(cli, demo_store_copy):
    before = stats(cli, demo_store_copy)
    code, out, _ = cli("delete", "demo-07", "--db", demo_store_copy)
    assert code == 0 and out.strip() == "deleted 1 document(s)"
    after = stats(cli, demo_store_copy)
    assert after["documents"] == before["documents"] - 1 == 41
    assert after["passages"] == before["passages"] - 1
    assert after["generation"] == before["generation"] + 1
    ranked = json.loads(cli("query", "Orne", "--db", demo_store_copy, "--mode", "bm25", "--top-k", "100", "--json")[1])
    assert "demo-07" not in {p["doc_id"] for p in ranked["passages"]} and len(ranked["passages"]) == 41


def test_delete_json_reports_what_was_not_found(cli, demo_store_copy):
    code, out, _ = cli("delete", "demo-01", "nope", "demo-02", "--db", demo_store_copy, "--json")
    assert code == 0
    assert json.loads(out) == {"deleted": ["demo-01", "demo-02"], "not_found": ["nope"]}
    code, out, _ = cli("delete", "nope", "--db", demo_store_copy)
    assert code == 0 and out.strip() == "deleted 0 document(s); not found: nope"
    assert stats(cli, demo_store_copy)["documents"] == 40


def test_config_option_picks_the_models_and_constants(cli, demo_store, tmp_path):
    """--config is how a CLI user picks another embedding model: the store refuses a mismatched one."""
    config = tmp_path / "config.json"
    config.write_text('{"embedding_model": "someone/other-model"}')
    code, out, err = cli("query", "Who?", "--db", demo_store, "--mode", "dense", "--config", config)
    assert code == 1 and out == "" and "'someone/other-model'" in err
    code, _, err = cli("query", "Who?", "--db", demo_store, "--config", '{"linking_top_k": "five"}')
    assert code == 1 and 'linking_top_k must be an integer, not "five"' in err
    code, out, err = cli("query", "Who?", "--db", demo_store, "--json", "--config", '{"linking_top_k": 1}')
    assert code == 0 and len(json.loads(out)["facts"]) <= 1, err


def test_stats_json(cli, demo_store):
    result = stats(cli, demo_store)
    assert set(result) == STATS_KEYS
    assert result["path"] == str(demo_store)
    assert (result["schema_version"], result["generation"]) == (4, 1)
    assert (result["embedding_model"], result["embedding_dim"]) == ("all-MiniLM-L6-v2", 384)
    assert result["documents"] == result["passages"] == 42
    assert all(result[k] > 0 for k in ("triples", "phrases", "facts", "synonyms"))
    assert result["memories"] == 42 and result["memory_keys"] > 42
    assert 0 < result["compression_ratio"] <= Config().memory_budget


def test_stats_table(cli, demo_store):
    code, out, _ = cli("stats", "--db", demo_store)
    assert code == 0
    rows = {line.split()[0]: line.split()[-1] for line in out.splitlines()[2:]}
    assert rows["documents"] == "42" and rows["embedding_model"] == "all-MiniLM-L6-v2"


# ---- eval -----------------------------------------------------------------------------------------------


def test_eval_json_recall_for_each_mode(cli, repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # without --db, eval must not leave a store behind
    corpus, questions = repo_root / "examples/demo/corpus.jsonl", repo_root / "examples/demo/questions.jsonl"
    code, out, err = cli("eval", "--corpus", corpus, "--questions", questions, "--modes", "bm25,dense", "--k", "2,5", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["questions"] == 14 and result["corpus"] == str(corpus)
    assert [r["mode"] for r in result["results"]] == ["bm25", "dense"]
    for r in result["results"]:
        assert set(r) == {"mode", "recall@2", "recall@5", "latency_ms_p50", "latency_ms_p95",
                          "answer_recall@2", "answer_recall@5", "exact_match", "f1", "answers_by"}
        assert r["answers_by"] == "draft", "no LLM: the offline drafts are scored"
        assert 0 <= r["exact_match"] <= r["f1"] <= 100
        assert 0 <= r["recall@2"] <= r["recall@5"] <= 100
        assert 0 <= r["answer_recall@2"] <= r["answer_recall@5"] <= 100
        assert r["recall@5"] > 0 and r["answer_recall@5"] > 0
    assert list(tmp_path.iterdir()) == []


def test_eval_into_a_given_store_reuses_it(cli, repo_root, demo_store_copy):
    corpus, questions = repo_root / "examples/demo/corpus.jsonl", repo_root / "examples/demo/questions.jsonl"
    code, out, err = cli("eval", "--corpus", corpus, "--questions", questions, "--modes", "bm25", "--k", "5,2", "--db", demo_store_copy)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"14 questions, {corpus}; EM and F1 of the offline draft answers"
    assert lines[1].split() == ["mode", "R@2", "R@5", "p50", "ms", "p95", "ms", "AR@2", "AR@5", "EM", "F1"]
    assert lines[3].split()[0] == "bm25"
    assert stats(cli, demo_store_copy)["generation"] == 1  # the corpus was already there: nothing rewritten


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--modes", "bm25,sparse"), "unknown mode(s) sparse"), (("--k", "2,five"), "--k takes comma-separated whole numbers")],
)
def test_eval_usage_errors(cli, repo_root, tmp_path, args, message):
    corpus, questions = repo_root / "examples/demo/corpus.jsonl", repo_root / "examples/demo/questions.jsonl"
    code, _, err = cli("eval", "--corpus", corpus, "--questions", questions, *args)
    assert code == 1 and message in err


# ---- a real process -------------------------------------------------------------------------------------


def test_subprocess_index_from_stdin_then_stats(cli_subprocess, tmp_path):
    data = b'{"id": "a", "title": "Ada Marsh", "text": "Ada Marsh designed the Veloria Bridge."}\n'
    result = cli_subprocess("index", "-", "--db", "s.duckdb", "--json", stdin=data)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["indexed"] == 1
    assert b"Traceback" not in result.stderr
    result = cli_subprocess("stats", "--json", "--db", "s.duckdb")
    assert result.returncode == 0
    assert json.loads(result.stdout)["documents"] == 1
    assert (tmp_path / "s.duckdb").is_file()


def test_subprocess_usage_error_exits_2(cli_subprocess):
    result = cli_subprocess("query", "Who?", "--mode", "sparse")
    assert result.returncode == 2
    assert b"invalid choice" in result.stderr and b"Traceback" not in result.stderr


def strict_json(line: str):
    """json.loads as strict parsers read JSON: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


def test_json_output_never_holds_nan(cli, demo_store, tmp_path, monkeypatch):
    from hippograph.indexing.cosine import CosineIndex

    def nan_scores(self, queries):
        return np.full((len(queries), len(self.vectors)), np.nan, np.float32)

    monkeypatch.setattr(CosineIndex, "scores_many", nan_scores)
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--mode", "dense", "--json", "--db", demo_store)
    assert code == 0, err
    assert [p["score"] for p in strict_json(out)["passages"]] == [None] * 5
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Who?"}\n{"question": "Where?"}\n')
    code, out, err = cli("query", "--questions", questions, "--mode", "dense", "--json", "--db", demo_store)
    assert code == 0, err
    assert all(p["score"] is None for line in out.splitlines() for p in strict_json(line)["passages"])
