"""Fact extraction with the real spaCy model: dependency rules, title resolution, caps and edge cases."""

from __future__ import annotations

from collections import Counter

import pytest

from hippograph import Config
from hippograph.errors import HippographError
from hippograph.pipeline.extract import (
    MAX_FACTS_PER_PASSAGE,
    MAX_FACTS_PER_SENTENCE,
    MAX_PHRASE_TOKENS,
    ModelNotFoundError,
    extract_facts,
    load_spacy,
    normalize_phrase,
    title_phrase,
)
from hippograph.types import Passage, PassageFacts


@pytest.fixture(scope="module")
def nlp():
    return load_spacy(Config().spacy_model)


def passage(text: str, title: str = "", passage_id: str = "p0") -> Passage:
    return Passage(passage_id=passage_id, doc_id="d0", position=0, title=title, text=text)


def facts_of(nlp, text: str, title: str = "") -> PassageFacts:
    return extract_facts([passage(text, title)], nlp)[0]


def spo(nlp, text: str, title: str = "") -> set[tuple[str, str, str]]:
    return {(t.subject, t.predicate, t.object) for t in facts_of(nlp, text, title).triples}


# --- normalisation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Beatles", "beatles"),
        ("The  Beatles' ", "beatles"),
        ("the United States", "united states"),
        (" Paris, ", "paris"),
        ('"The Dark Knight"', "dark knight"),
        ("Arthur's", "arthur"),
        ("his  father", "father"),
        ("A Tribe Called Quest", "tribe called quest"),
        ("Arthur's Magazine", "arthur's magazine"),
        ("The The", "the"),
        ("Straße", "straße"),
        ("the", ""),
        ("his", ""),
        (" ... ", ""),
        ("", ""),
    ],
)
def test_normalize_phrase(raw, expected):
    assert normalize_phrase(raw) == expected


def test_title_phrase_drops_wikipedia_disambiguator():
    assert title_phrase("Paris (1926 film)") == "paris"
    assert title_phrase("The Prestige (film)") == "prestige"
    assert title_phrase("Lambert, Margrave of Tuscany") == "lambert, margrave of tuscany"


# --- model loading -----------------------------------------------------------------------------------------


def test_load_spacy_drops_the_unused_lemmatizer(nlp):
    assert "parser" in nlp.pipe_names and "ner" in nlp.pipe_names
    assert "lemmatizer" not in nlp.pipe_names


def test_missing_model_names_the_package_to_install():
    with pytest.raises(ModelNotFoundError, match="xx_no_such_model") as info:
        load_spacy("xx_no_such_model")
    assert "install" in str(info.value)
    assert isinstance(info.value, HippographError)


# --- dependency rules --------------------------------------------------------------------------------------


def test_active_subject_verb_object(nlp):
    assert ("marie curie", "discovered", "polonium") in spo(nlp, "Marie Curie discovered polonium.")


def test_passive_with_agent_puts_the_agent_first(nlp):
    facts = spo(nlp, "Polonium was discovered by Marie Curie.")
    assert ("marie curie", "discovered", "polonium") in facts
    assert ("polonium", "discovered", "marie curie") not in facts


def test_copula_keeps_the_of_phrase_and_adds_the_relation(nlp):
    facts = spo(nlp, "Paris is the capital of France.")
    assert ("paris", "is", "capital of france") in facts
    assert ("paris", "capital of", "france") in facts


def test_apposition_uses_full_entity_span(nlp):
    facts = spo(nlp, "Lester Smith, a game designer, created Dragon Dice.")
    assert ("lester smith", "is", "game designer") in facts
    assert ("lester smith", "created", "dragon dice") in facts
    assert not any(s == "smith" for s, _, _ in facts)


def test_conjoined_subjects_and_objects_are_expanded(nlp):
    subjects = spo(nlp, "John Lennon and Paul McCartney founded the Beatles.")
    assert {("john lennon", "founded", "beatles"), ("paul mccartney", "founded", "beatles")} <= subjects
    objects = spo(nlp, "Marie Curie discovered polonium and radium.")
    assert {("marie curie", "discovered", "polonium"), ("marie curie", "discovered", "radium")} <= objects


def test_prepositional_object_joins_verb_and_preposition(nlp):
    assert ("einstein", "born in", "ulm") in spo(nlp, "Einstein was born in Ulm.")


def test_negation_is_part_of_the_predicate(nlp):
    facts = spo(nlp, "Microsoft did not acquire Google.")
    assert ("microsoft", "not acquire", "google") in facts
    assert ("microsoft", "acquire", "google") not in facts


