import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from glossary import services
from glossary.models import Domain, Entry, ImportBatch
from tests.factories import DomainFactory, EntryFactory, import_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser(username="root", password="pw-root", email="root@example.org")
    client.force_login(user)
    client.user = user
    return client


def entry_admin_data(**overrides) -> dict:
    data = {
        "term": "CAF",
        "kind": "acronym",
        "definition": "Caisse d'allocations familiales",
        "variants": '["Caf"]',
        "contexts": "[]",
        "examples": "[]",
        "domain": "",
        "status": "draft",
        "source": "",
        "source_url": "",
        "revision": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize("model", [Domain, Entry, ImportBatch])
def test_changelist_and_search_pages_load(superuser_client, model):
    EntryFactory(term="URSSAF")
    import_batch(file_name="sigles.csv", file_format="sigles")
    url = reverse(f"admin:glossary_{model._meta.model_name}_changelist")
    assert superuser_client.get(url).status_code == 200
    assert superuser_client.get(url, {"q": "urssaf"}).status_code == 200


def test_entry_change_and_history_pages_load(superuser_client):
    entry = EntryFactory(term="URSSAF")
    assert superuser_client.get(reverse("admin:glossary_entry_change", args=[entry.pk])).status_code == 200
    assert superuser_client.get(reverse("admin:glossary_entry_history", args=[entry.pk])).status_code == 200
    assert superuser_client.get(reverse("admin:glossary_entry_add")).status_code == 200


def test_admin_create_goes_through_the_services(superuser_client):
    response = superuser_client.post(reverse("admin:glossary_entry_add"), entry_admin_data(term="  CAF  "))
    assert response.status_code == 302
    entry = Entry.objects.get()
    assert entry.term == "CAF"  # normalised by the service
    assert entry.created_by == superuser_client.user
    assert entry.history.first().history_user == superuser_client.user


def test_admin_refuses_a_duplicate(superuser_client):
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales.")
    response = superuser_client.post(reverse("admin:glossary_entry_add"), entry_admin_data(term="caf"))
    assert response.status_code == 200
    assert "Doublon" in response.content.decode()
    assert Entry.objects.count() == 1


def test_admin_edit_bumps_revision_and_refuses_a_stale_form(superuser_client):
    entry = EntryFactory(term="CAF", definition="Ancienne définition", domain=None)
    url = reverse("admin:glossary_entry_change", args=[entry.pk])
    response = superuser_client.post(url, entry_admin_data(definition="Nouvelle définition", revision="1"))
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.definition == "Nouvelle définition" and entry.revision == 2

    stale = superuser_client.post(url, entry_admin_data(definition="Texte périmé", revision="1"))
    assert stale.status_code == 200
    assert "modifiée par quelqu" in stale.content.decode()
    entry.refresh_from_db()
    assert entry.definition == "Nouvelle définition"


def test_admin_rejects_a_list_field_that_is_not_a_list(superuser_client):
    response = superuser_client.post(reverse("admin:glossary_entry_add"), entry_admin_data(variants='"Caf"'))
    assert response.status_code == 200
    assert not Entry.objects.exists()


def test_admin_delete_records_who_deleted(superuser_client):
    entry = EntryFactory(term="CAF")
    response = superuser_client.post(reverse("admin:glossary_entry_delete", args=[entry.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Entry.objects.exists()
    assert Entry.history.filter(history_type="-").get().history_user == superuser_client.user


def test_admin_domain_names_stay_unique_regardless_of_case(superuser_client):
    DomainFactory(name="Finances")
    response = superuser_client.post(reverse("admin:glossary_domain_add"), {"name": "FINANCES", "description": ""})
    assert response.status_code == 200
    assert Domain.objects.count() == 1
    response = superuser_client.post(reverse("admin:glossary_domain_add"), {"name": "Santé publique", "description": "ARS, HAS"})
    assert response.status_code == 302
    created = Domain.objects.get(name="Santé publique")
    assert created.slug == "sante-publique" and created.description == "ARS, HAS"


def test_import_batches_cannot_be_added_by_hand(superuser_client):
    assert superuser_client.get(reverse("admin:glossary_importbatch_add")).status_code == 403


def test_non_staff_expert_cannot_open_the_admin(expert_client):
    response = expert_client.get(reverse("admin:glossary_entry_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_history_admin_shows_old_versions_without_revert(superuser_client):
    entry = services.entry_create(term="CAF", definition="Première définition")
    services.entry_update(entry=entry, data={"definition": "Seconde définition"})
    first_version = entry.history.order_by("history_id").first()
    response = superuser_client.get(reverse("admin:glossary_entry_simple_history", args=[entry.pk, first_version.history_id]))
    assert response.status_code == 200
    assert response.context["revert_disabled"] is True
