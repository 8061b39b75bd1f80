"""Cosine top-k over unit vectors: one engine for passages, facts, phrases and memory keys, in two forms.

- float32 rows (`CosineIndex(array)`): passages and memory keys, which are few (about one a passage) and
  whose every cosine is consumed (dense scores, PageRank seeds, memory rankings).
- compact rows (`CosineIndex(CompactVectors)`): facts and phrases, the mass (about 20 a passage). Each row
  is two int8 codes with a scale each, x ≈ scale·codes + residual_scale·residual: 2·dim + 16 bytes instead
  of 4·dim. `top` scans the first code only (a quarter of float32's bytes to read), then rescores with
  both codes every row that a bound says could be in the top k, so its top k is exactly the top k of the
  two-code cosines, which lie within about 1e-5 of the float32 ones (the residual's own rounding).

Scoring 75k float32 facts reads 115 MB per query, which is memory-bound: PyTorch's product streams it on
every core, where NumPy's BLAS runs single-threaded during a query (see `Memory.retrieve_many`).
"""

from __future__ import annotations

import functools
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from hippograph.indexing.compact import BLOCK_ROWS, CompactVectors, quantize

# Float32 rounding of a scanned cosine, relative to |scale·codes|·|query|: the int8 dot product is exact
# (an int32 below 2^24, so exact in float32 too), and two products by scales round by 2^-23 at most; far
# below the slack the codes themselves need (about 1e-2), so it widens the candidates by nothing.
_ROUNDING = 1e-6


