"""Resumable, distributable indexing: the stages of `STAGES` over shard files.

A work directory holds what a run planned, and one folder per shard of pending documents:

    <work>/known.parquet                        plan: phrases and facts the store held (not embedded again)
    <work>/deletions.parquet                    plan: stored documents the sources no longer hold
    <work>/shards/<shard id>/documents.parquet  plan
                             <artifact>.parquet the stage that writes it: passages, passage_vectors, facts,
                                                graph_vectors, memories (see `hippograph.pipeline.stages.STAGES`)

A shard's id hashes its documents and the settings the stages depend on, so planning the same pending
documents again gives the same shards. Every file is written under a temporary name and renamed, so a
file that exists is complete, and a stage whose output exists is skipped. `run_stage` takes and returns
a shard folder path and never touches the store, so it runs anywhere the folder is reachable: another
process, or an Airflow worker on another machine with shared storage. `commit_shards` writes finished
shards into the store in one transaction, then removes them.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq

from hippograph.config import Config
from hippograph.errors import HippographError, InputError
from hippograph.llm import with_cache_beside
from hippograph.locks import file_lock
from hippograph.pipeline.commit import StageTimer, StoreState, commit, pending
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.stages import (
    GraphVectors, KnownGraph, MemoryBank, StageOutput, active_stages, stage_named,
)
from hippograph.tables import (
    documents_from_table, documents_table, fact_keys_from_table, fact_keys_table, matrix_from_column,
    memories_from_table, memories_table, passage_facts_from_table, passage_facts_table, passages_from_table,
    passages_table, vector_column,
)
from hippograph.types import Document, IndexReport, content_hash

log = logging.getLogger("hippograph")

DEFAULT_SHARD_SIZE = 500  # documents per shard: a few minutes of work on one core


# ---- artifacts as Parquet files -------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """How one artifact is kept in a Parquet file."""

    to_table: Callable[[Any], pa.Table]
    from_table: Callable[[pa.Table], Any]
    per_run: bool = False  # one file in the work directory, not one per shard


def _vectors_table(matrix) -> pa.Table:
    return pa.table({"embedding": vector_column(matrix)})


def _keys_table(phrases: Sequence[str], facts: Sequence[tuple[str, str, str]]) -> pa.Table:
    """Phrase rows (the phrase as subject; predicate and object null), then fact rows."""
    table = fact_keys_table([(p, None, None) for p in phrases] + list(facts))
    return table.append_column("is_phrase", pa.array([True] * len(phrases) + [False] * len(facts), pa.bool_()))


def _split_keys(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    is_phrase = table["is_phrase"]
    return table.filter(is_phrase), table.filter(pa.compute.invert(is_phrase))


def _graph_vectors_table(vectors: GraphVectors) -> pa.Table:
    embeddings = pa.concat_arrays([vector_column(vectors.phrase_vectors), vector_column(vectors.fact_vectors)])
    return _keys_table(vectors.phrases, vectors.facts).append_column("embedding", embeddings)


def _graph_vectors(table: pa.Table) -> GraphVectors:
    phrases, facts = _split_keys(table)
    return GraphVectors(phrases["subject"].to_pylist(), matrix_from_column(phrases["embedding"]),
                        fact_keys_from_table(facts), matrix_from_column(facts["embedding"]))


def _known_table(known: KnownGraph) -> pa.Table:
    return _keys_table(sorted(known.phrases), sorted(known.facts))


def _known(table: pa.Table) -> KnownGraph:
    phrases, facts = _split_keys(table)
    return KnownGraph(frozenset(phrases["subject"].to_pylist()), frozenset(fact_keys_from_table(facts)))


CODECS: dict[str, Codec] = {
    "documents": Codec(documents_table, documents_from_table),
    "known": Codec(_known_table, _known, per_run=True),
    "passages": Codec(passages_table, passages_from_table),
    "passage_vectors": Codec(_vectors_table, lambda table: matrix_from_column(table["embedding"])),
    "facts": Codec(passage_facts_table, passage_facts_from_table),
    "graph_vectors": Codec(_graph_vectors_table, _graph_vectors),
    "memories": Codec(lambda bank: memories_table(bank.records, bank.key_vectors),
                      lambda table: MemoryBank(*memories_from_table(table))),
}
DELETIONS = "deletions.parquet"  # in the work directory


def artifact_path(shard: str | Path, artifact: str) -> Path:
    shard = Path(shard)
    folder = shard.parent.parent if CODECS[artifact].per_run else shard
    return folder / f"{artifact}.parquet"


def read_artifact(shard: str | Path, artifact: str) -> Any:
    path = artifact_path(shard, artifact)
    if artifact == "known" and not path.exists():
        return KnownGraph()  # planned without one: every phrase and fact gets a vector
    return CODECS[artifact].from_table(pq.read_table(path))


def write_artifact(shard: str | Path, artifact: str, value: Any) -> None:
    _write(artifact_path(shard, artifact), CODECS[artifact].to_table(value))


# ---- planning -------------------------------------------------------------------------------------


def plan_documents(
    documents: Sequence[Document],
    db_path: str | Path,
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
    delete_missing: bool = False,
) -> list[str]:
    """Write the documents the store lacks, or holds in another version or under other index settings, as
    shards; returns their folders. Also writes what the store knows (`known`) and the run's deletions:
    with `delete_missing`, the stored documents `documents` no longer holds, for a store that mirrors them.

    Shard folders from earlier plans that this one does not list are removed (their documents were
    committed since, or changed again). One work directory serves one store and one run at a time.
    """
    if shard_size < 1:
        raise InputError("shard size must be at least 1")
    work = _work_dir(work_dir)
    with work_dir_lock(work):
        state = StoreState.read(db_path, vectors=False)
        todo = sorted(pending(documents, state.index_keys, config), key=lambda d: d.doc_id)
        root = work / "shards"
        shards = []
        for start in range(0, len(todo), shard_size):
            group = todo[start : start + shard_size]
            shard = root / _shard_id(group, config)
            if not artifact_path(shard, "documents").exists():
                shard.mkdir(parents=True, exist_ok=True)
                write_artifact(shard, "documents", group)
            shards.append(str(shard))
        for folder in root.glob("*"):
            if str(folder) not in shards:
                shutil.rmtree(folder, ignore_errors=True)
        _write(work / "known.parquet", CODECS["known"].to_table(state.known))
        deletions = sorted(set(state.index_keys) - {d.doc_id for d in documents}) if delete_missing else []
        _write(work / DELETIONS, pa.table({"doc_id": pa.array(deletions, pa.string())}))
    log.info("planned %d shards: %d of %d documents are new or changed", len(shards), len(todo), len(documents))
    return shards


def plan_sources(
    sources: Sequence[str | Path],
    db_path: str | Path,
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
    delete_missing: bool = False,
) -> list[str]:
    """`plan_documents` over .txt/.md/.jsonl files and folders (as `hippograph index` reads them)."""
    from hippograph.pipeline.sources import read_documents

    return plan_documents(read_documents(sources), db_path, work_dir, config, shard_size, delete_missing)


def planned_deletions(work_dir: str | Path) -> list[str]:
    """The document ids the last plan in `work_dir` found gone from the sources."""
    path = Path(work_dir) / DELETIONS
    return pq.read_table(path)["doc_id"].to_pylist() if path.exists() else []


def _shard_id(documents: Sequence[Document], config: Config) -> str:
    """Same documents and same index settings, same id: a re-plan finds the work already done."""
    settings = config.index_settings()
    return content_hash(*(f"{d.doc_id}\x1e{d.index_key(settings)}" for d in documents))[:16]


def _work_dir(work_dir: str | Path) -> Path:
    work = Path(work_dir)
    if work.exists() and not work.is_dir():
        raise InputError(f"work directory {work} is a file; give a directory for the shard files")
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create work directory {work}: {error.strerror or error}") from None
    return work


def work_dir_lock(work_dir: str | Path, timeout: float = 0.0):
    """Held by a run while it plans, or for the whole of `index_in_shards`: a second run over the same work
    directory would remove the first one's shards."""
    busy = f"another run is using the work directory {work_dir}; wait for it, or give this run its own --work-dir"
    return file_lock(Path(work_dir) / ".lock", timeout, busy)


