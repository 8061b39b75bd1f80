"""Scheduled batch indexing of a document folder into a hippograph store (Airflow 3).

    plan -> chunk[shard] -> embed_passages[shard]            -> commit
                         -> extract[shard] -> embed_graph[shard] /

The stage tasks are made from `hippograph.pipeline.stages.STAGES`, each mapped over the shards
(`.expand()`) and wired after the stages that write what it reads, so shards run in parallel on as many
workers as the executor has. `plan` writes the new and changed documents of the source folder as shard
files; `commit` writes them into the store in one transaction and publishes it. Tasks exchange only
shard paths, and every step is idempotent, so a failed or killed run is finished by the next one.

Configure with environment variables (defaults for every run) or the run's params (Trigger DAG w/ config):
    HIPPOGRAPH_SOURCE      folder or file of .txt/.md/.jsonl documents (params: source)
    HIPPOGRAPH_DB          store file, default hippograph.duckdb (params: db)
    HIPPOGRAPH_WORK_DIR    shard folder every worker can reach, default <db>.work (params: work_dir)
    HIPPOGRAPH_SHARD_SIZE  documents per shard, default 500 (params: shard_size)
    HIPPOGRAPH_CONFIG      `hippograph.Config` options: a JSON object or a JSON file (params: config); with an
                           LLM on workers of several machines, set llm_cache_dir to shared storage
    HIPPOGRAPH_DELETE_MISSING  "true": delete stored documents the source no longer holds (params: delete_missing)
    HIPPOGRAPH_SCHEDULE    cron expression or preset, default @daily (read when the DAG is parsed)
    HIPPOGRAPH_PLUGINS     modules to import first, which register extractors (e.g. {"extractor": "mine"})
    HIPPOGRAPH_STORE_QUEUE Celery queue for `plan` and `commit`, the two tasks that open the store, so they
                           run on the machine that keeps it (optional)
Use absolute paths: tasks may run in another working directory, or on another machine.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from hippograph import Config, load_config
from hippograph.config import config_options, default_db_path
from hippograph.llm import with_cache_beside
from hippograph.pipeline import shards as sharded
from hippograph.pipeline.stages import STAGES, writer_of
from hippograph.registry import load_plugins

STORE_QUEUE = os.environ.get("HIPPOGRAPH_STORE_QUEUE")
ON_STORE_MACHINE = {"queue": STORE_QUEUE} if STORE_QUEUE else {}
load_plugins()  # $HIPPOGRAPH_PLUGINS: modules that register extractors, in every process that parses the DAG
load_config()  # a bad $HIPPOGRAPH_CONFIG shows as this DAG's import error, not as failed runs


def _params() -> dict:
    return get_current_context()["params"]


def _config() -> Config:
    # One spaCy process per task: executors scale out by running tasks side by side, and some
    # (Celery's prefork workers) forbid a task from starting processes of its own.
    # An LLM's completion cache lives beside the store unless the config names a folder every worker reaches.
    return with_cache_beside(load_config({"extract_processes": 1, **_params()["config"]}), _params()["db"])


def _work_dir() -> str:
    params = _params()
    return params["work_dir"] or f"{params['db']}.work"


@dag(
    dag_id="hippograph_index",
    schedule=os.environ.get("HIPPOGRAPH_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one plan and one commit at a time per store
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},  # safe: every step is idempotent
    params={
        "source": Param(os.environ.get("HIPPOGRAPH_SOURCE", ""), type="string"),
        "db": Param(str(default_db_path()), type="string", minLength=1),
        "work_dir": Param(os.environ.get("HIPPOGRAPH_WORK_DIR", ""), type="string"),
        "shard_size": Param(int(os.environ.get("HIPPOGRAPH_SHARD_SIZE", sharded.DEFAULT_SHARD_SIZE)), type="integer", minimum=1),
        "config": Param(config_options(), type="object"),
        "delete_missing": Param(os.environ.get("HIPPOGRAPH_DELETE_MISSING", "").lower() == "true", type="boolean"),
    },
    tags=["hippograph"],
)
def hippograph_index():
    @task(**ON_STORE_MACHINE)
    def plan() -> list[str]:
        params = _params()
        if not params["source"]:
            raise ValueError("no source folder: set HIPPOGRAPH_SOURCE, or give the run a 'source' param")
        return sharded.plan_sources(
            [params["source"]], params["db"], _work_dir(), _config(), params["shard_size"], params["delete_missing"]
        )

    @task
    def run_stage(stage: str, shard: str) -> str:
        return sharded.run_stage(stage, shard, _config())

    # Runs when there are no shards too (the mapped tasks are then skipped): deletions may be due.
    @task(trigger_rule="none_failed", **ON_STORE_MACHINE)
    def commit(shards: list[str]) -> dict:
        deletions = sharded.planned_deletions(_work_dir())
        return sharded.commit_shards(_params()["db"], list(shards), _config(), delete=deletions).to_dict()

    shards = plan()
    stage_tasks = {}
    for stage in STAGES:  # each stage mapped over the shards, after the stages that make its inputs
        stage_tasks[stage.name] = run_stage.override(task_id=stage.name).partial(stage=stage.name).expand(shard=shards)
        for artifact in stage.reads:
            writer = writer_of(artifact)
            if writer is not None:
                stage_tasks[writer.name] >> stage_tasks[stage.name]
    list(stage_tasks.values()) >> commit(shards)


hippograph_index()
