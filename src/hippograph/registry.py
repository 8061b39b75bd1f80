"""Registries of the swappable parts, by name, as spaCy registers pipeline components:

    extractors  triples and phrases of passages: `Config(extractor="spacy")`
    retrievers  one object per query mode: `memory.retrieve(question, mode="hipporag")`

Register your own with the decorators `register_extractor` and `register_retriever` (exported by
`hippograph`) in a module of yours; the CLI and the DAG import the modules $HIPPOGRAPH_PLUGINS names
(comma-separated) before they start. Built-in entries are named by import path and imported on first
use, so listing or checking names loads no model, torch or igraph.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hippograph.errors import InputError

PLUGINS_ENV = "HIPPOGRAPH_PLUGINS"

if TYPE_CHECKING:
    from hippograph.config import Config
    from hippograph.types import Passage, PassageFacts

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str, entry: T | str) -> T | str:
        """Add or replace `name`; `entry` is the object or its "module:attribute" path."""
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise InputError(f"unknown {self.kind} {name!r}; registered: {', '.join(sorted(self._entries))}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, attribute = entry.split(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attribute)
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


def _no_setup(config: "Config") -> None:
    pass


@dataclass(frozen=True)
class Extractor:
    """A triple extractor: `extract(passages, config, progress)` gives one PassageFacts per passage, in
    order. `version` is part of every document's index key, so a new version indexes documents again, and
    so are the values of the `Config` options named in `options` (those that shape its output, e.g. the
    LLM model); `setup(config)` loads its models (index runs time it apart from the stage)."""

    name: str
    version: int | str
    extract: Callable[[Sequence["Passage"], "Config", bool], list["PassageFacts"]]
    setup: Callable[["Config"], None] = _no_setup
    options: tuple[str, ...] = ()

    def __call__(self, passages: Sequence["Passage"], config: "Config", progress: bool = False) -> list["PassageFacts"]:
        return self.extract(passages, config, progress)


extractors: Registry[Extractor] = Registry("extractor")
extractors.register("spacy", "hippograph.pipeline.extract:spacy_extractor")
extractors.register("llm", "hippograph.pipeline.llm_extract:llm_extractor")

retrievers: Registry[Any] = Registry("mode")
retrievers.register("bm25", "hippograph.retrievers:BM25Retriever")
retrievers.register("dense", "hippograph.retrievers:DenseRetriever")
retrievers.register("hipporag", "hippograph.retrievers:HippoRAGRetriever")
retrievers.register("memory", "hippograph.retrievers:MemoryRetriever")
retrievers.register("memorag", "hippograph.retrievers:MemoRAGRetriever")


def register_extractor(name: str, version: int | str = 1, options: Sequence[str] = ()) -> Callable:
    """Decorator: register `extract(passages, config, progress) -> list[PassageFacts]` as extractor `name`.

    `version` is part of every document's index key: bump it when the extractor's output changes, and
    documents indexed with the old one are indexed again; so are the `Config` options named in `options`.
    `Config(extractor=name)` selects it.
    """
    def decorate(function: Callable) -> Callable:
        extractors.register(name, Extractor(name, version, function, options=tuple(options)))
        return function

    return decorate


def register_retriever(name: str) -> Callable[[type], type]:
    """Class decorator: register a `hippograph.retrievers.Retriever` subclass as query mode `name`."""

    def decorate(cls: type) -> type:
        retrievers.register(name, cls)
        return cls

    return decorate


def load_plugins(modules: str | None = None) -> None:
    """Import the modules that register a user's extractors and retrievers: `modules`, or
    $HIPPOGRAPH_PLUGINS, as comma-separated module names."""
    names = os.environ.get(PLUGINS_ENV, "") if modules is None else modules
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise InputError(f"cannot import plugin module {name!r} (from ${PLUGINS_ENV}): {error}") from None
