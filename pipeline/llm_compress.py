"""LLM-written gists for the memory bank (`Config(gist_writer="llm")`): the document's key facts as a short list.

    document --gist prompt (with its byte budget)--> facts --checked, fitted to the budget--> the memory's gist

CMT compresses each new document into a memory record; MemoRAG Lite's global memory is made of short gists
of the corpus. Without an LLM the gist is a choice of the document's own sentences
(`hippograph.pipeline.compress.select_gist`); with one, the LLM states what the document says as a few
self-contained facts. A fact is kept only if at least half of its content words are the document's
(small models copy the prompt's example, or invent); a reply with no fact left, or none that fits the
budget, is asked once more, then the document keeps the offline gist, counted in its usage as a gist
fallback.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from hippograph.config import Config
from hippograph.llm import InvalidReply, LLMUnavailable, Tally, ask, llm_client, parse_json, reply_list
from hippograph.pipeline.compress import STOPWORDS, fitting, lower_words
from hippograph.types import Document, LLMUsage

# Bump when the prompt changes: it is part of the documents' index key (so they are compressed again)
# and of every cache key (so no reply to the old prompt is reused).
PROMPT_VERSION = 1
MIN_FACT_WORDS = 3  # MemoRAG drops clue lines of three words or fewer: too short to say anything

GIST_SYSTEM = (
    "You compress a document into a memory: the few facts someone would need to answer questions about it. "
    "Write them as short, self-contained statements that name what they are about (no pronouns), the most "
    "important first, together no longer than the character budget given. Use the document's own words and "
    "add nothing it does not say. Reply with JSON only: {\"facts\": [\"...\", ...]}."
)
EXAMPLE_DOCUMENT = (
    "Lake Orvan\nLake Orvan is a reservoir in the Tessel Hills, built in 1931 by the Harlow Water Board. It "
    "supplies the city of Brenmoor, and its dam was raised in 1958 after a dry decade."
)
EXAMPLE_FACTS = [
    "Lake Orvan is a reservoir in the Tessel Hills.",
    "Lake Orvan was built in 1931 by the Harlow Water Board.",
    "Lake Orvan supplies Brenmoor.",
]


def gist_messages(document: Document, budget_bytes: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": GIST_SYSTEM},
        {"role": "user", "content": _request(EXAMPLE_DOCUMENT, 140)},
        {"role": "assistant", "content": json.dumps({"facts": EXAMPLE_FACTS})},
        {"role": "user", "content": _request(_titled(document), budget_bytes)},
    ]


def _request(text: str, budget: int) -> str:
    return f"Budget: {budget} characters\n\nDocument:\n{text}"


def _titled(document: Document) -> str:
    return f"{document.title}\n{document.text}" if document.title else document.text


def parse_gist_facts(content: str, document: Document, budget_bytes: int) -> list[str]:
    """The facts of a reply ({"facts": [...]}, a bare list, or an object's only list of strings) that are
    the document's (more than three words, at least half of their content words in the document) and fit
    in `budget_bytes` together, in order. Each ends as a sentence; a reply with none left is invalid."""
    items = reply_list(parse_json(content), "facts")
    known = set(lower_words(_titled(document)))
    facts = []
    for item in items:
        if not isinstance(item, str):
            continue
        fact = " ".join(item.split()).lstrip("-*• ").strip()
        words = lower_words(fact)
        content_words = [w for w in words if w not in STOPWORDS]
        if len(words) <= MIN_FACT_WORDS or not content_words:
            continue
        if sum(w in known for w in content_words) * 2 < len(content_words):
            continue
        facts.append(fact if fact[-1] in ".!?" else fact + ".")
    facts = list(dict.fromkeys(facts))
    if not facts:
        raise InvalidReply('it held no fact from the document (a statement of four words or more) as '
                           '{"facts": ["...", ...]}')
    kept = [facts[i] for i in fitting(facts, budget_bytes)]
    if not kept:
        raise InvalidReply(f"none of its facts fits in the budget of {budget_bytes} characters")
    return kept


def write_gists(
    documents: Sequence[Document], budgets: Sequence[int], config: Config, progress: bool = False
) -> tuple[list[list[str] | None], list[LLMUsage]]:
    """For each document, the LLM's facts (None where its replies were unusable or the server failed) and
    what they cost; `budgets[i]` is the bytes document i's gist may take. `llm_max_concurrency` requests
    at a time."""
    from tqdm.auto import tqdm

    client = llm_client(config)
    tallies = [Tally() for _ in documents]

    def facts_of(i: int) -> list[str] | None:
        try:
            return ask(client, gist_messages(documents[i], budgets[i]), f"gist-{PROMPT_VERSION}",
                       lambda content: parse_gist_facts(content, documents[i], budgets[i]), tallies[i])
        except (InvalidReply, LLMUnavailable):
            return None
        finally:
            bar.update()

    with tqdm(total=len(documents), desc="compress (llm)", unit="request", disable=not progress) as bar, \
            ThreadPoolExecutor(config.llm_max_concurrency) as pool:
        written = list(pool.map(facts_of, range(len(documents))))
    usages = [replace(tally.usage(), gist_fallbacks=int(facts is None)) for tally, facts in zip(tallies, written)]
    return written, usages
