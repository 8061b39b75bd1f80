"""MemoRAG's clues without a language model: plain functions over plain data.

MemoRAG's memory model answers a question with clues, one per line: spans of the corpus that would help,
surrogate questions (more precise rewrites) and a draft answer. Lines of three words or fewer are
dropped; the draft answer and the question itself are always added; each clue then retrieves on its own.

Offline, the clues come from the global memory (`hippograph.retrievers.MemoRAGRetriever`):
- spans: the statement of each memory nearest the question that matched it best (`offline_clues`,
  the one place where a language model's clue writer plugs in: same arguments, same result; with
  `clue_writer="llm"`, `hippograph.answers.llm_clue_writer` asks the LLM for spans, sharper questions and
  a draft answer instead);
- surrogate questions: the question with a bridge entity, found in the facts of the first round's
  evidence, in place of the phrase that describes it ("the designer of the Veloria Bridge" -> "Ada Marsh");
- the draft answer (`hippograph.draft`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from hippograph.types import Clue, DraftAnswer

MIN_CLUE_WORDS = 4  # MemoRAG drops clue lines of three words or fewer
RELATED = "related to"  # the extractor's co-occurrence predicate


@dataclass(frozen=True)
class MemoryGist:
    """A memory near the question, as clue writers see it: its gist, and the statement (gist or key fact)
    of its that matched the question best."""

    doc_id: str
    title: str
    gist: str
    statement: str
    score: float


# A clue writer: (question, the gists of the memories nearest it) -> clues. An LLM writer would prompt
# for spans, surrogate questions and a draft answer over these gists and return one Clue per line.
ClueWriter = Callable[[str, Sequence[MemoryGist]], list[Clue]]


def offline_clues(question: str, memories: Sequence[MemoryGist]) -> list[Clue]:
    """Span clues: each nearby memory's best-matching statement, with its title when the statement does
    not name it (a key fact such as "ada marsh born in kettleby" does; "was a town" does not)."""
    clues = []
    for memory in memories:
        statement = memory.statement
        if memory.title and memory.title.lower() not in statement.lower():
            statement = f"{memory.title}: {statement}"
        clues.append(Clue(statement, "span", max(memory.score, 0.0)))
    return clues


def assemble_clues(
    question: str, clues: Iterable[Clue], draft: DraftAnswer | None = None, draft_weight: float = 1.0
) -> list[Clue]:
    """The question first, then the clues of more than three words, each once, then the draft answer."""
    kept, seen = [Clue(question, "question")], {_key(question)}
    for clue in clues:
        if len(clue.text.split()) >= MIN_CLUE_WORDS and _key(clue.text) not in seen:
            kept.append(clue)
            seen.add(_key(clue.text))
    if draft is not None and draft.text and _key(draft.text) not in seen:
        kept.append(Clue(draft.text, "draft", draft_weight))
    return kept


def bridge_entities(
    anchors: Collection[str],
    facts: Iterable[tuple[str, str, str, float]],
    is_name: Callable[[str], bool],
    limit: int,
) -> list[tuple[str, str, float]]:
    """(anchor, bridge, score): for facts (subject, predicate, object, score) with one end an anchor (a
    phrase the question names) and the other a name the question does not hold, that other end; the best
    `limit` bridges by their best fact, parsed facts before co-occurrences ("related to"), then by score.
    Dates and numbers bridge nothing ("1902" names too much)."""
    best: dict[str, tuple[tuple[bool, float], str]] = {}
    for subject, predicate, obj, score in facts:
        rank = (predicate != RELATED, score)
        for anchor, other in ((subject, obj), (obj, subject)):
            if anchor in anchors and other not in anchors and not any(ch.isdigit() for ch in other) and is_name(other):
                if other not in best or rank > best[other][0]:
                    best[other] = (rank, anchor)
    ranked = sorted(best.items(), key=lambda item: item[1][0], reverse=True)[:limit]
    return [(anchor, bridge, rank[1]) for bridge, (rank, anchor) in ranked]


def described_span(doc, anchor: str) -> tuple[int, int] | None:
    """Where a question (`doc`, its spaCy parse) describes an entity through `anchor`: the characters of
    "the designer of the Veloria Bridge", "the Veloria Bridge's designer" or "the town where Ada Marsh
    was born"; None when the anchor is not there or the parse shows no such phrase."""
    found = re.search(r"\b" + r"\W+".join(map(re.escape, anchor.split())) + r"\b", doc.text, re.IGNORECASE)
    if found is None:
        return None
    span = doc.char_span(found.start(), found.end(), alignment_mode="expand")
    described = _described_noun(span.root) if span is not None else None
    if described is None:
        return None
    end = max(span.end, described.i + 1, *(c.right_edge.i + 1 for c in described.rights if c.dep_ == "relcl"))
    return doc[described.left_edge.i].idx, doc[end - 1].idx + len(doc[end - 1].text)


def surrogate_question(question: str, described: tuple[int, int] | None, bridge: str) -> str:
    """`question` with the `described` characters replaced by `bridge`, or with `bridge` added."""
    if described is None:
        return f"{question} {bridge}"
    start, end = described
    return f"{question[:start]}{bridge}{question[end:]}"


def _described_noun(root):
    """The noun an entity qualifies: "designer" in "the designer of X" or "X's designer", "town" in "the
    town where X was born"."""
    head = root.head
    if root.dep_ == "pobj" and head.dep_ == "prep" and head.lower_ == "of" and head.head.pos_ in ("NOUN", "PROPN"):
        return head.head if head.head.i != head.i else None
    if root.dep_ == "poss" and head.pos_ in ("NOUN", "PROPN"):
        return head
    if root.dep_ in ("nsubj", "nsubjpass", "dobj") and head.dep_ == "relcl" and head.head.pos_ in ("NOUN", "PROPN"):
        return head.head
    return None


def _key(text: str) -> str:
    return " ".join(text.lower().split())
