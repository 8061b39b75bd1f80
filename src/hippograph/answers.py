"""What needs an LLM at query time: HippoRAG 2's recognition filter, MemoRAG's clues, and answers that cite
their passages.

    recognize(client, question, facts)  -> indices of up to 4 linked facts the LLM keeps, or None
    llm_clue_writer(client)             -> a ClueWriter: the LLM's spans, questions and draft answer
    answer(client, retrieval)           -> Answer: the LLM's answer, citing doc_ids of the given passages

All ask through `hippograph.llm` (cached, retried) and never fail a query: a reply that is still invalid
after one more try, or a server that is down, gives None (the retriever falls back to the default filter),
the offline clues, or an Answer without an answer that says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hippograph.clues import MIN_CLUE_WORDS, ClueWriter, MemoryGist, offline_clues
from hippograph.llm import InvalidReply, LLMClient, LLMUnavailable, ask, parse_json
from hippograph.pipeline.extract import normalize_phrase
from hippograph.types import Answer, Clue, Retrieval

# Bump when a prompt changes: part of every cache key, so no reply to the old prompt is reused.
RECOGNITION_PROMPT_VERSION = 1
ANSWER_PROMPT_VERSION = 1
CLUE_PROMPT_VERSION = 1
MAX_LLM_CLUES = 8  # a runaway reply retrieves no more than this
MAX_CLUE_CHARS = 300
MAX_KEPT_FACTS = 4  # HippoRAG 2 keeps up to 4 of the linked facts

DRAFT_ONLY = ("no LLM configured: this is the offline draft answer; set llm_base_url and llm_model "
              "(--config or $HIPPOGRAPH_CONFIG) for an LLM's cited answer")

RECOGNITION_SYSTEM = (
    "You help a search engine. Given a question and numbered facts, pick the facts that help answer the "
    f"question, at most {MAX_KEPT_FACTS}, most useful first. Only pick from the list; never write new facts. "
    "Reply with JSON only: {\"facts\": [numbers of the facts you keep]}."
)
ANSWER_SYSTEM = (
    "Answer the question from the passages given, and from nothing else. Keep the answer short: a name, a date, "
    "a number or a few words. Cite the passages the answer rests on by their id. Reply with JSON only: "
    "{\"answer\": \"...\", \"citations\": [\"passage id\", ...]}. If the passages do not answer the question, "
    "answer \"unknown\" with no citations."
)


# ---- the recognition filter -----------------------------------------------------------------------------


def recognition_messages(question: str, facts: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    listing = "\n".join(f"{number}. ({s}; {p}; {o})" for number, (s, p, o) in enumerate(facts, start=1))
    return [{"role": "system", "content": RECOGNITION_SYSTEM},
            {"role": "user", "content": f"Question: {question}\n\nFacts:\n{listing}"}]


def parse_kept_facts(content: str, facts: Sequence[tuple[str, str, str]]) -> list[int]:
    """Indices into `facts` of the facts a reply keeps, by number ("facts": [2, 1]) or by repeating the fact;
    at most `MAX_KEPT_FACTS`, never one that was not given. None kept is an invalid reply."""
    value = parse_json(content)
    items = value.get("facts", []) if isinstance(value, dict) else value if isinstance(value, list) else []
    by_text = {tuple(map(normalize_phrase, fact)): i for i, fact in enumerate(facts)}
    kept: dict[int, None] = {}
    for item in items if isinstance(items, list) else []:
        index = _fact_index(item, len(facts), by_text)
        if index is not None:
            kept[index] = None
    if not kept:
        raise InvalidReply(f"it kept none of the {len(facts)} facts by number")
    return list(kept)[:MAX_KEPT_FACTS]


def _fact_index(item: object, count: int, by_text: dict[tuple[str, ...], int]) -> int | None:
    if isinstance(item, str) and item.strip().isdigit():
        item = int(item)
    if isinstance(item, int) and not isinstance(item, bool):
        return item - 1 if 1 <= item <= count else None
    if isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item):
        return by_text.get(tuple(map(normalize_phrase, item)))
    return None


def recognize(client: LLMClient, question: str, facts: Sequence[tuple[str, str, str]]) -> list[int] | None:
    """Indices of the facts the LLM keeps for `question`; None when its reply was empty or invalid (twice)
    or the server failed, so the caller falls back to a filter without an LLM."""
    if not facts:
        return None
    try:
        return ask(client, recognition_messages(question, facts), f"recognition-{RECOGNITION_PROMPT_VERSION}",
                   lambda content: parse_kept_facts(content, facts))
    except (InvalidReply, LLMUnavailable):
        return None


# ---- MemoRAG's clues ------------------------------------------------------------------------------------

CLUE_SYSTEM = (
    "You are the memory of a library. Given notes on the documents nearest a question, write clues that would "
    "help find the passages that answer it: spans (statements those passages likely contain), questions "
    "(sharper rewrites that name what the question only describes) and your draft answer. Reply with JSON "
    'only: {"spans": ["..."], "questions": ["..."], "answer": "..."}.'
)


def clue_messages(question: str, memories: Sequence[MemoryGist]) -> list[dict[str, str]]:
    notes = "\n".join(f"- {m.title}: {m.gist}" for m in memories) or "(none)"
    return [{"role": "system", "content": CLUE_SYSTEM},
            {"role": "user", "content": f"Notes:\n{notes}\n\nQuestion: {question}"}]


def parse_clues(content: str) -> list[Clue]:
    """The clues of a reply: its questions (as surrogates), spans and answer (as a draft) of more than
    three words (MemoRAG drops the rest), at most `MAX_LLM_CLUES`, each clipped to `MAX_CLUE_CHARS`. A reply
    with none is invalid, so that a model that writes only fragments leaves the offline clues in place."""
    value = parse_json(content)
    if not isinstance(value, dict):
        raise InvalidReply('it held no {"spans": [...], "questions": [...], "answer": "..."} object')
    clues = []
    for key, kind in (("questions", "surrogate"), ("spans", "span"), ("answer", "draft")):
        items = value.get(key)
        for item in items if isinstance(items, list) else [items]:
            text = " ".join((_first_text(item) or "").split())
            if len(text.split()) >= MIN_CLUE_WORDS:
                clues.append(Clue(text[:MAX_CLUE_CHARS], kind))
    if not clues:
        raise InvalidReply(f"it held no clue of {MIN_CLUE_WORDS} words or more")
    return clues[:MAX_LLM_CLUES]


def llm_clue_writer(client: LLMClient) -> ClueWriter:
    """A clue writer (`hippograph.clues.ClueWriter`) that asks the LLM; where its reply is unusable twice,
    or the server is down, the offline clues stand in."""

    def write_clues(question: str, memories: Sequence[MemoryGist]) -> list[Clue]:
        try:
            return ask(client, clue_messages(question, memories), f"clues-{CLUE_PROMPT_VERSION}", parse_clues)
        except (InvalidReply, LLMUnavailable):
            return offline_clues(question, memories)

    return write_clues


# ---- answers --------------------------------------------------------------------------------------------


def answer_messages(question: str, retrieval: Retrieval) -> list[dict[str, str]]:
    passages = "\n\n".join(f"[{p.doc_id}] {p.title}\n{p.text}" for p in retrieval.passages)
    return [{"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": f"Passages:\n\n{passages}\n\nQuestion: {question}"}]


def parse_answer(content: str, given: Sequence[str]) -> tuple[str, list[str]]:
    """(answer, citations) of a reply. Citations to passages not given are dropped. A reply that is plain
    text rather than JSON is taken as the answer, citing the given ids it names."""
    value = parse_json(content)
    answer = _first_text(value.get("answer")) if isinstance(value, dict) else None
    if answer:
        cited = value.get("citations", value.get("citation"))
        cited = [str(c).strip().strip("[]") for c in cited if isinstance(c, (str, int))] if isinstance(cited, list) else []
        return answer, [doc_id for doc_id in dict.fromkeys(cited) if doc_id in given]
    text = content.strip()
    if not text or text[0] in "{[":
        raise InvalidReply('it held no {"answer": ..., "citations": [...]} object')
    named = [doc_id for doc_id in dict.fromkeys(given) if re.search(rf"(?<![\w-]){re.escape(doc_id)}(?![\w-])", text)]
    return text, named


def _first_text(value: object) -> str | None:
    """The answer in a reply's "answer": a string or number, or, from small models that nest it
    ({"answer": {"name": "Ada Marsh", ...}}), the first one inside."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value).strip() or None
    inner = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next(filter(None, map(_first_text, inner)), None)


def answer(client: LLMClient, retrieval: Retrieval) -> Answer:
    """The LLM's answer to the retrieval's question from its passages, citing them by doc_id."""
    given = [p.doc_id for p in retrieval.passages]
    base = dict(question=retrieval.question, passages=retrieval.passages, mode=retrieval.mode)
    if not given:
        return Answer(answer=None, citations=[], note="retrieval found no passages to answer from", **base)
    try:
        text, citations = ask(client, answer_messages(retrieval.question, retrieval), f"answer-{ANSWER_PROMPT_VERSION}",
                              lambda content: parse_answer(content, given))
    except (InvalidReply, LLMUnavailable) as error:
        return Answer(answer=None, citations=[], note=f"the LLM gave no usable answer: {error}", **base)
    return Answer(answer=text, citations=citations, **base)
