"""Exact term, acronym and variant matches: which entries a query names, as a whole phrase.

Built from the validated entries with the served index (retrieval.serving), laid over with the changed entries'
names between two full builds (``LayeredTermLookup``).
"""
from __future__ import annotations

import re

from glossary.text import fold
from retrieval.lexical import tokenize
from retrieval.preprocess import french_word

_ELISION = re.compile(r"\b(?:qu|jusqu|lorsqu|puisqu|[cdjlmnst])['’]")
_WORD = re.compile(r"[0-9a-z]+")
_LONGEST_TERM_WORDS = 12


def term_words(text: str) -> tuple[str, ...]:
    """Folded words without French elisions: "l'Ursaf" -> ("ursaf",)."""
    return tuple(_WORD.findall(_ELISION.sub(" ", fold(text))))


class TermLookup:
    """Finds the entries whose term or a variant is written, as a whole phrase, in a query."""

    def __init__(self, names: list[tuple[int, str]]):
        self._entries: dict[tuple[str, ...], set[int]] = {}
        written_as_words: set[tuple[str, ...]] = set()
        for entry_id, name in names:
            words = term_words(name)
            if words and len(words) <= _LONGEST_TERM_WORDS:
                self._entries.setdefault(words, set()).add(entry_id)
                if not name.isupper():
                    written_as_words.add(words)
        # Names only ever written in capitals (PLUS, ART, BASE): typed in lower case, they are usually the word.
        self._capitals_only = {words for words in self._entries if len(words) == 1} - written_as_words
        self._longest = max((len(words) for words in self._entries), default=0)

    def match(self, *texts: str, language: str | None = None) -> set[int]:
        """Entries named in any of ``texts``; ``language`` is the query's ("fr", "en" or None if unknown)."""
        found: set[int] = set()
        for text in texts:
            words = term_words(text)
            typed_in_capitals = set(re.findall(r"\b[A-Z0-9]{2,}\b", text))
            for size in range(1, min(self._longest, len(words)) + 1):
                for start in range(len(words) - size + 1):
                    phrase = words[start:start + size]
                    ids = self._entries.get(phrase)
                    if ids and (size > 1 or _names_a_term(phrase[0], typed_in_capitals=typed_in_capitals, language=language,
                                                          acronym=phrase in self._capitals_only)):
                        found |= ids
        return found


class LayeredTermLookup:
    """A full build's lookup without the entries changed since (``hidden``), plus a lookup of their current
    names (``extra``): the cost of the changes, nothing of the base copied."""

    def __init__(self, base: TermLookup, *, hidden: set[int], extra: TermLookup):
        self.base, self.hidden, self.extra = base, hidden, extra

    def match(self, *texts: str, language: str | None = None) -> set[int]:
        return (self.base.match(*texts, language=language) - self.hidden) | self.extra.match(*texts, language=language)


def _names_a_term(word: str, *, typed_in_capitals: set[str], language: str | None, acronym: bool = False) -> bool:
    """Whether a lone word names a glossary term rather than being an ordinary word of the sentence.

    Users type acronyms in lower case ("l'ursaf"), so a lower-case word counts, except a French stop word
    ("ce" is not CE), any lower-case word of an English query ("is" is not IS), and a word of the French dictionary
    that the glossary only writes as an acronym ("en plus" is not PLUS, "art" is not ART, "base" is not BASE: as
    exact matches they came before the entry asked about); capitals always count. The same dictionary decides
    which lower-case acronyms the pre-processing expands (``retrieval.preprocess.acronym_expansions``).
    """
    if word.upper() in typed_in_capitals:
        return True
    if language == "en" or not tokenize(word):
        return False
    return not (acronym and french_word(word))
