"""Deterministic query pre-processing: language, spelling, acronym expansion, optional translation.

Each step can be switched off and reports what it did, so the debug view can show it. Only translation
uses an LLM, and only when the caller passes one (a callable). Pure module: no Django import.
"""
from __future__ import annotations

import logging
import re
from collections import ChainMap, Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from lingua import Language, LanguageDetectorBuilder
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein
from spellchecker import SpellChecker

from glossary.text import collapse_spaces, fold

logger = logging.getLogger(__name__)

# Letters only: digits, punctuation and apostrophes split words ("l'ursaf" -> "l", "ursaf").
_WORD = re.compile(r"[^\W\d_]+")
# Tokens this short ("c", "koi", "la") are too ambiguous to correct.
MIN_CORRECTED_LENGTH = 4
# Acronym expansions longer than this are definitions, not expansions.
MAX_EXPANSION_WORDS = 12
# Below this confidence the language is reported as unknown (short or mixed queries).
MIN_LANGUAGE_CONFIDENCE = 0.6

NO_LLM = "no LLM configured"
ALREADY_FRENCH = "query already in French"
LANGUAGE_UNKNOWN = "language not detected"
DETECTION_OFF = "language detection switched off"
EMPTY_TRANSLATION = "empty translation"


def _acronym_key(form: str) -> str | None:
    """'URSSAF' -> 'URSSAF', 'C.A.F.' -> 'CAF'; None for anything that is not written as an acronym."""
    compact = form.replace(".", "").strip()
    if 2 <= len(compact) <= 15 and " " not in compact and any(ch.isalpha() for ch in compact) and compact == compact.upper():
        return compact
    return None


@dataclass
class Vocabulary:
    """The glossary's own words: terms and variants, acronyms (upper case) with their expansions."""

    terms: set[str]
    acronyms: dict[str, list[str]]
    words: set[str]
    # How often each word occurs in the glossary: breaks ties between equally close corrections.
    word_counts: Counter = field(default_factory=Counter, repr=False, compare=False)
    # Acronym -> one key per entry it names (its folded definition or expansion): more than one is an ambiguous acronym.
    senses: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived once per vocabulary so that each query only looks things up.
        self._folded_words = {fold(word) for word in self.words} | {fold(key) for key in self.acronyms}
        self._candidates = sorted(self.words | {key.lower() for key in self.acronyms})

    def knows(self, token: str) -> bool:
        return fold(token) in self._folded_words

    def ambiguous(self, acronym: str) -> bool:
        """Whether several entries of the glossary share this acronym (CAP, CE, TA...)."""
        return len(self.senses.get(acronym, ())) > 1

    def closest(self, token: str, *, max_distance: int) -> tuple[str, int] | None:
        """The glossary word nearest to ``token`` (Damerau-Levenshtein), the most frequent on ties."""
        matches = process.extract(
            token.lower(), self._candidates, scorer=DamerauLevenshtein.distance, score_cutoff=max_distance, limit=None
        )
        if not matches:
            return None
        word, distance, _ = min(matches, key=lambda match: (match[1], -self.word_counts[match[0]], match[0]))
        return word, int(distance)


def build_vocabulary(entries: Iterable[Sequence]) -> Vocabulary:
    """The vocabulary of a glossary from ``(term, kind, variants)`` or ``(term, kind, variants, definition)``.

    An acronym is a term or variant written in capitals, or the term of an entry of kind "acronym"; its
    expansions are the multi-word variants of its entry, else (sigles lists) a short definition.
    """
    terms: set[str] = set()
    acronyms: dict[str, list[str]] = {}
    senses: dict[str, set[str]] = {}
    counts: Counter = Counter()
    for term, kind, variants, *rest in entries:
        definition = rest[0] if rest else ""
        forms = [collapse_spaces(form) for form in (term, *variants) if form and form.strip()]
        terms.update(forms)
        keys = {key for key in map(_acronym_key, forms) if key}
        if kind == "acronym" and forms and " " not in forms[0]:
            keys.add(forms[0].replace(".", "").upper())
        expansions = [form for form in forms if " " in form]
        if not expansions and definition and keys and len(definition.split()) <= MAX_EXPANSION_WORDS:
            expansions = [collapse_spaces(definition).rstrip(".")]
        # Words only: "Caisse d'allocations familiales." and "caisse d'allocations familiales" are one sense.
        sense = " ".join(_WORD.findall(fold(definition or (expansions[0] if expansions else "") or (forms[0] if forms else ""))))
        for key in keys:
            known = acronyms.setdefault(key, [])
            known.extend(expansion for expansion in expansions if expansion not in known)
            senses.setdefault(key, set()).add(sense)
        for text in (*forms, definition):
            counts.update(word.lower() for word in _WORD.findall(text) if len(word) >= 2)
    return Vocabulary(
        terms=terms, acronyms=acronyms, words=set(counts), word_counts=counts,
        senses={key: frozenset(found) for key, found in senses.items()},
    )


