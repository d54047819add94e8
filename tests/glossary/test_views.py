import pytest
from django.urls import reverse

from glossary import services
from glossary.models import Domain, Entry, ImportBatch
from tests.factories import DomainFactory, EntryFactory, import_batch

pytestmark = pytest.mark.django_db

LIST_URL = reverse("glossary:entry-list")
PENDING_KEY = "glossary_pending_import"


def entry_form_data(**overrides) -> dict:
    data = {
        "term": "CAF",
        "kind": "acronym",
        "definition": "Caisse d'allocations familiales",
        "variants": "Caf\nCaisse d'allocations familiales",
        "contexts": "La CAF verse les prestations familiales.",
        "domain": "",
        "new_domain": "",
        "status": "draft",
        "source": "Service-public.fr",
        "source_url": "",
    }
    data.update(overrides)
    return data


# --- permissions -----------------------------------------------------------------------------


def test_anonymous_user_is_sent_to_login(client):
    response = client.get(LIST_URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_without_role_reads_but_cannot_write(client, reader):
    entry = EntryFactory(status=Entry.Status.DRAFT)
    client.force_login(reader)
    assert client.get(LIST_URL).status_code == 200
    assert client.get(reverse("glossary:entry-detail", args=[entry.pk])).status_code == 200
    assert client.get(reverse("glossary:entry-create")).status_code == 403
    assert client.post(reverse("glossary:entry-create"), entry_form_data()).status_code == 403
    assert client.post(reverse("glossary:entry-edit", args=[entry.pk]), entry_form_data()).status_code == 403
    assert client.post(reverse("glossary:entry-status", args=[entry.pk]), {"status": "validated"}).status_code == 403
    assert client.post(reverse("glossary:entry-delete", args=[entry.pk])).status_code == 403
    assert client.post(reverse("glossary:entry-bulk-status"), {"entry_ids": [entry.pk], "bulk_status": "validated"}).status_code == 403
    entry.refresh_from_db()
    assert entry.status == Entry.Status.DRAFT


def test_reader_sees_no_write_buttons(client, reader):
    EntryFactory(status=Entry.Status.DRAFT)
    client.force_login(reader)
    body = client.get(LIST_URL).content.decode()
    assert "Valider la sélection" not in body
    assert reverse("glossary:entry-create") not in body


# --- list: search, filters, pagination, counts, htmx ----------------------------------------


def test_search_is_accent_and_case_insensitive(expert_client):
    EntryFactory(term="Élysée", definition="Palais de la présidence de la République")
    EntryFactory(term="URSSAF", definition="Union de recouvrement des cotisations")
    body = expert_client.get(LIST_URL, {"q": "elysee"}).content.decode()
    assert "Élysée" in body and "URSSAF" not in body
    body = expert_client.get(LIST_URL, {"q": "PRÉSIDENCE"}).content.decode()
    assert "Élysée" in body and "URSSAF" not in body


def test_filters_by_domain_kind_and_status(expert_client):
    finance, health = DomainFactory(name="Finances"), DomainFactory(name="Santé")
    EntryFactory(term="DGFIP", domain=finance, kind="acronym", status="validated")
    EntryFactory(term="Impôt", domain=finance, kind="term", status="draft")
    EntryFactory(term="ARS", domain=health, kind="acronym", status="draft")
    response = expert_client.get(LIST_URL, {"domain": finance.pk, "kind": "acronym"})
    assert [entry.term for entry in response.context["page"].object_list] == ["DGFIP"]
    response = expert_client.get(LIST_URL, {"status": "draft"})
    assert sorted(entry.term for entry in response.context["page"].object_list) == ["ARS", "Impôt"]


def test_invalid_filter_value_is_ignored(expert_client):
    EntryFactory(term="CAF")
    response = expert_client.get(LIST_URL, {"domain": "999999", "status": "bogus"})
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 1


def test_pagination_and_counts(expert_client):
    domain = DomainFactory(name="Finances")
    EntryFactory.create_batch(52, domain=domain, status="validated")
    EntryFactory.create_batch(3, domain=domain, status="draft")
    first = expert_client.get(LIST_URL)
    assert len(first.context["page"].object_list) == 50
    body = first.content.decode()
    assert "55 entrées trouvées" in body
    assert "validé : 52" in body and "brouillon : 3" in body and "rejeté : 0" in body
    assert "Page 1 sur 2" in body
    second = expert_client.get(LIST_URL, {"page": 2, "status": "validated"})
    assert len(second.context["page"].object_list) == 2
    assert "52 entrées trouvées" in second.content.decode()


def test_htmx_request_gets_the_results_fragment_only(expert_client):
    EntryFactory(term="CAF")
    full = expert_client.get(LIST_URL)
    assert "<html" in full.content.decode()
    fragment = expert_client.get(LIST_URL, {"q": "caf"}, headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert fragment.status_code == 200
    assert "<html" not in body and "CAF" in body and "1 entrée trouvée" in body
    assert "HX-Request" in fragment["Vary"]


def test_list_page_wires_htmx_and_works_without_it(expert_client):
    body = expert_client.get(LIST_URL).content.decode()
    assert 'hx-get="/glossary/"' in body and 'hx-target="#entry-results"' in body and 'hx-push-url="true"' in body
    assert '<form class="filters card" method="get" action="/glossary/"' in body


def test_user_text_is_escaped(expert_client):
    EntryFactory(term="<script>alert(1)</script>", definition="<b>gras</b>")
    body = expert_client.get(LIST_URL).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- detail ----------------------------------------------------------------------------------


def test_detail_shows_fields_provenance_and_history(expert_client, expert):
    domain = DomainFactory(name="Social")
    entry = services.entry_create(
        term="CAF", definition="Caisse d'allocations familiales", kind="acronym", domain=domain,
        variants=["Caf"], contexts=["La CAF verse les aides."], examples=[{"question": "Que fait la CAF ?", "answer": "Elle verse les aides."}],
        source="Service-public.fr", created_by=expert,
    )
    services.entry_update(
        entry=entry,
        data={"definition": "Caisse d'allocations familiales (CAF)", "status": "validated", "domain": DomainFactory(name="Famille")},
        user=expert,
    )
    body = expert_client.get(reverse("glossary:entry-detail", args=[entry.pk])).content.decode()
    for text in ("CAF", "Social", "Caf", "La CAF verse les aides.", "Que fait la CAF ?", "Service-public.fr", "expert", "Historique"):
        assert text in body
    # The history row of the edit names the fields with their old and new values.
    assert "Caisse d&#x27;allocations familiales (CAF)" in body
    assert "brouillon</del> → <ins>validé" in body
    assert "Social</del> → <ins>Famille" in body
    assert "Création" in body and "Modification" in body


def test_detail_of_missing_entry_is_404(expert_client):
    assert expert_client.get(reverse("glossary:entry-detail", args=[424242])).status_code == 404


# --- create / edit -----------------------------------------------------------------------------


def test_expert_creates_entry_with_new_domain(expert_client, expert):
    response = expert_client.post(reverse("glossary:entry-create"), entry_form_data(new_domain="Protection sociale"))
    entry = Entry.objects.get(term="CAF")
    assert response.status_code == 302 and response["Location"] == reverse("glossary:entry-detail", args=[entry.pk])
    assert entry.domain.name == "Protection sociale"
    assert entry.variants == ["Caf", "Caisse d'allocations familiales"]
    assert entry.contexts == ["La CAF verse les prestations familiales."]
    assert entry.created_by == expert


def test_create_form_shows_field_errors(expert_client):
    response = expert_client.post(reverse("glossary:entry-create"), entry_form_data(term="", definition=""))
    assert response.status_code == 200
    assert response.context["form"].errors.keys() >= {"term", "definition"}
    assert "Ce champ est obligatoire." in response.content.decode()
    assert not Entry.objects.exists()


def test_duplicate_is_refused_with_a_clear_message_and_no_new_domain(expert_client):
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales.")
    response = expert_client.post(
        reverse("glossary:entry-create"), entry_form_data(term="caf", definition="caisse d'allocations  familiales", new_domain="Nouveau")
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Doublon" in body and "role=\"alert\"" in body
    assert Entry.objects.count() == 1
    assert not Domain.objects.filter(name="Nouveau").exists()


def test_edit_form_carries_the_revision(expert_client):
    entry = EntryFactory(term="CAF")
    response = expert_client.get(reverse("glossary:entry-edit", args=[entry.pk]))
    assert response.context["form"]["revision"].value() == 1
    assert 'type="hidden" name="revision" value="1"' in response.content.decode()


def test_expert_edits_entry(expert_client, expert):
    entry = EntryFactory(term="CAF", definition="Ancienne définition")
    data = entry_form_data(definition="Nouvelle définition", domain=entry.domain_id, revision=entry.revision)
    response = expert_client.post(reverse("glossary:entry-edit", args=[entry.pk]), data)
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.definition == "Nouvelle définition" and entry.revision == 2
    assert entry.history.first().history_user == expert


def test_stale_edit_is_detected_and_user_text_kept(expert_client, maintainer):
    entry = EntryFactory(term="CAF", definition="Version d'origine")
    services.entry_update(entry=entry, data={"definition": "Version d'un collègue"}, user=maintainer)
    data = entry_form_data(definition="Mon texte à moi", revision=1)
    response = expert_client.post(reverse("glossary:entry-edit", args=[entry.pk]), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "modifiée par quelqu&#x27;un d&#x27;autre" in body
    assert "Mon texte à moi" in body  # the user's text stays in the form
    assert "Version d&#x27;un collègue" in body  # and the current version is shown beside it
    entry.refresh_from_db()
    assert entry.definition == "Version d'un collègue"


# --- validate / reject / bulk / delete ---------------------------------------------------------


def test_htmx_validate_returns_the_updated_row(expert_client):
    entry = EntryFactory(term="CAF", status="draft")
    response = expert_client.post(
        reverse("glossary:entry-status", args=[entry.pk]), {"status": "validated", "fragment": "row"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<tr id="entry-row-{entry.pk}"') and "<html" not in body
    assert 'class="badge validated"' in body
    entry.refresh_from_db()
    assert entry.status == "validated"


def test_htmx_reject_on_detail_returns_the_status_badge(expert_client):
    entry = EntryFactory(term="CAF", status="draft")
    response = expert_client.post(
        reverse("glossary:entry-status", args=[entry.pk]), {"status": "rejected", "fragment": "status"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="entry-status"') and 'class="badge rejected"' in body
    entry.refresh_from_db()
    assert entry.status == "rejected"


def test_status_change_without_htmx_redirects_back(expert_client):
    entry = EntryFactory(term="CAF", status="draft")
    next_url = f"{LIST_URL}?status=draft"
    response = expert_client.post(reverse("glossary:entry-status", args=[entry.pk]), {"status": "validated", "next": next_url})
    assert response.status_code == 302 and response["Location"] == next_url
    offsite = expert_client.post(reverse("glossary:entry-status", args=[entry.pk]), {"status": "rejected", "next": "https://evil.example/"})
    assert offsite["Location"] == reverse("glossary:entry-detail", args=[entry.pk])


def test_unknown_status_is_a_bad_request(expert_client):
    entry = EntryFactory(status="draft")
    response = expert_client.post(reverse("glossary:entry-status", args=[entry.pk]), {"status": "maybe"})
    assert response.status_code == 400


def test_bulk_validate_selection(expert_client, expert):
    drafts = EntryFactory.create_batch(3, status="draft")
    untouched = EntryFactory(status="draft")
    response = expert_client.post(
        reverse("glossary:entry-bulk-status"),
        {"entry_ids": [entry.pk for entry in drafts], "bulk_status": "validated", "next": LIST_URL},
        follow=True,
    )
    assert "3 entrées passées au statut « validé »." in response.content.decode()
    assert set(Entry.objects.filter(status="validated").values_list("pk", flat=True)) == {entry.pk for entry in drafts}
    untouched.refresh_from_db()
    assert untouched.status == "draft"
    assert drafts[0].history.first().history_user == expert


def test_bulk_without_selection_says_so(expert_client):
    response = expert_client.post(reverse("glossary:entry-bulk-status"), {"bulk_status": "validated"}, follow=True)
    assert "Aucune entrée sélectionnée." in response.content.decode()


def test_delete_asks_for_confirmation_then_deletes(expert_client):
    entry = EntryFactory(term="CAF")
    confirm = expert_client.get(reverse("glossary:entry-delete", args=[entry.pk]))
    assert confirm.status_code == 200 and "Supprimer définitivement" in confirm.content.decode()
    assert Entry.objects.filter(pk=entry.pk).exists()
    response = expert_client.post(reverse("glossary:entry-delete", args=[entry.pk]))
    assert response.status_code == 302 and response["Location"] == LIST_URL
    assert not Entry.objects.filter(pk=entry.pk).exists()


# --- domains -------------------------------------------------------------------------------


def test_domain_list_shows_entry_counts(expert_client):
    finance = DomainFactory(name="Finances")
    EntryFactory.create_batch(2, domain=finance)
    DomainFactory(name="Vide")
    response = expert_client.get(reverse("glossary:domain-list"))
    domains = {domain.name: domain.entry_count for domain in response.context["domains"]}
    assert domains == {"Finances": 2, "Vide": 0}
    assert f"?domain={finance.pk}" in response.content.decode()


# --- import and export -----------------------------------------------------------------------

GOOD_CSV = (
    "term,definition,domain,kind,variants,contexts\n"
    "CAF,Caisse d'allocations familiales,Social,acronym,Caf,La CAF verse les aides.\n"
    "URSSAF,Union de recouvrement des cotisations,Social,acronym,,\n"
).encode()
CSV_WITH_BAD_ROW = (
    "term,definition,domain,kind,variants,contexts\n"
    "CAF,Caisse d'allocations familiales,Social,acronym,,\n"
    "URSSAF,,Social,acronym,,\n"
).encode()


def upload(client, content: bytes, *, name: str = "glossaire.csv", **fields):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "file_format": "csv", "domain": "", "status": "draft", "split": ""}
    data.update(fields)
    return client.post(reverse("glossary:import-upload"), data)


def confirm(client, response, **fields):
    token = response.context["confirm_form"]["token"].value()
    return client.post(reverse("glossary:import-confirm"), {"token": token, **fields})


def test_import_upload_preview_confirm_and_batch_page(expert_client, expert, django_capture_on_commit_callbacks):
    preview = upload(expert_client, GOOD_CSV, status="validated")
    assert preview.status_code == 200
    body = preview.content.decode()
    assert "Aperçu de l'import de « glossaire.csv »" in body
    assert "Caisse d&#x27;allocations familiales" in body and "nouvelle" in body
    assert preview.context["report"].created == 2
    assert not Entry.objects.exists()  # the preview writes nothing

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(expert_client, preview)
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("glossary:import-detail", args=[batch.pk])
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.IMPORTED and batch.created_by == expert
    assert set(Entry.objects.values_list("term", "status", "import_batch")) == {("CAF", "validated", batch.pk), ("URSSAF", "validated", batch.pk)}

    page = expert_client.get(response["Location"]).content.decode()
    assert "importé" in page and "glossaire.csv" in page
    assert 'hx-trigger="every 2s"' not in page  # finished: no more polling
    # The import shows as the entries' provenance.
    detail = expert_client.get(reverse("glossary:entry-detail", args=[Entry.objects.get(term="CAF").pk])).content.decode()
    assert reverse("glossary:import-detail", args=[batch.pk]) in detail


def test_import_preview_lists_bad_rows_with_line_numbers(expert_client, django_capture_on_commit_callbacks):
    preview = upload(expert_client, CSV_WITH_BAD_ROW)
    body = preview.content.decode()
    assert "<td>3</td>" in body and "La définition est obligatoire." in body
    assert "rien ne sera importé" in body

    with django_capture_on_commit_callbacks(execute=True):
        confirm(expert_client, preview)  # without "skip invalid rows": the whole file is refused
    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.FAILED and not Entry.objects.exists()

    preview = upload(expert_client, CSV_WITH_BAD_ROW)
    with django_capture_on_commit_callbacks(execute=True):
        confirm(expert_client, preview, skip_invalid="on")
    assert ImportBatch.objects.with_status(ImportBatch.Status.IMPORTED).count() == 1
    assert list(Entry.objects.values_list("term", flat=True)) == ["CAF"]


def test_import_refusal_is_shown_next_to_the_file(expert_client):
    response = upload(expert_client, b"foo,bar\n1,2\n")
    assert response.status_code == 200
    assert "Colonnes manquantes" in str(response.context["form"].errors["file"])
    assert PENDING_KEY not in expert_client.session


def test_import_confirm_needs_the_pending_upload(expert_client):
    upload(expert_client, GOOD_CSV)
    response = expert_client.post(reverse("glossary:import-confirm"), {"token": "not-the-token"}, follow=True)
    assert "plus en attente" in response.content.decode()
    assert not ImportBatch.objects.exists()


def test_import_batch_page_polls_while_queued(expert_client):
    batch = import_batch(file_name="sigles.csv", file_format="sigles", status=ImportBatch.Status.QUEUED)
    url = reverse("glossary:import-detail", args=[batch.pk])
    fragment = expert_client.get(url, headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert "<html" not in body
    assert 'hx-trigger="every 2s"' in body and f'hx-get="{url}"' in body
    assert "en file d&#x27;attente" in body


def test_reader_can_see_imports_but_not_upload(client, reader):
    client.force_login(reader)
    batch = import_batch(file_name="a.csv", file_format="csv", status=ImportBatch.Status.IMPORTED)
    assert client.get(reverse("glossary:import-list")).status_code == 200
    assert client.get(reverse("glossary:import-detail", args=[batch.pk])).status_code == 200
    assert client.get(reverse("glossary:import-upload")).status_code == 403
    assert client.post(reverse("glossary:import-confirm"), {"token": "x"}).status_code == 403


@pytest.mark.parametrize("file_format,content_type", [("csv", "text/csv"), ("jsonl", "application/jsonl"), ("xlsx", "application/vnd.openxmlformats")])
def test_export_download(expert_client, file_format, content_type):
    EntryFactory(term="URSSAF")
    response = expert_client.get(reverse("glossary:export"), {"format": file_format})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Content-Disposition"].startswith("attachment;") and f".{file_format}" in response["Content-Disposition"]
    if file_format != "xlsx":
        assert "URSSAF" in response.content.decode("utf-8-sig")


def test_export_refuses_unknown_format(expert_client):
    assert expert_client.get(reverse("glossary:export"), {"format": "pdf"}).status_code == 400