class CosineIndex:
    """Rows of L2-normalised vectors; queries are L2-normalised too, so a dot product is the cosine.
    `vectors`: a float32-able (rows, dim) array, or `CompactVectors` for the compact form."""

    def __init__(self, vectors: np.ndarray | CompactVectors):
        self.compact = vectors if isinstance(vectors, CompactVectors) else None
        if self.compact is None:
            self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            with warnings.catch_warnings():  # stored vectors are read-only; the index only reads them too
                warnings.filterwarnings("ignore", "The given NumPy array is not writable")
                self._rows = torch.from_numpy(self.vectors)
        else:
            # The most a scanned cosine lies from the two-code one (see `_candidates`), over the rows.
            finite = np.isfinite(self.compact.scales)
            self._max_bound = float(self.compact.bounds[finite].max(initial=0.0))
            self._max_code_norm = float(self.compact.code_norms[finite].max(initial=0.0))

    def __len__(self) -> int:
        return len(self.compact) if self.compact is not None else len(self.vectors)

    @property
    def nbytes(self) -> int:
        """Bytes the index holds for its rows."""
        return self.compact.nbytes if self.compact is not None else self.vectors.nbytes

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of every row to `query`."""
        return self.scores_many(query[None, :])[0]

    def scores_many(self, queries: np.ndarray) -> np.ndarray:
        """(queries, rows) cosines (of a compact index: its two-code cosines, a scan of both codes)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if len(self) == 0:
            return np.zeros((len(queries), 0), np.float32)
        if self.compact is None:
            return (self._rows @ torch.from_numpy(np.ascontiguousarray(queries.T))).T.numpy()
        return np.concatenate([
            self.compact.decoded(slice(start, start + BLOCK_ROWS)) @ queries.T.astype(np.float64)
            for start in range(0, len(self), BLOCK_ROWS)
        ]).T.astype(np.float32)

    def top(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the k rows closest to `query`, best first; ties keep the lower row first."""
        return self.top_many(query[None, :], k)[0]

    def top_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """`top` of each row of `queries`."""
        k = min(k, len(self))
        if k <= 0:
            return [[] for _ in queries]
        if self.compact is None:
            return [_ranked(scores, None, k) for scores in self.scores_many(queries)]
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        return [self._rescored(query, rows, k) for query, rows in zip(queries, self._candidates(queries, k))]

    def _candidates(self, queries: np.ndarray, k: int) -> list[np.ndarray]:
        """For each query, every row whose two-code cosine could be among the k best. A scan of the first
        codes with the query quantised to int8 too gives each row's cosine within a slack: the residual's
        norm, the query's quantisation error times the codes' norm, and float32 rounding. A row whose
        scanned cosine is more than twice the largest slack below the k-th best scanned cosine cannot be in
        the top k. For the 5 best of the 2wiki store's 75k facts: 19 rows at the median, 54 at most."""
        compact = self.compact
        query_codes, query_scales, query_errors = _quantized_queries(queries)
        norms = np.linalg.norm(queries, axis=1)
        dots = _int8_dots(query_codes, compact.codes)  # (queries, rows)
        out, approx = [], np.empty(len(self), np.float32)
        for j, query_dots in enumerate(dots):
            np.multiply(query_dots, compact.scales, out=approx)
            approx *= query_scales[j]
            slack = self._max_bound * norms[j] + self._max_code_norm * (query_errors[j] + _ROUNDING * norms[j])
            if not np.isfinite(slack):  # a query that is not finite: every row, ranked as its NaN cosines
                out.append(np.arange(len(self)))
                continue
            kth = np.partition(np.nan_to_num(approx, nan=-np.inf), len(self) - k)[len(self) - k]
            # Rows that are not finite (NaN) stay out unless fewer than k rows are finite (kth is -inf).
            out.append(np.flatnonzero(approx >= kth - 2 * slack) if np.isfinite(kth) else np.arange(len(self)))
        return out

    def _rescored(self, query: np.ndarray, rows: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The top k of `rows` by their two-code cosines (in float64, a block of rows at a time)."""
        query = query.astype(np.float64)
        scores = np.concatenate([
            self.compact.decoded(rows[start : start + BLOCK_ROWS]) @ query for start in range(0, len(rows), BLOCK_ROWS)
        ])
        return _ranked(scores, rows, k)


def _quantized_queries(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Int8 codes and scales of the queries, and each one's quantisation error |query - scale·codes|
    (infinite for a query that is not finite)."""
    finite = np.isfinite(queries).all(axis=1)
    values = np.where(finite[:, None], queries, np.float32(0))
    codes, scales = quantize(values)
    errors = np.linalg.norm(values.astype(np.float64) - codes * scales[:, None].astype(np.float64), axis=1)
    return codes, scales, np.where(finite, errors * (1 + 1e-9), np.inf)


def _int8_dots(query_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(queries, rows) exact int8 dot products, by numkong's SIMD kernels (picked at run time for the CPU
    family), the rows split among as many threads as PyTorch uses (numkong releases the GIL). One or two
    queries: row by row (cdist), 3 ms of CPU for 75k rows; more: as a matrix product over the queries
    packed in its tiles, 1 ms a query for 32, where row by row would take 3 each."""
    import numkong

    bounds = np.linspace(0, len(codes), min(_workers(), len(codes)) + 1).astype(int)
    parts = list(zip(bounds[:-1], bounds[1:]))
    if len(query_codes) <= 2:
        chunks = _pool().map(lambda part: np.asarray(numkong.cdist(query_codes, codes[part[0] : part[1]], metric="dot")), parts)
        return np.concatenate(list(chunks), axis=1)
    packed, out = numkong.dots_pack(query_codes), numkong.empty((len(codes), len(query_codes)), dtype="int32")
    list(_pool().map(lambda part: numkong.dots_packed(codes, packed, out=out, start_row=int(part[0]), end_row=int(part[1])), parts))
    return np.asarray(out).T


def _workers() -> int:
    return max(1, torch.get_num_threads())


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(_workers(), thread_name_prefix="hippograph-scan")


def _ranked(scores: np.ndarray, rows: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """(row, score) of the k best of `scores` (one per entry of `rows`, or per row), best first, ties by
    the lower row."""
    best = top_k(scores, k, order=rows)
    return [(int(i if rows is None else rows[i]), float(scores[i])) for i in best]


def top_k(scores: np.ndarray, k: int, order: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k highest scores, best first; ties keep the lower index (or the lower `order`) first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(scores).any():  # a NaN ranks last, rather than making every comparison false
        scores = np.nan_to_num(scores, nan=-np.inf)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # argpartition picks arbitrarily among scores equal to the k-th: widen to every tie before ranking
    kth = scores[candidates].min()
    candidates = np.flatnonzero(scores >= kth)
    ties = candidates if order is None else order[candidates]
    return candidates[np.lexsort((ties, -scores[candidates]))][:k]
