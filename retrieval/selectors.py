"""Every read of the retrieval app goes through these functions."""
from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet

from glossary.models import Entry
from retrieval.catalogue import BUILTIN_MODELS, ModelSpec, get_spec
from retrieval.models import EmbeddingModel, Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog
from retrieval.passages import EntryData


def _spec_from_row(row: EmbeddingModel) -> ModelSpec:
    return ModelSpec(
        name=row.name,
        path=row.path,
        query_prompt=row.query_prompt,
        document_prompt=row.document_prompt,
        trust_remote_code=row.trust_remote_code,
        lora_target_modules=tuple(row.lora_target_modules or ()),
        max_seq_length=row.max_seq_length,
        description=row.description,
    )


def _spec_from_setting(name: str, value: dict) -> ModelSpec:
    fields = {**value, "name": name}
    if "lora_target_modules" in fields:
        fields["lora_target_modules"] = tuple(fields["lora_target_modules"])
    return ModelSpec(**fields)


def catalogue_specs() -> dict[str, ModelSpec]:
    """The whole catalogue: built-in models, then settings.EXTRA_EMBEDDING_MODELS, then admin rows (last wins)."""
    specs = dict(BUILTIN_MODELS)
    for name, value in getattr(settings, "EXTRA_EMBEDDING_MODELS", {}).items():
        specs[name] = _spec_from_setting(name, value)
    for row in EmbeddingModel.objects.all():
        specs[row.name] = _spec_from_row(row)
    return specs


def model_spec_get(*, name: str) -> ModelSpec:
    """The catalogue spec of ``name``; an uncatalogued local directory or hub id gets empty prompts."""
    return get_spec(name, extra=catalogue_specs())


class NoChampionError(ModelVersion.DoesNotExist):
    """No version serves: the database was not migrated (``migrate`` records the base model as version 0)."""


def champion_version_get() -> ModelVersion:
    """The version that serves. Until anything is promoted, the default catalogue model as version "base" (0),
    which ``migrate`` records (retrieval.versions.champion_ensure)."""
    champion = ModelVersion.objects.filter(status=ModelVersion.Status.CHAMPION).first()
    if champion is None:
        raise NoChampionError("No model version serves: run `manage.py migrate`, which records the base model as version 0.")
    return champion


def model_version_get(*, ref: str | int) -> ModelVersion:
    """A version by reference: "base", "champion", "v3" / "3" (its number) or "id:12" (its primary key)."""
    if isinstance(ref, int):
        return ModelVersion.objects.get(number=ref)
    text = str(ref).strip().lower()
    if text == "champion":
        return champion_version_get()
    if text == "base":
        return ModelVersion.objects.get(number=0)
    if text.startswith("id:") and text[3:].isdigit():
        return ModelVersion.objects.get(pk=int(text[3:]))
    number = text[1:] if text.startswith("v") else text
    if number.isdigit():
        return ModelVersion.objects.get(number=int(number))
    raise ModelVersion.DoesNotExist(f"Unknown model version reference: {ref!r}")


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("parent", "index_state").order_by("-number")


def previous_champion_get() -> ModelVersion | None:
    """The champion before the current one (what a rollback restores), from the promotion log."""
    champion = champion_version_get()
    event = PromotionEvent.objects.filter(version=champion, previous_champion__isnull=False).select_related("previous_champion").first()
    return event.previous_champion if event else None


def promotion_event_list(*, version: ModelVersion | None = None) -> QuerySet[PromotionEvent]:
    qs = PromotionEvent.objects.select_related("version", "previous_champion", "user")
    return qs.filter(version=version) if version is not None else qs


def index_state_get(*, version: ModelVersion) -> IndexState | None:
    return IndexState.objects.filter(version=version).first()


def serving_versions() -> list[ModelVersion]:
    """Versions whose index follows glossary edits: the champion and any version being promoted."""
    return list(ModelVersion.objects.filter(status__in=[ModelVersion.Status.CHAMPION, ModelVersion.Status.PROMOTING]))


def validated_entries() -> QuerySet[Entry]:
    """What search indexes: validated entries only."""
    return Entry.objects.filter(status=Entry.Status.VALIDATED).select_related("domain").order_by("id")


def validated_entry_data(*, entry_ids: Iterable[int], detail: bool = True) -> dict[int, EntryData]:
    """Those of ``entry_ids`` that are validated, as plain data by id: what search hits show (``detail``: with
    contexts and domain) and what a served index keeps of each entry (without: its lexical side needs no more)."""
    ids = list(entry_ids)
    if detail:
        return _validated_hit_entries([int(entry_id) for entry_id in ids])
    rows = Entry.objects.filter(pk__in=ids, status=Entry.Status.VALIDATED).order_by("id").values_list("id", "term", "definition", "kind", "variants")
    return {row[0]: _entry_data(*row) for row in rows}


def _validated_hit_entries(entry_ids: list[int]) -> dict[int, EntryData]:
    """The validated entries among a search's hits (at most 100), with contexts and domain, in one query written
    out: building and compiling it through the ORM cost five times running it (0.25 of 0.30 ms), on every search.
    The JSON columns are decoded by their fields, as the ORM would."""
    if not entry_ids:
        return {}
    quote = connection.ops.quote_name
    entry, domain = Entry._meta, Entry._meta.get_field("domain").related_model._meta
    column = {name: f"e.{quote(entry.get_field(name).column)}" for name in ("id", "term", "definition", "kind", "variants", "contexts", "status", "domain")}
    sql = (
        f"SELECT {column['id']}, {column['term']}, {column['definition']}, {column['kind']}, {column['variants']}, {column['contexts']}, "
        f"d.{quote(domain.get_field('name').column)} FROM {quote(entry.db_table)} e LEFT OUTER JOIN {quote(domain.db_table)} d "
        f"ON {column['domain']} = d.{quote(domain.pk.column)} WHERE {column['id']} IN ({', '.join(['%s'] * len(entry_ids))}) "
        f"AND {column['status']} = %s ORDER BY {column['id']}"
    )
    variants, contexts = entry.get_field("variants"), entry.get_field("contexts")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*entry_ids, Entry.Status.VALIDATED.value])
        rows = cursor.fetchall()
    return {
        row[0]: _entry_data(
            row[0], row[1], row[2], row[3], variants.from_db_value(row[4], None, connection), contexts.from_db_value(row[5], None, connection), row[6]
        )
        for row in rows
    }


def _entry_data(entry_id, term, definition, kind, variants, contexts=(), domain="") -> EntryData:
    return EntryData(
        id=entry_id, term=term, definition=definition, kind=kind, variants=tuple(variants or ()), contexts=tuple(contexts or ()), domain=domain or ""
    )


def question_log_get(*, question_id: int) -> QuestionLog:
    return QuestionLog.objects.select_related("version", "user").get(pk=question_id)


def flag_get(*, flag_id: int) -> Flag:
    return Flag.objects.select_related("question_log", "correct_entry", "version", "domain", "created_by").get(pk=flag_id)


def flag_list(*, status: str = "", domain: int | str | None = None, version: ModelVersion | int | None = None) -> QuerySet[Flag]:
    """Flags, newest first; ``domain`` is a domain id or slug, ``version`` a version or its id."""
    qs = Flag.objects.select_related("question_log", "correct_entry", "version", "domain", "created_by")
    if status:
        qs = qs.filter(status=status)
    if domain:
        qs = qs.filter(domain_id=int(domain)) if str(domain).isdigit() else qs.filter(domain__slug=domain)
    if version:
        qs = qs.filter(version=version)
    return qs.order_by("-created_at", "-id")
