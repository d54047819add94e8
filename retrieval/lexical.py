"""Lexical search: French-aware tokenisation and BM25 (bm25s) over entries.

One BM25 document per entry: its term, variants and definition. bm25s has no per-document update, so an edited
glossary is served as the BM25 index of its last full build plus an *overlay*: the changed entries' documents,
scored in Python with the same formula (Lucene BM25) and the full build's statistics (document frequencies,
average length), and the changed or removed entries hidden from the full index. Rebuilding is left to the caller
once the overlay grows (``overlay_size``). Pure module: no Django import.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import bm25s
import numpy as np

from glossary.text import fold
from retrieval.passages import EntryData

# Changed entries served from overlays (BM25 here; the term lookup and the vocabulary that retrieval.serving lays
# over its full build) before a serving process rebuilds them from the entries it holds: per edit, the cost of the
# edit; once per this many edits, the cost of the glossary.
OVERLAY_MAX_ENTRIES = 256

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

    def __init__(
        self,
        entry_ids: list[int],
        bm25: bm25s.BM25 | None,
        *,
        document_frequencies: Counter | None = None,
        average_length: float = 1.0,
        hidden: frozenset[int] = frozenset(),
        overlay: dict[int, tuple[Counter, int]] | None = None,
        row_of: dict[int, int] | None = None,
    ):
        self.entry_ids = entry_ids
        self._bm25 = bm25
        self._document_frequencies = document_frequencies or Counter()
        self._average_length = average_length
        self._hidden = hidden  # entries of the full build whose document is stale or gone
        self._overlay = overlay or {}  # entry id -> (token counts, length) of the documents changed since
        self._row_of = row_of  # entry id -> row of the full build, made on first need and shared with changed copies
        self._overlay_matrix: tuple | None = None  # the overlay's term-document matrix, made on its first search

    @classmethod
    def build(cls, docs: Sequence[tuple[int, str]]) -> LexicalIndex:
        entry_ids = [entry_id for entry_id, _ in docs]
        if not entry_ids:
            return cls([], None)
        corpus = [tokenize(text) for _, text in docs]
        bm25 = bm25s.BM25()
        bm25.index(corpus, show_progress=False)
        frequencies: Counter = Counter()
        for tokens in corpus:
            frequencies.update(set(tokens))
        average = sum(map(len, corpus)) / len(corpus) or 1.0
        return cls(entry_ids, bm25, document_frequencies=frequencies, average_length=average)

    def __len__(self) -> int:
        return len(self.entry_ids) - len(self._hidden) + len(self._overlay)

    @property
    def overlay_size(self) -> int:
        """Documents served from the overlay: the caller rebuilds in full when this grows."""
        return len(self._overlay)

    def with_changes(self, *, changed: Iterable[tuple[int, str]] = (), removed: Iterable[int] = ()) -> LexicalIndex:
        """A new index where the entries of ``changed`` have these documents and those of ``removed`` none; the
        full build is shared, not copied, so the cost depends on the changes, not on the glossary's size."""
        overlay = dict(self._overlay)
        hidden = set(self._hidden)
        rows = self._rows()
        for entry_id in removed:
            overlay.pop(entry_id, None)
            hidden.add(entry_id)
        for entry_id, text in changed:
            tokens = tokenize(text)
            overlay[entry_id] = (Counter(tokens), len(tokens))
            hidden.add(entry_id)
        return LexicalIndex(
            self.entry_ids, self._bm25, document_frequencies=self._document_frequencies, average_length=self._average_length,
            hidden=frozenset(entry_id for entry_id in hidden if entry_id in rows), overlay=overlay, row_of=rows,
        )

    def _rows(self) -> dict[int, int]:
        if self._row_of is None:
            self._row_of = {entry_id: row for row, entry_id in enumerate(self.entry_ids)}
        return self._row_of

    def _overlay_columns(self) -> tuple[list[int], np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The overlay as a sparse term-document matrix, made on its first search (an index is never changed, only
        replaced): its entry ids, each document's BM25 length norm, and per token the rows that hold it and their
        counts."""
        if self._overlay_matrix is None:
            k1, b = self._bm25.k1 if self._bm25 else 1.5, self._bm25.b if self._bm25 else 0.75
            entry_ids = list(self._overlay)
            norms = np.array([k1 * ((1 - b) + b * length / self._average_length) for counts, length in self._overlay.values()], dtype=np.float64)
            postings: dict[str, tuple[list[int], list[int]]] = {}
            for row, (counts, _length) in enumerate(self._overlay.values()):
                for token, count in counts.items():
                    rows, values = postings.setdefault(token, ([], []))
                    rows.append(row)
                    values.append(count)
            columns = {token: (np.array(rows, dtype=np.int64), np.array(values, dtype=np.float64)) for token, (rows, values) in postings.items()}
            self._overlay_matrix = (entry_ids, norms, columns)
        return self._overlay_matrix

    def _overlay_scores(self, tokens: list[str]) -> list[tuple[int, float]]:
        """BM25 (Lucene) of the overlay's documents with the full build's statistics: per query token (repeats count
        again), ``idf * tf / (norm + tf)`` added to the documents holding it, in the query's order, in float64, so
        the sums are those of scoring each document alone."""
        if not self._overlay:
            return []
        entry_ids, norms, columns = self._overlay_columns()
        documents = len(self.entry_ids)
        scores = np.zeros(len(entry_ids), dtype=np.float64)
        for token in tokens:
            column = columns.get(token)
            if column is None:
                continue
            rows, counts = column
            frequency = self._document_frequencies[token]
            idf = math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))
            scores[rows] += idf * counts / (norms[rows] + counts)
        return [(entry_ids[row], float(scores[row])) for row in np.flatnonzero(scores > 0)]

    def search(self, query: str, *, top_k: int) -> list[tuple[int, float]]:
        if top_k <= 0 or (self._bm25 is None and not self._overlay):
            return []
        tokens = tokenize(query)
        known = [token for token in tokens if self._bm25 is not None and token in self._bm25.vocab_dict]
        found: list[tuple[int, float]] = []
        if known:
            scores = self._bm25.get_scores(known)
            if self._hidden:
                rows = self._rows()
                scores[[rows[entry_id] for entry_id in self._hidden]] = 0
            matched = np.flatnonzero(scores > 0)
            if matched.size > top_k:
                matched = matched[np.argpartition(-scores[matched], top_k - 1)[:top_k]]
            ordered = matched[np.argsort(-scores[matched], kind="stable")]
            found = [(self.entry_ids[row], float(scores[row])) for row in ordered]
        found += self._overlay_scores(tokens)
        found.sort(key=lambda item: -item[1])  # stable: ties keep the full build's order, overlay last
        return found[:top_k]
