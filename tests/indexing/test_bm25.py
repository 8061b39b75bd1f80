"""BM25Index precomputes rank-bm25's Okapi scores into a sparse matrix; its scores must equal rank-bm25's own."""

from __future__ import annotations

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from hippograph.indexing.bm25 import BM25Index, tokenize

TEXTS = [
    "Veloria Bridge\nThe Veloria Bridge is a steel arch road bridge that crosses the river Orne at Port Veloria.",
    "Ada Marsh\nAda Marsh was an engineer. She designed the Veloria Bridge and was born in Kettleby.",
    "Kettleby\nKettleby is a small town in the Orne valley; its mayor in 1902 was Tobias Wren.",
    "Kettleby Gazette\nThe Kettleby Gazette is a weekly newspaper founded by Tobias Wren. Wren, Wren and Wren!",
    "Greythorn Hills\nThe Greythorn Hills contain the source of the river Orne and once had coal pits.",
    "Dunmere\nDunmere is the largest city in the Orne valley and the county seat of Orne County.",
]

QUERIES = [
    "Who designed the Veloria Bridge?",
    "bridge bridge bridge",  # a repeated term counts each time
    "Orne Orne valley",
    "the the the of",  # terms in (nearly) every text: rank-bm25's epsilon idf floor
    "zygomorphic quokka",  # only unknown terms
    "Tobias Wren zygomorphic mayor",  # known and unknown terms
    "KETTLEBY, kettleby!",  # case and punctuation
    "",
]


def reference_scores(texts, query):
    return BM25Okapi([tokenize(t) for t in texts]).get_scores(tokenize(query))


def test_tokenize_lowercases_and_splits_on_non_word_characters():
    assert tokenize("The Veloria-Bridge, (1897)!") == ["the", "veloria", "bridge", "1897"]
    assert tokenize("  ") == []


@pytest.mark.parametrize("query", QUERIES)
def test_scores_equal_rank_bm25(query):
    ours = BM25Index(TEXTS).scores(query)
    expected = reference_scores(TEXTS, query)
    assert ours.shape == (len(TEXTS),)
    assert np.allclose(ours, expected, rtol=1e-9, atol=1e-12), (ours, expected)


def test_reference_comparison_is_not_trivial():
    """The queries above do separate the texts: not every score vector is flat."""
    scores = [reference_scores(TEXTS, q) for q in QUERIES]
    assert sum(np.ptp(s) > 0 for s in scores) >= 5
    assert np.ptp(reference_scores(TEXTS, "the the the of")) > 0  # idf floor keeps common terms non-zero


def test_repeated_query_terms_add_up():
    index = BM25Index(TEXTS)
    once, twice = index.scores("bridge"), index.scores("bridge bridge")
    assert once.max() > 0
    assert np.allclose(twice, 2 * once)


def test_unknown_terms_score_zero():
    index = BM25Index(TEXTS)
    assert np.array_equal(index.scores("zygomorphic quokka"), np.zeros(len(TEXTS)))
    assert np.allclose(index.scores("Tobias zygomorphic"), index.scores("Tobias"))


def test_best_match_ranks_first():
    scores = BM25Index(TEXTS).scores("Who was mayor of Kettleby in 1902?")
    assert int(np.argmax(scores)) == 2


def test_scores_equal_rank_bm25_when_a_passage_has_no_words():
    """A passage of punctuation only ("— …") has no tokens; the module promises rank-bm25's scores all the same."""
    texts = TEXTS[:3] + ["— … —"] + TEXTS[3:]
    for query in ("Veloria Bridge", "Orne valley", "Tobias Wren"):
        assert np.allclose(BM25Index(texts).scores(query), reference_scores(texts, query)), query


def test_a_corpus_of_passages_without_words_scores_zero():
    assert np.array_equal(BM25Index(["...", "!!"]).scores("anything"), np.zeros(2))
