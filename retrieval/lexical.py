"""Lexical search: French-aware tokenisation and BM25 (bm25s) over entries.

One BM25 document per entry: its term, variants and definition. Pure module: no Django import.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np

from glossary.text import fold
from retrieval.passages import EntryData

# Elided articles and pronouns ("l'URSSAF", "d'assurance", "qu'est-ce", "jusqu'au"), in folded text.
_ELISION = re.compile(r"\b(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['\u2019]")
_TOKEN = re.compile(r"[a-z0-9]+")
# Folded French function words, and the words of a question that say nothing about its subject.
STOP_WORDS = frozenset(
    """
    a au aux avec ce ces cet cette dans de des du elle en est et etre eux il ils je la le les leur leurs lui
    ma mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes
    toi ton tu un une vos votre vous y sont ete fait faire peut quel quelle quels quelles quoi koi comment
    signifie signification veut dire definition definir cest quest questce estce
    """.split()
)


def _light_stem(token: str) -> str:
    # Plural folding only ("allocations" -> "allocation"): enough for glossary vocabulary, and it never
    # merges distinct terms the way aggressive stemmers do. Short tokens (acronyms, numbers) stay intact.
    if len(token) > 3 and token[-1] in "sx" and not token.isdigit():
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Accent- and case-folded tokens, elisions removed, stop words dropped, plurals folded."""
    folded = _ELISION.sub(" ", fold(text).replace("\u2019", "'"))
    return [_light_stem(token) for token in _TOKEN.findall(folded) if token not in STOP_WORDS]


def lexical_document(entry: EntryData) -> tuple[int, str]:
    """The text BM25 indexes for an entry: term, variants and definition."""
    return entry.id, " ".join([entry.term, *entry.variants, entry.definition])


class LexicalIndex:
    """BM25 over one document per entry; ``search`` returns entries with a positive score, best first."""

    def __init__(self, entry_ids: list[int], bm25: bm25s.BM25 | None):
        self.entry_ids = entry_ids
        self._bm25 = bm25

    @classmethod
    def build(cls, docs: Sequence[tuple[int, str]]) -> LexicalIndex:
        entry_ids = [entry_id for entry_id, _ in docs]
        if not entry_ids:
            return cls([], None)
        bm25 = bm25s.BM25()
        bm25.index([tokenize(text) for _, text in docs], show_progress=False)
        return cls(entry_ids, bm25)

    def __len__(self) -> int:
        return len(self.entry_ids)

    def search(self, query: str, *, top_k: int) -> list[tuple[int, float]]:
        if self._bm25 is None or top_k <= 0:
            return []
        known = [token for token in tokenize(query) if token in self._bm25.vocab_dict]
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        matched = np.flatnonzero(scores > 0)
        if matched.size > top_k:
            matched = matched[np.argpartition(-scores[matched], top_k - 1)[:top_k]]
        ordered = matched[np.argsort(-scores[matched], kind="stable")]
        return [(self.entry_ids[row], float(scores[row])) for row in ordered]
