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
from hippograph.llm import InvalidReply, LLMUnavailable, Tally, ask, llm_client, parse_json, reply_list
from hippograph.pipeline.extract import extract_facts, load_spacy, normalize_phrase, title_phrase
from hippograph.pipeline.triples import UNKNOWN_SENTENCE, InvalidTriple, normalised_triple
from hippograph.registry import Extractor
from hippograph.types import Passage, PassageFacts, Triple

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


def parse_entities(content: str, passage: Passage) -> list[str]:
    """The entity strings of a NER reply ({"entities": [...]}, or a bare list, or any one list of strings)
    that the passage mentions: small models also list the prompt's example."""
    items = reply_list(parse_json(content), "entities")
    text = " ".join(passage.embedding_text.lower().split())
    entities = [e.strip() for e in items if isinstance(e, str) and e.strip()]
    entities = list(dict.fromkeys(e for e in entities if _mentions(text, " ".join(e.lower().split()))))
    if not entities:
        raise InvalidReply("it named none of the passage's entities as a JSON list of strings")
    return entities[:MAX_ENTITIES]


def parse_triples(content: str, passage: Passage) -> list[tuple[str, str, str]]:
    """Normalised (subject, predicate, object) of a triple reply; each a list of three strings or an object
    with subject, relation or predicate, object. Triples that are invalid or about nothing in the passage
    are left out; a reply with none left is invalid."""
    items = reply_list(parse_json(content), "triples")
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


# ---- the extractor --------------------------------------------------------------------------------------


def extract_with_llm(passages: Sequence[Passage], config: Config, progress: bool = False) -> list[PassageFacts]:
    """One PassageFacts per passage, in order, `llm_max_concurrency` requests at a time; passages the LLM
    failed are extracted by spaCy, and counted as fallbacks in their usage.

    All NER requests go first, then all triple requests: requests in a row then share their prompt's
    beginning (instructions and example), which servers with prefix caching (llama.cpp, vLLM, OpenAI)
    do not evaluate again."""
    from tqdm.auto import tqdm

    client = llm_client(config)
    tallies = [Tally() for _ in passages]
    bar = tqdm(total=2 * len(passages), desc="extract (llm)", unit="request", disable=not progress)

    def step(function):
        def run(i: int):
            try:
                return None if tallies[i].failed else function(i)
            except (InvalidReply, LLMUnavailable):
                tallies[i].failed = True
                return None
            finally:
                bar.update()
        return run

    def entities_of(i: int) -> list[str]:
        return ask(client, ner_messages(passages[i]), f"ner-{PROMPT_VERSION}",
                   lambda content: parse_entities(content, passages[i]), tallies[i])

    def triples_of(i: int) -> list[tuple[str, str, str]]:
        return ask(client, triple_messages(passages[i], entities[i]), f"triples-{PROMPT_VERSION}",
                   lambda content: parse_triples(content, passages[i]), tallies[i])

    with bar, ThreadPoolExecutor(config.llm_max_concurrency) as pool:
        entities = list(pool.map(step(entities_of), range(len(passages))))
        found = list(pool.map(step(triples_of), range(len(passages))))
    failed = [i for i, tally in enumerate(tallies) if tally.failed]
    by_spacy = dict(zip(failed, extract_facts([passages[i] for i in failed], load_spacy(config.spacy_model),
                                              config.extract_batch_size, config.extract_processes) if failed else []))
    return [
        replace(by_spacy[i] if i in by_spacy else llm_facts(passage, entities[i], found[i]), usage=tallies[i].usage())
        for i, passage in enumerate(passages)
    ]


def llm_facts(passage: Passage, entities: list[str], found: list[tuple[str, str, str]]) -> PassageFacts:
    """The passage's triples, and its phrases: its title, the entities, the triples' subjects and objects."""
    triples = [Triple(passage.passage_id, UNKNOWN_SENTENCE, s, p, o) for s, p, o in found]
    phrases = dict.fromkeys(p for p in [title_phrase(passage.title), *map(normalize_phrase, entities)] if p)
    for subject, _, obj in found:
        phrases.update(dict.fromkeys((subject, obj)))
    return PassageFacts(passage.passage_id, triples, list(phrases))


def _load_fallback(config: Config) -> None:
    load_spacy(config.spacy_model)  # the fallback extractor's model, and the parser of questions


llm_extractor = Extractor(
    "llm", f"1.prompts-{PROMPT_VERSION}", extract_with_llm, setup=_load_fallback,
    options=("llm_model", "llm_temperature", "llm_max_tokens"),
)
