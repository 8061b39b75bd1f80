"""The memory bank (the `compress` stage) and the modes that read it: memory, memorag; clues and draft answers.

Real models, real DuckDB files; the corpora are small: SMALL_DOCS, the demo, and a toy corpus below.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from hippograph import Config, Document, Memory, Passage, PassageFacts, Retrieval, RetrievedPassage, SeedFact, Triple
from hippograph.clues import MemoryGist, assemble_clues, described_span, offline_clues, surrogate_question
from hippograph.draft import draft_answer, expected_labels
from hippograph.pipeline.compress import compress_document
from hippograph.pipeline.extract import load_spacy
from hippograph.retrievers import Snapshot
from hippograph.types import Clue, DraftAnswer

# A toy corpus where the question's second hop is found only through its bridge entity: the question
# describes Idris Vael ("the designer of the Quorvan Tower") and never names him; three distractors name
# the tower too and say more about designers, towns and births than his own passage does.
TOY_DOCS = [
    {"id": "tower", "title": "Quorvan Tower", "text": "The Quorvan Tower is a clock tower in the port of Mellis. "
     "It was designed by Idris Vael and completed in 1881."},
    {"id": "vael", "title": "Idris Vael", "text": "Idris Vael was an architect. Vael was born in Tarrowmere, "
     "a fishing village on the Hesk estuary, and worked in Lisk for most of his life."},
    {"id": "d1", "title": "Mellis Harbour", "text": "Mellis Harbour lies below the Quorvan Tower. The designer of "
     "its breakwater was born in the town of Mellis."},
    {"id": "d2", "title": "Quorvan Clock", "text": "The clock of the Quorvan Tower was made in Lisk. The designer "
     "of the clock was born in a town on the coast."},
    {"id": "d3", "title": "Quorvan Tower tours", "text": "Guided tours of the Quorvan Tower start in the town "
     "square. The designer of the tours was born in the town."},
]
TOY_QUESTION = "In which town was the designer of the Quorvan Tower born?"


@pytest.fixture(scope="module")
def toy_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.duckdb"
    Memory(path).index(TOY_DOCS)
    return path


def memories(store_tools, path) -> dict[str, tuple]:
    return {doc_id: (gist, list(facts)) for doc_id, gist, facts in store_tools.sql(path, "SELECT doc_id, gist, facts FROM memories")}


# ---- compressing one document ---------------------------------------------------------------------------


def test_a_record_keeps_the_lead_sentence_and_key_facts_within_its_budget():
    document = Document("d", "Ada Marsh", "Ada Marsh (1858–1931) was a civil engineer born in Kettleby. She was "
                        "known for long steel arches. Her best-known work is the Veloria Bridge of 1897, on the Orne.")
    triples = [Triple("d#0", 2, "ada marsh", "designed", "veloria bridge"),
               Triple("d#0", 0, "ada marsh", "born in", "kettleby"),
               Triple("d#0", 2, "veloria bridge", "related to", "orne")]
    facts = [PassageFacts("d#0", triples, ["ada marsh", "kettleby", "veloria bridge", "orne"])]
    record = compress_document(document, facts, budget=0.5)
    assert record.gist.startswith("Ada Marsh was a civil engineer born in Kettleby."), "lead first, parentheses gone"
    assert "ada marsh born in kettleby" not in record.facts, "the gist says it already"
    assert record.facts[0] == "ada marsh designed veloria bridge", "parsed facts before co-occurrences"
    assert record.kept_bytes <= 0.5 * record.source_bytes
    assert record.keys[0] == f"{record.gist} {'; '.join(record.facts)}" and record.keys[1:] == [record.gist, *record.facts]
    tight = compress_document(document, facts, budget=0.1)  # 17 bytes: the lead's first words, no fact
    assert (tight.gist, tight.facts) == ("Ada Marsh was a", [])
    assert tight.keys == [tight.gist], "a record that is only its gist is its one key"


def test_a_gist_spends_no_bytes_on_markup_left_in_the_text():
    """hotpotqa's passages keep `{'1': ", ...}` where pronunciations were removed: braces are no prose."""
    document = Document("g", "Rudy Giuliani", """Rudolph William Louis Giuliani {'1': ", '2': ", '3': ", '4': "} ( ; born \
May 28, 1944) is an American lawyer, businessman, public speaker, and former mayor of New York City.""")
    record = compress_document(document, [], budget=0.5)
    assert record.gist == "Rudolph William Louis Giuliani is an American lawyer, businessman, public speaker, and"


