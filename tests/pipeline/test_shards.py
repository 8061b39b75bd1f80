"""The stages over shard files: planning, skipping finished work, refusing unfinished shards, committing,
and two workers at once giving the same store as one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hippograph import Config, Memory
from hippograph.errors import HippographError
from hippograph.pipeline import shards
from hippograph.pipeline.run import index_documents
from hippograph.pipeline.stages import STAGES
from hippograph.pipeline.sources import documents_from_records, read_documents

SHARD_SIZE = 10  # the 42 demo documents make 5 shards


@pytest.fixture(scope="module")
def demo_documents(demo_corpus):
    return read_documents([demo_corpus])


@pytest.fixture(scope="module")
def in_process_store(tmp_path_factory, demo_documents) -> Path:
    """The demo corpus indexed in one process without shards: what sharded runs must equal."""
    path = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    index_documents(path, demo_documents)
    return path


def run_all_stages(shard_list):
    for shard in shard_list:
        for stage in STAGES:
            shards.run_stage(stage.name, shard)


def documents_of(shard) -> list:
    return shards.read_artifact(shard, "documents")


def test_plan_writes_only_new_or_changed_documents_as_shards(tmp_path, demo_documents, small_docs, small_store_copy):
    plan = shards.plan_documents(demo_documents, tmp_path / "none.duckdb", tmp_path / "work", shard_size=SHARD_SIZE)
    assert len(plan) == 5
    assert sorted(d.doc_id for s in plan for d in documents_of(s)) == sorted(d.doc_id for d in demo_documents)
    replanned = shards.plan_documents(demo_documents, tmp_path / "none.duckdb", tmp_path / "work", shard_size=SHARD_SIZE)
    assert replanned == plan, "the same pending documents give the same shards"

    # the small store holds ada, kettleby and gazette: only the changed "ada" is pending
    changed = [{**small_docs[0], "text": "Ada Marsh was a painter."}] + small_docs[1:]
    plan = shards.plan_documents(documents_from_records(changed), small_store_copy, tmp_path / "work")
    assert [d.doc_id for s in plan for d in documents_of(s)] == ["ada"]
    assert [p.name for p in (tmp_path / "work" / "shards").iterdir()] == [Path(plan[0]).name], \
        "shards of the earlier plan are removed"


def test_a_plan_under_other_settings_lists_the_stored_documents_again(tmp_path, small_docs, small_store_copy):
    documents = documents_from_records(small_docs)
    assert shards.plan_documents(documents, small_store_copy, tmp_path / "work") == []
    plan = shards.plan_documents(documents, small_store_copy, tmp_path / "work", Config(chunk_max_tokens=64))
    assert sorted(d.doc_id for s in plan for d in documents_of(s)) == sorted(d.doc_id for d in documents)


def test_a_finished_stage_is_skipped(tmp_path, demo_documents):
    [shard] = shards.plan_documents(demo_documents[:3], tmp_path / "s.duckdb", tmp_path / "work")
    shards.run_stage("chunk", shard)
    written = shards.artifact_path(shard, "passages").stat().st_mtime_ns
    shards.run_stage("chunk", shard)
    assert shards.artifact_path(shard, "passages").stat().st_mtime_ns == written


def test_commit_refuses_unfinished_shards_and_ignores_half_written_files(tmp_path, demo_documents):
    db = tmp_path / "s.duckdb"
    [shard] = shards.plan_documents(demo_documents[:3], db, tmp_path / "work")
    shards.run_stage("chunk", shard)
    shards.run_stage("embed_passages", shard)
    # what a worker killed while writing leaves: a temporary file, never the output's name
    (Path(shard) / ".facts.parquet.123.abc.tmp").write_bytes(b"PAR1 half a file")
    with pytest.raises(HippographError, match="not finished.*lacks facts, graph_vectors, memories"):
        shards.commit_shards(db, [shard])
    assert not db.exists(), "nothing is committed from an unfinished shard"
    for stage in ("extract", "embed_graph", "compress"):
        shards.run_stage(stage, shard)
    report = shards.commit_shards(db, [shard])
    assert report.indexed == 3
    assert not Path(shard).exists(), "committed shards are removed"


def test_a_stage_on_a_folder_that_is_not_a_shard_fails_clearly(tmp_path):
    with pytest.raises(HippographError, match="not a shard folder"):
        shards.run_stage("chunk", tmp_path)


def test_sharded_index_equals_in_process_index(tmp_path, demo_documents, in_process_store, store_tools):
    db = tmp_path / "sharded.duckdb"
    report = Memory(db).index(demo_documents, work_dir=tmp_path / "work")
    assert report.indexed == 42
    store_tools.assert_same(db, in_process_store)
    again = Memory(db).index(demo_documents, work_dir=tmp_path / "work")
    assert (again.indexed, again.unchanged) == (0, 42)


def test_committing_a_shard_twice_adds_nothing(tmp_path, demo_documents, store_tools):
    db = tmp_path / "s.duckdb"
    [shard] = shards.plan_documents(demo_documents[:4], db, tmp_path / "work")
    run_all_stages([shard])
    copy = tmp_path / "copy"
    shutil.copytree(shard, copy)  # as if a commit published and was killed before removing the shard
    shards.commit_shards(db, [shard])
    before = store_tools.copy(db, tmp_path / "before.duckdb")
    report = shards.commit_shards(db, [copy])
    assert (report.indexed, report.unchanged) == (0, 4)
    store_tools.assert_same(db, before, min_cosine=0.999999)


WORKER = """
import json, sys
from hippograph.pipeline import shards
from hippograph.pipeline.stages import STAGES
for shard in json.loads(sys.argv[1]):
    for stage in STAGES:
        shards.run_stage(stage.name, shard)
