"""Every write to the glossary goes through these functions (views, API, admin, imports call them)."""
from __future__ import annotations

from typing import Any, Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.dispatch import Signal
from django.utils.text import slugify
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history

from config.errors import Conflict
from glossary.models import Domain, Entry
from glossary.text import collapse_spaces, definition_key, forbidden_character_message, term_key

# Rows per query in bulk operations (well under SQLite's bound-parameter limit).
_QUERY_CHUNK = 500

# Bulk creation sends no post_save per entry; listeners (e.g. search indexes) get this once, after
# commit, with ``entry_ids``.
entries_bulk_created = Signal()

EDITABLE_FIELDS = ("term", "kind", "definition", "variants", "contexts", "examples", "domain", "status", "source", "source_url")
# Longest texts an entry accepts (the term's own limit is its column's): a definition is a paragraph, a usage
# context or an example a few sentences, a variant a name. The longest in the real glossaries we know are ~1,100.
DEFINITION_MAX_CHARS = 5000
CONTEXT_MAX_CHARS = 2000
VARIANT_MAX_CHARS = 255


class DuplicateEntryError(Conflict):
    """The same term with the same normalised definition already exists."""

    default_code = "duplicate"


class StaleEntryError(Conflict):
    """The entry changed since the editor loaded it."""

    default_code = "stale"


class EntryGoneError(StaleEntryError):
    """The entry was deleted while someone was editing it."""

    default_code = "gone"


def _clean_list(values: Iterable[str] | None) -> list[str]:
    """Collapsed, non-empty, each once, in order: linear time (a dict remembers what was seen)."""
    seen: dict[str, None] = {}
    for value in values or []:
        text = collapse_spaces(str(value))
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _clean_examples(values: Iterable[dict] | None) -> list[dict]:
    cleaned = []
    for item in values or []:
        question = collapse_spaces(str(item.get("question", "")))
        answer = collapse_spaces(str(item.get("answer", "")))
        if question:
            cleaned.append({"question": question, "answer": answer})
    return cleaned


def _domain_named(name: str) -> Domain | None:
    return Domain.objects.filter(name__iexact=name).first()


def domain_get_or_create(*, name: str) -> Domain:
    """The domain of that name (case-insensitive), created when missing. A domain created concurrently under
    the same name (two imports at once) is looked up again instead of failing."""
    name = collapse_spaces(name)
    if not name:
        raise ValidationError({"domain": _("The domain name is empty.")})
    if problem := forbidden_character_message(name):
        raise ValidationError({"domain": problem})
    base = slugify(name)[:100] or "domaine"
    for _attempt in range(5):
        existing = _domain_named(name)
        if existing:
            return existing
        slug, n = base, 1
        while Domain.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        try:
            with transaction.atomic():
                return Domain.objects.create(name=name, slug=slug)
        except IntegrityError:
            continue  # the same name or slug was created meanwhile: look again
    raise ValidationError({"domain": _("The domain “%(name)s” is being created elsewhere at the same time: try again.") % {"name": name}})


def domain_update(*, domain: Domain, name: str | None = None, description: str | None = None) -> Domain:
    if name is not None:
        name = collapse_spaces(name)
        if not name:
            raise ValidationError({"name": _("The domain name is empty.")})
        if problem := forbidden_character_message(name):
            raise ValidationError({"name": problem})
        if Domain.objects.filter(name__iexact=name).exclude(pk=domain.pk).exists():
            raise ValidationError({"name": _("A domain already has this name.")})
        domain.name = name
    if description is not None:
        if problem := forbidden_character_message(description):
            raise ValidationError({"description": problem})
        domain.description = description
    domain.full_clean()
    try:
        with transaction.atomic():
            domain.save()
    except IntegrityError:
        raise ValidationError({"name": _("A domain already has this name.")}) from None
    return domain


def domain_delete(*, domain: Domain) -> None:
    if domain.entries.exists():
        raise Conflict(_("This domain contains entries: move or delete them first."), code="not_empty")
    domain.delete()


def find_duplicate(*, term: str, definition: str, exclude_id: int | None = None) -> Entry | None:
    import hashlib

    digest = hashlib.sha256(definition_key(definition).encode()).hexdigest()
    qs = Entry.objects.filter(term_key=term_key(term), definition_key_hash=digest)
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    return qs.first()


