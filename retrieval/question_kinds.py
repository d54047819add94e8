"""What kind of question a labelled question is, by simple deterministic rules; and which share is held out.

Kinds (what users type, see issue #12): an acronym or term look-up that names the term ("que veut dire CAF"),
a reverse look-up from a description ("le sigle de l'organisme qui verse les allocations familiales"), a
paraphrase (neither the term nor most of the definition's words), a typo of the term ("ursaf"), a question in
English, and an ambiguous one (it names a term several validated entries share and says nothing that picks
one of them). The rules are deliberately plain so that an expert can predict them; the expert corrects the
kind in the UI when they are wrong.

Pure module: no Django import (the pre-processing helpers it reuses are pure too).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein

from glossary.text import collapse_spaces, fold
from retrieval.lexical import tokenize
from retrieval.preprocess import build_vocabulary, detect_query_language

ACRONYM = "acronym"
REVERSE = "reverse"
PARAPHRASE = "paraphrase"
TYPO = "typo"
ENGLISH = "english"
AMBIGUOUS = "ambiguous"
KINDS = (ACRONYM, REVERSE, PARAPHRASE, TYPO, ENGLISH, AMBIGUOUS)

# The share of labelled questions never trained on and used only to judge versions (like the frozen split:
# decided by a hash of the question, so the same question is held out on every machine and in every run).
HELD_OUT_SHARE = 0.30
_HELD_OUT_SALT = "lexique-labelled-question"

# A question sharing at least this share of the definition's words (or two of them) describes the entry.
REVERSE_MIN_SHARE = 0.5
REVERSE_MIN_WORDS = 2
# Words that ask for a name from a description ("le sigle de ...", "comment s'appelle ...").
_REVERSE_CUES = re.compile(r"\b(sigle|acronyme|abreviation|comment s.?appelle|nom de|quel organisme|quelle administration|quel service)\b")
_WORD = re.compile(r"[0-9a-z]+")
_ELISION = re.compile(r"\b(?:qu|jusqu|lorsqu|puisqu|[cdjlmnst])['’]")


@dataclass(frozen=True)
class KindEntry:
    """What the rules need of the entry a question is about."""

    term: str
    definition: str
    variants: tuple[str, ...] = ()
    domain: str = ""
    # Definitions (with their domain) of the other validated entries with the same term: the other senses.
    homonyms: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def normalise_question(text: str) -> str:
    """Key under which two writings of a question are the same question: case, accents, spaces, apostrophes
    and final punctuation ignored."""
    folded = fold((text or "").replace("’", "'"))
    return collapse_spaces(re.sub(r"[\s?!.;:,]+$", "", folded))


def is_held_out(normalised: str, *, share: float = HELD_OUT_SHARE) -> bool:
    """Whether a question (its ``normalise_question`` key) belongs to the held-out share: a stable hash."""
    digest = hashlib.sha256(f"{_HELD_OUT_SALT}\x1f{normalised}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(_ELISION.sub(" ", fold(text).replace("’", "'"))))


def _names(question_words: Sequence[str], name: str) -> bool:
    """Whether the words of ``name`` occur, in order and whole, in the question."""
    words = _words(name)
    if not words:
        return False
    size = len(words)
    return any(tuple(question_words[start:start + size]) == words for start in range(len(question_words) - size + 1))


def _typo_of(question_words: Sequence[str], names: Sequence[str]) -> bool:
    """A question word one or two edits away from a one-word name (never a shorter-than-3 word)."""
    for name in names:
        words = _words(name)
        if len(words) != 1 or len(words[0]) < 3:
            continue
        target = words[0]
        limit = 1 if len(target) <= 5 else 2
        for word in question_words:
            if word != target and abs(len(word) - len(target)) <= limit and len(word) >= 3:
                if DamerauLevenshtein.distance(word, target, score_cutoff=limit) <= limit:
                    return True
    return False


def _content(text: str) -> set[str]:
    return {token for token in tokenize(text) if len(token) > 2}


def definition_overlap(question: str, definition: str) -> tuple[int, float]:
    """How many of the definition's content words the question uses, and which share of them."""
    words = _content(definition)
    shared = _content(question) & words
    return len(shared), (len(shared) / len(words) if words else 0.0)


def settles_sense(question: str, *, definition: str, domain: str, others: Sequence[tuple[str, str]]) -> bool:
    """Whether the question says which sense it means: it uses words of this sense's definition or domain that
    the other senses do not have."""
    own = _content(definition) | _content(domain)
    theirs = set().union(*(_content(text) | _content(other_domain) for text, other_domain in others)) if others else set()
    return bool(_content(question) & (own - theirs))


def question_kind(question: str, entry: KindEntry) -> str:
    """The kind of ``question`` about ``entry``; first rule that applies, in the order of ``KINDS`` below:

    english (lingua says English), ambiguous (names a term several entries share, without words of its
    own sense), acronym (names the term or a variant), typo (a word one or two edits from the term or a
    one-word variant), reverse (asks for a name, or uses most of the definition's words), paraphrase.
    """
    names = [entry.term, *entry.variants]
    vocabulary = build_vocabulary([(entry.term, "acronym" if entry.term.isupper() else "term", entry.variants, entry.definition)])
    if detect_query_language(question, vocabulary=vocabulary) == "en":
        return ENGLISH
    words = _words(question)
    names_term = any(_names(words, name) for name in names)
    if names_term and entry.homonyms and not settles_sense(question, definition=entry.definition, domain=entry.domain, others=entry.homonyms):
        return AMBIGUOUS
    if names_term:
        return ACRONYM
    if _typo_of(words, names):
        return TYPO
    shared, share = definition_overlap(question, entry.definition)
    if _REVERSE_CUES.search(fold(question).replace("’", "'")) or shared >= REVERSE_MIN_WORDS and share >= REVERSE_MIN_SHARE:
        return REVERSE
    return PARAPHRASE