# ---- stages ---------------------------------------------------------------------------------------


def run_stage(stage_name: str, shard: str | Path, config: Config = Config()) -> str:
    """Run one stage of `STAGES` on a shard, unless its output exists or the configuration skips it: read
    its inputs from the shard's files, write its output atomically. Returns the shard folder."""
    stage = stage_named(stage_name)
    shard = Path(shard)
    if not artifact_path(shard, "documents").exists():
        raise HippographError(f"{shard} is not a shard folder (no documents.parquet); plan the run first")
    if not stage.when(config):
        return str(shard)
    if artifact_path(shard, stage.writes).exists():
        log.info("%s %s: done before, skipped", stage.name, shard.name)
        return str(shard)
    start = time.perf_counter()
    output = stage.run(*(read_artifact(shard, name) for name in stage.reads), config, False)
    write_artifact(shard, stage.writes, output)
    log.info("%s %s: %.1f s", stage.name, shard.name, time.perf_counter() - start)
    return str(shard)


# ---- committing -----------------------------------------------------------------------------------


def commit_shards(
    db_path: str | Path,
    shards: Sequence[str | Path],
    config: Config = Config(),
    report: IndexReport | None = None,
    delete: Sequence[str] = (),
) -> IndexReport:
    """Write finished shards into the store and delete the documents `delete` names, in one transaction;
    publish the store, then remove the shards.

    Every shard must have the outputs of every stage the configuration runs; a shard whose documents the
    store already holds (a commit that was killed after publishing) adds nothing."""
    report = report or IndexReport()
    if not shards and not delete:
        return report
    artifacts = ["documents"] + [stage.writes for stage in active_stages(config)]
    unfinished = {Path(s).name: [a for a in artifacts if not artifact_path(s, a).exists()] for s in shards}
    unfinished = {name: missing for name, missing in unfinished.items() if missing}
    if unfinished:
        listing = "; ".join(f"{name} lacks {', '.join(missing)}" for name, missing in unfinished.items())
        raise HippographError(f"shards not finished, run their stages first: {listing}")
    dim = embedder_for(config).dim
    outputs = [StageOutput.of({a: read_artifact(s, a) for a in artifacts}, dim) for s in shards]
    output = StageOutput.concat(outputs, dim)
    report.documents = report.documents or len(output.documents)
    report = commit(db_path, output, config, report, delete)
    for shard in shards:
        shutil.rmtree(shard, ignore_errors=True)
    return report


# ---- shard files ----------------------------------------------------------------------------------


def _write(path: Path, table: pa.Table) -> None:
    """Write under a name unique to this writer, then rename: readers see a whole file or none, and two
    workers racing on the same shard both succeed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# ---- one machine ----------------------------------------------------------------------------------


def index_in_shards(
    db_path: str | Path,
    documents: Sequence[Document],
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = False,
) -> IndexReport:
    """`index_documents`, resumable: plan shards, run every stage on each, commit. Killed at any point,
    the same call again skips the shards and stages that finished."""
    from tqdm.auto import tqdm

    config = with_cache_beside(config, db_path)
    report = IndexReport(documents=len(documents))
    timer = StageTimer(report)
    work = _work_dir(work_dir)
    with work_dir_lock(work):
        with timer("plan"):
            shards = plan_documents(documents, db_path, work, config, shard_size)
        for shard in tqdm(shards, desc="shards", unit="shard", disable=not progress):
            for stage in active_stages(config):
                with timer(stage.name):
                    run_stage(stage.name, shard, config)
        report.unchanged = len(documents) - sum(pq.read_metadata(artifact_path(s, "documents")).num_rows for s in shards)
        return commit_shards(db_path, shards, config, report)