# ---- the bank follows the documents ---------------------------------------------------------------------


def test_the_memory_bank_follows_add_change_and_delete_like_passages(tmp_path, small_docs, store_tools):
    db = tmp_path / "m.duckdb"
    memory = Memory(db, Config(memory_budget=1.0))  # whole texts: what each record holds is plain to see
    memory.index(small_docs)
    assert set(memories(store_tools, db)) == {"ada", "kettleby", "gazette"}
    keys = store_tools.sql(db, "SELECT doc_id, count(*) FROM memory_keys GROUP BY doc_id")
    assert {d for d, n in keys} == {"ada", "kettleby", "gazette"}
    stats = memory.stats()
    assert stats.memories == 3 and 0.5 < stats.compression_ratio <= 1.0

    changed = [dict(d) for d in small_docs]
    changed[1]["text"] = "Kettleby is a market town on the Sallow Sea. Agnes Holt was its mayor in 1911."
    assert memory.index(changed).indexed == 1
    assert memories(store_tools, db)["kettleby"][0] == changed[1]["text"], "a changed document's memory is replaced"
    assert store_tools.sql(db, "SELECT count(*) FROM memory_keys WHERE text LIKE '%Orne%'") == [(0,)]
    assert store_tools.sql(db, "SELECT count(*) FROM memories WHERE doc_id = 'kettleby'") == [(1,)]
    indexed_at = dict(store_tools.sql(db, "SELECT doc_id, indexed_at FROM memories"))
    assert indexed_at["kettleby"] > indexed_at["ada"]

    assert memory.delete(["kettleby"]) == ["kettleby"]
    assert set(memories(store_tools, db)) == {"ada", "gazette"}
    assert store_tools.sql(db, "SELECT DISTINCT doc_id FROM memory_keys ORDER BY ALL") == [("ada",), ("gazette",)]


def test_sharded_runs_build_the_same_memory_bank(tmp_path, small_docs, small_store, store_tools):
    db = tmp_path / "sharded.duckdb"
    Memory(db).index(small_docs, work_dir=tmp_path / "work", shard_size=2)
    store_tools.assert_same(db, small_store)


def test_without_a_memory_bank_memory_mode_answers_as_dense(tmp_path, small_docs, store_tools):
    db = tmp_path / "nomem.duckdb"
    memory = Memory(db, Config(build_memory=False))
    memory.index(small_docs)
    assert store_tools.counts(db, ("memories", "memory_keys")) == {"memories": 0, "memory_keys": 0}
    dense = memory.retrieve("Who founded the Kettleby Gazette?", mode="dense", top_k=3)
    assert memory.retrieve("Who founded the Kettleby Gazette?", mode="memory", top_k=3).passages == dense.passages
    assert Memory(db).index(small_docs).indexed == 3, "build_memory shapes the index: turning it on compresses them"


# ---- memory mode ----------------------------------------------------------------------------------------


def test_memory_mode_ranks_memories_by_their_keys_and_says_which_key_matched(demo_store, demo_question_records):
    memory = Memory(demo_store)
    retrieval = memory.retrieve("Who designed the Veloria Bridge?", mode="memory", top_k=5)
    assert retrieval.passages[0].doc_id == "demo-18"
    assert all(p.reason for p in retrieval.passages)
    assert "Veloria Bridge" in retrieval.passages[0].reason
    scores = [p.score for p in retrieval.passages]
    assert scores == sorted(scores, reverse=True) and len({p.passage_id for p in retrieval.passages}) == 5


# ---- memorag --------------------------------------------------------------------------------------------


def test_the_second_hop_is_found_only_through_a_bridge_clue(toy_store):
    memory = Memory(toy_store)
    hipporag = memory.retrieve(TOY_QUESTION, mode="hipporag", top_k=2)
    assert "vael" not in [p.doc_id for p in hipporag.passages], "the question alone does not reach the second hop"
    retrieval = memory.retrieve(TOY_QUESTION, mode="memorag", top_k=2)
    surrogates = [c.text for c in retrieval.clues if c.kind == "surrogate"]
    assert "In which town was Idris Vael born?" in surrogates
    assert {p.doc_id for p in retrieval.passages} == {"tower", "vael"}
    assert retrieval.draft_answer.text == "Tarrowmere" and retrieval.draft_answer.doc_id == "vael"


