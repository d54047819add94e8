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


# Characters refused in any glossary text: C0 controls other than tab, newline and carriage return, DEL,
# lone surrogates (not encodable in UTF-8: PostgreSQL and the export refuse them) and the two non-characters
# XML forbids. They cannot be typed, only smuggled in; XLSX (XML) cannot hold most of them, so one such
# character would break the export for everyone.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def forbidden_character(text: str) -> str | None:
    """A description of the first forbidden character in ``text`` ('U+0000'), or None when it is clean.

    The description names the code point, never the character itself: a lone surrogate cannot be printed.
    """
    match = _FORBIDDEN.search(text or "")
    return f"U+{ord(match.group()):04X}" if match else None


def forbidden_character_message(text: str) -> str | None:
    """The user-facing reason why ``text`` is refused, or None when it is clean."""
    from django.utils.translation import gettext as _

    found = forbidden_character(text)
    if found is None:
        return None
    return _("forbidden control character (%(char)s).") % {"char": found}


def validate_clean_text(value) -> None:
    """Django/DRF validator: refuses control characters and lone surrogates (tab and newlines are allowed)."""
    from django.core.exceptions import ValidationError

    message = forbidden_character_message(value if isinstance(value, str) else "")
    if message:
        raise ValidationError(message[:1].upper() + message[1:], code="control_character")


def strip_forbidden_characters(text: str) -> str:
    """``text`` without forbidden characters (for exporting rows stored before they were refused)."""
    return _FORBIDDEN.sub("", text)


def count_forbidden_characters(text: str) -> int:
    return len(_FORBIDDEN.findall(text))


# Two definitions of the same term this similar (0..1, on their normalised keys) are taken for one sense
# written twice ("duplicate"); below it, for another sense of the term ("new sense"). Acronyms legitimately
# have several senses, so a same-term entry is only ever a warning for the expert, never a refusal.
SAME_SENSE_SIMILARITY = 0.8


def definition_similarity(first: str, second: str) -> float:
    """How alike two definitions read, 0..1, ignoring case, accents, spaces and the final dot."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, definition_key(first), definition_key(second), autojunk=False).ratio()


def same_sense(first: str, second: str) -> bool:
    return definition_similarity(first, second) >= SAME_SENSE_SIMILARITY
