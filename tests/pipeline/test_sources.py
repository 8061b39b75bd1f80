"""Reading documents: .txt/.md files, directory trees, .jsonl records, standard input, and the errors."""

from __future__ import annotations

import io
import json

import pytest

from hippograph import Document, InputError
from hippograph.pipeline.sources import documents_from_records, read_documents
from hippograph.types import content_hash


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, *records):
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


# ---- text and markdown files ----------------------------------------------------------------------------


def test_text_file_id_is_its_name_and_title_its_stem(tmp_path):
    path = write(tmp_path / "notes" / "orne river.txt", "The Orne rises in the Greythorn Hills.\n")
    [doc] = read_documents([path])
    assert doc.doc_id == "orne river.txt"
    assert doc.title == "orne river"
    assert doc.text == "The Orne rises in the Greythorn Hills."
    assert doc.metadata == {}


def test_markdown_heading_becomes_the_title(tmp_path):
    path = write(tmp_path / "ada.md", "\n# Ada Marsh\n\nAda Marsh designed the Veloria Bridge.\n\nShe was born in Kettleby.\n")
    [doc] = read_documents([path])
    assert doc.doc_id == "ada.md"
    assert doc.title == "Ada Marsh"
    assert doc.text == "Ada Marsh designed the Veloria Bridge.\n\nShe was born in Kettleby."
    assert "#" not in doc.text


def test_second_level_heading_is_not_a_title(tmp_path):
    path = write(tmp_path / "ada.md", "## Early life\nAda Marsh was born in Kettleby.")
    [doc] = read_documents([path])
    assert doc.title == "ada"
    assert doc.text.startswith("## Early life")


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff# Café Orne\nThe café is in Dunmere.".encode("utf-8"))
    [doc] = read_documents([path])
    assert doc.title == "Café Orne"
    assert doc.text == "The café is in Dunmere."


def test_directory_tree_ids_are_paths_relative_to_the_directory(tmp_path):
    root = tmp_path / "corpus"
    write(root / "b.txt", "Bee text.")
    write(root / "a.md", "# Alpha\nAlpha text.")
    write(root / "sub" / "deeper" / "c.txt", "Sea text.")
    write(root / "sub" / "D.MD", "Dee text.")
    write(root / "sub" / "image.png", "not a document")
    write(root / "sub" / "readme", "no suffix")
    jsonl(root / "sub" / "records.jsonl", {"id": "r1", "text": "Record one."})
    docs = read_documents([root])
    assert [d.doc_id for d in docs] == ["a.md", "b.txt", "sub/D.MD", "sub/deeper/c.txt", "r1"]
    by_id = {d.doc_id: d for d in docs}
    assert by_id["a.md"].title == "Alpha" and by_id["a.md"].text == "Alpha text."
    assert by_id["sub/deeper/c.txt"].title == "c" and by_id["sub/deeper/c.txt"].text == "Sea text."
    assert by_id["r1"].text == "Record one."


def test_ids_are_relative_to_the_directory_given(tmp_path):
    write(tmp_path / "corpus" / "sub" / "c.txt", "Sea text.")
    assert [d.doc_id for d in read_documents([tmp_path / "corpus"])] == ["sub/c.txt"]
    assert [d.doc_id for d in read_documents([tmp_path / "corpus" / "sub"])] == ["c.txt"]


def test_several_paths_keep_the_order_given(tmp_path):
    z = write(tmp_path / "z.txt", "Zed.")
    a = write(tmp_path / "a.txt", "Ay.")
    assert [d.doc_id for d in read_documents([z, a])] == ["z.txt", "a.txt"]


def test_same_relative_path_in_two_directories_is_a_duplicate(tmp_path):
    write(tmp_path / "one" / "notes.txt", "First.")
    write(tmp_path / "two" / "notes.txt", "Second.")
    with pytest.raises(InputError, match="duplicate document id 'notes.txt'"):
        read_documents([tmp_path / "one", tmp_path / "two"])


def test_title_without_text_is_rejected(tmp_path):
    path = write(tmp_path / "t.md", "# Only a title\n\n")
    with pytest.raises(InputError, match="title but no text"):
        read_documents([path])