def test_memorag_with_no_clue_rounds_keeps_the_question_and_spans(toy_store):
    retrieval = Memory(toy_store, Config(clue_rounds=0)).retrieve(TOY_QUESTION, mode="memorag", top_k=3)
    assert retrieval.clues[0] == Clue(TOY_QUESTION, "question")
    assert {c.kind for c in retrieval.clues} <= {"question", "span", "draft"}


def test_memorag_passages_are_distinct_and_pooled_best_first(demo_store, demo_question_records):
    retrieval = Memory(demo_store).retrieve(demo_question_records[2]["question"], mode="memorag", top_k=8)
    ids = [p.passage_id for p in retrieval.passages]
    assert len(ids) == len(set(ids)) == 8
    scores = [p.score for p in retrieval.passages]
    assert scores == sorted(scores, reverse=True)
    assert retrieval.facts, "the first round's seed facts"


# ---- clues ----------------------------------------------------------------------------------------------


def test_clue_lines_of_three_words_or_fewer_are_dropped_and_the_question_is_always_kept():
    clues = [Clue("Ada Marsh", "span"), Clue("born in Kettleby", "span"), Clue("Ada Marsh was born in Kettleby", "span"),
             Clue("ada marsh  was born in kettleby", "surrogate"), Clue("Who was mayor of Kettleby?", "surrogate")]
    kept = assemble_clues("Where?", clues, DraftAnswer("Kettleby", "d", "d#0"))
    assert kept == [Clue("Where?", "question"), Clue("Ada Marsh was born in Kettleby", "span"),
                    Clue("Who was mayor of Kettleby?", "surrogate"), Clue("Kettleby", "draft")]
    assert assemble_clues("Where?", [], DraftAnswer("Kettleby"), 0.4)[1] == Clue("Kettleby", "draft", 0.4)
    assert assemble_clues("Where?", [], DraftAnswer("")) == [Clue("Where?", "question")]


def test_offline_span_clues_name_their_memory():
    gists = [MemoryGist("a", "Ada Marsh", "Ada Marsh was an engineer.", "ada marsh born in kettleby", 0.7),
             MemoryGist("k", "Kettleby", "Kettleby is a town.", "was the mayor in 1902", 0.5)]
    assert offline_clues("q", gists) == [Clue("ada marsh born in kettleby", "span", 0.7),
                                         Clue("Kettleby: was the mayor in 1902", "span", 0.5)]


@pytest.mark.parametrize("question, anchor, surrogate", [
    ("In which town was the designer of the Veloria Bridge born?", "veloria bridge", "In which town was Ada Marsh born?"),
    ("Who trained the Veloria Bridge's designer?", "veloria bridge", "Who trained Ada Marsh?"),
    ("Who was mayor of the town where the Veloria Bridge was built?", "veloria bridge", None),
    ("Who is Veloria?", "kettleby", "Who is Veloria? Ada Marsh"),
])
def test_surrogate_questions_put_the_bridge_in_place_of_its_description(question, anchor, surrogate):
    nlp = load_spacy(Config().spacy_model)
    made = surrogate_question(question, described_span(nlp(question), anchor), "Ada Marsh")
    if surrogate is None:
        assert "Ada Marsh" in made and "Veloria Bridge" not in made
    else:
        assert made == surrogate


# ---- draft answers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("question, labels", [
    ("Who designed the Veloria Bridge?", {"PERSON", "ORG", "NORP"}),
    ("When was the Kettleby Gazette founded?", {"DATE"}),
    ("In what year did Ada Marsh retire?", {"DATE"}),
    ("Where was Ada Marsh born?", {"GPE", "LOC", "FAC"}),
    ("In which town was the designer of the Veloria Bridge born?", {"GPE", "LOC", "FAC"}),
    ("How many arches does the bridge have?", {"CARDINAL"}),
    ("Which newspaper did Tobias Wren found?", {"ORG"}),
    ("What is the best-known work of Samuel Trask?", None),
])
def test_the_expected_answer_type_comes_from_the_question(question, labels):
    assert expected_labels(question) == (frozenset(labels) if labels is not None else None)


EVIDENCE = [
    RetrievedPassage("bridge", "bridge#0", "Veloria Bridge", "The Veloria Bridge crosses the Orne. It was designed by "
                     "Ada Marsh and opened in May 1897 with three arches.", 0.9),
    RetrievedPassage("ada", "ada#0", "Ada Marsh", "Ada Marsh was an engineer. She was born in Kettleby and trained "
                     "in Dunmere under Samuel Trask.", 0.8),
]


