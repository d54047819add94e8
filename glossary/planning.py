"""What an import would do, computed without writing anything: new entries, existing entries that gain list
items, rows already present, and the first rows as a preview."""
from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from glossary.exports import export_record
from glossary.models import Entry
from glossary.parsers import Row
from glossary.readers import RowError
from glossary.text import same_sense

PREVIEW_ROWS = 20
# New rows whose term is already in the glossary, listed with the entries they sit beside.
SAME_TERM_ROWS = 100
# Existing terms are looked up for this many new entries at a time (bounded SQL parameter lists).
TERM_LOOKUP_CHUNK = 500
LIST_FIELDS = ("variants", "contexts", "examples")


@dataclass
class Plan:
    file_format: str
    total_rows: int
    errors: list[RowError]
    # New entries (validated, unsaved) with the name of their domain.
    new_entries: list[tuple[Entry, str | None]]
    # Existing entry id -> the list fields it gains.
    updates: dict[int, dict[str, list]]
    unchanged: int
    preview: list[dict]
    # New entries whose term is already in the glossary with another definition: another sense of the term
    # ("new_sense"), or, when the definitions read alike, the same sense written again ("duplicate").
    new_senses: int = 0
    probable_duplicates: int = 0
    same_term: list[dict] | None = None


def _item_key(item) -> str:
    return json.dumps(item, sort_keys=True, ensure_ascii=False) if isinstance(item, dict) else item


class _Lists:
    """The list fields of one entry being merged, with sets to find the items already there in constant time."""

    def __init__(self, values: dict[str, list]) -> None:
        self.values = {name: list(values[name]) for name in LIST_FIELDS}
        self.keys = {name: {_item_key(item) for item in self.values[name]} for name in LIST_FIELDS}

    def merge(self, source: Entry) -> bool:
        """Add the items of ``source`` missing here; True when something was added. Refuses (ValueError, with
        the reason) to grow a list past the per-entry cap, and then adds nothing."""
        additions = {}
        for name in LIST_FIELDS:
            new = {}
            for item in getattr(source, name):
                key = _item_key(item)
                if key not in self.keys[name] and key not in new:
                    new[key] = item
            if len(self.values[name]) + len(new) > settings.ENTRY_MAX_LIST_ITEMS:
                raise ValueError(
                    _("The entry “%(term)s” would have more than %(max)s %(field)s.")
                    % {"term": source.term, "max": settings.ENTRY_MAX_LIST_ITEMS, "field": Entry._meta.get_field(name).verbose_name}
                )
            additions[name] = new
        for name, new in additions.items():
            self.values[name].extend(new.values())
            self.keys[name].update(new)
        return any(additions.values())


def plan_import(*, file_format: str, total_rows: int, errors: list[RowError], built: list[tuple[Row, Entry, str | None]]) -> Plan:
    errors = list(errors)
    existing = {
        (term_key, digest): pk
        for pk, term_key, digest in Entry.objects.values_list("pk", "term_key", "definition_key_hash")
    }
    new: dict[tuple[str, str], tuple[Entry, str | None, _Lists]] = {}
    matched_existing: dict[int, list[tuple[Row, Entry]]] = {}
    actions: list[tuple[Row, Entry, str | None, tuple[str, str]]] = []
    unchanged = 0
    for row, entry, domain_name in built:
        key = (entry.term_key, entry.definition_key_hash)
        if key in new:
            # The same entry twice in the file: one entry, with the lists of both rows.
            first, _domain, lists = new[key]
            try:
                lists.merge(entry)
            except ValueError as refusal:
                errors.append(RowError(row.line, str(refusal)))
                continue
            for name in LIST_FIELDS:
                setattr(first, name, lists.values[name])
            unchanged += 1
        elif key in existing:
            matched_existing.setdefault(existing[key], []).append((row, entry))
        else:
            new[key] = (entry, domain_name, _Lists({name: getattr(entry, name) for name in LIST_FIELDS}))
        actions.append((row, entry, domain_name, key))
    updates: dict[int, dict[str, list]] = {}
    merged_rows = 0
    for pk, current in Entry.objects.only("pk", *LIST_FIELDS).in_bulk(list(matched_existing)).items():
        lists = _Lists({name: getattr(current, name) for name in LIST_FIELDS})
        changed = False
        for row, incoming in matched_existing[pk]:
            try:
                changed = lists.merge(incoming) or changed
            except ValueError as refusal:
                errors.append(RowError(row.line, str(refusal)))
                continue
            merged_rows += 1
        if changed:
            updates[pk] = lists.values
    unchanged += merged_rows - len(updates)
    error_lines = {error.line for error in errors}
    same_term = _same_term_rows(
        [(row, entry) for row, entry, _domain, key in actions if key in new and new[key][0] is entry and row.line not in error_lines]
    )
    preview = []
    for row, entry, domain_name, key in actions:
        if len(preview) >= PREVIEW_ROWS:
            break
        if row.line in error_lines:
            continue
        if key in existing:
            action = "update" if existing[key] in updates else "unchanged"
        else:
            action = "create" if new[key][0] is entry else "unchanged"
        record = {"line": row.line, **export_record(entry, domain_name=domain_name), "action": action}
        if action == "create" and row.line in same_term:
            record["same_term"] = same_term[row.line]
        preview.append(record)
    verdicts = [item["verdict"] for item in same_term.values()]
    return Plan(
        file_format=file_format,
        total_rows=total_rows,
        errors=errors,
        new_entries=[(entry, domain_name) for entry, domain_name, _lists in new.values()],
        updates=updates,
        unchanged=unchanged,
        preview=preview,
        new_senses=verdicts.count("new_sense"),
        probable_duplicates=verdicts.count("duplicate"),
        same_term=list(same_term.values())[:SAME_TERM_ROWS],
    )


def _same_term_rows(created: list[tuple[Row, Entry]]) -> dict[int, dict]:
    """Line -> the existing entries of the same (folded) term, for the new entries whose term is already there."""
    keys = sorted({entry.term_key for _row, entry in created})
    existing: dict[str, list[tuple[int, str, str]]] = {}
    for start in range(0, len(keys), TERM_LOOKUP_CHUNK):
        rows = Entry.objects.filter(term_key__in=keys[start:start + TERM_LOOKUP_CHUNK]).order_by("id")
        for pk, key, term, definition in rows.values_list("pk", "term_key", "term", "definition"):
            existing.setdefault(key, []).append((pk, term, definition))
    found = {}
    for row, entry in created:
        matches = existing.get(entry.term_key)
        if not matches:
            continue
        others = [
            {"id": pk, "term": term, "definition": definition, "same_sense": same_sense(entry.definition, definition)}
            for pk, term, definition in matches
        ]
        found[row.line] = {
            "line": row.line,
            "term": entry.term,
            "definition": entry.definition,
            "verdict": "duplicate" if any(other["same_sense"] for other in others) else "new_sense",
            "existing": others,
        }
    return found