class LayeredVocabulary:
    """A full build's vocabulary with the words of the entries changed since laid over it (``extra``).

    Same questions as ``Vocabulary`` (``acronyms``, ``knows``, ``closest``) at the cost of the changes: nothing of
    the base is copied. It only adds: the words of a removed or rewritten entry stay until the next full build
    (they can only help a spelling correction find a word that is no longer there)."""

    def __init__(self, base: Vocabulary, extra: Vocabulary):
        self.base, self.extra = base, extra
        merged = {
            key: base.acronyms.get(key, []) + [expansion for expansion in expansions if expansion not in base.acronyms.get(key, [])]
            for key, expansions in extra.acronyms.items()
        }
        self.acronyms = ChainMap(merged, base.acronyms)

    def knows(self, token: str) -> bool:
        return self.extra.knows(token) or self.base.knows(token)

    def ambiguous(self, acronym: str) -> bool:
        # An entry edited since the full build counts with its old and its new sense until the next build: at worst
        # its acronym is left unexpanded for a while.
        return len(self.base.senses.get(acronym, frozenset()) | self.extra.senses.get(acronym, frozenset())) > 1

    def closest(self, token: str, *, max_distance: int) -> tuple[str, int] | None:
        found = [match for match in (self.extra.closest(token, max_distance=max_distance), self.base.closest(token, max_distance=max_distance)) if match]
        if not found:
            return None
        count = lambda word: self.base.word_counts[word] + self.extra.word_counts[word]  # noqa: E731
        return min(found, key=lambda match: (match[1], -count(match[0]), match[0]))


@dataclass
class ProcessedQuery:
    original: str
    language: str | None  # "fr" | "en" | None (not detected, or detection off)
    corrected: str
    corrections: list[tuple[str, str]]  # (as typed, as corrected)
    expansions: list[str]
    translation: str | None
    translation_skipped_reason: str | None
    final: str  # what is searched: corrected text + expansions
    steps: dict[str, bool]  # which steps ran


@lru_cache(maxsize=1)
def _language_detector():
    return LanguageDetectorBuilder.from_languages(Language.FRENCH, Language.ENGLISH).build()


@lru_cache(maxsize=2)
def _dictionary(language: str) -> SpellChecker:
    # Distance 1 only: pyspellchecker's distance-2 search takes seconds on long words. The glossary's
    # own vocabulary (rapidfuzz, distance 2) catches the larger typos that matter for search.
    return SpellChecker(language=language, distance=1)


def french_word(word: str) -> bool:
    """Whether ``word`` (lower case) is a word of the French dictionary."""
    return bool(_dictionary("fr").known([word.lower()]))


def warm_up() -> None:
    """Load the French dictionary and the language models now (process start), not in the first query."""
    _dictionary("fr")
    _language_detector().compute_language_confidence_values("bonjour")


def detect_query_language(text: str, *, vocabulary: Vocabulary) -> str | None:
    """'fr' or 'en', or None when the query holds no ordinary words or the detector hesitates.

    The glossary's acronyms are left out first: "CPAM" says nothing about the language of a query.
    """
    ordinary = " ".join(word for word in _WORD.findall(text) if word.upper() not in vocabulary.acronyms)
    if not ordinary.strip():
        return None
    best = _language_detector().compute_language_confidence_values(ordinary)[0]
    if best.value < MIN_LANGUAGE_CONFIDENCE:
        return None
    return "fr" if best.language == Language.FRENCH else "en"


def _match_case(correction: str, typed: str) -> str:
    if typed.isupper():
        return correction.upper()
    if typed[:1].isupper():
        return correction[:1].upper() + correction[1:]
    return correction


