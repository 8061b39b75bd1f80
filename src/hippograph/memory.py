"""`Memory`: the library's one entry point. The CLI and the DAG are thin shells over it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, IO

import numpy as np
from threadpoolctl import ThreadpoolController

from hippograph.config import Config, default_db_path
from hippograph.errors import HippographError, InputError, StoreError
from hippograph.indexing.bm25 import BM25Index
from hippograph.indexing.dense import DenseIndex, top_k
from hippograph.indexing.store import (
    GraphData, PassageTable, check_embedding_model, check_writable, open_store, store_files, update_store,
)
from hippograph.pipeline.embed import Embedder, embedder_for
from hippograph.pipeline.run import ImportReport, IndexReport, import_triples, index_documents
from hippograph.pipeline.shards import DEFAULT_SHARD_SIZE, index_in_shards
from hippograph.pipeline.sources import DEFAULT_MAX_DOCUMENT_BYTES, documents_from_records, read_documents
from hippograph.types import Document, RetrievedPassage, Retrieval, SeedFact, titled

log = logging.getLogger("hippograph")
MODES = ("bm25", "dense", "hipporag")
_BLAS = ThreadpoolController()


@dataclass
class _Snapshot:
    """What queries read, copied out of the store so no connection stays open."""

    generation: int
    file_identity: tuple[int, int, int] | None
    embedding_model: tuple[str, int] | None  # (name, dim) of the stored vectors; None before the first index
    passages: PassageTable
    graph_data: GraphData
    dense: DenseIndex
    _bm25: BM25Index | None = None
    _hipporag: Any = None

    @property
    def bm25(self) -> BM25Index:
        if self._bm25 is None:
            self._bm25 = BM25Index([titled(t, x) for t, x in zip(self.passages.titles, self.passages.texts)])
        return self._bm25

    def hipporag(self, config: Config):
        if self._hipporag is None:
            from hippograph.graph.hipporag import HippoRAGRetriever

            self._hipporag = HippoRAGRetriever(self.graph_data, self.passages.passage_ids, config)
        return self._hipporag


class Memory:
    """A long-term memory in one DuckDB file.

    >>> memory = Memory("notes.duckdb")
    >>> memory.index([{"id": "a", "title": "Ada", "text": "Ada Marsh designed the Veloria Bridge."}])
    >>> memory.retrieve("Who designed the Veloria Bridge?", mode="hipporag", top_k=3).passages[0].doc_id
    'a'

    Queries read an in-memory snapshot of the store, so they never wait for an index run. With
    `auto_refresh` (the default) a query first checks whether a newer store was published, by another
    process or this one, and reloads if so; otherwise call `refresh()` when you want the new state.
    """

    def __init__(self, db_path: str | Path | None = None, config: Config | None = None, auto_refresh: bool = True):
        self.db_path = Path(db_path) if db_path is not None else default_db_path()
        self.config = config or Config()
        self.auto_refresh = auto_refresh
        self._snapshot: _Snapshot | None = None

    # ---- writing --------------------------------------------------------------------------------

    def index(
        self,
        documents: Iterable[dict[str, Any] | Document],
        progress: bool = False,
        work_dir: str | Path | None = None,
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> IndexReport:
        """Index documents given as dicts ({"id"?, "title"?, "text", ...}) or `Document`s.

        With `work_dir`, the stages run over shards of `shard_size` documents, kept as files there until
        loaded, so a killed run resumes where it stopped when called again the same way (see
        `hippograph.pipeline.shards`)."""
        return self._index(documents_from_records(documents), progress, work_dir, shard_size)

    def index_paths(
        self,
        paths: Sequence[str | Path],
        stdin: IO[bytes] | None = None,
        progress: bool = False,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        work_dir: str | Path | None = None,
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> IndexReport:
        """Index .txt/.md/.jsonl files and directory trees; `-` reads standard input. `work_dir`, `shard_size`:
        as in `index`."""
        return self._index(read_documents(paths, stdin, max_document_bytes), progress, work_dir, shard_size)

    def _index(
        self, documents: list[Document], progress: bool, work_dir: str | Path | None, shard_size: int
    ) -> IndexReport:
        check_writable(self.db_path)
        if work_dir is None:
            report = index_documents(self.db_path, documents, self.config, progress=progress)
        else:
            report = index_in_shards(self.db_path, documents, work_dir, self.config, shard_size, progress)
        if report.indexed:
            self._snapshot = None
        return report

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents and all derived from them; returns the ids that were stored."""
        check_writable(self.db_path)
        if not self.db_path.exists():
            return []
        with update_store(self.db_path) as store:  # publishes nothing if none of them is stored
            deleted = store.delete_documents(doc_ids)
        if deleted:
            self._snapshot = None
        return deleted

    def import_triples(self, source: str | Path | Iterable[Mapping[str, Any]]) -> ImportReport:
        """Add triples made elsewhere (a JSONL path, or dicts with doc_id, subject, predicate, object) to the
        passages of documents already indexed. Triples already stored for their passage are skipped."""
        check_writable(self.db_path)
        report = import_triples(self.db_path, source, self.config)
        if report.imported:
            self._snapshot = None
        return report

    # ---- reading --------------------------------------------------------------------------------

    def retrieve(self, question: str, mode: str = "hipporag", top_k: int = 5) -> Retrieval:
        return self.retrieve_many([question], mode, top_k)[0]

    def retrieve_many(self, questions: Sequence[str], mode: str = "hipporag", top_k: int = 5) -> list[Retrieval]:
        """Answer many questions with one snapshot and one batched embedding: the questions and, for
        hipporag, the phrases they name that the graph lacks (see `HippoRAGRetriever.link_phrases`)."""
        if mode not in MODES:
            raise HippographError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        for question in questions:  # an empty one would get every passage at score 0
            if not isinstance(question, str) or not question.strip():
                raise InputError(f"a question must be a non-empty string, not {question!r}")
        snapshot = self._load()
        if mode != "bm25":  # bm25 needs no vectors
            check_embedding_model(self.db_path, snapshot.embedding_model, self.config.embedding_model)
        # A query's matrix products are small; OpenBLAS threads left spinning after them slow the
        # embedder's own threads down threefold on a 2-core machine, so BLAS runs single-threaded here.
        with _BLAS.limit(limits=1, user_api="blas"):
            linking = mode == "hipporag" and bool(snapshot.graph_data.phrases)  # no graph, no phrases to link
            named = [self._query_phrases(q) if linking else [] for q in questions]
            vectors = {} if mode == "bm25" else self._embed(snapshot, questions, named)
            return [
                self._retrieve_one(snapshot, question, mode, top_k, phrases, vectors)
                for question, phrases in zip(questions, named)
            ]

    def _retrieve_one(
        self,
        snapshot: _Snapshot,
        question: str,
        mode: str,
        k: int,
        named: Sequence[str],
        vectors: Mapping[str, np.ndarray],
    ) -> Retrieval:
        facts: list[SeedFact] = []
        if mode == "bm25":
            scores = snapshot.bm25.scores(question)
        else:
            scores = snapshot.dense.scores(vectors[question])
            if mode == "hipporag":
                retriever = snapshot.hipporag(self.config)
                search = retriever.search(vectors[question], scores, retriever.link_phrases(named, vectors))
                scores = search.passage_scores
                facts = [SeedFact(*retriever.facts[i], score=s) for i, s in search.seed_facts]
        table = snapshot.passages
        passages = [
            RetrievedPassage(table.doc_ids[i], table.passage_ids[i], table.titles[i], table.texts[i], float(scores[i]))
            for i in top_k(scores, k)
        ]
        return Retrieval(question, mode, passages, facts)

    def _query_phrases(self, question: str) -> list[str]:
        if not self.config.entity_linking:
            return []
        from hippograph.pipeline.extract import load_spacy, query_phrases  # spaCy only for hipporag

        return query_phrases(question, load_spacy(self.config.spacy_model))

    def _embed(
        self, snapshot: _Snapshot, questions: Sequence[str], named: Sequence[Sequence[str]]
    ) -> dict[str, np.ndarray]:
        """Vectors of the questions and of the named phrases linking needs, by text. One forward pass for
        all: a second one for the phrases alone costs nearly as much as the first."""
        texts = list(questions)
        if any(named):
            retriever = snapshot.hipporag(self.config)
            texts += [p for phrases in named for p in retriever.phrases_to_embed(phrases)]
        texts = list(dict.fromkeys(texts))
        return dict(zip(texts, self.embedder.encode(texts)))

    def refresh(self) -> bool:
        """Drop the snapshot if a newer store was published since it was read; True if one was.

        Each write publishes a new file (see `update_store`), so a `stat` tells; queries call this
        themselves when `auto_refresh` is on."""
        if self._snapshot is None or _file_identity(self.db_path) == self._snapshot.file_identity:
            return False
        self._snapshot = None
        return True

    def stats(self) -> dict[str, object]:
        with open_store(self.db_path) as store:
            return store.stats()

    def export_graph(self, path: str | Path | None = None, format: str = "graphml", force: bool = False) -> dict[str, object]:
        """Write the passage-entity graph for Gephi or yEd; `format` is graphml or gexf, the default file
        hippograph.<format>. An existing file is overwritten only with `force`, the store's own files
        never. Returns the path and the node and edge counts."""
        from hippograph.graph.export import check_format, check_target, to_networkx, write_graph

        path = Path(path) if path is not None else Path(f"hippograph.{format}")
        check_format(format)  # before reading a possibly large store
        check_target(path, store_files(self.db_path), force)
        with open_store(self.db_path) as store:
            passages, data = store.load_passages(), store.load_graph_data()
        graph = to_networkx(data, passages, self.config.synonym_threshold)  # the graph retrieval walks
        write_graph(graph, path, format)
        return {"path": str(path), "format": format, "nodes": graph.number_of_nodes(), "edges": graph.number_of_edges()}

    @property
    def embedder(self) -> Embedder:
        return embedder_for(self.config)

    def _load(self) -> _Snapshot:
        previous = self._snapshot
        if self.auto_refresh:
            self.refresh()
        if self._snapshot is None:
            try:
                self._snapshot = self._read_snapshot()
            except StoreError as error:
                if previous is None:
                    raise
                # A long-lived app keeps answering from the last state it read rather than failing.
                log.warning("hippograph: keeping the snapshot of generation %d: %s", previous.generation, error)
                self._snapshot = previous
        return self._snapshot

    def _read_snapshot(self) -> _Snapshot:
        identity = _file_identity(self.db_path)  # before reading: a publish during the read shows next time
        with open_store(self.db_path) as store:
            generation, model = store.generation(), store.embedding_model()
            passages, graph_data = store.load_passages(), store.load_graph_data()
        return _Snapshot(generation, identity, model, passages, graph_data, DenseIndex(passages.embeddings))


def _file_identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size
