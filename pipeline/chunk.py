"""Sentence-aware chunking under a token budget, so no passage is truncated by the embedder."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence

from hippograph.types import Document, Passage

TokenCounter = Callable[[Sequence[str]], list[int]]

# spaCy refuses texts over 1M characters; paragraphs are split out first, and over-long ones cut here.
_MAX_SEGMENT_CHARS = 100_000
_MIN_BUDGET = 32  # even under an absurdly long title, passages keep some text


def chunk_documents(documents: Sequence[Document], count_tokens: TokenCounter, max_tokens: int = 254) -> list[Passage]:
    """Split each document into passages of whole sentences that, with the title, fit `max_tokens` word pieces.

    Passages are embedded as "title\ntext", so the title's tokens come off each document's budget.
    A sentence longer than the budget is cut at word boundaries, and a word longer than the budget (a
    long run without spaces) between characters. Passage ids are `doc_id#position`,
    stable as long as the document's text is.
    """
    passages: list[Passage] = []
    title_tokens = count_tokens([d.title for d in documents])
    for document, title_cost in zip(documents, title_tokens):
        budget = max(max_tokens - title_cost - 1, _MIN_BUDGET)
        chunks = _pack(sentences(document.text), count_tokens, budget)
        passages.extend(
            Passage(f"{document.doc_id}#{i}", document.doc_id, i, document.title, chunk) for i, chunk in enumerate(chunks)
        )
    return passages


def sentences(text: str) -> list[str]:
    """The sentences of a text, paragraph by paragraph (a rule-based sentencizer: no model)."""
    sentencizer = _sentencizer()
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        for segment in _segments(" ".join(paragraph.split())):
            found.extend(s.text for s in sentencizer(segment).sents if s.text.strip())
    return found


def _segments(paragraph: str) -> Iterator[str]:
    """Pieces of at most _MAX_SEGMENT_CHARS, cut at a space where there is one."""
    while len(paragraph) > _MAX_SEGMENT_CHARS:
        cut = paragraph.rfind(" ", 0, _MAX_SEGMENT_CHARS)
        cut = cut if cut > 0 else _MAX_SEGMENT_CHARS
        yield paragraph[:cut]
        paragraph = paragraph[cut:].lstrip()
    if paragraph:
        yield paragraph


def _pack(sentences: list[str], count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Greedily fill chunks with consecutive sentences."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for sentence, tokens in _fitting_pieces(sentences, count_tokens, max_tokens):
        if current and used + tokens > max_tokens:
            chunks.append(" ".join(current))
            current, used = [], 0
        current.append(sentence)
        used += tokens
    if current:
        chunks.append(" ".join(current))
    return chunks


def _fitting_pieces(sentences: list[str], count_tokens: TokenCounter, max_tokens: int) -> Iterator[tuple[str, int]]:
    for sentence, tokens in zip(sentences, count_tokens(sentences)):
        if tokens <= max_tokens:
            yield sentence, tokens
        else:
            yield from _split_long_sentence(sentence, tokens, count_tokens, max_tokens)


def _split_long_sentence(
    sentence: str, tokens: int, count_tokens: TokenCounter, max_tokens: int, separator: str = " "
) -> Iterator[tuple[str, int]]:
    """Pieces of at most `max_tokens`, cut between words, or with `separator=""` between characters."""
    words = sentence.split() if separator else list(sentence)
    # Start from the average word-piece rate and shrink until each piece fits.
    per_piece = max(1, int(len(words) * max_tokens / tokens * 0.9))
    start = 0
    while start < len(words):
        size = per_piece
        while True:
            piece = separator.join(words[start : start + size])
            piece_tokens = count_tokens([piece])[0]
            if piece_tokens <= max_tokens or size == 1:
                break
            size = max(1, int(size * 0.8))
        if piece_tokens > max_tokens and separator:  # one word over the budget: a run without spaces
            yield from _split_long_sentence(piece, piece_tokens, count_tokens, max_tokens, separator="")
        else:
            yield piece, piece_tokens
        start += size


@functools.lru_cache(maxsize=1)
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = _MAX_SEGMENT_CHARS + 1
    return nlp
