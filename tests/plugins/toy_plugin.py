"""A toy extractor and a toy retriever, registered the way a user's own module would register them.

Imported by tests/test_registry.py, and by the DAG through $HIPPOGRAPH_PLUGINS (tests/test_dag.py).
"""

from __future__ import annotations

import re

import numpy as np

from hippograph import PassageFacts, Retrieval, Triple, register_extractor, register_retriever
from hippograph.retrievers import Retriever

_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")


@register_extractor("toy", version=1)
def toy_extractor(passages, config, progress=False):
    """(title, "mentions", word) for every capitalised word of a passage not in its title."""
    facts = []
    for passage in passages:
        title = passage.title.lower()
        words = dict.fromkeys(w.lower() for w in _CAPITALISED.findall(passage.text) if w.lower() not in title.split())
        triples = [Triple(passage.passage_id, 0, title, "mentions", word) for word in words]
        facts.append(PassageFacts(passage.passage_id, triples, [title, *words]))
    return facts


@register_retriever("title")
class TitleRetriever(Retriever):
    """Ranks passages by how many of the question's words their title holds."""

    uses_embeddings = False

    def retrieve_many(self, questions, top_k) -> list[Retrieval]:
        titles = [set(t.lower().split()) for t in self.snapshot.passages.titles]
        results = []
        for question in questions:
            words = set(re.findall(r"\w+", question.lower()))
            scores = np.array([float(len(words & title)) for title in titles])
            results.append(self.snapshot.ranked(question, "title", scores, top_k))
        return results
