"""The Airflow DAG: it imports cleanly, and `dag.test()` on SQLite indexes a folder, then only what is new.

Airflow runs in a child process with its own AIRFLOW_HOME, so its configuration and logging stay out of
this test process. CI installs the airflow extra; elsewhere the tests skip when Airflow is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hippograph import Config, Memory
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.sources import read_documents

if importlib.util.find_spec("airflow") is None:
    if os.environ.get("CI"):
        pytest.fail("CI must install the airflow extra: pip install -e '.[test,airflow]'", pytrace=False)
    pytest.skip("Airflow is not installed (pip install 'hippograph[airflow]')", allow_module_level=True)

pytestmark = pytest.mark.slow  # each test starts Airflow in a child process: minutes, not seconds

# Load the DAG folder, then either describe the DAG or run it once with the given conf.
AIRFLOW_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.get_dag("hippograph_index")
out = {"import_errors": {k: str(v)[-500:] for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dag_ids)}
if dag is not None:
    out["tasks"] = sorted(dag.task_ids)
    out["upstream"] = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    out["schedule"] = str(dag.schedule)
    out["params"] = {key: dag.params[key] for key in sorted(dag.params.keys())}
    if len(sys.argv) > 2:
        run = dag.test(run_conf=json.loads(sys.argv[2]))
        out["state"] = str(run.state)
        out["task_states"] = sorted({f"{ti.task_id}:{ti.state}" for ti in run.get_task_instances()})
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, repo_root):
    home = tmp_path_factory.mktemp("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo_root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env.pop("HIPPOGRAPH_SOURCE", None)
    airflow = Path(sys.executable).with_name("airflow")
    migrate = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return env


def airflow(env: dict, repo_root: Path, run_conf: dict | None = None) -> dict:
    args = [sys.executable, "-c", AIRFLOW_SCRIPT, str(repo_root / "dags")]
    if run_conf is not None:
        args.append(json.dumps(run_conf))
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert result.returncode == 0 and lines, (result.stdout[-3000:], result.stderr[-3000:])
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_the_dag_imports_without_errors(airflow_env, repo_root):
    described = airflow(airflow_env, repo_root)
    assert described["import_errors"] == {}
    assert described["dag_ids"] == ["hippograph_index"]
    assert described["tasks"] == ["chunk", "commit", "compress", "embed_graph", "embed_passages", "extract", "plan"]
    assert described["upstream"] == {
        "chunk": ["plan"], "embed_passages": ["chunk", "plan"], "extract": ["chunk", "plan"],
        "embed_graph": ["extract", "plan"], "compress": ["extract", "plan"],
        "commit": ["chunk", "compress", "embed_graph", "embed_passages", "extract", "plan"],
        "plan": [],
    }, "each stage runs after the stages that make what it reads (hippograph.pipeline.stages.STAGES)"
    assert described["schedule"] == "@daily"
    assert list(described["params"]) == ["config", "db", "delete_missing", "shard_size", "source", "work_dir"]
    assert described["params"]["delete_missing"] is False


def test_dag_test_indexes_a_folder_then_only_new_documents(airflow_env, repo_root, demo_corpus, tmp_path, store_tools):
    records = demo_corpus.read_text(encoding="utf-8").splitlines()
    source, db = tmp_path / "drop", tmp_path / "store.duckdb"
    source.mkdir()
    (source / "first.jsonl").write_text("\n".join(records[:30]) + "\n", encoding="utf-8")
    conf = {"source": str(source), "db": str(db), "work_dir": "", "shard_size": 8, "config": {}, "delete_missing": False}

    first = airflow(airflow_env, repo_root, conf)
    assert first["state"] == "success"
    assert "commit:success" in first["task_states"]
    assert Memory(db).stats().documents == 30
    answer = Memory(db).retrieve("Who designed the Veloria Bridge?", mode="hipporag", top_k=3)
    assert answer.passages and answer.to_dict()["facts"] is not None

    (source / "second.jsonl").write_text("\n".join(records[30:]) + "\n", encoding="utf-8")
    generation = Memory(db).stats().generation
    second = airflow(airflow_env, repo_root, conf)
    assert second["state"] == "success"
    assert Memory(db).stats().generation == generation + 1
    assert not any(Path(f"{db}.work", "shards").iterdir()), "committed shards are removed"

    reference = tmp_path / "reference.duckdb"
    index_documents(reference, read_documents([source]))
    store_tools.assert_same(db, reference)

    third = airflow(airflow_env, repo_root, conf)  # nothing new: the stages are skipped, the commit writes nothing
    assert third["state"] == "success"
    assert "chunk:skipped" in third["task_states"] and "commit:success" in third["task_states"]
    assert Memory(db).stats().generation == generation + 1

    (source / "second.jsonl").unlink()
    kept = airflow(airflow_env, repo_root, conf)  # by default a removed file's documents stay
    assert kept["state"] == "success" and Memory(db).stats().documents == 42
    mirrored = airflow(airflow_env, repo_root, {**conf, "delete_missing": True})
    assert mirrored["state"] == "success"
    assert Memory(db).stats().documents == 30
    first_only = tmp_path / "first-only.duckdb"
    index_documents(first_only, read_documents([source]))
    store_tools.assert_same(db, first_only)


def test_the_schedule_and_defaults_come_from_the_environment(airflow_env, repo_root):
    env = {**airflow_env, "HIPPOGRAPH_SCHEDULE": "0 3 * * *", "HIPPOGRAPH_SOURCE": "/data/drop"}
    described = airflow(env, repo_root)
    assert described["import_errors"] == {}
    assert described["schedule"] == "0 3 * * *"
    assert described["params"]["source"] == "/data/drop"


def test_the_dag_runs_an_extractor_registered_by_a_plugin(airflow_env, repo_root, small_docs, tmp_path, store_tools):
    """$HIPPOGRAPH_PLUGINS names the module that registers "toy" (tests/plugins/toy_plugin.py); the DAG's
    stage tasks run it, and the store equals an in-process index with it."""
    source, db = tmp_path / "drop", tmp_path / "store.duckdb"
    source.mkdir()
    (source / "small.jsonl").write_text("".join(json.dumps(d) + "\n" for d in small_docs), encoding="utf-8")
    plugins = str(repo_root / "tests" / "plugins")
    env = {**airflow_env, "HIPPOGRAPH_PLUGINS": "toy_plugin",
           "PYTHONPATH": os.pathsep.join(filter(None, [plugins, airflow_env.get("PYTHONPATH")]))}
    conf = {"source": str(source), "db": str(db), "work_dir": "", "shard_size": 2, "config": {"extractor": "toy"},
            "delete_missing": False}
    run = airflow(env, repo_root, conf)
    assert run["state"] == "success", run
    assert store_tools.sql(db, "SELECT DISTINCT predicate FROM triples") == [("mentions",)]

    sys.path.insert(0, plugins)
    import toy_plugin  # noqa: F401  (registers "toy" in this process too)

    reference = tmp_path / "reference.duckdb"
    index_documents(reference, read_documents([source]), Config(extractor="toy"))
    store_tools.assert_same(db, reference)


def test_the_dag_runs_the_llm_extractor_and_shares_its_cache(airflow_env, repo_root, small_docs, tmp_path, store_tools):
    """extractor="llm" against a scripted server: the DAG's stage tasks extract with it, and the cache they
    filled beside the store serves an in-process run without a single request."""
    from llm_servers import ScriptedServer, toy_llm

    source, db = tmp_path / "drop", tmp_path / "store.duckdb"
    source.mkdir()
    (source / "small.jsonl").write_text("".join(json.dumps(d) + "\n" for d in small_docs), encoding="utf-8")
    with ScriptedServer(toy_llm) as server:
        options = {"extractor": "llm", "llm_base_url": server.base_url, "llm_model": "scripted"}
        conf = {"source": str(source), "db": str(db), "work_dir": "", "shard_size": 2, "config": options,
                "delete_missing": False}
        run = airflow(airflow_env, repo_root, conf)
        assert run["state"] == "success", run
        assert len(server.requests) == 6, "two requests per passage"
        assert store_tools.sql(db, "SELECT DISTINCT predicate FROM triples") == [("mentions",)]
        config = Config(**options, llm_cache_dir=str(db) + ".llm-cache")
        reference = tmp_path / "reference.duckdb"
        report = index_documents(reference, read_documents([source]), config)
        assert (report.llm.llm_calls, report.llm.cache_hits) == (0, 6) and len(server.requests) == 6
    store_tools.assert_same(db, reference)
