"""Sentence-aware chunking under a token budget, counted with the real embedder's tokenizer."""

from __future__ import annotations

import pytest

from hippograph.pipeline.chunk import chunk_documents
from hippograph.types import Document

TOPICS = ["bridge", "foundry", "railway", "newspaper", "lamp", "viaduct", "harbour", "mine", "choir", "canal"]


def sentences(n: int) -> list[str]:
    """Sentences of varied length that the sentencizer splits exactly where they end."""
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        filler = " and ".join(f"the {TOPICS[(i + j) % len(TOPICS)]} of Orne {j}" for j in range(i % 7))
        out.append(f"Sentence {i} is about the {topic}" + (f", {filler}" if filler else "") + ".")
    return out


def test_passages_keep_sentences_whole_and_in_order(embedder):
    sents = sentences(60)
    document = Document("doc", "Title", " ".join(sents))
    passages = chunk_documents([document], embedder.count_tokens, 200)
    assert len(passages) > 2
    # each passage is a run of consecutive whole sentences, and together they are the text
    position = 0
    for passage in passages:
        run = []
        while position < len(sents) and len(" ".join(run)) < len(passage.text):
            run.append(sents[position])
            position += 1
        assert passage.text == " ".join(run)
    assert position == len(sents)


@pytest.mark.parametrize("budget", [254, 200, 60, 40])
def test_no_passage_exceeds_the_budget(embedder, budget):
    document = Document("doc", "", " ".join(sentences(80)))
    passages = chunk_documents([document], embedder.count_tokens, budget)
    counts = embedder.count_tokens([p.embedding_text for p in passages])
    assert max(counts) <= budget
    assert max(counts) > budget * 0.6  # passages are filled, not one sentence each
    # greedy packing: the next passage's first sentence would not have fit (give or take the title separator)
    for passage, following in zip(passages, passages[1:]):
        first = following.text.split(". ")[0] + ("." if ". " in following.text else "")
        assert embedder.count_tokens([passage.text + " " + first])[0] > budget - 1


def test_title_and_text_together_fit_the_budget(embedder):
    """Passages are embedded as "title\ntext"; a long title must not push the text past the model's limit."""
    title = "The Complete History of the Orne Valley Railway Company and Its Branch Lines, 1850 to 1950"
    document = Document("doc", title, " ".join(sentences(80)))
    passages = chunk_documents([document], embedder.count_tokens, 100)
    assert embedder.count_tokens([title])[0] > 15
    assert max(embedder.count_tokens([p.embedding_text for p in passages])) <= 100


def test_short_document_is_one_passage(embedder):
    [passage] = chunk_documents([Document("d", "T", "One sentence.  And   another one.")], embedder.count_tokens, 200)
    assert passage.text == "One sentence. And another one."


def test_a_blank_line_ends_a_sentence(embedder):
    first = "The first paragraph has no full stop and runs on about the bridge and the foundry of Orne " * 2
    second = "The second paragraph starts here and runs on about the railway and the harbour of Orne " * 2
    text = f"{first.strip()}\n\n  {second.strip()}"
    assert all(30 < n < 60 for n in embedder.count_tokens([first, second]))
    passages = chunk_documents([Document("d", "", text)], embedder.count_tokens, 70)
    assert [p.text for p in passages] == [first.strip(), second.strip()]


def test_a_2000_word_sentence_is_split_into_pieces_within_budget(embedder):
    words = [f"{TOPICS[i % len(TOPICS)]}{i}" for i in range(2000)]
    sentence = " ".join(words) + "."
    assert embedder.count_tokens([sentence])[0] > 2000
    passages = chunk_documents([Document("long", "", sentence)], embedder.count_tokens, 200)
    counts = embedder.count_tokens([p.text for p in passages])
    assert max(counts) <= 200
    assert len(passages) >= embedder.count_tokens([sentence])[0] // 200
    assert " ".join(p.text for p in passages).split() == sentence.split()  # cut at word boundaries, nothing lost


