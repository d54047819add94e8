"""Issue #17, items 2 and 3: same-term entries are shown before they are created (form, API, import preview),
and a failed import neither looks like a success nor counts entries it never created, and can be retried
skipping its bad rows."""
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from glossary.models import Entry, ImportBatch
from glossary.text import definition_similarity, same_sense
from tests.factories import EntryFactory, import_batch
from tests.glossary.test_views import CSV_WITH_BAD_ROW, confirm, entry_form_data, upload

pytestmark = pytest.mark.django_db

CREATE_URL = reverse("glossary:entry-create")
ANTS = "Agence nationale des titres sécurisés, qui délivre passeports et cartes d'identité."


def test_definition_similarity_tells_a_rewording_from_another_sense():
    assert same_sense(ANTS, "agence nationale des titres securises qui delivre les passeports et cartes d'identite")
    assert not same_sense(ANTS, "Fourmis (nom anglais) : insectes sociaux de la famille des formicidés.")
    assert definition_similarity("Idem.", "idem") == 1.0


def test_same_term_in_another_case_is_shown_before_it_is_created(expert_client):
    existing = EntryFactory(term="ANTS", kind="acronym", definition=ANTS)
    data = entry_form_data(term="ants", definition="Fourmis, en anglais : un tout autre sens.")
    response = expert_client.post(CREATE_URL, data)
    assert response.status_code == 200 and Entry.objects.count() == 1  # nothing created yet
    body = response.content.decode()
    assert 'id="same-term-warning"' in body
    assert reverse("glossary:entry-detail", args=[existing.pk]) in body
    assert reverse("glossary:entry-edit", args=[existing.pk]) in body
    assert "autre sens" in body and "doublon probable" not in body
    assert 'name="same_term" value="new_sense"' in body

    response = expert_client.post(CREATE_URL, {**data, "same_term": "new_sense"})
    assert response.status_code == 302
    assert sorted(Entry.objects.values_list("term", flat=True)) == ["ANTS", "ants"]


def test_same_sense_written_again_is_called_a_probable_duplicate(expert_client):
    EntryFactory(term="ANTS", kind="acronym", definition=ANTS)
    response = expert_client.post(CREATE_URL, entry_form_data(term="Ânts", definition=ANTS.replace("qui délivre", "délivrant")))
    assert response.status_code == 200 and Entry.objects.count() == 1
    assert "doublon probable" in response.content.decode()


def test_editing_an_entry_without_renaming_it_asks_nothing(expert_client):
    EntryFactory(term="CAF", kind="acronym", definition="Café, en abrégé.")
    entry = EntryFactory(term="CAF", kind="acronym", definition="Caisse d'allocations familiales")
    data = entry_form_data(revision=entry.revision, definition="Caisse d'allocations familiales (branche famille).")
    response = expert_client.post(reverse("glossary:entry-edit", args=[entry.pk]), data)
    assert response.status_code == 302


def test_renaming_onto_an_existing_term_warns(expert_client):
    EntryFactory(term="CAF", kind="acronym", definition="Caisse d'allocations familiales")
    entry = EntryFactory(term="CAFE", kind="acronym", definition="Autre chose.")
    data = entry_form_data(term="caf", definition="Autre chose.", revision=entry.revision)
    response = expert_client.post(reverse("glossary:entry-edit", args=[entry.pk]), data)
    assert response.status_code == 200 and 'id="same-term-warning"' in response.content.decode()
    entry.refresh_from_db()
    assert entry.term == "CAFE"


def test_api_create_lists_same_term_entries_without_refusing(api_client, expert):
    existing = EntryFactory(term="ANTS", kind="acronym", definition=ANTS)
    api_client.force_authenticate(expert)
    response = api_client.post("/api/entries/", {"term": "ants", "definition": "Fourmis.", "kind": "term"}, format="json")
    assert response.status_code == 201
    assert response.json()["same_term_entries"] == [{"id": existing.pk, "term": "ANTS", "verdict": "new_sense"}]


