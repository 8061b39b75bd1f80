"""Synonym edges: pairs of phrases whose embeddings are close (HippoRAG 2: cosine >= 0.8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_BLOCK = 1024  # rows per matrix product, bounding memory at BLOCK x phrases floats


def synonym_edges(
    new_phrases: Sequence[str],
    new_vectors: np.ndarray,
    all_phrases: Sequence[str],
    all_vectors: np.ndarray,
    threshold: float = 0.8,
    top_k: int = 100,
    min_chars: int = 3,
) -> list[tuple[str, str, float]]:
    """Edges from each new phrase to its closest phrases in `all_phrases` (which includes the new ones).

    Each pair appears once, as (smaller, larger). Only `synonym_candidate` phrases take part.
    """
    eligible_new = [i for i, p in enumerate(new_phrases) if synonym_candidate(p, min_chars)]
    eligible_all = np.array([i for i, p in enumerate(all_phrases) if synonym_candidate(p, min_chars)], dtype=np.int64)
    if not eligible_new or len(eligible_all) == 0:
        return []
    candidates = all_vectors[eligible_all]
    edges: dict[tuple[str, str], float] = {}
    for start in range(0, len(eligible_new), _BLOCK):
        rows = eligible_new[start : start + _BLOCK]
        similarity = new_vectors[rows] @ candidates.T
        for row, scores in zip(rows, similarity):
            phrase = new_phrases[row]
            hits = np.flatnonzero(scores >= threshold)
            if len(hits) > top_k + 1:
                hits = hits[np.argsort(-scores[hits])[: top_k + 1]]
            for hit in hits:
                other = all_phrases[eligible_all[hit]]
                if other != phrase:
                    edges[(min(phrase, other), max(phrase, other))] = float(scores[hit])
    return [(a, b, s) for (a, b), s in sorted(edges.items())]


def synonym_candidate(phrase: str, min_chars: int = 3) -> bool:
    """Whether embedding similarity can tell if this phrase names the same thing as another.

    Not for short phrases ("us", "a1"), whose embeddings are close to too much, nor for phrases with
    digits: embeddings barely see numbers, so "heinkel hd 23" and "heinkel hd 26", or two dates,
    look like synonyms while naming different things.
    """
    return sum(ch.isalnum() for ch in phrase) >= min_chars and not any(ch.isdigit() for ch in phrase)
