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
    # Most documents fit in one passage, which is their text with its whitespace collapsed (what joining
    # their sentences gives): one batched count finds them, and only the rest meet the sentencizer, which
    # cost about a millisecond a document.
    whole_texts = [" ".join(d.text.split()) for d in documents]
    whole_tokens = count_tokens(whole_texts)
    for document, whole_text, text_cost, title_cost in zip(documents, whole_texts, whole_tokens, title_tokens):
        budget = max(max_tokens - title_cost - 1, _MIN_BUDGET)
        if text_cost <= budget:
            chunks = [whole_text] if whole_text else []
        else:
            chunks = _pack(_spaced_sentences(document.text), count_tokens, budget)
        passages.extend(
            Passage(f"{document.doc_id}#{i}", document.doc_id, i, document.title, chunk) for i, chunk in enumerate(chunks)
        )
    return passages


def sentences(text: str) -> list[str]:
    """The sentences of a text, paragraph by paragraph (a rule-based sentencizer: no model)."""
    return [sentence for sentence, _ in _spaced_sentences(text)]


def _spaced_sentences(text: str) -> list[tuple[str, str]]:
    """Each sentence with what follows it in the whitespace-collapsed text: a space, or nothing where
    the sentencizer cut between two characters (`album. "` | `When ...`), so passages keep the text as
    it was written."""
    sentencizer = _sentencizer()
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        for segment in _segments(" ".join(paragraph.split())):
            spans = [s for s in sentencizer(segment).sents if s.text.strip()]
            found.extend((s.text, " " if s.text_with_ws != s.text or i == len(spans) - 1 else "") for i, s in enumerate(spans))
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


def _pack(sentences: list[tuple[str, str]], count_tokens: TokenCounter, max_tokens: int) -> list[str]:
    """Greedily fill chunks with consecutive sentences, each followed by its spacing."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for piece, spacing, tokens in _fitting_pieces(sentences, count_tokens, max_tokens):
        if current and used + tokens > max_tokens:
            chunks.append("".join(current).rstrip())
            current, used = [], 0
        current.append(piece + spacing)
        used += tokens
    if current:
        chunks.append("".join(current).rstrip())
    return chunks


def _fitting_pieces(
    sentences: list[tuple[str, str]], count_tokens: TokenCounter, max_tokens: int
) -> Iterator[tuple[str, str, int]]:
    """Sentences, and the pieces of those over the budget: each with its spacing and word pieces."""
    for (sentence, spacing), tokens in zip(sentences, count_tokens([s for s, _ in sentences])):
        if tokens <= max_tokens:
            yield sentence, spacing, tokens
        else:
            pieces = list(_split_long_sentence(sentence, tokens, count_tokens, max_tokens))
            for i, (piece, piece_tokens) in enumerate(pieces):
                yield piece, spacing if i == len(pieces) - 1 else " ", piece_tokens


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
