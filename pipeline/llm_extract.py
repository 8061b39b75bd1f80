"""The LLM extractor (`Config(extractor="llm")`): HippoRAG 2's two-step OpenIE over any OpenAI-compatible endpoint.

    passage --NER prompt--> named entities --triple prompt (given the entities)--> triples

Replies are repaired (`json-repair`) and validated: triples of three non-empty strings, subject != object,
at least one of the two phrases found in the passage (small models copy the prompt's example). A reply
that is empty or invalid is asked once more, with a note on what was wrong; a passage whose reply is still
invalid, or whose server failed, is extracted by the spaCy extractor instead. What each passage cost rides
along in `PassageFacts.usage`, which the commit step adds up into the index report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from hippograph.config import Config
from hippograph.llm import InvalidReply, LLMClient, LLMUnavailable, Tally, ask, llm_client, parse_json
from hippograph.pipeline.extract import extract_facts, load_spacy, normalize_phrase, title_phrase
from hippograph.pipeline.triples import UNKNOWN_SENTENCE, InvalidTriple, normalised_triple
from hippograph.registry import Extractor
from hippograph.types import LLMUsage, Passage, PassageFacts, Triple

# Bump when a prompt changes: it is part of the extractor's version (so documents are indexed again)
# and of every cache key (so no reply to the old prompt is reused).
PROMPT_VERSION = 1
MAX_ENTITIES = 40  # bounds the triple prompt when a model lists every word

NER_SYSTEM = (
    "You find the named entities in a passage: people, organisations, places, works, events, products, "
    "dates and other proper names. Reply with JSON only: {\"entities\": [\"...\", ...]}, each entity "
    "written exactly as the passage writes it, without repeats."
)
TRIPLE_SYSTEM = (
    "You turn a passage into a knowledge graph. Write the facts it states as [subject, relation, object] "
    "triples. Each triple names at least one of the given entities, preferably two; subject and object are "
    "short noun phrases from the passage, the relation a few words; resolve pronouns to the names they "
    "stand for. Reply with JSON only: {\"triples\": [[\"subject\", \"relation\", \"object\"], ...]}."
)
EXAMPLE_PASSAGE = (
    "Lake Orvan\nLake Orvan is a reservoir in the Tessel Hills, built in 1931 by the Harlow Water Board. "
    "It supplies the city of Brenmoor."
)
EXAMPLE_ENTITIES = ["Lake Orvan", "Tessel Hills", "1931", "Harlow Water Board", "Brenmoor"]
EXAMPLE_TRIPLES = [
    ["Lake Orvan", "is a reservoir in", "Tessel Hills"],
    ["Lake Orvan", "built in", "1931"],
    ["Lake Orvan", "built by", "Harlow Water Board"],
    ["Lake Orvan", "supplies", "Brenmoor"],
]


def ner_messages(passage: Passage) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": NER_SYSTEM},
        {"role": "user", "content": EXAMPLE_PASSAGE},
        {"role": "assistant", "content": _json({"entities": EXAMPLE_ENTITIES})},
        {"role": "user", "content": passage.embedding_text},
    ]


def triple_messages(passage: Passage, entities: Sequence[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": TRIPLE_SYSTEM},
        {"role": "user", "content": _triple_request(EXAMPLE_PASSAGE, EXAMPLE_ENTITIES)},
        {"role": "assistant", "content": _json({"triples": EXAMPLE_TRIPLES})},
        {"role": "user", "content": _triple_request(passage.embedding_text, entities)},
    ]


def _triple_request(text: str, entities: Sequence[str]) -> str:
    return f"Passage:\n{text}\n\nEntities: {_json(list(entities))}"


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


# ---- reading replies ------------------------------------------------------------------------------------


def parse_entities(content: str) -> list[str]:
    """The entity strings of a NER reply: {"entities": [...]}, or a bare list, or any one list of strings."""
    items = _the_list(parse_json(content), "entities")
    entities = list(dict.fromkeys(e.strip() for e in items if isinstance(e, str) and e.strip()))
    if not entities:
        raise InvalidReply("it named no entities as a JSON list of strings")
    return entities[:MAX_ENTITIES]


def parse_triples(content: str, passage: Passage) -> list[tuple[str, str, str]]:
    """Normalised (subject, predicate, object) of a triple reply; each a list of three strings or an object
    with subject, relation or predicate, object. Triples that are invalid or about nothing in the passage
    are left out; a reply with none left is invalid."""
    items = _the_list(parse_json(content), "triples")
    text = " ".join(passage.embedding_text.lower().split())  # phrases are lower case, single-spaced
    triples: dict[tuple[str, str, str], None] = {}
    for item in items:
        if isinstance(item, dict):
            item = [item.get("subject"), item.get("relation", item.get("predicate")), item.get("object")]
        if not isinstance(item, list) or len(item) != 3:
            continue
        try:
            subject, predicate, obj = normalised_triple(*item)
        except InvalidTriple:
            continue
        if _mentions(text, subject) or _mentions(text, obj):
            triples[(subject, predicate, obj)] = None
    if not triples:
        raise InvalidReply('it held no [subject, relation, object] triple of three different non-empty strings '
                           "about the passage")
    return list(triples)


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def _the_list(value: Any, key: str) -> list:
    """The list a reply holds: under `key`, or the reply itself, or its only list value."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get(key), list):
            return value[key]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    return []


