"""`import-triples`: triples made elsewhere join the graph of documents already indexed, embedded and linked as
indexing would, in one transaction, once; bad lines are refused with their file and line, the store untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hippograph import Config, InputError, Memory, StoreError
from hippograph.indexing.store import open_store

# Three passages at this budget: each sentence alone.
VALLEY = {"id": "valley", "title": "Orne valley", "text": (
    "Kettleby lies at the head of the Orne valley, among green hills, old farms and quiet stone villages. "
    "The Veloria Bridge crosses the Orne valley below Dunmere, carrying the old road over the wide river. "
    "The Harrow Iron Company built a large foundry at Dunmere, beside the river and the new railway line."
)}

TRIPLES = [
    # both phrases only in the second passage (the first names the valley alone): placed on valley#1
    {"doc_id": "valley", "subject": "Orne Valley", "predicate": " Crossed   BY ", "object": "the Veloria Bridge"},
    # only the subject appears, in the third passage
    {"doc_id": "valley", "subject": "Harrow Iron Company", "predicate": "employed", "object": "Ada Marsh"},
    # neither appears: the first passage
    {"doc_id": "valley", "subject": "Wessex Hills", "predicate": "border", "object": "Lyle Gorge"},
    # a new phrase close to a stored one ("veloria bridge"), so a synonym edge
    {"doc_id": "ada", "subject": "Ada Marsh", "predicate": "sketched", "object": "Veloria Bridges"},
]
EXPECTED_ROWS = [
    ("valley#1", -1, "orne valley", "crossed by", "veloria bridge"),
    ("valley#2", -1, "harrow iron company", "employed", "ada marsh"),
    ("valley#0", -1, "wessex hills", "border", "lyle gorge"),
    ("ada#0", -1, "ada marsh", "sketched", "veloria bridges"),
]
NEW_PHRASES = {"wessex hills", "lyle gorge", "veloria bridges"}
NEW_LINKS = {("valley#2", "ada marsh"), ("valley#0", "wessex hills"), ("valley#0", "lyle gorge"), ("ada#0", "veloria bridges")}


def write_jsonl(path, records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def valley_store(tmp_path_factory, small_docs):
    path = tmp_path_factory.mktemp("valley") / "valley.duckdb"
    Memory(path, Config().replace(chunk_max_tokens=20)).index(small_docs + [VALLEY])
    with open_store(path) as store:
        assert [pid for pid, _ in store.document_passages(["valley"])["valley"]] == ["valley#0", "valley#1", "valley#2"]
    return path


@pytest.fixture
def store(valley_store, tmp_path, store_tools):
    return store_tools.copy(valley_store, tmp_path / "valley.duckdb")


def dump(store_tools, path) -> dict[str, list[tuple]]:
    return {t: store_tools.sql(path, f"SELECT * FROM {t} ORDER BY ALL") for t in store_tools.ALL_TABLES + ("meta",)}


def imported_rows(store_tools, path) -> list[tuple]:
    return store_tools.sql(path, "SELECT * FROM triples WHERE sentence = -1")


# ---- the happy path -------------------------------------------------------------------------------------


def test_import_places_normalises_embeds_and_links(store, tmp_path, store_tools, embedder):
    before = dump(store_tools, store)
    report = Memory(store).import_triples(write_jsonl(tmp_path / "t.jsonl", TRIPLES))
    assert (report.triples, report.imported, report.skipped) == (4, 4, 0)
    assert (report.new_phrases, report.new_facts) == (3, 4)
    assert report.synonym_edges >= 1
    assert sorted(imported_rows(store_tools, store)) == sorted(EXPECTED_ROWS)

    after = dump(store_tools, store)
    assert set(after["passage_phrases"]) - set(before["passage_phrases"]) == NEW_LINKS
    assert len(after["passage_phrases"]) == len(before["passage_phrases"]) + len(NEW_LINKS)  # no duplicate links
    # New phrases and facts are embedded with the store's model, as indexing would (the tolerance allows for
    # bfloat16 CPUs, where batch composition moves vectors slightly; int8 vectors do not depend on it).
    phrases = dict(store_tools.sql(store, "SELECT phrase, embedding FROM phrases"))
    assert NEW_PHRASES <= set(phrases)
    expected = embedder.encode_corpus(sorted(NEW_PHRASES))
    np.testing.assert_allclose(np.array([phrases[p] for p in sorted(NEW_PHRASES)]), expected, atol=5e-3)
    facts = {tuple(r[:3]): r[3] for r in store_tools.sql(store, "SELECT subject, predicate, object, embedding FROM facts")}
    for _, _, s, p, o in EXPECTED_ROWS:
        np.testing.assert_allclose(facts[(s, p, o)], embedder.encode_corpus([f"{s} {p} {o}"])[0], atol=5e-3)
    assert ("veloria bridge", "veloria bridges") in {(a, b) for a, b, _ in store_tools.sql(store, "SELECT * FROM synonyms")}
    # Nothing else changed: no document or passage was replaced, one transaction was committed.
    for table in ("documents", "passages", "passage_embeddings"):
        assert after[table] == before[table]
    with open_store(store) as s:
        assert s.generation() == 2


def test_importing_twice_adds_nothing(store, tmp_path, store_tools):
    path = write_jsonl(tmp_path / "t.jsonl", TRIPLES)
    memory = Memory(store)
    memory.import_triples(path)
    once = dump(store_tools, store)
    report = memory.import_triples(path)
    assert (report.triples, report.imported, report.skipped, report.new_phrases, report.new_facts) == (4, 0, 4, 0, 0)
    assert dump(store_tools, store) == once  # generation included


def test_triples_already_extracted_or_repeated_are_skipped(store, store_tools):
    extracted = store_tools.sql(store, "SELECT subject, predicate, object FROM triples WHERE passage_id = 'ada#0'")
    assert ("ada marsh", "designed", "veloria bridge") in extracted
    records = [
        {"doc_id": "ada", "subject": "Ada Marsh", "predicate": "designed", "object": "The Veloria Bridge"},
        {"doc_id": "ada", "subject": "ada marsh", "predicate": "DESIGNED", "object": "veloria bridge"},
        {"doc_id": "ada", "subject": "Ada Marsh", "predicate": "admired", "object": "Kettleby"},
        {"doc_id": "ada", "subject": "Ada Marsh", "predicate": "admired", "object": "Kettleby"},
    ]
    report = Memory(store).import_triples(records)
    assert (report.imported, report.skipped, report.new_phrases, report.new_facts) == (1, 3, 0, 1)
    assert imported_rows(store_tools, store) == [("ada#0", -1, "ada marsh", "admired", "kettleby")]


def test_numeric_doc_ids_match_stored_ids(tmp_path, store_tools):
    db = tmp_path / "n.duckdb"
    Memory(db).index([{"id": 42, "text": "Tobias Wren founded the Kettleby Gazette."}])
    report = Memory(db).import_triples([{"doc_id": 42, "subject": "Tobias Wren", "predicate": "edited", "object": "Kettleby Gazette"}])
    assert report.imported == 1
    assert imported_rows(store_tools, db) == [("42#0", -1, "tobias wren", "edited", "kettleby gazette")]


def test_imported_facts_seed_retrieval_after_import(store):
    memory = Memory(store)
    question = "Which gorge do the Wessex Hills border?"
    before = memory.retrieve(question, mode="hipporag", top_k=2)  # loads the snapshot the import must replace
    assert ("wessex hills", "border", "lyle gorge") not in {(f.subject, f.predicate, f.object) for f in before.facts}
    memory.import_triples(TRIPLES)
    after = memory.retrieve(question, mode="hipporag", top_k=2)
    assert (after.facts[0].subject, after.facts[0].predicate, after.facts[0].object) == ("wessex hills", "border", "lyle gorge")
    assert after.passages[0].passage_id == "valley#0"


def test_deleting_the_document_removes_its_imported_triples(store, store_tools):
    memory = Memory(store)
    memory.import_triples(TRIPLES)
    memory.delete(["valley"])
    assert imported_rows(store_tools, store) == [("ada#0", -1, "ada marsh", "sketched", "veloria bridges")]
    phrases = {r[0] for r in store_tools.sql(store, "SELECT phrase FROM phrases")}
    assert "veloria bridges" in phrases and not {"wessex hills", "lyle gorge"} & phrases


# ---- bad input --------------------------------------------------------------------------------------------

GOOD = json.dumps(TRIPLES[0])
BAD_LINES = {
    "unknown doc": ({"doc_id": "nope", "subject": "A b", "predicate": "p", "object": "C d"}, ["no document 'nope'", "index it first"]),
    "missing field": ({"doc_id": "ada", "subject": "Ada Marsh", "predicate": "p"}, ["missing field(s) object"]),
    "empty subject": ({"doc_id": "ada", "subject": "  ", "predicate": "p", "object": "Kettleby"}, ['"subject" must be a non-empty string']),
    "empty predicate": ({"doc_id": "ada", "subject": "Ada", "predicate": "", "object": "Kettleby"}, ['"predicate" must be a non-empty string']),
    "number object": ({"doc_id": "ada", "subject": "Ada", "predicate": "p", "object": 7}, ['"object" must be a non-empty string']),
    "empty doc id": ({"doc_id": "", "subject": "Ada", "predicate": "p", "object": "Kettleby"}, ['"doc_id" must be a non-empty string']),
    "fractional doc id": ({"doc_id": 1.5, "subject": "Ada", "predicate": "p", "object": "Kettleby"}, ['"doc_id" must be a non-empty string or an integer, not 1.5']),
    "only a determiner": ({"doc_id": "ada", "subject": "The", "predicate": "p", "object": "Kettleby"}, ["names nothing"]),
    "self loop": ({"doc_id": "ada", "subject": "Kettleby", "predicate": "is", "object": "the kettleby"}, ["same phrase"]),
    "malformed json": ('{"doc_id": "ada", "subject": ', ["malformed JSON"]),
    "not an object": ('["ada", "Ada Marsh", "p", "Kettleby"]', ["expected a JSON object"]),
}


@pytest.mark.parametrize("case", BAD_LINES)
def test_bad_line_is_refused_with_file_and_line_and_nothing_is_written(store, tmp_path, store_tools, case):
    line, words = BAD_LINES[case]
    before = dump(store_tools, store)
    path = write_jsonl(tmp_path / "t.jsonl", [GOOD, "", line])  # line 3; the blank line still counts
    with pytest.raises(InputError) as error:
        Memory(store).import_triples(path)
    assert "t.jsonl:3:" in str(error.value)
    for word in words:
        assert word in str(error.value)
    assert dump(store_tools, store) == before


def test_bad_record_from_python_names_the_record(store):
    with pytest.raises(InputError, match=r"^record 2: missing field\(s\) doc_id$"):
        Memory(store).import_triples([TRIPLES[0], {"subject": "a", "predicate": "b", "object": "c"}])


def test_missing_or_empty_file_and_missing_store(store, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Memory(store).import_triples(tmp_path / "absent.jsonl")
    with pytest.raises(InputError, match="is empty"):
        Memory(store).import_triples(write_jsonl(tmp_path / "empty.jsonl", []))
    with pytest.raises(StoreError, match="no store"):
        Memory(tmp_path / "none.duckdb").import_triples(TRIPLES)
    assert not (tmp_path / "none.duckdb").exists()


# ---- the command line -----------------------------------------------------------------------------------


def test_cli_import_triples(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", TRIPLES)
    code, out, err = cli("import-triples", path, "--db", store, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"triples", "imported", "skipped", "invalid", "new_phrases", "new_facts", "synonym_edges", "seconds"}
    assert (report["imported"], report["skipped"], report["new_phrases"], report["new_facts"]) == (4, 0, 3, 4)

    code, out, err = cli("import-triples", path, "--db", store)
    assert code == 0, err
    assert out.startswith(f"{path}: 0 imported, 4 skipped (already stored), 0 new phrases, 0 new facts")


def test_cli_import_triples_error(cli, store, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [GOOD, {"doc_id": "nope", "subject": "a b", "predicate": "p", "object": "c d"}])
    code, out, err = cli("import-triples", path, "--db", store)
    assert (code, out) == (1, "")
    assert err.strip() == f"hippograph: error: {path}:2: no document 'nope' in the store; index it first"


# ---- lenient mode and HippoRAG's OpenIE results ---------------------------------------------------------

MUSIQUE = Path(__file__).resolve().parents[2] / "shared" / "data" / "musique-dev"


def test_lenient_mode_imports_the_good_records_and_counts_the_bad_by_reason(store, tmp_path, store_tools):
    unreadable = ("malformed json", "not an object")  # lines that are no record at all: refused even when lenient
    records = [GOOD] + [line for case, (line, _) in BAD_LINES.items() if case not in unreadable] + [BAD_LINES["self loop"][0]]
    path = write_jsonl(tmp_path / "t.jsonl", records)
    report = Memory(store).import_triples(path, lenient=True)
    assert (report.triples, report.imported) == (len(records), 1)
    assert report.invalid == {
        "document not in the store": 1, "missing field": 1, "empty subject": 1, "empty predicate": 1,
        "empty object": 1, "bad doc_id": 2, "subject names nothing": 1, "self-loop": 2,
    }
    assert imported_rows(store_tools, store) == [EXPECTED_ROWS[0]]
    assert Memory(store).import_triples([TRIPLES[0], ["a list"]], lenient=True).invalid == {"not an object": 1}


def test_lenient_mode_still_refuses_a_malformed_jsonl_file(store, tmp_path):
    with pytest.raises(InputError, match="t.jsonl:2: malformed JSON"):  # the file itself is broken
        Memory(store).import_triples(write_jsonl(tmp_path / "t.jsonl", [GOOD, BAD_LINES["malformed json"][0]]), lenient=True)


def openie_file(path, docs) -> Path:
    path.write_text(json.dumps({"docs": docs, "avg_ent_chars": float("nan")}), encoding="utf-8")
    return path


def test_hipporag_openie_results_are_matched_to_documents_by_title_and_text(store, tmp_path, small_docs, store_tools):
    ada, gazette = small_docs[0], small_docs[2]
    docs = [
        {"title": ada["title"], "text": ada["text"], "extracted_triples": [
            ["Ada Marsh", "trained in", "Kettleby"], ["Ada Marsh", "is", "ada marsh"], ["Ada Marsh", "designed"],
            ["Ada Marsh", "worked with", "."]]},
        {"title": gazette["title"], "text": gazette["text"], "extracted_triples": [
            ["Kettleby Gazette", "edited by", "Tobias Wren"], ["Tobias", "founded", "Gazette", "in 1880"]]},
        {"title": "Elsewhere", "text": "Not in the store.", "extracted_triples": [["Elsewhere", "is", "nowhere"]]},
    ]
    path = openie_file(tmp_path / "openie_results_ner_test.json", docs)
    with pytest.raises(InputError, match=r"openie_results_ner_test.json: docs\[0\].extracted_triples\[1\]: .*same phrase"):
        Memory(store).import_triples(path)
    report = Memory(store).import_triples(path, lenient=True)
    assert (report.triples, report.imported) == (7, 2)
    assert report.invalid == {"self-loop": 1, "not three parts": 2, "object names nothing": 1, "passage not in the store": 1}
    assert sorted(imported_rows(store_tools, store)) == [
        ("ada#0", -1, "ada marsh", "trained in", "kettleby"), ("gazette#0", -1, "kettleby gazette", "edited by", "tobias wren")]


@pytest.mark.skipif(not MUSIQUE.is_dir(), reason="needs ../shared/data/musique-dev beside the checkout")
def test_hipporags_own_openie_file_for_musique_imports_leniently(tmp_path, store_tools):
    """The real file, against the first 300 musique passages (all 1,890 take minutes to embed: the
    benchmark imports them all); the triples of the other passages count as not in the store."""
    lines = (MUSIQUE / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:300]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", lines)
    db = tmp_path / "musique.duckdb"
    memory = Memory(db, Config(build_graph=False))
    memory.index_paths([corpus])
    source = MUSIQUE / "openie-gpt-3.5-turbo-1106.json"
    with pytest.raises(InputError, match=r"openie-gpt-3.5-turbo-1106.json: docs\[\d+\].extracted_triples\[\d+\]: "):
        memory.import_triples(source)
    assert store_tools.counts(db, ("triples",))["triples"] == 0, "strict: nothing written"
    docs = json.loads(source.read_text(encoding="utf-8"))["docs"]
    stored = {(r["title"], r["text"]) for r in map(json.loads, lines)}
    triples = [(t, (doc["title"], doc["text"]) in stored) for doc in docs for t in doc["extracted_triples"]]
    report = memory.import_triples(source, lenient=True)
    print(json.dumps(report.to_dict()))
    assert report.triples == len(triples)
    assert report.invalid["not three parts"] == sum(len(t) != 3 for t, _ in triples)
    # Records are validated before they are matched: an invalid one counts under its own reason.
    assert 0 < report.invalid["passage not in the store"] <= sum(len(t) == 3 and not known for t, known in triples)
    assert report.invalid["self-loop"] >= 1 and report.imported > 1000
    assert report.imported + report.skipped + sum(report.invalid.values()) == len(triples)
    assert store_tools.counts(db, ("triples",))["triples"] == report.imported
