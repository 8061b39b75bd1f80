"""Scheduled batch indexing of a document folder into a hippograph store (Airflow 3).

    plan -> chunk[shard] -> embed_passages[shard]            -> load
                         -> extract[shard] -> embed_graph[shard] /

`plan` writes the new and changed documents of the source folder as shard files; each stage is mapped
over the shards (`.expand()`), so shards run in parallel on as many workers as the executor has; `load`
merges them into the store in one transaction and publishes it. Tasks exchange only shard paths, and
every step is idempotent, so a failed or killed run is finished by the next one.

Configure with environment variables (defaults for every run) or the run's params (Trigger DAG w/ config):
    HIPPOGRAPH_SOURCE      folder or file of .txt/.md/.jsonl documents (params: source)
    HIPPOGRAPH_DB          store file, default hippograph.duckdb (params: db)
    HIPPOGRAPH_WORK_DIR    shard folder every worker can reach, default <db>.work (params: work_dir)
    HIPPOGRAPH_SHARD_SIZE  documents per shard, default 500 (params: shard_size)
    HIPPOGRAPH_CONFIG      JSON object of `hippograph.Config` options (params: config)
    HIPPOGRAPH_DELETE_MISSING  "true": delete stored documents the source no longer holds (params: delete_missing)
    HIPPOGRAPH_SCHEDULE    cron expression or preset, default @daily (read when the DAG is parsed)
    HIPPOGRAPH_STORE_QUEUE Celery queue for `plan` and `load`, the two tasks that open the store, so they
                           run on the machine that keeps it (optional)
Use absolute paths: tasks may run in another working directory, or on another machine.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag, get_current_context, task

from hippograph import Config, load_config
from hippograph.pipeline import shards as sharded

DEFAULT_DB = os.environ.get("HIPPOGRAPH_DB", "hippograph.duckdb")
STORE_QUEUE = os.environ.get("HIPPOGRAPH_STORE_QUEUE")
ON_STORE_MACHINE = {"queue": STORE_QUEUE} if STORE_QUEUE else {}


def _params() -> dict:
    return get_current_context()["params"]


def _config() -> Config:
    # One spaCy process per task: executors scale out by running tasks side by side, and some
    # (Celery's prefork workers) forbid a task from starting processes of its own.
    return load_config({"extract_processes": 1, **_params()["config"]})


def _work_dir() -> str:
    params = _params()
    return params["work_dir"] or f"{params['db']}.work"


@dag(
    dag_id="hippograph_index",
    schedule=os.environ.get("HIPPOGRAPH_SCHEDULE", "@daily"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # one plan and one load at a time per store
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},  # safe: every step is idempotent
    params={
        "source": Param(os.environ.get("HIPPOGRAPH_SOURCE", ""), type="string"),
        "db": Param(DEFAULT_DB, type="string", minLength=1),
        "work_dir": Param(os.environ.get("HIPPOGRAPH_WORK_DIR", ""), type="string"),
        "shard_size": Param(int(os.environ.get("HIPPOGRAPH_SHARD_SIZE", sharded.DEFAULT_SHARD_SIZE)), type="integer", minimum=1),
        "config": Param(json.loads(os.environ.get("HIPPOGRAPH_CONFIG", "{}")), type="object"),
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
    def chunk(shard: str) -> str:
        return sharded.chunk_shard(shard, _config())

    @task
    def embed_passages(shard: str) -> str:
        return sharded.embed_passages_shard(shard, _config())

    @task
    def extract(shard: str) -> str:
        return sharded.extract_shard(shard, _config())

    @task
    def embed_graph(shard: str) -> str:
        return sharded.embed_graph_shard(shard, _config())

    # Runs when there are no shards too (the mapped tasks are then skipped): deletions may be due.
    @task(trigger_rule="none_failed", **ON_STORE_MACHINE)
    def load(shards: list[str]) -> dict:
        deletions = sharded.planned_deletions(_work_dir())
        return sharded.load_shards(_params()["db"], list(shards), _config(), delete=deletions).to_dict()

    shards = plan()
    chunked = chunk.expand(shard=shards)
    embedded = embed_passages.expand(shard=chunked)
    graphed = embed_graph.expand(shard=extract.expand(shard=chunked))
    [embedded, graphed] >> load(shards)


hippograph_index()
