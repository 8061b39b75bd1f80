"""Configuration: every model name and constant in one dataclass, with the HippoRAG 2 defaults."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields, replace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hippograph.errors import InputError
from hippograph.registry import extractors

DEFAULT_DB = "hippograph.duckdb"
CONFIG_ENV = "HIPPOGRAPH_CONFIG"  # Config options as JSON, for the CLI and the DAG


def default_db_path() -> Path:
    """`HIPPOGRAPH_DB` if set, else ./hippograph.duckdb."""
    return Path(os.environ.get("HIPPOGRAPH_DB") or DEFAULT_DB)


def option(default: Any, doc: str, shapes_index: bool = False) -> Any:
    """A Config field with its documentation; `shapes_index` marks options that change what indexing
    stores, so documents indexed under another value are indexed again (see `Config.index_settings`)."""
    return field(default=default, metadata={"doc": doc, "shapes_index": shapes_index})


@dataclass(frozen=True)
class Config:
    """Every model name and constant, with the HippoRAG 2 defaults. Options are checked when a Config is
    made; `Config.option_docs()` lists them with their documentation."""

    # ---- models: the defaults ship inside PyPI packages and load offline -------------------------
    embedding_model: str = option(
        "all-MiniLM-L6-v2", "any sentence-transformers name or local path", shapes_index=True)
    spacy_model: str = option(
        "en_core_web_sm", "any installed spaCy pipeline (extraction and question parsing)", shapes_index=True)
    embedding_precision: str = option(
        "auto", '"auto": bfloat16 on CPUs with native bf16 units (AVX512-BF16, AMX), else float32; '
        '"float32" or "bfloat16" to force one', shapes_index=True)
    embedding_batch_size: int = option(64, "passages per embedding batch")
    short_text_batch_size: int = option(256, "phrases and facts per embedding batch")

    # ---- indexing -------------------------------------------------------------------------------
    chunk_max_tokens: int | None = option(
        None, "word pieces per passage (title and text); null: the embedder's window less its two "
        "special tokens, so nothing is truncated", shapes_index=True)
    build_graph: bool = option(
        True, "extract triples and build the graph; false indexes passages only (hipporag then answers "
        "as dense)", shapes_index=True)
    extractor: str = option(
        "spacy", "triple extractor, by registered name (see `hippograph.register_extractor`)", shapes_index=True)
    extract_batch_size: int = option(64, "passages per spaCy batch")
    extract_processes: int = option(2, "spaCy worker processes")

    # ---- memory bank (CMT-style compressed records; memory and memorag modes) ------------------------
    build_memory: bool = option(
        True, "compress each document into a memory record (gist, key facts, self-matching keys); needs "
        "build_graph, whose triples give the key facts", shapes_index=True)
    memory_budget: float = option(
        0.25, "bytes a memory record keeps (gist and key facts), as a share of its document's text", shapes_index=True)
    clue_hits: int = option(3, "passages each memorag clue retrieves (MemoRAG's ret_hit)")
    span_clues: int = option(3, "memories nearest the question whose best statement becomes a span clue")
    bridge_clues: int = option(3, "surrogate questions per round: bridge entities found in the evidence facts")
    clue_rounds: int = option(
        2, "rounds of surrogate questions: each bridges one hop further, from the entity the last one put in")

    # ---- graph (HippoRAG 2 defaults) --------------------------------------------------------------
    synonym_threshold: float = option(0.8, "cosine at or above which two phrases get a synonym edge", shapes_index=True)
    synonym_top_k: int = option(100, "most synonym edges one phrase gets", shapes_index=True)
    synonym_min_chars: int = option(
        3, "phrases with fewer alphanumeric characters (or with digits) get no synonym edges", shapes_index=True)

    # ---- retrieval (HippoRAG 2 defaults) ----------------------------------------------------------
    linking_top_k: int = option(5, "facts linked to a question by embedding similarity")
    passage_node_weight: float = option(0.05, "weight of dense passage scores in the PageRank reset")
    damping: float = option(0.5, "PageRank damping factor")
    pagerank_solver: str = option(
        "power", '"power": accelerated power iteration on a matrix built once; "prpack": igraph\'s PRPACK, '
        "rebuilt per query")
    recognition_filter: str = option(
        "entity", "which linked facts seed the graph (recognition memory without an LLM): "
        '"entity": those about a phrase the question names, else as "relative"; '
        '"entity_only": only those (a question naming nothing in the graph gets the dense answer); '
        '"relative": those scoring >= recognition_min_ratio x the best; "none": all')
    recognition_min_ratio: float = option(0.8, 'share of the best fact\'s score a fact needs under "relative"')
    entity_linking: bool = option(
        True, "also seed the phrases the question names, linked to their closest phrase node (HippoRAG 1)")
    entity_link_threshold: float = option(0.8, "cosine a question phrase needs to link to a phrase node")
    score_fusion: str = option(
        "ppr", '"ppr": rank passages by PageRank mass; "rrf": reciprocal-rank fusion with dense')

    def __post_init__(self) -> None:
        for option in fields(self):
            value, allowed = getattr(self, option.name), _CHOICES.get(option.name)
            if not _fits(option.default, value):
                shown = json.dumps(value, default=repr)
                raise ValueError(f"config option {option.name} must be {_KINDS[type(option.default)]}, not {shown}")
            if allowed and value not in allowed:
                raise ValueError(f"config option {option.name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
        if self.extractor not in extractors:  # registered by name, so checked against the registry
            raise ValueError(f"config option extractor must be one of {', '.join(map(repr, extractors.names()))}, "
                             f"not {self.extractor!r}")

    def index_settings(self) -> str:
        """The options marked `shapes_index`, and the extractor's version: a document indexed under other
        ones is indexed again (see `Document.index_key`)."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["shapes_index"]}
        settings["extractor_version"] = extractors.get(self.extractor).version if self.build_graph else None
        return json.dumps(settings, sort_keys=True)

    def replace(self, **changes: Any) -> "Config":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    @classmethod
    def option_docs(cls) -> dict[str, str]:
        """Option name -> what it does."""
        return {f.name: f.metadata["doc"] for f in fields(cls)}