"""


def test_two_workers_at_once_make_the_same_store_as_one(tmp_path, demo_documents, in_process_store, store_tools):
    db = tmp_path / "two.duckdb"
    plan = shards.plan_documents(demo_documents, db, tmp_path / "work", shard_size=SHARD_SIZE)
    # Both workers take every shard, in opposite orders, so they race on the same shards and files.
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(order)], stderr=subprocess.PIPE, text=True)
        for order in (plan, plan[::-1])
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    report = shards.commit_shards(db, plan)
    assert report.indexed == 42

    one = tmp_path / "one.duckdb"
    one_plan = shards.plan_documents(demo_documents, one, tmp_path / "work-one", shard_size=SHARD_SIZE)
    assert [Path(s).name for s in one_plan] == [Path(s).name for s in plan]
    run_all_stages(one_plan)
    shards.commit_shards(one, one_plan)
    store_tools.assert_same(db, one, min_cosine=0.999999)
    store_tools.assert_same(db, in_process_store)


def test_graphless_shards_commit_passages_only(tmp_path, demo_documents, store_tools):
    config = Config(build_graph=False)
    db = tmp_path / "plain.duckdb"
    report = Memory(db, config).index(demo_documents[:5], work_dir=tmp_path / "work")
    assert report.indexed == 5
    counts = store_tools.counts(db, ("documents", "passages", "triples"))
    assert counts["documents"] == 5 and counts["passages"] >= 5 and counts["triples"] == 0


def test_a_plan_for_a_mirrored_source_lists_the_documents_it_no_longer_holds(tmp_path, small_docs, small_store_copy, store_tools):
    source = tmp_path / "drop.jsonl"
    source.write_text("".join(json.dumps(d) + "\n" for d in small_docs[1:]), encoding="utf-8")  # "ada" is gone
    work = tmp_path / "work"
    assert shards.plan_sources([source], small_store_copy, work) == []
    assert shards.planned_deletions(work) == []
    assert shards.plan_sources([source], small_store_copy, work, delete_missing=True) == []
    assert shards.planned_deletions(work) == ["ada"]
    report = shards.commit_shards(small_store_copy, [], delete=shards.planned_deletions(work))
    assert report.deleted == 1
    assert store_tools.sql(small_store_copy, "SELECT doc_id FROM documents ORDER BY doc_id") == [("gazette",), ("kettleby",)]