def test_import_preview_tells_new_senses_from_duplicates(expert_client):
    dgfip = EntryFactory(term="DGFiP", kind="acronym", definition="Direction générale des finances publiques.")
    ants = EntryFactory(term="ANTS", kind="acronym", definition=ANTS)
    csv = (
        "term,definition,domain,kind,variants,contexts\n"
        "DGFIP,Direction generale des Finances publiques (Bercy),,acronym,,\n"
        "ants,Fourmis (anglais).,,term,,\n"
        "CAF,Caisse d'allocations familiales,,acronym,,\n"
    ).encode()
    preview = upload(expert_client, csv)
    report = preview.context["report"]
    assert (report.created, report.unchanged, report.new_senses, report.probable_duplicates) == (3, 0, 1, 1)
    verdicts = {row["term"]: (row["verdict"], [other["id"] for other in row["existing"]]) for row in report.same_term}
    assert verdicts == {"DGFIP": ("duplicate", [dgfip.pk]), "ants": ("new_sense", [ants.pk])}
    body = preview.content.decode()
    assert "doublon probable" in body and "nouveau sens d'un terme existant" in body
    assert reverse("glossary:entry-detail", args=[dgfip.pk]) in body


def test_a_refused_import_counts_nothing_created_and_flashes_no_success(expert_client, django_capture_on_commit_callbacks):
    preview = upload(expert_client, CSV_WITH_BAD_ROW)
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(expert_client, preview)
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "success"]
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED
    assert (batch.created_count, batch.report["created"]) == (0, 0)
    listing = expert_client.get(reverse("glossary:import-list")).content.decode()
    assert "<td>0</td><td>0</td><td>1</td>" in listing  # created, unchanged, invalid
    page = expert_client.get(reverse("glossary:import-detail", args=[batch.pk])).content.decode()
    assert "Import échoué : rien n'a été importé." in page
    assert reverse("glossary:import-retry", args=[batch.pk]) in page


def test_a_queued_import_reads_as_running_not_as_success(expert_client):
    batch = import_batch(file_name="a.csv", file_format="csv", status=ImportBatch.Status.QUEUED)
    page = expert_client.get(reverse("glossary:import-detail", args=[batch.pk])).content.decode()
    assert "Import en cours" in page and "Import terminé" not in page


def test_failed_import_is_retried_skipping_bad_rows(expert_client, django_capture_on_commit_callbacks):
    preview = upload(expert_client, CSV_WITH_BAD_ROW)
    with django_capture_on_commit_callbacks(execute=True):
        confirm(expert_client, preview)
    failed = ImportBatch.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = expert_client.post(reverse("glossary:import-retry", args=[failed.pk]))
    retried = ImportBatch.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == reverse("glossary:import-detail", args=[retried.pk])
    assert retried.status == ImportBatch.Status.IMPORTED and retried.options["skip_invalid"] is True
    assert (retried.created_count, retried.invalid_count) == (1, 1)
    assert list(Entry.objects.values_list("term", flat=True)) == ["CAF"]
    failed.refresh_from_db()
    assert failed.status == ImportBatch.Status.FAILED  # the history keeps the failure
    page = expert_client.get(response["Location"]).content.decode()
    assert "Import terminé : 1 entrée créée." in page


def test_only_a_failed_import_can_be_retried(expert_client, client, reader):
    batch = import_batch(file_name="a.csv", file_format="csv", status=ImportBatch.Status.IMPORTED, stored_path="imports/x/a.csv")
    response = expert_client.post(reverse("glossary:import-retry", args=[batch.pk]), follow=True)
    assert "Seul un import échoué" in response.content.decode()
    assert ImportBatch.objects.count() == 1
    client.force_login(reader)
    assert client.post(reverse("glossary:import-retry", args=[batch.pk])).status_code == 403