_CHOICES = {
    "embedding_precision": ("auto", "float32", "bfloat16"),
    "pagerank_solver": ("power", "prpack"),
    "recognition_filter": ("entity", "entity_only", "relative", "none"),
    "score_fusion": ("ppr", "rrf"),
}


def load_config(source: str | Path | Mapping[str, Any] | None = None) -> Config:
    """A Config from options, e.g. {"embedding_model": "BAAI/bge-small-en-v1.5"}: `source` is a mapping, a
    JSON file or the JSON text itself; None reads $HIPPOGRAPH_CONFIG, and if that is unset too, the
    defaults. Raises InputError naming what is wrong."""
    if source is None:
        source = os.environ.get(CONFIG_ENV) or "{}"
    options = config_options(source)
    try:
        return Config().replace(**options)
    except ValueError as error:
        raise InputError(f"config {source}: {error}") from None


def config_options(source: str | Path | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The options `source` sets, as `load_config` reads them, not yet checked."""
    if source is None:
        source = os.environ.get(CONFIG_ENV) or "{}"
    return dict(source) if isinstance(source, Mapping) else _json_options(source)


def _json_options(source: str | Path) -> Any:
    text = str(source)
    if not text.lstrip().startswith("{"):
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read config file {source}: {error}") from None
    try:
        options = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"config {source}: not valid JSON ({error})") from None
    if not isinstance(options, dict):
        raise InputError(f"config {source}: expected a JSON object of options, got {type(options).__name__}")
    return options


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "an integer or null"}


def _fits(default: Any, value: Any) -> bool:
    """Whether `value` has the type of an option whose default is `default` (None: an optional int)."""
    if default is None:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))
