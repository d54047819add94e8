"""Every read of the glossary goes through these functions."""
from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from glossary.models import Domain, Entry, ImportBatch
from glossary.text import fold, same_sense, term_key

# At most this many same-term entries are shown beside a new entry (an acronym rarely has more senses).
SAME_TERM_SHOWN = 20


def entry_list(
    *,
    search: str = "",
    domain: int | str | None = None,
    kind: str = "",
    status: str = "",
    split: str | None = None,
) -> QuerySet[Entry]:
    qs = Entry.objects.select_related("domain")
    if search:
        folded = fold(search)
        qs = qs.filter(Q(term_key__contains=folded) | Q(definition__icontains=search) | Q(definition_key__contains=folded))
    if domain:
        qs = qs.filter(domain__slug=domain) if isinstance(domain, str) and not str(domain).isdigit() else qs.filter(domain_id=int(domain))
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if split is not None:
        qs = qs.filter(split=split)
    return qs.order_by("term_key", "id")


def entry_get(*, entry_id: int) -> Entry:
    return Entry.objects.select_related("domain", "created_by", "import_batch").get(pk=entry_id)


def entries_for_term(*, term: str) -> QuerySet[Entry]:
    return Entry.objects.filter(term_key=term_key(term)).select_related("domain")


def same_term_entries(*, term: str, definition: str, exclude_id: int | None = None) -> list[dict]:
    """The entries already filed under ``term`` (case- and accent-folded: 'ANTS', 'ants', 'Ânts'), each with
    whether ``definition`` reads as the same sense written again ("duplicate") or as another sense ("new_sense")."""
    entries = entries_for_term(term=term)
    if exclude_id is not None:
        entries = entries.exclude(pk=exclude_id)
    return [
        {"entry": entry, "verdict": "duplicate" if same_sense(definition, entry.definition) else "new_sense"}
        for entry in entries[:SAME_TERM_SHOWN]
    ]


def entry_history(*, entry: Entry) -> list:
    """Each change of the entry, newest first, with the fields it changed."""
    records = list(entry.history.select_related("history_user").order_by("-history_date", "-history_id"))
    rows = []
    for newer, older in zip(records, records[1:] + [None]):
        changes = []
        if older is not None:
            delta = newer.diff_against(older)
            changes = [{"field": c.field, "old": c.old, "new": c.new} for c in delta.changes]
        rows.append({"record": newer, "changes": changes})
    return rows


def entry_status_counts(*, entries: QuerySet[Entry]) -> dict[str, int]:
    """How many of ``entries`` have each status, every status listed (zero when none)."""
    counts = dict(entries.order_by().values_list("status").annotate(n=Count("id")))
    return {status: counts.get(status, 0) for status in Entry.Status.values}


def glossary_counts() -> dict:
    by_status = dict(Entry.objects.values_list("status").annotate(n=Count("id")))
    by_kind = dict(Entry.objects.values_list("kind").annotate(n=Count("id")))
    return {"total": sum(by_status.values()), "by_status": by_status, "by_kind": by_kind}


def domain_list() -> QuerySet[Domain]:
    return Domain.objects.annotate(entry_count=Count("entries")).order_by("name")


def import_batch_list() -> QuerySet[ImportBatch]:
    return ImportBatch.objects.select_related("created_by", "job").order_by("-created_at", "-id")


def import_batch_get(*, batch_id: int) -> ImportBatch:
    return ImportBatch.objects.select_related("created_by", "job").get(pk=batch_id)


def entries_for_export() -> QuerySet[Entry]:
    return Entry.objects.select_related("domain").order_by("id")
