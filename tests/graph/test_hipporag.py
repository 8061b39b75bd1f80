"""HippoRAG retrieval on a multi-hop toy corpus: the graph reaches a second-hop passage that dense retrieval
misses, because the bridge entity (Orla Penrith) is named in the first-hop passage, not in the question."""

from __future__ import annotations

import numpy as np
import pytest

from hippograph import Config, Memory
from hippograph.indexing.store import open_store

QUESTION = "In which town was the designer of the Kelvane Bridge born?"
FIRST_HOP, SECOND_HOP = "kelvane", "penrith"

# The question's words (bridge, designer, designed, town, born) recur in the distractors; the answer
# passage shares none of them but "town" and "born", and no word at all of the question's bridge.
CORPUS = [
    {"id": "kelvane", "title": "Kelvane Bridge", "text": "The Kelvane Bridge was designed by Orla Penrith and opened in 1911."},
    {"id": "penrith", "title": "Orla Penrith", "text": "Orla Penrith was born in Ashcombe, a town in the Wessex hills."},
    {"id": "stallow", "title": "Stallow Bridge", "text": "The Stallow Bridge was designed by Hester Crane and opened in 1908."},
    {"id": "crane", "title": "Hester Crane", "text": "Hester Crane was born in Brackenfield and studied engineering in Glasgow."},
    {"id": "harl", "title": "Harl Bridge", "text": "The Harl Bridge crosses the river Tarn near the town of Dunmoor."},
    {"id": "dunmoor", "title": "Dunmoor", "text": "Dunmoor is a market town where many engineers were born."},
    {"id": "lowfield", "title": "Lowfield", "text": "Lowfield is a town famous for its bridges and their designers."},
    {"id": "fair", "title": "Ashcombe Fair", "text": "The Ashcombe Fair is held every autumn with cattle shows."},
    {"id": "tarn", "title": "River Tarn", "text": "The river Tarn flows past Dunmoor and Lowfield to the sea."},
    {"id": "glasgow", "title": "Glasgow", "text": "Glasgow was a centre of shipbuilding in the nineteenth century."},
]

CONFIGS = {  # each differs from the default in a way that changes how the walk is seeded or solved
    "default": Config(),
    "no_entity_linking": Config(entity_linking=False),
    "relative_filter_prpack": Config(recognition_filter="relative", pagerank_solver="prpack"),
}


@pytest.fixture(scope="module")
def multihop_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("multihop") / "multihop.duckdb"
    assert Memory(path).index(CORPUS).indexed == len(CORPUS)
    return path


def top_docs(memory: Memory, mode: str, k: int = 2) -> list[str]:
    return [p.doc_id for p in memory.retrieve(QUESTION, mode=mode, top_k=k).passages]


def test_question_does_not_name_the_bridge_entity():
    """The premise of the corpus: only a graph hop through the first passage reaches the answer."""
    assert "penrith" not in QUESTION.lower() and "ashcombe" not in QUESTION.lower()


@pytest.mark.parametrize("name", CONFIGS)
def test_dense_misses_the_second_hop(multihop_store, name):
    dense = top_docs(Memory(multihop_store, CONFIGS[name]), "dense")
    assert dense[0] == FIRST_HOP
    assert SECOND_HOP not in dense


@pytest.mark.parametrize("name", CONFIGS)
def test_hipporag_finds_the_second_hop(multihop_store, name):
    retrieval = Memory(multihop_store, CONFIGS[name]).retrieve(QUESTION, mode="hipporag", top_k=2)
    assert {p.doc_id for p in retrieval.passages} == {FIRST_HOP, SECOND_HOP}
    assert retrieval.facts, "graph search was not seeded by any fact"


# ---- odd input: the graph is built and searched without crashing ------------------------------------------

_WORDS = "the old miller and his daughter walked along the river past Kettleby while".split()
LONG_SENTENCE = " ".join(_WORDS[i % len(_WORDS)] for i in range(3000)) + "."
NO_ENTITIES = [
    {"id": "rain", "text": "it was raining and it was cold, so we stayed inside."},
    {"id": "one-word", "text": "Hello"},
    {"id": "dots", "text": "..."},
]
ODD = NO_ENTITIES + [
    {"id": "long", "text": LONG_SENTENCE},
    {"id": "de", "title": "Die Brücke", "text": "Die Brücke über den Fluss wurde 1890 von Johanna Keller in Freiburg entworfen."},
    {"id": "ja", "title": "橋", "text": "この橋は1890年に京都の技師によって設計されました。川の上に架かっています。"},
]
ODD_QUESTIONS = ["Wer hat die Brücke in Freiburg entworfen?", "京都の橋を設計したのは誰ですか", "Hello", "miller daughter river"]


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("odd") / "odd.duckdb"
    report = Memory(path).index(ODD)
    assert report.indexed == len(ODD)
    assert report.passages > len(ODD)  # the 3,000-word sentence was split over several passages
    return path


@pytest.fixture(scope="module")
def no_fact_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("nofacts") / "nofacts.duckdb"
    assert Memory(path).index(NO_ENTITIES).indexed == len(NO_ENTITIES)
    return path


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("question", ODD_QUESTIONS)
def test_odd_corpus_answers_in_hipporag_mode(odd_store, name, question):
    retrieval = Memory(odd_store, CONFIGS[name]).retrieve(question, mode="hipporag", top_k=3)
    assert len(retrieval.passages) == 3
    assert all(np.isfinite(p.score) for p in retrieval.passages)


def test_odd_corpus_graph_holds_the_long_and_german_passages(odd_store):
    with open_store(odd_store) as store:
        data = store.read_graph_data()
    passages_with_phrases = {pid.split("#")[0] for pid, _ in data.passage_phrases}
    assert {"long", "de"} <= passages_with_phrases
    assert "johanna keller" in data.phrases


@pytest.mark.parametrize("name", CONFIGS)
def test_without_facts_hipporag_falls_back_to_dense(no_fact_store, name):
    with open_store(no_fact_store) as store:
        assert store.read_graph_data().facts == []
    memory = Memory(no_fact_store, CONFIGS[name])
    for question in ("Why did we stay inside?", "Hello"):
        graph, dense = (memory.retrieve(question, mode=mode, top_k=3) for mode in ("hipporag", "dense"))
        assert graph.passages and graph.facts == []
        assert [(p.passage_id, p.score) for p in graph.passages] == [(p.passage_id, p.score) for p in dense.passages]


@pytest.mark.xfail(strict=True, reason=(
    "known weakness: the relative recognition filter has no absolute floor, so facts at cosine ~0.16 still seed "
    "the walk and outrank a passage that dense retrieval matches exactly (score 1.0)"))
def test_a_question_no_fact_matches_keeps_the_dense_answer(odd_store):
    retrieval = Memory(odd_store).retrieve("Hello", mode="hipporag", top_k=1)
    assert retrieval.passages[0].doc_id == "one-word"


def test_the_entity_only_filter_gives_a_question_naming_nothing_the_dense_answer(odd_store):
    memory = Memory(odd_store, Config(recognition_filter="entity_only"))
    retrieval = memory.retrieve("Hello", mode="hipporag", top_k=3)
    assert retrieval.facts == []
    dense = memory.retrieve("Hello", mode="dense", top_k=3)
    assert [p.passage_id for p in retrieval.passages] == [p.passage_id for p in dense.passages]
    assert retrieval.passages[0].doc_id == "one-word"
