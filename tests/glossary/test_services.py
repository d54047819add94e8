import pytest
from django.core.exceptions import ValidationError

from glossary import services
from glossary.models import Entry
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db


def test_entry_create_normalises_and_records_history(expert):
    domain = DomainFactory(name="Fiscalité")
    entry = services.entry_create(
        term="  URSSAF ", definition="Union de recouvrement  des cotisations.", kind="acronym",
        domain=domain, variants=["Urssaf", "Urssaf", ""], contexts=["L'URSSAF recouvre les cotisations."], created_by=expert,
    )
    assert entry.term == "URSSAF"
    assert entry.definition == "Union de recouvrement des cotisations."
    assert entry.variants == ["Urssaf"]
    assert entry.term_key == "urssaf"
    assert entry.history.count() == 1
    assert entry.history.first().history_user == expert


def test_same_term_other_meaning_is_allowed():
    services.entry_create(term="ARS", definition="Agence régionale de santé", kind="acronym")
    services.entry_create(term="ARS", definition="Allocation de rentrée scolaire", kind="acronym")
    assert Entry.objects.filter(term_key="ars").count() == 2


def test_exact_duplicate_is_refused_with_clear_message():
    services.entry_create(term="ARS", definition="Agence régionale de santé.")
    with pytest.raises(services.DuplicateEntryError) as info:
        services.entry_create(term="ars", definition="  agence Régionale de  santé ")
    assert "Doublon" in str(info.value)


@pytest.mark.parametrize("field,value", [("term", "  "), ("definition", ""), ("kind", "verb"), ("status", "maybe")])
def test_entry_create_refuses_invalid_fields(field, value):
    data = {"term": "CAF", "definition": "Caisse d'allocations familiales", "kind": "acronym", "status": "draft", field: value}
    with pytest.raises(ValidationError) as info:
        services.entry_create(**data)
    assert field in info.value.message_dict


def test_entry_update_bumps_revision_and_detects_stale_edit(expert):
    entry = EntryFactory(definition="Ancienne définition")
    updated = services.entry_update(entry=entry, data={"definition": "Nouvelle définition"}, user=expert, expected_revision=1)
    assert updated.revision == 2
    with pytest.raises(services.StaleEntryError):
        services.entry_update(entry=entry, data={"definition": "Une autre"}, user=expert, expected_revision=1)
    assert Entry.objects.get(pk=entry.pk).definition == "Nouvelle définition"


def test_entry_update_refuses_duplicate_of_other_entry():
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales")
    other = EntryFactory(term="CAF", definition="Coût assurance fret")
    with pytest.raises(services.DuplicateEntryError):
        services.entry_update(entry=other, data={"definition": "caisse d'allocations familiales"})


def test_bulk_status_and_delete(expert):
    entries = EntryFactory.create_batch(3, status="draft")
    assert services.entries_bulk_set_status(entry_ids=[e.pk for e in entries], status="validated", user=expert) == 3
    assert set(Entry.objects.values_list("status", flat=True)) == {"validated"}
    deleted_id = entries[0].pk
    services.entry_delete(entry=entries[0], user=expert)
    assert not Entry.objects.filter(pk=deleted_id).exists()
    assert Entry.history.filter(id=deleted_id, history_type="-", history_user=expert).exists()


def test_domain_services():
    first = services.domain_get_or_create(name="Budget")
    assert services.domain_get_or_create(name=" budget ") == first
    EntryFactory(domain=first)
    with pytest.raises(ValidationError):
        services.domain_delete(domain=first)