def test_unsupported_file_type_is_rejected(tmp_path):
    path = write(tmp_path / "paper.pdf", "%PDF-1.4")
    with pytest.raises(InputError, match=r"unsupported file type \.pdf"):
        read_documents([path])


def test_directory_without_documents_is_rejected(tmp_path):
    write(tmp_path / "only.png", "x")
    with pytest.raises(InputError, match="no .txt, .md or .jsonl"):
        read_documents([tmp_path])


def test_large_file_is_accepted_under_a_raised_limit(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"The Orne valley is long. " * 400_000)  # 10 MB
    with pytest.raises(InputError, match="--max-document-mb"):
        read_documents([path])
    [doc] = read_documents([path], max_bytes=20_000_000)
    assert len(doc.text) == 10_000_000 - 1  # the trailing space is stripped


# ---- JSONL ----------------------------------------------------------------------------------------------


def test_jsonl_records_with_metadata(tmp_path):
    path = jsonl(
        tmp_path / "corpus.jsonl",
        {"id": "d1", "title": "Dunmere", "text": "Dunmere is a city.", "year": 1850, "tags": ["city"], "extra": None},
        {"id": 42, "text": "Forty-two has no title."},
    )
    path.write_text(path.read_text() + "\n   \n")  # blank lines are skipped
    docs = read_documents([path])
    assert [d.doc_id for d in docs] == ["d1", "42"]
    assert docs[0] == Document("d1", "Dunmere", "Dunmere is a city.", {"year": 1850, "tags": ["city"], "extra": None})
    assert docs[1].title == "" and docs[1].metadata == {}


def test_jsonl_record_without_id_gets_a_stable_content_hash_id(tmp_path):
    record = {"title": "Port Veloria", "text": "Port Veloria is a harbour town."}
    first = read_documents([jsonl(tmp_path / "a.jsonl", record)])[0]
    again = read_documents([jsonl(tmp_path / "b.jsonl", {"source": "elsewhere", **record})])[0]
    other = read_documents([jsonl(tmp_path / "c.jsonl", {**record, "text": "Port Veloria is a city."})])[0]
    assert first.doc_id == content_hash("Port Veloria", "Port Veloria is a harbour town.")
    assert len(first.doc_id) == 32 and all(c in "0123456789abcdef" for c in first.doc_id)
    assert again.doc_id == first.doc_id  # the id depends on title and text only
    assert other.doc_id != first.doc_id
    assert documents_from_records([record])[0].doc_id == first.doc_id


def test_jsonl_duplicate_ids_are_rejected(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "x", "text": "One."}, {"id": "y", "text": "Two."}, {"id": "x", "text": "Three."})
    with pytest.raises(InputError, match="duplicate document id 'x'"):
        read_documents([path])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "malformed JSON"),
        ('["a", "list"]', "expected a JSON object"),
        ('{"id": "a"}', '"text" must be a non-empty string'),
        ('{"id": "a", "text": "   "}', '"text" must be a non-empty string'),
        ('{"id": "a", "text": 5}', '"text" must be a non-empty string'),
        ('{"id": "a", "title": 3, "text": "T."}', '"title" must be a string'),
        ('{"id": ["a"], "text": "T."}', '"id" must be a non-empty string or an integer, not ["a"]'),
        ('{"id": true, "text": "T."}', '"id" must be a non-empty string or an integer, not true'),
        ('{"id": 1.5, "text": "T."}', '"id" must be a non-empty string or an integer, not 1.5'),
    ],
)
def test_bad_jsonl_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"id": "ok", "text": "Fine."}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_documents([path])
    assert f"corpus.jsonl:3: {message}" in str(error.value)


# ---- standard input -------------------------------------------------------------------------------------


def test_stdin_plain_text(tmp_path):
    [doc] = read_documents(["-"], stdin=io.BytesIO("Kettleby lies in the Orne valley.\n".encode()))
    assert doc.text == "Kettleby lies in the Orne valley."
    assert doc.title == ""
    assert doc.doc_id == content_hash("", "Kettleby lies in the Orne valley.")
    assert doc.metadata == {}


def test_stdin_markdown_title(tmp_path):
    [doc] = read_documents(["-"], stdin=io.BytesIO(b"# Kettleby\nKettleby lies in the Orne valley."))
    assert (doc.title, doc.text) == ("Kettleby", "Kettleby lies in the Orne valley.")