@pytest.mark.parametrize("question, answer, doc_id", [
    ("Who designed the Veloria Bridge?", "Ada Marsh", "bridge"),
    ("When did the Veloria Bridge open?", "May 1897", "bridge"),
    ("In which town was Ada Marsh born?", "Kettleby", "ada"),
    ("How many arches does the Veloria Bridge have?", "three", "bridge"),
])
def test_draft_answers_take_the_span_of_the_expected_type(question, answer, doc_id):
    draft = draft_answer(question, Retrieval(question, "dense", EVIDENCE))
    assert (draft.text, draft.doc_id) == (answer, doc_id)
    assert draft.passage_id == f"{doc_id}#0"


def test_a_draft_without_an_expected_type_completes_the_best_matching_fact():
    question = "What did Ada Marsh study under Samuel Trask?"
    facts = [SeedFact("ada marsh", "trained in", "dunmere", 0.9), SeedFact("veloria bridge", "crosses", "orne", 0.5)]
    draft = draft_answer(question, Retrieval(question, "hipporag", EVIDENCE, facts))
    assert (draft.text, draft.doc_id) == ("Dunmere", "ada")
    assert draft_answer(question, Retrieval(question, "hipporag", [])) == DraftAnswer("")


def test_drafts_read_the_entities_the_index_found_instead_of_parsing_the_evidence(demo_store, demo_question_records):
    snapshot = Snapshot.read(demo_store)
    nlp = load_spacy("en_core_web_sm")
    for passage_id, text in zip(snapshot.passages.passage_ids, snapshot.passages.texts):
        stored = [(text[m.start_char : m.end_char], m.label, text[m.sentence_start : m.sentence_end])
                  for m in snapshot.entities.of(passage_id) or []]
        assert stored == [(e.text, e.label_, e.sent.text) for e in nlp(text).ents], passage_id
    parsed = []

    def parse(texts):
        parsed.extend(texts)
        return {text: nlp(text) for text in texts}

    hipporag = snapshot.retriever("hipporag", Config())
    for record in demo_question_records:
        evidence = hipporag.retrieve_many([record["question"]], 5)[0]
        drafted = draft_answer(record["question"], evidence, parse=parse, stored=snapshot.entities.of)
        assert drafted == draft_answer(record["question"], evidence)
    with_entities = {t for p, t in zip(snapshot.passages.passage_ids, snapshot.passages.texts) if snapshot.entities.of(p)}
    assert not with_entities & set(parsed), "a passage with stored entities was parsed again"


def test_a_store_without_entities_drafts_by_parsing_the_evidence(tmp_path, toy_store, store_tools):
    """Passages indexed by an LLM extractor, or before schema 4, have no stored entities."""
    bare = store_tools.copy(toy_store, tmp_path / "bare.duckdb")
    with duckdb.connect(str(bare)) as con:
        con.execute("DELETE FROM passage_entities")
    assert Snapshot.read(bare).entities.spans == {}
    [with_entities] = Memory(toy_store).retrieve_many([TOY_QUESTION], "memorag", 5)
    [without] = Memory(bare).retrieve_many([TOY_QUESTION], "memorag", 5)
    assert without.draft_answer == with_entities.draft_answer and without.draft_answer.text == "Tarrowmere"


# ---- the command line -----------------------------------------------------------------------------------


def test_cli_memorag_json_shows_clues_and_the_draft_answer(cli, toy_store):
    code, out, err = cli("query", TOY_QUESTION, "--db", toy_store, "--mode", "memorag", "--top-k", "2", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["mode"] == "memorag" and len(result["passages"]) == 2
    assert result["clues"][0] == {"text": TOY_QUESTION, "kind": "question", "weight": 1.0}
    assert {"surrogate", "draft"} <= {c["kind"] for c in result["clues"]}
    assert result["draft_answer"] == {"text": "Tarrowmere", "doc_id": "vael", "passage_id": "vael#0"}


def test_cli_memory_json_gives_each_passage_its_reason(cli, demo_store):
    code, out, err = cli("query", "Who designed the Veloria Bridge?", "--db", demo_store, "--mode", "memory", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"question", "mode", "passages"}
    assert all(isinstance(p["reason"], str) and p["reason"] for p in result["passages"])