def test_participle_clause_on_a_copula_attribute_belongs_to_the_subject(nlp):
    facts = spo(nlp, "Demon Dice is a collectible dice game created by Lester Smith and Tim Brown.", "Demon Dice")
    assert ("lester smith", "created", "demon dice") in facts
    assert ("tim brown", "created", "demon dice") in facts


def test_relative_pronoun_resolves_to_its_noun(nlp):
    facts = spo(nlp, "Jaws is a 1975 film which was directed by Steven Spielberg.", "Jaws")
    assert ("steven spielberg", "directed", "jaws") in facts
    assert not any("which" in (s, o) for s, _, o in facts)


# --- the title entity --------------------------------------------------------------------------------------


def test_subject_pronoun_resolves_to_the_title(nlp):
    facts = facts_of(nlp, "Marie Curie was a physicist. She discovered polonium in 1898.", "Marie Curie")
    triples = {(t.subject, t.predicate, t.object): t for t in facts.triples}
    assert ("marie curie", "discovered", "polonium") in triples
    assert triples[("marie curie", "discovered", "polonium")].sentence == 1
    assert not any(t.subject in ("she", "") for t in facts.triples)


def test_pronoun_without_a_title_gives_no_fact(nlp):
    assert spo(nlp, "It discovered polonium.") == set()


def test_possessive_subject_and_noun_of_relations_point_at_the_title(nlp):
    facts = spo(nlp, "Teutberga was a queen. She was the daughter of Boso. Her father was Hugh.", "Teutberga")
    assert ("teutberga", "daughter of", "boso") in facts
    assert ("hugh", "father of", "teutberga") in facts


def test_short_form_of_the_title_is_the_title(nlp):
    facts = spo(nlp, "Einstein was born in Ulm. Einstein died in Princeton.", "Albert Einstein")
    assert ("albert einstein", "born in", "ulm") in facts
    assert ("albert einstein", "died in", "princeton") in facts
    assert ("albert einstein", "is", "einstein") in facts  # keeps the short form's node connected


def test_category_noun_of_the_first_sentence_means_the_title(nlp):
    facts = spo(nlp, "Jaws is a 1975 film. The film stars Roy Scheider.", "Jaws (film)")
    assert ("jaws", "stars", "roy scheider") in facts
    assert ("film", "stars", "roy scheider") not in facts


def test_title_is_linked_to_entities_of_the_first_sentence(nlp):
    text = "Demon Dice, originally published as Chaos Progenitus, is a dice game sold in Germany by Fast Forward Games."
    facts = spo(nlp, text, "Demon Dice")
    linked = {o for s, _, o in facts if s == "demon dice"} | {s for s, _, o in facts if o == "demon dice"}
    assert {"chaos progenitus", "germany", "fast forward games"} <= linked


def test_entities_of_one_sentence_are_linked_by_co_occurrence(nlp):
    text = "Demon Dice is a game created by Lester Smith (designer of the better-known Dragon Dice) and Tim Brown."
    pairs = {frozenset((s, o)) for s, _, o in spo(nlp, text, "Demon Dice")}
    assert frozenset(("lester smith", "tim brown")) in pairs


# --- phrases -----------------------------------------------------------------------------------------------


def test_phrases_hold_title_entities_and_triple_arguments_once(nlp):
    facts = facts_of(nlp, "Lester Smith, a game designer, created Dragon Dice in 1990.", "Dragon Dice")
    assert facts.phrases[0] == "dragon dice"
    assert {"lester smith", "game designer", "1990"} <= set(facts.phrases)
    assert len(facts.phrases) == len(set(facts.phrases))
    for triple in facts.triples:
        assert triple.subject in facts.phrases and triple.object in facts.phrases


def test_numbers_are_not_phrases_but_dates_are(nlp):
    facts = facts_of(nlp, "He bought 300 apples in Paris on 5 May 1817.", "John Smith")
    assert "300" not in facts.phrases
    assert "5 may 1817" in facts.phrases
    assert "paris" in facts.phrases


# --- invariants, provenance, caps --------------------------------------------------------------------------


def test_triples_are_clean_and_unique(nlp):
    text = (
        "The Prestige is a 2006 British-American mystery thriller film directed by Christopher Nolan, from a "
        "screenplay adapted by Nolan and his brother Jonathan from Christopher Priest's 1995 novel of the same "
        "name. The film stars Hugh Jackman as Robert Angier, Christian Bale as Alfred Borden, and David Bowie as "
        "Nikola Tesla. It also stars Scarlett Johansson, Michael Caine, Piper Perabo, Andy Serkis, and Rebecca Hall."
    )
    triples = facts_of(nlp, text, "The Prestige (film)").triples
    assert len(triples) >= 8
    keys = [(t.subject, t.predicate, t.object) for t in triples]
    assert len(keys) == len(set(keys))
    for t in triples:
        assert t.subject and t.object and t.predicate and t.subject != t.object
        assert t.predicate == t.predicate.lower()
        assert len(t.subject.split()) <= MAX_PHRASE_TOKENS and len(t.object.split()) <= MAX_PHRASE_TOKENS
    assert ("prestige", "stars", "scarlett johansson") in keys


