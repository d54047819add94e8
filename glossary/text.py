"""Text normalisation shared by the glossary, search and evaluation (pure functions)."""
from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_PUNCT_END = re.compile(r"[\s.;:,!]+$")


def collapse_spaces(text: str) -> str:
    return _SPACES.sub(" ", text or "").strip()


def fold(text: str) -> str:
    """Case- and accent-folded form: 'Élysée' -> 'elysee'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return collapse_spaces(stripped.casefold())


def term_key(term: str) -> str:
    """Key under which two spellings of a term are the same term ('URSSAF', 'Urssaf ')."""
    return fold(term)


def definition_key(definition: str) -> str:
    """Normalised definition used to refuse exact duplicates (case, accents, spaces, final dot)."""
    return _PUNCT_END.sub("", fold(definition))
