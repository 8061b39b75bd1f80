"""Configuration: every model name and constant in one dataclass, with the HippoRAG 2 defaults."""

from __future__ import annotations

import json
import math
import os
from dataclasses import Field, dataclass, field, fields, replace
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


def option(default: Any, doc: str, shapes_index: bool = False, kind: type | None = None) -> Any:
    """A Config field with its documentation; `shapes_index` marks options that change what indexing
    stores, so documents indexed under another value are indexed again (see `Config.index_settings`).
    `kind` is the type of the values an option with a None default takes (None means "not set")."""
    if default is None and kind is None:
        raise TypeError("an option whose default is None must declare its kind")
    return field(default=default, metadata={"doc": doc, "shapes_index": shapes_index, "kind": kind or type(default)})


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
        "auto", '"auto": bfloat16 on CPUs with AMX, else int8 for indexing (ONNX Runtime; questions stay '
        'float32), else bfloat16 on CPUs with AVX512-BF16, else float32; "float32", "bfloat16" or "int8" to '
        'force one',
        shapes_index=True)
    embedding_batch_size: int = option(64, "passages per embedding batch")
    short_text_batch_size: int = option(256, "phrases and facts per embedding batch")

    # ---- indexing -------------------------------------------------------------------------------
    chunk_max_tokens: int | None = option(
        None, "word pieces per passage (title and text); null: the embedder's window less its two "
        "special tokens, so nothing is truncated", shapes_index=True, kind=int)
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
    gist_writer: str = option(
        "offline", '"offline": a memory\'s gist is its document\'s lead sentence and most informative others; '
        '"llm": the LLM writes the document\'s key facts as a short list, within the same budget, the offline '
        "gist standing in when its reply is unusable")  # shapes the index: see index_settings
    clue_hits: int = option(3, "passages each memorag clue retrieves (MemoRAG's ret_hit)")
    span_clues: int = option(3, "memories nearest the question whose best statement becomes a span clue")
    bridge_clues: int = option(3, "surrogate questions per round: bridge entities found in the evidence facts")
    clue_rounds: int = option(
        2, "rounds of surrogate questions: each bridges one hop further, from the entity the last one put in")
    clue_writer: str = option(
        "offline", '"offline": span clues are the best statements of the memories nearest the question; '
        '"llm": the LLM writes spans, sharper questions and a draft answer from those memories (MemoRAG\'s '
        "memory model), the offline clues standing in when its reply is unusable")

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
        '"relative": those scoring >= recognition_min_ratio x the best; "none": all; '
        '"llm": the LLM keeps up to 4 of them (HippoRAG 2), falling back to "entity" on an empty or invalid reply')
    recognition_min_ratio: float = option(0.8, 'share of the best fact\'s score a fact needs under "relative"')
    entity_linking: bool = option(
        True, "also seed the phrases the question names, linked to their closest phrase node (HippoRAG 1)")
    entity_link_threshold: float = option(0.8, "cosine a question phrase needs to link to a phrase node")
    score_fusion: str = option(
        "ppr", '"ppr": rank passages by PageRank mass; "rrf": reciprocal-rank fusion with dense')

    # ---- LLM: any OpenAI-compatible endpoint; none unless llm_base_url is set ---------------------
    llm_base_url: str | None = option(
        None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (vLLM, Ollama, llama.cpp, OpenAI); "
        "null: no LLM, and hippograph makes no network call of any kind", kind=str)
    llm_model: str | None = option(None, "model name sent with each request; required with llm_base_url", kind=str)
    llm_api_key_env: str = option(
        "OPENAI_API_KEY", "environment variable holding the API key; a local server needs none")
    llm_timeout: float = option(60.0, "seconds one request may take before it counts as failed")
    llm_max_retries: int = option(
        2, "retries of a request that failed with 429, a 5xx, a timeout or a connection error, with "
        "exponential back-off (honouring Retry-After)")
    llm_max_concurrency: int = option(
        4, "requests in flight at once per process: keeps a local server busy without flooding a paid one")
    llm_temperature: float = option(0.0, "sampling temperature of every request")
    llm_seed: int = option(0, "seed sent with every request, for servers that honour it")
    llm_max_tokens: int = option(1024, "reply budget per request; thinking models need more")
    llm_json_mode: bool = option(
        True, "ask for JSON replies (response_format json_object); dropped by itself if the server refuses it")
    llm_cache_dir: str | None = option(
        None, "folder of the completion cache, shared by processes; null: <store>.llm-cache beside the store",
        kind=str)

    def __post_init__(self) -> None:
        for option in fields(self):
            value, allowed, valid = getattr(self, option.name), _CHOICES.get(option.name), _RANGES.get(option.name)
            if not _fits(option, value):
                shown = json.dumps(value, default=repr)
                raise ValueError(f"config option {option.name} must be {_kind_name(option)}, not {shown}")
            if allowed and value not in allowed:
                raise ValueError(f"config option {option.name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
            if valid and value is not None and value not in valid:
                raise ValueError(f"config option {option.name} must be {valid}, not {json.dumps(value)}")
        if self.extractor not in extractors:  # registered by name, so checked against the registry
            raise ValueError(f"config option extractor must be one of {', '.join(map(repr, extractors.names()))}, "
                             f"not {self.extractor!r}")
        self._check_llm()

    def _check_llm(self) -> None:
        """What needs an LLM is refused without one, rather than calling a default (paid) endpoint."""
        needing = [name for name in ("extractor", "gist_writer", "recognition_filter", "clue_writer")
                   if getattr(self, name) == "llm"]
        if needing and self.llm_base_url is None:
            raise ValueError(f"config option {needing[0]}=\"llm\" needs llm_base_url (and llm_model): "
                             "the OpenAI-compatible endpoint to ask")
        if self.llm_base_url is not None and not self.llm_model:
            raise ValueError("config option llm_base_url needs llm_model: the model to ask for")

    def index_settings(self) -> str:
        """The options marked `shapes_index`, and the extractor's version: a document indexed under other
        ones is indexed again (see `Document.index_key`)."""
        settings = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["shapes_index"]}
        if self.gist_writer == "llm" and self.build_graph and self.build_memory:
            # Named only when on, so stores indexed before the option existed keep their documents' keys.
            from hippograph.pipeline.llm_compress import PROMPT_VERSION

            settings["gist_writer"] = f"llm-{PROMPT_VERSION}"
        settings["extractor_version"] = None
        if self.build_graph:
            extractor = extractors.get(self.extractor)
            settings["extractor_version"] = extractor.version
            settings.update({name: getattr(self, name) for name in extractor.options})
        return json.dumps(settings, sort_keys=True)

    def replace(self, **changes: Any) -> "Config":
        """A copy with `changes` (option name -> value), checked like a new Config."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    @classmethod
    def option_docs(cls) -> dict[str, str]:
        """Option name -> what it does."""
        return {f.name: f.metadata["doc"] for f in fields(cls)}


_CHOICES = {
    "embedding_precision": ("auto", "float32", "bfloat16", "int8"),
    "pagerank_solver": ("power", "prpack"),
    "recognition_filter": ("entity", "entity_only", "relative", "none", "llm"),
    "clue_writer": ("offline", "llm"),
    "gist_writer": ("offline", "llm"),
    "score_fusion": ("ppr", "rrf"),
}



@dataclass(frozen=True)
class _Range:
    """Finite numbers from `low` up to `high` (`high` itself only if `closed`)."""

    low: float
    high: float = math.inf
    closed: bool = True

    def __contains__(self, value: float) -> bool:
        return math.isfinite(value) and self.low <= value and (value <= self.high if self.closed else value < self.high)

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"at least {self.low}"
        return f"at least {self.low} and {'at most' if self.closed else 'less than'} {self.high}"


# The valid values of every numeric option (a test checks that none is missing). NaN and infinity never are.
_RANGES = {
    "embedding_batch_size": _Range(1),
    "short_text_batch_size": _Range(1),
    "chunk_max_tokens": _Range(1),  # or None; at most the embedder's window, checked when chunking
    "extract_batch_size": _Range(1),
    "extract_processes": _Range(1),
    "synonym_threshold": _Range(-1, 1),  # a cosine
    "synonym_top_k": _Range(0),
    "synonym_min_chars": _Range(0),
    "linking_top_k": _Range(0),  # 0: no fact seeds
    "passage_node_weight": _Range(0),
    "damping": _Range(0, 1, closed=False),  # at 1 PageRank forgets its seeds and never converges
    "recognition_min_ratio": _Range(0, 1),
    "entity_link_threshold": _Range(-1, 1),  # a cosine
    "memory_budget": _Range(0.01, 1),
    "clue_hits": _Range(1),
    "span_clues": _Range(0),
    "bridge_clues": _Range(0),
    "clue_rounds": _Range(0),
    "llm_timeout": _Range(0.001),
    "llm_max_retries": _Range(0),
    "llm_max_concurrency": _Range(1),
    "llm_temperature": _Range(0, 2),
    "llm_seed": _Range(-(2**63), 2**63 - 1),
    "llm_max_tokens": _Range(1),
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
    except RecursionError:
        raise InputError(f"config {source}: JSON nested too deeply") from None
    if not isinstance(options, dict):
        raise InputError(f"config {source}: expected a JSON object of options, got {type(options).__name__}")
    return options


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _kind_name(option: Field) -> str:
    name = _KINDS[option.metadata["kind"]]
    return f"{name} or null" if option.default is None else name


def _fits(option: Field, value: Any) -> bool:
    """Whether `value` has the option's kind (or is None, for an option whose default is None)."""
    kind = option.metadata["kind"]
    if value is None:
        return option.default is None
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)