def test_output_order_and_provenance_follow_the_input(nlp):
    passages = [
        passage("Marie Curie discovered polonium.", passage_id="a"),
        passage("", passage_id="b"),
        passage("Polonium is rare. Einstein was born in Ulm.", passage_id="c"),
    ]
    results = extract_facts(passages, nlp, batch_size=2)
    assert [r.passage_id for r in results] == ["a", "b", "c"]
    assert all(t.passage_id == r.passage_id for r in results for t in r.triples)
    born = [t for t in results[2].triples if (t.subject, t.predicate, t.object) == ("einstein", "born in", "ulm")]
    assert [t.sentence for t in born] == [1]
    sentences = [t.sentence for t in results[2].triples]
    assert sentences == sorted(sentences)


def test_two_processes_give_the_same_facts(nlp):
    texts = [
        ("Marie Curie discovered polonium. She was born in Warsaw.", "Marie Curie"),
        ("Paris is the capital of France.", "Paris"),
        ("The Veloria Bridge was designed by Ada Marsh.", "Veloria Bridge"),
    ]
    passages = [passage(text, title, f"p{i}") for i, (text, title) in enumerate(texts * 4)]
    # batches of 2 over 12 passages: more than one batch, so spaCy really starts two processes
    assert extract_facts(passages, nlp, batch_size=2, n_process=2) == extract_facts(passages, nlp, n_process=1)
    assert len({t.passage_id for f in extract_facts(passages[:3], nlp) for t in f.triples}) == 3


def test_list_like_passage_is_capped(nlp):
    first = ["Tom", "Meg", "Anna", "James", "Maria", "Robert", "Linda", "David", "Susan", "Peter", "Laura", "Henry"]
    last = ["Hanks", "Ryan", "Miller", "Brown", "Garcia", "Wilson", "Moore", "Taylor", "Clark", "Lewis", "Walker"]
    sentences = []
    for k in range(6):  # six cast lists of 15 names: far more facts than the caps allow
        cast = [f"{first[(i + k) % len(first)]} {last[(2 * i + k) % len(last)]}" for i in range(15)]
        sentences.append("It stars " + ", ".join(cast[:-1]) + f", and {cast[-1]}.")
    triples = facts_of(nlp, " ".join(sentences), "Some Film").triples
    assert len(triples) == MAX_FACTS_PER_PASSAGE
    per_sentence = Counter(t.sentence for t in triples)
    assert max(per_sentence.values()) == MAX_FACTS_PER_SENTENCE


def test_facts_between_two_generic_nouns_are_dropped(nlp):
    text = "Some Film is a 2001 film. The story describes a warm relationship between a farmer and an artist."
    facts = spo(nlp, text, "Some Film")
    assert ("some film", "is", "2001 film") in facts
    assert not any(s == "story" for s, _, _ in facts)


# --- edge cases --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "Hello",
        "!!! ??? ...",
        "Der Hund läuft schnell über die Straße und bellt laut.",
        "東京は日本の首都です。",
    ],
)
def test_odd_texts_do_not_crash(nlp, text):
    facts = facts_of(nlp, text, "Some Title")
    assert facts.passage_id == "p0"
    assert facts.phrases[0] == "some title"
    assert len(facts.triples) <= 5


def test_empty_text_without_title_has_nothing(nlp):
    facts = facts_of(nlp, "", "")
    assert facts.triples == [] and facts.phrases == []


def test_five_thousand_word_sentence(nlp):
    words = "the king of France met a soldier from Paris while John Smith watched and".split()
    text = " ".join(words[i % len(words)] for i in range(5000)) + " left."
    facts = facts_of(nlp, text, "John Smith")
    assert len(facts.triples) <= MAX_FACTS_PER_PASSAGE
    assert all(len(p.split()) <= MAX_PHRASE_TOKENS for p in facts.phrases)


def test_pipeline_without_parser_returns_only_phrases():
    spacy = pytest.importorskip("spacy")
    facts = extract_facts([passage("Marie Curie discovered polonium.", "Marie Curie")], spacy.blank("en"))[0]
    assert facts.triples == []
    assert facts.phrases == ["marie curie"]


def test_a_role_noun_with_a_named_apposition_becomes_the_name(nlp):
    facts = spo(nlp, "The Veloria Bridge was designed by the engineer Ada Marsh.")
    assert ("ada marsh", "designed", "veloria bridge") in facts
    assert not any(s == "engineer" for s, _, _ in facts)
