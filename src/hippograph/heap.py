"""Freed memory handed back to the operating system once a query process has built what it keeps.

Reading a snapshot and building a mode's indexes (the graph, its transition matrix, BM25's matrix) make
large temporary structures. Arrow's pool keeps the buffers it freed for reuse, and glibc's malloc keeps
freed heap pages: a long-lived query process would stay as large as its loading peak (the figures:
`benchmarks/results/query_memory.md`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

import pyarrow as pa


def release_freed_memory() -> None:
    """Hand Arrow's unused buffers and malloc's free heap pages back to the operating system."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's `malloc_trim`, or None with another C library (musl, macOS), whose allocator is left alone."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
