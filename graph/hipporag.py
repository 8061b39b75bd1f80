"""HippoRAG 2 graph search: query-to-fact linking, recognition filter, Personalized PageRank over the graph.

The query mode around it (parsing the question, embedding it) is `hippograph.retrievers.HippoRAGRetriever`.

Seeds of the walk (the PageRank reset distribution):
- phrases of the facts closest to the query (HippoRAG 2), each fact's score divided by the number of
  passages its phrase occurs in, averaged per phrase;
- optionally, phrases named in the query itself, linked to their closest phrase node (HippoRAG 1);
- every passage, with its min-max normalised dense score x `passage_node_weight`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hippograph.config import Config
from hippograph.graph.build import PowerIteration, build_graph, personalized_pagerank, vertex_pairs
from hippograph.indexing.cosine import CosineIndex
from hippograph.indexing.store import GraphData


@dataclass(frozen=True)
class GraphSearch:
    passage_scores: np.ndarray  # one per passage, in the order the retriever was built with
    seed_facts: list[tuple[int, float]]  # (fact index, query similarity) that seeded the walk


# "and", "or" or "&" between the names a phrase joins
_COORDINATION = re.compile(r"\s+(?:and|or|&)\s+")

# (question, linked facts) -> indices of the facts to keep, or None to fall back to the non-LLM filter
FactFilter = Callable[[str, list[tuple[str, str, str]]], "list[int] | None"]


class HippoRAGGraph:
    """The passage-entity graph of one store snapshot, with the fact and phrase vectors that seed it.
    `fact_filter` is the LLM recognition filter (`recognition_filter="llm"`)."""

    def __init__(self, data: GraphData, passage_ids: Sequence[str], config: Config, fact_filter: FactFilter | None = None):
        self.config = config
        self.fact_filter = fact_filter
        self.graph = build_graph(data, passage_ids, config.synonym_threshold)
        self.facts = data.facts
        self.fact_cosine = CosineIndex(data.fact_embeddings)
        self.phrase_cosine = CosineIndex(data.phrase_embeddings)
        index = self.graph.phrase_index
        # (subject, object) phrase vertex of each fact, -1 for none
        ends = ((s, o) for s, _, o in data.facts)
        self.fact_phrases = vertex_pairs(ends, index, index, len(data.facts), np.int32)
        self._power = PowerIteration(self.graph.adjacency) if config.pagerank_solver == "power" else None

    def search_many(
        self, query_vectors: np.ndarray, dense_scores: np.ndarray,
        linked_phrases: Sequence[Sequence[tuple[int, float]]], questions: Sequence[str],
    ) -> list[GraphSearch]:
        """Graph search for each row of `query_vectors` and `dense_scores`, with one PageRank for them all.
        `linked_phrases[i]`: (phrase vertex, similarity) for the phrases query i names (see
        `link_phrases`); `questions[i]`: its text, for the LLM recognition filter."""
        fact_links = self.fact_cosine.top_many(query_vectors, self.config.linking_top_k) if self._links_facts else None
        seeds, resets = [], {}  # resets: query row -> reset vector, for the queries the graph seeds
        for i, question in enumerate(questions):
            seeds.append(self.recognize(fact_links[i] if fact_links else [], linked_phrases[i], question))
            phrase_weights = self._fact_phrase_weights(seeds[i]) + self._entity_phrase_weights(linked_phrases[i])
            if phrase_weights.any():
                resets[i] = np.concatenate([phrase_weights, self._passage_weights(dense_scores[i])])
        scores = list(dense_scores)  # a query that seeds nothing keeps its dense scores, and no seed facts
        if resets:
            ranks = self.pagerank(np.stack(list(resets.values()), axis=1))
            for column, i in enumerate(resets):
                scores[i] = ranks[self.graph.passage_offset :, column]
                if self.config.score_fusion == "rrf":
                    scores[i] = reciprocal_rank_fusion([scores[i], dense_scores[i]])
        return [GraphSearch(scores[i], seeds[i] if i in resets else []) for i in range(len(questions))]

    @property
    def _links_facts(self) -> bool:
        return len(self.facts) > 0 and self.config.linking_top_k > 0

    def pagerank(self, resets: np.ndarray) -> np.ndarray:
        """PageRank of each column of `resets` (vertices, queries)."""
        if self.config.pagerank_solver == "prpack":
            columns = [personalized_pagerank(self.graph.graph, r, self.config.damping) for r in resets.T]
            return np.stack(columns, axis=1)
        return self._power(resets, self.config.damping)

    def link_facts(self, query_vector: np.ndarray) -> list[tuple[int, float]]:
        """The top `linking_top_k` facts by cosine to the query: (fact index, similarity)."""
        if not self._links_facts:
            return []
        return self.fact_cosine.top(query_vector, self.config.linking_top_k)

    def recognize(
        self, facts: list[tuple[int, float]], linked_phrases: Sequence[tuple[int, float]] = (), question: str = ""
    ) -> list[tuple[int, float]]:
        """Recognition memory: which linked facts seed the walk.

        "llm": those the LLM keeps for the question (HippoRAG 2); on an empty or invalid reply, as "entity".
        "entity": the facts about a phrase the query names; if none is, as "relative".
        "entity_only": the facts about a phrase the query names, if any.
        "relative": facts scoring at least `recognition_min_ratio` of the best one.
        "none": every linked fact.
        """
        mode = self.config.recognition_filter
        if mode == "none" or not facts:
            return facts
        if mode == "llm":
            kept = self.fact_filter(question, [self.facts[f] for f, _ in facts]) if self.fact_filter else None
            if kept:
                return [facts[i] for i in kept]
            mode = "entity"
        if mode in ("entity", "entity_only"):
            named = {phrase for phrase, _ in linked_phrases}
            about_named = [(f, s) for f, s in facts if named.intersection(self.fact_phrases[f].tolist())]
            if about_named or mode == "entity_only":
                return about_named
        best = max(score for _, score in facts)
        return [(f, s) for f, s in facts if s >= self.config.recognition_min_ratio * best]

    def _fact_phrase_weights(self, seeds: list[tuple[int, float]]) -> np.ndarray:
        """Each seed fact gives its phrases score / (passages the phrase occurs in); averaged per phrase."""
        total = np.zeros(self.graph.passage_offset)
        mentions = np.zeros(self.graph.passage_offset)
        counts = self.graph.phrase_passage_counts
        for fact, score in seeds:
            for phrase in self.fact_phrases[fact].tolist():
                if phrase >= 0:
                    total[phrase] += score / max(counts[phrase], 1.0)
                    mentions[phrase] += 1
        return np.divide(total, mentions, out=np.zeros_like(total), where=mentions > 0)

    def named_parts(self, phrases: Sequence[str]) -> list[str]:
        """`phrases` with each one that the graph lacks verbatim and that joins names by "and", "or" or
        "&" in place of the names it joins: "christopher nolan and sathish kalathil" (one entity to the
        tagger) links as two people, while a title the graph holds whole ("pride and prejudice") stays."""
        parts = []
        for phrase in phrases:
            joined = _COORDINATION.split(phrase)
            parts += joined if len(joined) > 1 and phrase not in self.graph.phrase_index else [phrase]
        return list(dict.fromkeys(p for p in parts if p))

    def phrases_to_embed(self, query_phrases: Sequence[str]) -> list[str]:
        """The query phrases `link_phrases` needs vectors for: names the graph lacks verbatim."""
        if not len(self.phrase_cosine):
            return []
        return [p for p in _names(query_phrases) if p not in self.graph.phrase_index]

    def link_phrases(
        self, query_phrases: Sequence[str], vectors: Mapping[str, np.ndarray]
    ) -> list[tuple[int, float]]:
        """Link each phrase the query names to a phrase node: the same phrase if the graph has it, else the
        closest one by cosine if at least `entity_link_threshold`; `vectors` holds the vectors of
        `phrases_to_embed`. Bare numbers are not linked: "70" or "1999" name too many unrelated things to
        anchor a search."""
        index = self.graph.phrase_index
        linked = [(index[p], 1.0) for p in _names(query_phrases) if p in index]
        unknown = self.phrases_to_embed(query_phrases)
        if unknown:
            closest = self.phrase_cosine.top_many(np.stack([vectors[p] for p in unknown]), 1)
            linked += [best for [best] in closest if best[1] >= self.config.entity_link_threshold]
        return linked

    def _entity_phrase_weights(self, linked_phrases: Sequence[tuple[int, float]]) -> np.ndarray:
        """Each linked phrase node is seeded with similarity / (passages it occurs in)."""
        weights = np.zeros(self.graph.passage_offset)
        counts = self.graph.phrase_passage_counts
        for phrase, similarity in linked_phrases:
            weights[phrase] = max(weights[phrase], similarity / max(counts[phrase], 1.0))
        return weights

    def _passage_weights(self, dense_scores: np.ndarray) -> np.ndarray:
        low, high = float(dense_scores.min()), float(dense_scores.max())
        normalised = (dense_scores - low) / (high - low) if high > low else np.ones_like(dense_scores)
        return normalised * self.config.passage_node_weight


def _names(phrases: Sequence[str]) -> list[str]:
    return [p for p in phrases if any(ch.isalpha() for ch in p)]


def reciprocal_rank_fusion(score_lists: Sequence[np.ndarray], k: int = 60) -> np.ndarray:
    """Sum of 1 / (k + rank) over the rankings (Cormack et al. 2009; k = 60 is their constant)."""
    fused = np.zeros(len(score_lists[0]))
    for scores in score_lists:
        ranks = np.empty(len(scores))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        fused += 1.0 / (k + ranks)
    return fused