def test_stdin_jsonl(tmp_path):
    data = b'{"id": "s1", "title": "One", "text": "First."}\n{"id": "s2", "text": "Second.", "lang": "en"}\n'
    docs = read_documents(["-"], stdin=io.BytesIO(data))
    assert [(d.doc_id, d.title, d.text, d.metadata) for d in docs] == [
        ("s1", "One", "First.", {}),
        ("s2", "", "Second.", {"lang": "en"}),
    ]


def test_stdin_malformed_jsonl_names_stdin_and_line():
    with pytest.raises(InputError, match="<stdin>:2: malformed JSON"):
        read_documents(["-"], stdin=io.BytesIO(b'{"id": "s1", "text": "First."}\n{oops\n'))


def test_stdin_with_files(tmp_path):
    path = write(tmp_path / "a.txt", "Ay.")
    docs = read_documents([path, "-"], stdin=io.BytesIO(b"Stdin text."))
    assert [d.text for d in docs] == ["Ay.", "Stdin text."]


def test_dash_without_stdin_is_an_input_error():
    with pytest.raises(InputError, match="standard input"):
        read_documents(["-"], stdin=None)


def test_stdin_over_the_limit_is_rejected():
    with pytest.raises(InputError, match="<stdin> is over the 1 MB limit"):
        read_documents(["-"], stdin=io.BytesIO(b"a" * 1_000_001), max_bytes=1_000_000)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "<stdin> is empty"), (b" \n\t", "<stdin> is empty"), (b"ab\x00cd", "binary"), (b"caf\xe9", "not valid UTF-8")],
)
def test_bad_stdin(data, message):
    with pytest.raises(InputError, match=message):
        read_documents(["-"], stdin=io.BytesIO(data))


# ---- records (the library API) --------------------------------------------------------------------------


def test_records_and_documents_mix():
    docs = documents_from_records([
        {"id": "a", "title": "A", "text": "Ay.", "year": 1},
        Document("b", "B", "Bee."),
        {"text": "No id."},
    ])
    assert [d.doc_id for d in docs] == ["a", "b", content_hash("", "No id.")]
    assert docs[0].metadata == {"year": 1}


def test_records_with_duplicate_ids_name_the_id():
    with pytest.raises(InputError, match="duplicate document id 'a' \\(record 3\\)"):
        documents_from_records([{"id": "a", "text": "One."}, {"id": "b", "text": "Two."}, {"id": "a", "text": "Three."}])


def test_record_without_text_names_the_record():
    with pytest.raises(InputError, match='record 2: "text" must be a non-empty string'):
        documents_from_records([{"id": "a", "text": "One."}, {"id": "b"}])


# ---- symbolic links -------------------------------------------------------------------------------------


def test_links_to_files_outside_a_directory_are_skipped_with_a_warning(tmp_path, caplog):
    outside = write(tmp_path / "private" / "secret.txt", "The vault code is 4711.")
    root = tmp_path / "corpus"
    write(root / "a.txt", "Ay text.")
    write(root / "sub" / "b.txt", "Bee text.")
    (root / "secret.txt").symlink_to(outside)
    (root / "sub" / "again.txt").symlink_to(root / "a.txt")  # inside the tree: read
    docs = read_documents([root])
    assert {d.doc_id: d.text for d in docs} == {"a.txt": "Ay text.", "sub/again.txt": "Ay text.", "sub/b.txt": "Bee text."}
    [warning] = [r.getMessage() for r in caplog.records if r.name == "hippograph"]
    assert "skipped" in warning and str(root / "secret.txt") in warning and str(outside) in warning
    # a file given by name is read wherever its link leads
    assert read_documents([root / "secret.txt"])[0].text == "The vault code is 4711."


def test_a_directory_of_only_outside_links_is_rejected(tmp_path):
    outside = write(tmp_path / "private" / "secret.md", "The vault code is 4711.")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "secret.md").symlink_to(outside)
    with pytest.raises(InputError, match="no .txt, .md or .jsonl files but links to files outside it"):
        read_documents([tmp_path / "corpus"])


def test_record_with_metadata_nested_too_deeply_names_the_record():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InputError, match="record 2: metadata cannot be stored as JSON"):
        documents_from_records([{"text": "Fine."}, {"text": "Deep.", "meta": deep}])
