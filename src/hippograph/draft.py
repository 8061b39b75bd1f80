"""Draft answers without a language model: the span of the evidence whose type fits the question.

    who -> PERSON/ORG, when -> DATE, where -> GPE/LOC/FAC, how many -> CARDINAL, "which town" -> a place...;
    else the phrase that completes the fact that best matches the question.

Among the entities of the expected type in the top passages, the draft is the one whose sentence shares
most of the question's relation words ("born", "mayor", "founded": its words that are not names), then
most of the names it holds, earlier passages winning ties; what the question names is never its answer. `memorag` uses it as a clue, and
`hippograph answer` can use it when no language model is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from hippograph.types import DraftAnswer, EntityMention, Retrieval

if TYPE_CHECKING:
    from spacy.tokens import Doc

PLACE = frozenset({"GPE", "LOC", "FAC"})
PERSON_OR_GROUP = frozenset({"PERSON", "ORG", "NORP"})
_NOUN_TYPES = {
    PLACE: "town city country village state county region place island river province district capital "
           "birthplace area continent location nation municipality settlement",
    frozenset({"PERSON"}): "man woman person singer actor actress author writer director player politician "
                           "designer engineer founder king queen president leader architect composer artist "
                           "musician producer poet painter chairman mayor principal father mother son daughter "
                           "wife husband brother sister scientist member",
    frozenset({"ORG"}): "company band team newspaper organization organisation university college school "
                        "institution club party group label firm studio network airline publisher magazine "
                        "agency corporation business brand",
    frozenset({"DATE"}): "year date decade century month day era period",
    frozenset({"WORK_OF_ART"}): "film movie book album song novel show series play opera painting",
    frozenset({"LANGUAGE", "NORP"}): "language nationality",
}
_NOUN_LABELS = {noun: labels for labels, nouns in _NOUN_TYPES.items() for noun in nouns.split()}
_WH_NOUN = re.compile(r"\b(?:which|what)\s+(\w+)(?:\s+(\w+))?")
_WORD = re.compile(r"[^\W_]+")
_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how is was are were did does do the a an of in on at to for by "
    "with from and or that this as its it his her their be been has had have".split()
)
_DEPTH = 5  # passages searched for the answer


def expected_labels(question: str) -> frozenset[str] | None:
    """spaCy entity labels an answer to `question` has, or None when its form does not say."""
    text = question.lower()
    if "how many" in text:
        return frozenset({"CARDINAL"})
    if "how much" in text:
        return frozenset({"MONEY", "QUANTITY", "CARDINAL"})
    if re.search(r"\bwhen\b", text):
        return frozenset({"DATE"})
    for match in _WH_NOUN.finditer(text):  # "in which town", "which small town"
        for noun in match.groups():
            if noun in _NOUN_LABELS:
                return _NOUN_LABELS[noun]
    if re.search(r"\bwhere\b", text):
        return PLACE
    if re.search(r"\bwho(m|se)?\b", text):
        return PERSON_OR_GROUP
    return None


def draft_answer(
    question: str, retrieval: Retrieval, spacy_model: str = "en_core_web_sm",
    parse: Callable[[Sequence[str]], Mapping[str, Doc]] | None = None,
    stored: Callable[[str], Sequence[EntityMention] | None] | None = None,
) -> DraftAnswer:
    """The draft answer to `question` from `retrieval`'s top passages, and the passage it came from.
    `stored` (passage id -> its entity mentions, or None) gives the entities the index found; passages
    it lacks are parsed: by `parse` (texts -> text: spaCy doc), which may hold docs parsed before, or
    else by `spacy_model`."""
    passages = retrieval.passages[:_DEPTH]
    if not passages:
        return DraftAnswer("")
    labels = expected_labels(question)
    if labels is not None:
        mentions = _mentions(passages, parse or _parser(spacy_model), stored)
        typed = _typed_answer(question, passages, labels, mentions)
        if typed is not None:
            return typed
    return _fact_completion(question, retrieval)


def _parser(spacy_model: str) -> Callable[[Sequence[str]], dict[str, Doc]]:
    """Parses texts with `spacy_model`, loaded on the first call (stored entities may leave none to parse)."""

    def parse(texts: Sequence[str]) -> dict[str, Doc]:
        from hippograph.pipeline.extract import load_spacy

        return dict(zip(texts, load_spacy(spacy_model).pipe(texts)))

    return parse


def _mentions(passages: Sequence, parse, stored) -> list[list[tuple[str, str, str]]]:
    """(entity, label, sentence) for each entity of each passage: as stored, else from a parse."""
    known = [stored(p.passage_id) if stored else None for p in passages]
    unknown = [p.text for p, mentions in zip(passages, known) if mentions is None]
    docs = parse(unknown) if unknown else {}
    return [
        [(e.text, e.label_, e.sent.text) for e in docs[p.text].ents] if mentions is None else
        [(p.text[m.start_char : m.end_char], m.label, p.text[m.sentence_start : m.sentence_end]) for m in mentions]
        for p, mentions in zip(passages, known)
    ]


def _typed_answer(
    question: str, passages: Sequence, labels: frozenset[str], mentions: list[list[tuple[str, str, str]]]
) -> DraftAnswer | None:
    words = question.split()
    names = _stems(" ".join(w for w in words[1:] if w[:1].isupper()))  # capitalised after the first word
    relation = _stems(question) - _stems(" ".join(_QUESTION_WORDS)) - names
    named = question.lower()
    best, best_score = None, None
    for rank, (passage, entities) in enumerate(zip(passages, mentions)):
        for text, label, sentence_text in entities:
            if label not in labels or text.lower() in named:
                continue
            sentence = _stems(sentence_text)
            score = (len(relation & sentence), len(names & sentence), -rank)
            if best_score is None or score > best_score:
                best, best_score = DraftAnswer(text, passage.doc_id, passage.passage_id), score
    return best


def _fact_completion(question: str, retrieval: Retrieval) -> DraftAnswer:
    """The end of the best-matching fact that the question does not name, as the evidence spells it."""
    named = set(_words(question))
    for fact in sorted(retrieval.facts, key=lambda f: -f.score):
        for end, other in ((fact.object, fact.subject), (fact.subject, fact.object)):
            if set(_words(end)) <= named or not set(_words(other)) & named:
                continue
            for passage in retrieval.passages[:_DEPTH]:
                found = re.search(re.escape(end), passage.text, re.IGNORECASE)
                if found:
                    return DraftAnswer(found.group(0), passage.doc_id, passage.passage_id)
    return DraftAnswer("")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _stems(text: str) -> set[str]:
    """Crude stems (the first five letters), so "designer" meets "designed" and "founder" "founded"."""
    return {w[:5] for w in _words(text)}