def _check_fields(entry: Entry) -> None:
    """Normalise and validate the entry's own fields, without any database query."""
    errors: dict[str, list[str]] = {}
    # First, before any text is worked on: a lone surrogate cannot even be hashed or stored.
    for field, texts in (
        ("term", [entry.term]), ("definition", [entry.definition]), ("source", [entry.source]), ("source_url", [entry.source_url]),
        ("variants", entry.variants), ("contexts", entry.contexts),
        ("examples", [text for example in entry.examples for text in (example["question"], example["answer"])]),
    ):
        for text in texts:
            if problem := forbidden_character_message(text if isinstance(text, str) else ""):
                errors.setdefault(field, []).append(problem[:1].upper() + problem[1:])
                break
    if errors:
        raise ValidationError(errors)
    entry.term = collapse_spaces(entry.term)
    entry.definition = collapse_spaces(entry.definition)
    for field in ("variants", "contexts", "examples"):
        if len(getattr(entry, field)) > settings.ENTRY_MAX_LIST_ITEMS:
            errors.setdefault(field, []).append(
                _("At most %(max)s items (there are %(count)s).") % {"max": settings.ENTRY_MAX_LIST_ITEMS, "count": len(getattr(entry, field))}
            )
    if not entry.term:
        errors.setdefault("term", []).append(_("The term is required."))
    if not entry.definition:
        errors.setdefault("definition", []).append(_("The definition is required."))
    if len(entry.definition) > DEFINITION_MAX_CHARS:
        errors.setdefault("definition", []).append(
            _("The definition exceeds %(limit)s characters (it has %(length)s).") % {"limit": DEFINITION_MAX_CHARS, "length": len(entry.definition)}
        )
    for field, items, limit in (
        ("variants", entry.variants, VARIANT_MAX_CHARS),
        ("contexts", entry.contexts, CONTEXT_MAX_CHARS),
        ("examples", [text for example in entry.examples for text in (example["question"], example["answer"])], CONTEXT_MAX_CHARS),
    ):
        if any(len(item) > limit for item in items):
            errors.setdefault(field, []).append(_("An item exceeds %(limit)s characters.") % {"limit": limit})
    if entry.kind not in Entry.Kind.values:
        errors.setdefault("kind", []).append(_("Unknown kind: %(kind)s.") % {"kind": entry.kind})
    if entry.status not in Entry.Status.values:
        errors.setdefault("status", []).append(_("Unknown status: %(status)s.") % {"status": entry.status})
    if errors:
        raise ValidationError(errors)
    entry.clean_fields(exclude=["term_key", "definition_key", "definition_key_hash", "import_batch", "created_by", "domain"])


def _validate(entry: Entry) -> None:
    _check_fields(entry)
    _check_against_database(entry)


def _check_against_database(entry: Entry) -> None:
    duplicate = find_duplicate(term=entry.term, definition=entry.definition, exclude_id=entry.pk)
    if duplicate:
        raise DuplicateEntryError(
            _("Duplicate: “%(term)s” already has this definition (entry no. %(id)s).") % {"term": duplicate.term, "id": duplicate.pk},
            code="duplicate",
        )
    entry.full_clean(exclude=["term_key", "definition_key", "definition_key_hash", "import_batch", "created_by"])


def entry_create(
    *,
    term: str,
    definition: str,
    kind: str = Entry.Kind.TERM,
    domain: Domain | None = None,
    variants: Iterable[str] | None = None,
    contexts: Iterable[str] | None = None,
    examples: Iterable[dict] | None = None,
    status: str = Entry.Status.DRAFT,
    source: str = "",
    source_url: str = "",
    split: str = "",
    created_by=None,
    import_batch=None,
) -> Entry:
    entry = entry_build(
        term=term, definition=definition, kind=kind, domain=domain, variants=variants, contexts=contexts,
        examples=examples, status=status, source=source, source_url=source_url, split=split,
        created_by=created_by, import_batch=import_batch,
    )
    _check_against_database(entry)
    entry._history_user = created_by
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        # The same entry was created between the check and the save (two identical requests at once).
        raise _duplicate_of(entry) from None
    return entry


def _duplicate_of(entry: Entry) -> DuplicateEntryError:
    duplicate = find_duplicate(term=entry.term, definition=entry.definition, exclude_id=entry.pk)
    if duplicate is None:  # the conflict was something else: let it surface as it is
        return DuplicateEntryError(_("Duplicate: this entry was created elsewhere at the same time."), code="duplicate")
    return DuplicateEntryError(
        _("Duplicate: “%(term)s” already has this definition (entry no. %(id)s).") % {"term": duplicate.term, "id": duplicate.pk},
        code="duplicate",
    )


