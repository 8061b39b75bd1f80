"""Exact cosine top-k over unit vectors: one engine for passages, facts, phrases (and any later keys).

Scoring 75k facts reads 115 MB per query, which is memory-bound: PyTorch's product streams it on every
core, where NumPy's BLAS runs single-threaded during a query (see `Memory.retrieve_many`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


class CosineIndex:
    """Rows of L2-normalised vectors; queries are L2-normalised too, so a dot product is the cosine."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with warnings.catch_warnings():  # stored vectors are read-only; the index only reads them too
            warnings.filterwarnings("ignore", "The given NumPy array is not writable")
            self._rows = torch.from_numpy(self.vectors)

    def __len__(self) -> int:
        return len(self.vectors)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of every row to `query`."""
        return self.scores_many(query[None, :])[0]

    def scores_many(self, queries: np.ndarray) -> np.ndarray:
        """(queries, rows) cosines."""
        if len(self.vectors) == 0:
            return np.zeros((len(queries), 0), np.float32)
        return (self._rows @ torch.from_numpy(np.ascontiguousarray(queries.T, dtype=np.float32))).T.numpy()

    def top(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(row, cosine) of the k rows closest to `query`, best first; ties keep the lower row first."""
        return self.top_many(query[None, :], k)[0]

    def top_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """`top` of each row of `queries`."""
        if min(k, len(self.vectors)) <= 0:
            return [[] for _ in queries]
        return [[(int(row), float(scores[row])) for row in top_k(scores, k)] for scores in self.scores_many(queries)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; ties keep the lower index first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(scores).any():  # a NaN ranks last, rather than making every comparison false
        scores = np.nan_to_num(scores, nan=-np.inf)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    # argpartition picks arbitrarily among scores equal to the k-th: widen to every tie before ranking
    kth = scores[candidates].min()
    candidates = np.flatnonzero(scores >= kth)
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]
