"""BM25 over passages: rank-bm25's Okapi model, its scores precomputed into a sparse term-passage matrix.

rank-bm25 scores a query with a Python loop over every passage per query term; at 6k passages that is
tens of milliseconds. The model (idf with its floor, k1, b, lengths) is rank-bm25's own; only the
arithmetic is rearranged so a query is one sparse row-sum. The scores equal `BM25Okapi.get_scores` (a
test checks). Term counts are made with numpy, a passage at a time: rank-bm25 would keep a dict of them
per passage, and the millions of small objects it makes stay in a query process's heap even once freed
(`benchmarks/results/query_memory.md`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi
from scipy import sparse

_TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class _CountedOkapi(BM25Okapi):
    """rank-bm25's Okapi model over document frequencies counted elsewhere: its `_initialize` hook, which
    would count them from the token lists, takes (document frequency by term, passage lengths)."""

    def _initialize(self, counted: tuple[dict[str, int], np.ndarray]) -> dict[str, int]:
        document_frequencies, lengths = counted
        self.doc_len = lengths
        self.corpus_size = len(lengths)
        self.avgdl = float(lengths.sum()) / self.corpus_size
        return document_frequencies


class BM25Index:
    def __init__(self, texts: Sequence[str]):
        self.vocabulary, counts = _term_counts(texts)  # counts: (terms, passages), term frequency
        lengths = np.asarray(counts.sum(axis=0)).ravel()
        self.weights = counts.astype(np.float64)
        if not self.vocabulary:  # rank-bm25 divides by zero when no passage has a word; nothing can match
            return
        frequencies = dict(zip(self.vocabulary, np.diff(counts.indptr).tolist()))
        model = _CountedOkapi((frequencies, lengths))
        idf = np.array([model.idf[term] for term in self.vocabulary])
        k1, b = model.k1, model.b
        norm = k1 * (1 - b + b * lengths / model.avgdl)
        tf = self.weights.data
        terms = np.repeat(np.arange(len(idf)), np.diff(counts.indptr))
        self.weights.data = idf[terms] * tf * (k1 + 1) / (tf + norm[counts.indices])

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for the query (a term repeated in the query counts again)."""
        counts: dict[int, int] = {}
        for token in tokenize(query):
            row = self.vocabulary.get(token)
            if row is not None:
                counts[row] = counts.get(row, 0) + 1
        if not counts:
            return np.zeros(self.weights.shape[1])
        rows = np.fromiter(counts, dtype=np.int64)
        weights = np.fromiter(counts.values(), dtype=np.float64)
        return np.asarray(self.weights[rows].T @ weights).ravel()


def _term_counts(texts: Sequence[str]) -> tuple[dict[str, int], sparse.csr_matrix]:
    """Term ids (in order of first use) and a (terms, passages) matrix of how often each occurs."""
    vocabulary: dict[str, int] = {}
    term_ids = []
    for text in texts:  # a passage's token strings are freed before the next passage's are made
        tokens = tokenize(text)
        ids = (vocabulary.setdefault(token, len(vocabulary)) for token in tokens)
        term_ids.append(np.fromiter(ids, np.int32, len(tokens)))
    passages = np.repeat(np.arange(len(texts), dtype=np.int32), [len(ids) for ids in term_ids])
    terms = np.concatenate(term_ids) if term_ids else np.zeros(0, np.int32)
    counts = sparse.csr_matrix(
        (np.ones(len(terms), np.int32), (terms, passages)), shape=(len(vocabulary), len(texts))
    )
    counts.sum_duplicates()
    return vocabulary, counts
