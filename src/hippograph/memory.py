"""`Memory`: the library's one entry point. The CLI and the DAG are thin shells over it."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, IO

from hippograph.answers import DRAFT_ONLY, answer as answer_from_passages
from hippograph.config import Config, default_db_path
from hippograph.errors import InputError, StoreError
from hippograph.indexing.store import (
    check_embedding_model, check_writable, file_identity, open_store, store_files, update_store,
)
from hippograph.pipeline.run import import_triples, index_documents
from hippograph.pipeline.shards import DEFAULT_SHARD_SIZE, index_in_shards
from hippograph.pipeline.sources import DEFAULT_MAX_DOCUMENT_BYTES, documents_from_records, read_documents
from hippograph.llm import llm_client, with_cache_beside
from hippograph.registry import retrievers
from hippograph.retrievers import Retriever, Snapshot
from hippograph.types import Answer, Document, GraphExport, ImportReport, IndexReport, Retrieval, StoreStats

log = logging.getLogger("hippograph")


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
        self._snapshot: Snapshot | None = None

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

    def import_triples(self, source: str | Path | Iterable[Mapping[str, Any]], lenient: bool = False) -> ImportReport:
        """Add triples made elsewhere (a JSONL path, HippoRAG's OpenIE results file (.json), or dicts with
        doc_id, subject, predicate, object) to the passages of documents already indexed. Triples already
        stored for their passage are skipped. A bad record is an error and nothing is written, unless
        `lenient`: then bad records are left out and counted by reason (`ImportReport.invalid`)."""
        check_writable(self.db_path)
        report = import_triples(self.db_path, source, self.config, lenient)
        if report.imported:
            self._snapshot = None
        return report

    # ---- reading --------------------------------------------------------------------------------

    def retrieve(self, question: str, mode: str = "hipporag", top_k: int = 5) -> Retrieval:
        """The `top_k` passages for `question`, best first, by the retriever registered as `mode` ("bm25",
        "dense", "hipporag", or your own: see `hippograph.register_retriever`). What a passage's `score`
        means depends on the mode (see `hippograph.retrievers`); `facts` holds the facts that seeded a
        graph search."""
        return self.retrieve_many([question], mode, top_k)[0]

    def retrieve_many(self, questions: Sequence[str], mode: str = "hipporag", top_k: int = 5) -> list[Retrieval]:
        """`retrieve` for many questions, with one snapshot and batched embedding."""
        for question in questions:  # an empty one would get every passage at score 0
            if not isinstance(question, str) or not question.strip():
                raise InputError(f"a question must be a non-empty string, not {question!r}")
        retriever = self.retriever(mode)
        # A query's matrix products are small; OpenBLAS threads left spinning after them slow the
        # embedder's own threads down threefold on a 2-core machine, so BLAS runs single-threaded here.
        with _blas_controller().limit(limits=1, user_api="blas"):
            return retriever.retrieve_many(list(questions), top_k)

    def retriever(self, mode: str = "hipporag") -> Retriever:
        """The retriever of `mode` over the current snapshot, built once per snapshot and configuration."""
        retriever_class = retrievers.get(mode)
        snapshot = self._load()
        if retriever_class.uses_embeddings:
            check_embedding_model(self.db_path, snapshot.embedding_model, self.config.embedding_model)
        return snapshot.retriever(mode, with_cache_beside(self.config, self.db_path))

    def answer(self, question: str, mode: str = "hipporag", top_k: int = 5) -> Answer:
        """Retrieve the `top_k` passages for `question` by `mode`, then answer from them.

        With an LLM configured (`llm_base_url`), the LLM answers, citing passages by doc_id (citations to
        passages it was not given are dropped). Without one, or when it gives no usable answer, the answer is
        the offline draft (`hippograph.draft`: an entity of the type the question asks for, from the top
        passages), citing the passage it came from; `source` tells which, and `note` why. `answer` is None
        only when neither found anything."""
        return self.answer_from(self.retrieve(question, mode, top_k))

    def answer_from(self, retrieval: Retrieval) -> Answer:
        """`answer` from passages already retrieved (all of `retrieval.passages` are given to the LLM)."""
        client = llm_client(with_cache_beside(self.config, self.db_path))
        if client is None:
            return self._drafted(retrieval, DRAFT_ONLY)
        answered = answer_from_passages(client, retrieval)
        if answered.answer is not None or not retrieval.passages:
            return answered
        return self._drafted(retrieval, f"{answered.note}; this is the offline draft answer")

    def _drafted(self, retrieval: Retrieval, note: str) -> Answer:
        from hippograph.draft import draft_answer  # spaCy, only when a draft is asked for

        draft = retrieval.draft_answer or draft_answer(retrieval.question, retrieval, self.config.spacy_model)
        citations = [draft.doc_id] if draft.doc_id else []
        return Answer(retrieval.question, draft.text or None, citations, retrieval.passages, retrieval.mode,
                      note=note, source="draft")

    def refresh(self) -> bool:
        """Drop the snapshot if a newer store was published since it was read; True if one was.

        Each publish renames another file over the store (see `update_store`), so a `stat` tells; queries
        call this themselves when `auto_refresh` is on."""
        if self._snapshot is None or file_identity(self.db_path) == self._snapshot.file_identity:
            return False
        self._snapshot = None
        return True

    def stats(self) -> StoreStats:
        """What the store holds: counts of documents, passages, triples, phrases, facts, synonym edges."""
        with open_store(self.db_path) as store:
            return store.stats()

    def export_graph(self, path: str | Path | None = None, format: str = "graphml", force: bool = False) -> GraphExport:
        """Write the passage-entity graph for Gephi or yEd; `format` is graphml or gexf, the default file
        hippograph.<format>. An existing file is overwritten only with `force`, the store's own files
        never. Returns the path and the node and edge counts."""
        from hippograph.graph.export import check_format, check_target, to_networkx, write_graph

        path = Path(path) if path is not None else Path(f"hippograph.{format}")
        check_format(format)  # before reading a possibly large store
        check_target(path, store_files(self.db_path), force)
        with open_store(self.db_path) as store:
            passages, data = store.read_passages(), store.read_graph_data()
        graph = to_networkx(data, passages, self.config.synonym_threshold)  # the graph retrieval walks
        write_graph(graph, path, format)
        return GraphExport(str(path), format, graph.number_of_nodes(), graph.number_of_edges())

    def _load(self) -> Snapshot:
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

    def _read_snapshot(self) -> Snapshot:
        # The identity is taken before reading: a publish during the read shows at the next check.
        return Snapshot.read(self.db_path, file_identity(self.db_path))


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController  # imported on first query: its import sets an env variable

    return ThreadpoolController()
