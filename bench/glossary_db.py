"""Filling the bench database: the sigles glossary through the product's import, synthetic entries, question targets."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from bench.environment import BENCH_DIR
from bench.synthetic import Question, synthetic_entries
from glossary.text import collapse_spaces, fold

QUICK_EXTRA_ROWS = 500


def import_sigles(source: Path, *, quick: bool, keep_terms: set[str]) -> str:
    """``import_glossary --format sigles --status validated --skip-invalid`` of the whole file (quick: the rows
    the questions point at and ``QUICK_EXTRA_ROWS`` others); returns the command's summary line."""
    from django.core.management import call_command

    path = source
    if quick:
        with source.open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            columns = reader.fieldnames
        kept = [row for index, row in enumerate(rows) if row["term"] in keep_terms or index < QUICK_EXTRA_ROWS]
        path = BENCH_DIR / "sigles-quick.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(kept)
    out = io.StringIO()
    call_command("import_glossary", str(path), file_format="sigles", status="validated", skip_invalid=True, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def validated_passage_count() -> int:
    from retrieval import selectors
    from retrieval.passages import entry_passages

    return sum(
        len(entry_passages(entry_id=pk, term=term, definition=definition, contexts=contexts))
        for pk, term, definition, contexts in selectors.validated_entries().values_list("pk", "term", "definition", "contexts")
    )


def add_synthetic_entries(passages_wanted: int) -> int:
    """Validated synthetic entries (two passages each) until the glossary holds ``passages_wanted`` passages."""
    from glossary.models import Entry
    from glossary.services import entries_bulk_create, entry_build

    missing = passages_wanted - validated_passage_count()
    if missing <= 0:
        return 0
    entries = [
        entry_build(term=item.term, definition=item.definition, kind=Entry.Kind.ACRONYM, contexts=item.contexts, status=Entry.Status.VALIDATED)
        for item in synthetic_entries((missing + 1) // 2, seed=23)
    ]
    entries_bulk_create(entries=entries, change_reason="bench")
    return len(entries)


def _same_text(left: str, right: str) -> bool:
    return fold(collapse_spaces(left)).rstrip(". ") == fold(collapse_spaces(right)).rstrip(". ")


@dataclass(frozen=True)
class Target:
    question: Question
    term_entry_ids: frozenset[int]  # Concept: every entry of that term (any meaning)
    meaning_entry_ids: frozenset[int]  # Def-only: the entry with that definition


def question_targets(questions: list[Question]) -> tuple[list[Target], list[Question]]:
    """The entries each question points at; questions whose entry is not in the glossary come back apart."""
    from glossary.models import Entry

    terms = {question.term for question in questions}
    by_term: dict[str, list[tuple[int, str]]] = {}
    for pk, term, definition in Entry.objects.filter(term__in=terms, status=Entry.Status.VALIDATED).values_list("pk", "term", "definition"):
        by_term.setdefault(term, []).append((pk, definition))
    targets, missing = [], []
    for question in questions:
        candidates = by_term.get(question.term, [])
        meaning = frozenset(pk for pk, definition in candidates if _same_text(definition, question.definition))
        if meaning:
            targets.append(Target(question, frozenset(pk for pk, _ in candidates), meaning))
        else:
            missing.append(question)
    return targets, missing