def test_words_are_never_cut_in_a_very_long_paragraph(embedder):
    """Text without blank lines longer than 100,000 characters (a PDF dump, say) must still be cut between words."""
    words = [f"w{i}x" for i in range(30_000)]  # about 200,000 characters in one paragraph
    text = " ".join(words)
    passages = chunk_documents([Document("dump", "", text)], embedder.count_tokens, 200)
    assert max(embedder.count_tokens([p.text for p in passages])) <= 200
    assert " ".join(p.text for p in passages).split() == words


def test_passage_ids_positions_and_titles(embedder):
    docs = [
        Document("a/notes.md", "Notes", " ".join(sentences(40))),
        Document("b", "", "Just one."),
    ]
    passages = chunk_documents(docs, embedder.count_tokens, 60)
    a = [p for p in passages if p.doc_id == "a/notes.md"]
    assert len(a) >= 3
    assert [p.passage_id for p in a] == [f"a/notes.md#{i}" for i in range(len(a))]
    assert [p.position for p in a] == list(range(len(a)))
    assert {p.title for p in a} == {"Notes"}
    assert [(p.passage_id, p.position, p.title, p.text) for p in passages if p.doc_id == "b"] == [("b#0", 0, "", "Just one.")]
    assert passages == a + [p for p in passages if p.doc_id == "b"]  # documents in order


def test_chunking_is_deterministic(embedder):
    document = Document("d", "T", " ".join(sentences(50)))
    assert chunk_documents([document], embedder.count_tokens, 80) == chunk_documents([document], embedder.count_tokens, 80)


def test_count_tokens_counts_word_pieces_without_special_tokens(embedder):
    assert embedder.count_tokens([]) == []
    assert embedder.count_tokens(["bridge", "the bridge", ""]) == [1, 2, 0]


def test_a_long_run_without_spaces_is_split_to_fit_the_window(embedder):
    """A 23 KB line of comma-separated tokens is one "word" of about 13,000 word pieces."""
    run = ",".join(f"x{i:05d}" for i in range(3300))
    text = f"A list follows. {run} The list ends here."
    window = embedder.max_tokens - 2  # what `chunk` uses by default
    assert len(run) > 23_000 and embedder.count_tokens([run])[0] > 10 * window
    passages = chunk_documents([Document("doc", "Codes", text)], embedder.count_tokens, window)
    counts = embedder.count_tokens([p.embedding_text for p in passages])
    assert max(counts) <= window
    assert min(counts[:-1]) > window * 0.6  # filled, not cut into crumbs
    assert "".join(p.text for p in passages).replace(" ", "") == text.replace(" ", "")  # nothing lost


def test_documents_that_fit_skip_the_sentencizer_and_come_out_the_same(embedder):
    """A document whose whole text fits is one passage without sentence splitting: the same passage
    splitting and packing its sentences would make, paragraphs and runs of spaces included."""
    from hippograph.pipeline.chunk import _pack, _spaced_sentences

    docs = [Document(f"d{n}", "Title", "\n\n  ".join(["  ".join(sentences(n)), "A second paragraph."])) for n in range(12)]
    docs.append(Document("blank", "Title", " \n\n "))
    passages = chunk_documents(docs, embedder.count_tokens, 60)
    budget = 60 - embedder.count_tokens(["Title"])[0] - 1
    expected = [(d.doc_id, text) for d in docs for text in _pack(_spaced_sentences(d.text), embedder.count_tokens, budget)]
    assert [(p.doc_id, p.text) for p in passages] == expected
    assert sum(1 for n in embedder.count_tokens([d.text for d in docs]) if n <= budget) >= 3  # both paths ran
    assert sum(1 for n in embedder.count_tokens([d.text for d in docs]) if n > budget) >= 3


def test_passages_keep_the_text_where_a_sentence_ends_without_a_space(embedder):
    """The sentencizer cuts `album. "When` after the opening quote; joining sentences with a space made
    it `album. " When`, in about 5% of the dev sets' documents."""
    quoted = 'It was first released on the album "Gold" in 2001 as its last ballad. "When The Stars Go Blue" became a hit.'
    document = Document("d", "T", " ".join(sentences(20) + [quoted] + sentences(20)))
    passages = chunk_documents([document], embedder.count_tokens, 120)
    assert len(passages) > 2
    assert any(quoted in p.text for p in passages)
    assert not any('ballad. " When' in p.text for p in passages)
