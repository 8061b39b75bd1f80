"""Configuration: every model name and constant in one dataclass, with the HippoRAG 2 defaults."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields, replace
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hippograph.errors import InputError

DEFAULT_DB = "hippograph.duckdb"
CONFIG_ENV = "HIPPOGRAPH_CONFIG"  # Config options as JSON, for the CLI and the DAG


def default_db_path() -> Path:
    """`HIPPOGRAPH_DB` if set, else ./hippograph.duckdb."""
    return Path(os.environ.get("HIPPOGRAPH_DB") or DEFAULT_DB)


@dataclass(frozen=True)
class Config:
    # Models. The defaults ship inside PyPI packages and load offline; any sentence-transformers
    # name or path, or any installed spaCy pipeline, can replace them.
    embedding_model: str = "all-MiniLM-L6-v2"
    spacy_model: str = "en_core_web_sm"
    # "auto" runs the embedder in bfloat16 on CPUs with native bf16 support (1.8x to 2.6x faster on the
    # machines measured, cosine to fp32 >= 0.9999), else float32. "float32" forces full precision.
    embedding_precision: str = "auto"
    embedding_batch_size: int = 64
    short_text_batch_size: int = 256  # phrases and facts: bigger batches cost the same padding

    # Chunking: passages ("title\ntext") fill at most this many word pieces; None = the embedder's
    # window less its two special tokens (254 for all-MiniLM-L6-v2), so nothing is truncated.
    chunk_max_tokens: int | None = None

    # Triple extraction and the graph; False indexes passages only (bm25 and dense; hipporag falls back to dense).
    build_graph: bool = True
    extract_batch_size: int = 64
    extract_processes: int = 2

    # Graph (HippoRAG 2 defaults).
    synonym_threshold: float = 0.8
    synonym_top_k: int = 100  # most synonym edges one phrase gets
    synonym_min_chars: int = 3  # phrases with fewer alphanumeric characters get no synonym edges

    # Retrieval (HippoRAG 2 defaults).
    linking_top_k: int = 5
    passage_node_weight: float = 0.05
    damping: float = 0.5
    # "power": accelerated power iteration on a transition matrix built once (within 1e-8 of PRPACK, faster);
    # "prpack": igraph's PRPACK solver, rebuilt per query.
    pagerank_solver: str = "power"
    # Recognition memory without an LLM (an LLM filter comes with LLM support):
    #   "entity": of the linked facts keep those about a phrase the query names; if none is, "relative";
    #   "entity_only": only those; a question naming nothing in the graph gets the dense answer;
    #   "relative": keep facts scoring >= recognition_min_ratio x the best fact's score;
    #   "none": keep all `linking_top_k` facts.
    recognition_filter: str = "entity"
    recognition_min_ratio: float = 0.8
    # Also seed the phrases the query names, linked to their closest phrase node (HippoRAG 1).
    entity_linking: bool = True
    entity_link_threshold: float = 0.8
    score_fusion: str = "ppr"  # "ppr": rank by PageRank mass; "rrf": reciprocal-rank fusion with dense

    def __post_init__(self) -> None:
        for option in fields(self):
            value, allowed, valid = getattr(self, option.name), _CHOICES.get(option.name), _RANGES.get(option.name)
            if not _fits(option.default, value):
                shown = json.dumps(value, default=repr)
                raise ValueError(f"config option {option.name} must be {_KINDS[type(option.default)]}, not {shown}")
            if allowed and value not in allowed:
                raise ValueError(f"config option {option.name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
            if valid and value is not None and value not in valid:
                raise ValueError(f"config option {option.name} must be {valid}, not {json.dumps(value)}")

    def index_settings(self) -> str:
        """The options that shape what indexing stores: a document indexed under other ones is indexed
        again (see `Document.index_key`)."""
        return json.dumps([self.embedding_model, self.embedding_precision, self.chunk_max_tokens,
                           self.build_graph, self.spacy_model, self.synonym_min_chars])

    def replace(self, **changes: Any) -> "Config":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown config option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


_CHOICES = {
    "embedding_precision": ("auto", "float32", "bfloat16"),
    "pagerank_solver": ("power", "prpack"),
    "recognition_filter": ("entity", "entity_only", "relative", "none"),
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
}


def load_config(source: str | Path | Mapping[str, Any] | None = None) -> Config:
    """A Config from options, e.g. {"embedding_model": "BAAI/bge-small-en-v1.5"}: `source` is a mapping, a
    JSON file or the JSON text itself; None reads $HIPPOGRAPH_CONFIG, and if that is unset too, the
    defaults. Raises InputError naming what is wrong."""
    if source is None:
        source = os.environ.get(CONFIG_ENV) or "{}"
    options = source if isinstance(source, Mapping) else _json_options(source)
    try:
        return Config().replace(**options)
    except ValueError as error:
        raise InputError(f"config {source}: {error}") from None


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