# ---- one passage --------------------------------------------------------------------------------------


def passage_facts(client: LLMClient, passage: Passage) -> tuple[PassageFacts | None, LLMUsage]:
    """The passage's facts by the LLM (None when the LLM failed it) and what they cost."""
    tally = Tally()
    try:
        entities = ask(client, ner_messages(passage), f"ner-{PROMPT_VERSION}", parse_entities, tally)
        found = ask(client, triple_messages(passage, entities), f"triples-{PROMPT_VERSION}",
                    lambda c: parse_triples(c, passage), tally)
    except (InvalidReply, LLMUnavailable):
        tally.failed = True
        return None, tally.usage()
    triples = [Triple(passage.passage_id, UNKNOWN_SENTENCE, s, p, o) for s, p, o in found]
    title = title_phrase(passage.title)
    phrases = dict.fromkeys([title] if title else [])
    phrases.update(dict.fromkeys(p for p in map(normalize_phrase, entities) if p))
    for subject, _, obj in found:
        phrases.update(dict.fromkeys((subject, obj)))
    return PassageFacts(passage.passage_id, triples, list(phrases)), tally.usage()


# ---- the extractor --------------------------------------------------------------------------------------


def extract_with_llm(passages: Sequence[Passage], config: Config, progress: bool = False) -> list[PassageFacts]:
    """One PassageFacts per passage, in order, `llm_max_concurrency` passages at a time; passages the LLM
    failed are extracted by spaCy, and counted as fallbacks in their usage."""
    from tqdm.auto import tqdm

    client = llm_client(config)
    with ThreadPoolExecutor(config.llm_max_concurrency) as pool:
        results = list(tqdm(pool.map(lambda p: passage_facts(client, p), passages), total=len(passages),
                            desc="extract (llm)", unit="passage", disable=not progress))
    failed = [i for i, (facts, _) in enumerate(results) if facts is None]
    fallback = extract_facts([passages[i] for i in failed], load_spacy(config.spacy_model), config.extract_batch_size,
                             config.extract_processes) if failed else []
    by_spacy = dict(zip(failed, fallback))
    return [replace(facts or by_spacy[i], usage=usage) for i, (facts, usage) in enumerate(results)]


def _load_fallback(config: Config) -> None:
    load_spacy(config.spacy_model)  # the fallback extractor's model, and the parser of questions


llm_extractor = Extractor(
    "llm", f"1.prompts-{PROMPT_VERSION}", extract_with_llm, setup=_load_fallback,
    options=("llm_model", "llm_temperature", "llm_max_tokens"),
)