def _correct_word(word: str, *, vocabulary: Vocabulary) -> str | None:
    """The correction of one word, or None to leave it as typed."""
    if len(word) < MIN_CORRECTED_LENGTH or vocabulary.knows(word):
        return None
    dictionary = _dictionary("fr")
    if dictionary.known([word.lower()]):
        return None
    glossary_match = vocabulary.closest(word, max_distance=1 if len(word) <= 5 else 2)
    if word.isupper():
        # Typed as an acronym: only another glossary acronym or word may replace it, never a common word.
        return glossary_match[0] if glossary_match else None
    if glossary_match and glossary_match[1] <= 1:
        return glossary_match[0]
    common = dictionary.correction(word.lower())
    if common and common != word.lower():
        return common
    return glossary_match[0] if glossary_match else None


def correct_query_spelling(text: str, *, vocabulary: Vocabulary) -> tuple[str, list[tuple[str, str]]]:
    """Text with unknown words corrected, the glossary's vocabulary first, then a French dictionary."""
    corrections: list[tuple[str, str]] = []

    def replace(match: re.Match) -> str:
        typed = match.group(0)
        correction = _correct_word(typed, vocabulary=vocabulary)
        if correction is None:
            return typed
        corrected = _match_case(correction, typed)
        corrections.append((typed, corrected))
        return corrected

    return _WORD.sub(replace, text), corrections


def acronym_expansions(text: str, *, vocabulary: Vocabulary, language: str = "fr") -> list[str]:
    """Expansions of the glossary acronyms the text mentions, not already written out in it.

    A word typed in lower case counts as an acronym only when it is not a word of the text's language
    ("pas" is not PAS in French, "the" is not THE in English). An acronym that several entries share (CAP: a
    diploma, two commissions, a driving-licence booklet) is not expanded: appending every sense would make the
    query ask about all of them alike and drown the words that settle which one is meant ("CAP diplôme
    professionnel"); its entries still come first as exact matches, ordered by those words. On the sigles
    question set this took the ambiguous questions' Hit@1 from 52.6 to 78.9 (dev half, docs/QUALITY.md).
    """
    expansions: list[str] = []
    folded_text = fold(text)
    for word in _WORD.findall(text):
        key = word.upper()
        if key not in vocabulary.acronyms or (not word.isupper() and _dictionary(language).known([word.lower()])):
            continue
        if vocabulary.ambiguous(key):
            continue
        for expansion in vocabulary.acronyms[key]:
            folded = fold(expansion)
            if folded not in folded_text and all(fold(known) != folded for known in expansions):
                expansions.append(expansion)
    return expansions


def preprocess_query(
    text: str,
    *,
    vocabulary: Vocabulary,
    detect_language: bool = True,
    correct_spelling: bool = True,
    expand_acronyms: bool = True,
    translate: Callable[[str], str] | None = None,
) -> ProcessedQuery:
    """Run the switched-on steps in order: language, translation (English only), spelling, expansion."""
    original = collapse_spaces(text)
    language = detect_query_language(original, vocabulary=vocabulary) if detect_language else None
    steps = {"detect_language": detect_language, "translate": False, "correct_spelling": False, "expand_acronyms": False}

    translation, skipped = None, None
    if translate is None:
        skipped = NO_LLM
    elif not detect_language:
        skipped = DETECTION_OFF
    elif language == "fr":
        skipped = ALREADY_FRENCH
    elif language is None:
        skipped = LANGUAGE_UNKNOWN
    else:
        try:
            translation = collapse_spaces(translate(original)) or None
            steps["translate"] = translation is not None
            skipped = None if translation else EMPTY_TRANSLATION
        except Exception as error:  # noqa: BLE001 - any LLM failure must leave the query searchable
            logger.warning("Query translation failed: %s", error)
            skipped = f"translation failed: {error}"
    working = translation or original

    corrections: list[tuple[str, str]] = []
    # A French dictionary would mangle an English query that could not be translated.
    if correct_spelling and (language != "en" or translation):
        working, corrections = correct_query_spelling(working, vocabulary=vocabulary)
        steps["correct_spelling"] = True
    expansions: list[str] = []
    if expand_acronyms:
        text_language = "en" if language == "en" and not translation else "fr"
        expansions = acronym_expansions(working, vocabulary=vocabulary, language=text_language)
        steps["expand_acronyms"] = True
    return ProcessedQuery(
        original=original,
        language=language,
        corrected=working,
        corrections=corrections,
        expansions=expansions,
        translation=translation,
        translation_skipped_reason=skipped,
        final=" ".join([working, *expansions]),
        steps=steps,
    )