def entry_build(
    *,
    term: str,
    definition: str,
    kind: str = Entry.Kind.TERM,
    domain: Domain | None = None,
    variants: Iterable[str] | None = None,
    contexts: Iterable[str] | None = None,
    examples: Iterable[dict] | None = None,
    status: str = Entry.Status.DRAFT,
    source: str = "",
    source_url: str = "",
    split: str = "",
    created_by=None,
    import_batch=None,
) -> Entry:
    """An unsaved entry with cleaned, validated fields; save it with entries_bulk_create.

    The duplicate check needs the database, so it happens when the entry is saved.
    """
    entry = Entry(
        term=term,
        definition=definition,
        kind=kind,
        domain=domain,
        variants=_clean_list(variants),
        contexts=_clean_list(contexts),
        examples=_clean_examples(examples),
        status=status,
        source=source or "",
        source_url=source_url or "",
        split=split or "",
        split_pinned=bool(split),
        created_by=created_by,
        import_batch=import_batch,
    )
    _check_fields(entry)
    entry.refresh_keys()
    return entry


def entries_bulk_create(*, entries: list[Entry], user=None, change_reason: str = "") -> list[Entry]:
    """Save many entries from entry_build at once (imports), one history record each.

    Refuses duplicates like entry_create does: within ``entries`` and against the database.
    """
    seen: dict[tuple[str, str], Entry] = {}
    for entry in entries:
        entry.refresh_keys()
        key = (entry.term_key, entry.definition_key_hash)
        if key in seen:
            raise DuplicateEntryError(
                _("Duplicate: “%(term)s” appears twice with the same definition.") % {"term": entry.term}, code="duplicate",
            )
        seen[key] = entry
    term_keys = sorted({key[0] for key in seen})
    with transaction.atomic():
        for start in range(0, len(term_keys), _QUERY_CHUNK):
            existing = Entry.objects.filter(term_key__in=term_keys[start:start + _QUERY_CHUNK]).values_list("pk", "term_key", "definition_key_hash")
            for pk, existing_term_key, digest in existing:
                if (existing_term_key, digest) in seen:
                    raise DuplicateEntryError(
                        _("Duplicate: “%(term)s” already has this definition (entry no. %(id)s).")
                        % {"term": seen[(existing_term_key, digest)].term, "id": pk},
                        code="duplicate",
                    )
        created = bulk_create_with_history(
            entries, Entry, batch_size=_QUERY_CHUNK, default_user=user, default_change_reason=change_reason or None,
        )
        entry_ids = [entry.pk for entry in created]
        transaction.on_commit(lambda: entries_bulk_created.send(sender=Entry, entry_ids=entry_ids))
    return created


def entry_update(*, entry: Entry, data: dict[str, Any], user=None, expected_revision: int | None = None) -> Entry:
    """Apply ``data`` (a subset of EDITABLE_FIELDS). ``expected_revision`` detects concurrent edits."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(_("Fields that cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    with transaction.atomic():
        current = Entry.objects.select_for_update().filter(pk=entry.pk).first()
        if current is None:
            raise EntryGoneError(
                _("Someone else deleted this entry while you were editing it: nothing was saved."), code="gone",
            )
        if expected_revision is not None and current.revision != expected_revision:
            raise StaleEntryError(
                _("Someone else changed this entry while you were editing it (revision %(now)s, you had revision %(then)s). Reload it, then make your changes again.")
                % {"now": current.revision, "then": expected_revision},
                code="stale",
            )
        for field, value in data.items():
            if field in ("variants", "contexts"):
                value = _clean_list(value)
            elif field == "examples":
                value = _clean_examples(value)
            setattr(current, field, value)
        _validate(current)
        current.revision += 1
        current._history_user = user
        try:
            with transaction.atomic():
                current.save()
        except IntegrityError:
            raise _duplicate_of(current) from None
    return current


def entry_set_status(*, entry: Entry, status: str, user=None) -> Entry:
    if status not in Entry.Status.values:
        raise ValidationError(_("Unknown status: %(status)s.") % {"status": status})
    return entry_update(entry=entry, data={"status": status}, user=user)


def entries_bulk_set_status(*, entry_ids: Iterable[int], status: str, user=None) -> int:
    """Set the status of several entries at once (one history record each); returns how many changed."""
    changed = 0
    with transaction.atomic():
        for entry in Entry.objects.filter(pk__in=list(entry_ids)).exclude(status=status):
            entry_set_status(entry=entry, status=status, user=user)
            changed += 1
    return changed


def entry_delete(*, entry: Entry, user=None) -> None:
    entry._history_user = user
    entry.delete()
