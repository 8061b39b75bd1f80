"""Resumable, distributable indexing: the stages over shard files.

A work directory holds one folder per shard of pending documents:

    <work>/shards/<shard id>/documents.parquet         plan_documents
                             passages.parquet          chunk_shard
                             passage_vectors.parquet   embed_passages_shard
                             facts.parquet             extract_shard
                             phrase_vectors.parquet    embed_graph_shard
                             fact_vectors.parquet      embed_graph_shard

A shard's id hashes its documents and the settings the stages depend on, so planning the same pending
documents again gives the same shards. Every file is written under a temporary name and renamed, so a
file that exists is complete, and a stage whose outputs exist is skipped. Stage functions take and
return a shard folder path and never touch the store, so they run anywhere the folder is reachable:
another process, or an Airflow worker on another machine with shared storage. `load_shards` merges
finished shards into the store in one transaction, then removes them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hippograph.arrays import matrix_from_column, vector_column
from hippograph.config import Config
from hippograph.errors import HippographError
from hippograph.indexing.store import open_store
from hippograph.pipeline.embed import embedder_for
from hippograph.pipeline.load import IndexReport, StageOutput, StageTimer, load, pending
from hippograph.pipeline.stages import GraphVectors, chunk, embed_graph, embed_passages, extract
from hippograph.types import Document, Passage, PassageFacts, Triple, content_hash

log = logging.getLogger("hippograph")

DOCUMENTS, PASSAGES, PASSAGE_VECTORS = "documents.parquet", "passages.parquet", "passage_vectors.parquet"
FACTS, PHRASE_VECTORS, FACT_VECTORS = "facts.parquet", "phrase_vectors.parquet", "fact_vectors.parquet"
DELETIONS = "deletions.parquet"  # in the work directory, beside shards/
DEFAULT_SHARD_SIZE = 500  # documents per shard: a few minutes of work on one core


# ---- planning -------------------------------------------------------------------------------------


def plan_documents(
    documents: Sequence[Document],
    db_path: str | Path,
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> list[str]:
    """Write the documents the store lacks, or holds in another version or under other index settings, as
    shards; returns their folders.

    Shard folders from earlier plans that this one does not list are removed (their documents were
    loaded since, or changed again). One work directory serves one store and one run at a time.
    """
    return _plan(documents, _stored_keys(db_path), work_dir, config, shard_size)


def _plan(
    documents: Sequence[Document], stored: dict[str, str], work_dir: str | Path, config: Config, shard_size: int
) -> list[str]:
    if shard_size < 1:
        raise HippographError("shard size must be at least 1")
    todo = sorted(pending(documents, stored, config), key=lambda d: d.doc_id)
    root = Path(work_dir) / "shards"
    shards = []
    for start in range(0, len(todo), shard_size):
        group = todo[start : start + shard_size]
        shard = root / _shard_id(group, config)
        if not (shard / DOCUMENTS).exists():
            shard.mkdir(parents=True, exist_ok=True)
            _write(shard / DOCUMENTS, _documents_table(group))
        shards.append(str(shard))
    for folder in root.glob("*"):
        if str(folder) not in shards:
            shutil.rmtree(folder, ignore_errors=True)
    log.info("planned %d shards: %d of %d documents are new or changed", len(shards), len(todo), len(documents))
    return shards


def _stored_keys(db_path: str | Path) -> dict[str, str]:
    if not Path(db_path).exists():
        return {}
    with open_store(db_path) as store:
        return store.index_keys()


def _shard_id(documents: Sequence[Document], config: Config) -> str:
    """Same documents and same index settings, same id: a re-plan finds the work already done."""
    settings = config.index_settings()
    return content_hash(*(f"{d.doc_id}\x1e{d.index_key(settings)}" for d in documents))[:16]


# ---- stages ---------------------------------------------------------------------------------------


def chunk_shard(shard: str | Path, config: Config = Config()) -> str:
    """documents.parquet -> passages.parquet"""
    return _stage(shard, "chunk", [PASSAGES], lambda: [_passages_table(chunk(_read_documents(shard), config))])


def embed_passages_shard(shard: str | Path, config: Config = Config()) -> str:
    """passages.parquet -> passage_vectors.parquet"""

    def run() -> list[pa.Table]:
        passages = _read_passages(shard)
        vectors = embed_passages(passages, config)
        return [pa.table({"passage_id": [p.passage_id for p in passages], "embedding": vector_column(vectors)})]

    return _stage(shard, "embed_passages", [PASSAGE_VECTORS], run)


def extract_shard(shard: str | Path, config: Config = Config()) -> str:
    """passages.parquet -> facts.parquet (triples and phrases of each passage); nothing without a graph."""
    if not config.build_graph:
        return str(shard)
    return _stage(shard, "extract", [FACTS], lambda: [_facts_table(extract(_read_passages(shard), config))])


def embed_graph_shard(shard: str | Path, config: Config = Config()) -> str:
    """facts.parquet -> phrase_vectors.parquet, fact_vectors.parquet: every distinct phrase and fact of
    the shard (the load step keeps only those the store lacks)."""
    if not config.build_graph:
        return str(shard)

    def run() -> list[pa.Table]:
        vectors = embed_graph(_read_facts(shard), config)
        return [
            pa.table({"phrase": pa.array(vectors.phrases, pa.string()), "embedding": vector_column(vectors.phrase_vectors)}),
            pa.table({
                "subject": pa.array([f[0] for f in vectors.facts], pa.string()),
                "predicate": pa.array([f[1] for f in vectors.facts], pa.string()),
                "object": pa.array([f[2] for f in vectors.facts], pa.string()),
                "embedding": vector_column(vectors.fact_vectors),
            }),
        ]

    return _stage(shard, "embed_graph", [PHRASE_VECTORS, FACT_VECTORS], run)


STAGES: list[Callable[[str | Path, Config], str]] = [chunk_shard, embed_passages_shard, extract_shard, embed_graph_shard]


def _stage(shard: str | Path, name: str, outputs: list[str], run: Callable[[], list[pa.Table]]) -> str:
    """Run a stage unless its outputs exist; write each output atomically."""
    shard = Path(shard)
    if not (shard / DOCUMENTS).exists():
        raise HippographError(f"{shard} is not a shard folder (no {DOCUMENTS}); plan the run first")
    if all((shard / output).exists() for output in outputs):
        log.info("%s %s: done before, skipped", name, shard.name)
        return str(shard)
    start = time.perf_counter()
    for output, table in zip(outputs, run(), strict=True):
        _write(shard / output, table)
    log.info("%s %s: %.1f s", name, shard.name, time.perf_counter() - start)
    return str(shard)


# ---- loading --------------------------------------------------------------------------------------


def load_shards(
    db_path: str | Path,
    shards: Sequence[str | Path],
    config: Config = Config(),
    report: IndexReport | None = None,
    delete: Sequence[str] = (),
) -> IndexReport:
    """Merge finished shards into the store and delete the documents `delete` names, in one transaction;
    publish the store, then remove the shards.

    Every shard must have all its stage outputs; a shard whose documents the store already holds (a
    load that was killed after publishing) adds nothing."""
    report = report or IndexReport()
    if not shards and not delete:
        return report
    unfinished = {Path(s).name: _missing_outputs(s, config) for s in shards}
    unfinished = {name: missing for name, missing in unfinished.items() if missing}
    if unfinished:
        listing = "; ".join(f"{name} lacks {', '.join(missing)}" for name, missing in unfinished.items())
        raise HippographError(f"shards not finished, run their stages first: {listing}")
    outputs = [_read_output(shard, config) for shard in shards]
    output = StageOutput.concat(outputs, embedder_for(config).dim)
    report.documents = report.documents or len(output.documents)
    report = load(db_path, output, config, report, delete)
    for shard in shards:
        shutil.rmtree(shard, ignore_errors=True)
    return report


def _missing_outputs(shard: str | Path, config: Config) -> list[str]:
    needed = [DOCUMENTS, PASSAGES, PASSAGE_VECTORS] + ([FACTS, PHRASE_VECTORS, FACT_VECTORS] if config.build_graph else [])
    return [name for name in needed if not (Path(shard) / name).exists()]


def _read_output(shard: str | Path, config: Config) -> StageOutput:
    shard = Path(shard)
    passages = _read_passages(shard)
    vectors = pq.read_table(shard / PASSAGE_VECTORS)
    if vectors["passage_id"].to_pylist() != [p.passage_id for p in passages]:
        raise HippographError(f"{shard}: {PASSAGE_VECTORS} does not match {PASSAGES}; delete the shard and re-run")
    dim = embedder_for(config).dim
    output = StageOutput(_read_documents(shard), passages, _matrix(vectors["embedding"], dim), [], GraphVectors.empty(dim))
    if config.build_graph:
        output.facts = _read_facts(shard)
        phrases, facts = pq.read_table(shard / PHRASE_VECTORS), pq.read_table(shard / FACT_VECTORS)
        output.graph_vectors = GraphVectors(
            phrases["phrase"].to_pylist(), _matrix(phrases["embedding"], dim),
            list(zip(*(facts[c].to_pylist() for c in ("subject", "predicate", "object")))), _matrix(facts["embedding"], dim),
        )
    return output


def _matrix(column: pa.ChunkedArray, dim: int):
    matrix = matrix_from_column(column)
    return matrix if len(matrix) else matrix.reshape(0, dim)


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


def _documents_table(documents: Sequence[Document]) -> pa.Table:
    return pa.table({
        "doc_id": [d.doc_id for d in documents],
        "title": [d.title for d in documents],
        "text": [d.text for d in documents],
        "metadata": [json.dumps(d.metadata, sort_keys=True, default=str) for d in documents],
    })


def _read_documents(shard: str | Path) -> list[Document]:
    rows = pq.read_table(Path(shard) / DOCUMENTS).to_pylist()
    return [Document(r["doc_id"], r["title"], r["text"], json.loads(r["metadata"])) for r in rows]


def _passages_table(passages: Sequence[Passage]) -> pa.Table:
    return pa.table({
        "passage_id": pa.array([p.passage_id for p in passages], pa.string()),
        "doc_id": pa.array([p.doc_id for p in passages], pa.string()),
        "position": pa.array([p.position for p in passages], pa.int32()),
        "title": pa.array([p.title for p in passages], pa.string()),
        "text": pa.array([p.text for p in passages], pa.string()),
    })


def _read_passages(shard: str | Path) -> list[Passage]:
    return [Passage(**row) for row in pq.read_table(Path(shard) / PASSAGES).to_pylist()]


_TRIPLE = pa.struct([("sentence", pa.int32()), ("subject", pa.string()), ("predicate", pa.string()), ("object", pa.string())])


def _facts_table(facts: Sequence[PassageFacts]) -> pa.Table:
    return pa.table({
        "passage_id": pa.array([f.passage_id for f in facts], pa.string()),
        "phrases": pa.array([f.phrases for f in facts], pa.list_(pa.string())),
        "triples": pa.array(
            [[{"sentence": t.sentence, "subject": t.subject, "predicate": t.predicate, "object": t.object}
              for t in f.triples] for f in facts],
            pa.list_(_TRIPLE),
        ),
    })


def _read_facts(shard: str | Path) -> list[PassageFacts]:
    return [
        PassageFacts(row["passage_id"], [Triple(row["passage_id"], **t) for t in row["triples"]], row["phrases"])
        for row in pq.read_table(Path(shard) / FACTS).to_pylist()
    ]


# ---- one machine ----------------------------------------------------------------------------------


def index_in_shards(
    db_path: str | Path,
    documents: Sequence[Document],
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = False,
) -> IndexReport:
    """`index_documents`, resumable: plan shards, run every stage on each, load. Killed at any point,
    the same call again skips the shards and stages that finished."""
    from tqdm.auto import tqdm

    report = IndexReport(documents=len(documents))
    timer = StageTimer(report)
    with timer("plan"):
        shards = plan_documents(documents, db_path, work_dir, config, shard_size)
    for shard in tqdm(shards, desc="shards", unit="shard", disable=not progress):
        for stage in STAGES:
            with timer(stage.__name__.removesuffix("_shard")):
                stage(shard, config)
    pending = sum(pq.read_metadata(Path(s) / DOCUMENTS).num_rows for s in shards)
    report.unchanged = len(documents) - pending
    return load_shards(db_path, shards, config, report)


def plan_sources(
    sources: Sequence[str | Path],
    db_path: str | Path,
    work_dir: str | Path,
    config: Config = Config(),
    shard_size: int = DEFAULT_SHARD_SIZE,
    delete_missing: bool = False,
) -> list[str]:
    """`plan_documents` over .txt/.md/.jsonl files and folders (as `hippograph index` reads them).

    Also writes the run's deletions to the work directory (see `planned_deletions`): with
    `delete_missing`, the stored documents the sources no longer hold, for a store that mirrors them."""
    from hippograph.pipeline.sources import read_documents

    documents, stored = read_documents(sources), _stored_keys(db_path)
    shards = _plan(documents, stored, work_dir, config, shard_size)
    deletions = sorted(set(stored) - {d.doc_id for d in documents}) if delete_missing else []
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    _write(Path(work_dir) / DELETIONS, pa.table({"doc_id": pa.array(deletions, pa.string())}))
    return shards


def planned_deletions(work_dir: str | Path) -> list[str]:
    """The document ids the last `plan_sources` in `work_dir` found gone from the sources."""
    path = Path(work_dir) / DELETIONS
    return pq.read_table(path)["doc_id"].to_pylist() if path.exists() else []
