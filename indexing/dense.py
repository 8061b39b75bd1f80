"""Dense retrieval: cosine similarity of normalised vectors, and top-k selection shared by every mode."""

from __future__ import annotations

import numpy as np


class DenseIndex:
    def __init__(self, embeddings: np.ndarray):
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)

    def scores(self, query_vector: np.ndarray) -> np.ndarray:
        """Cosine similarity of every passage to the query (vectors are L2-normalised)."""
        return self.embeddings @ query_vector.astype(np.float32)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; ties keep the lower index first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return candidates[np.lexsort((candidates, -scores[candidates]))]
