"""The glossary REST API: roles, errors as JSON, conflicts, filters, actions, history, import and export."""
import io
import json

import openpyxl
import pytest
from rest_framework.authtoken.models import Token

from glossary import services
from glossary.models import Entry, ImportBatch
from tests.factories import DomainFactory, EntryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_expert(api_client, expert):
    api_client.force_authenticate(expert)
    return api_client


@pytest.fixture
def as_reader(api_client, reader):
    api_client.force_authenticate(reader)
    return api_client


def new_entry_payload(**overrides):
    return {"term": "URSSAF", "definition": "Union de recouvrement des cotisations de sécurité sociale.", "kind": "acronym", **overrides}


# Authentication and roles.

@pytest.mark.parametrize("method,url", [("get", "/api/entries/"), ("post", "/api/entries/"), ("get", "/api/domains/"), ("get", "/api/export/")])
def test_anonymous_gets_401_json_with_reason(api_client, method, url):
    response = getattr(api_client, method)(url)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["reason"]
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Token")


def test_reader_reads_but_cannot_write(as_reader):
    entry = EntryFactory()
    assert as_reader.get("/api/entries/").status_code == 200
    assert as_reader.get(f"/api/entries/{entry.pk}/").status_code == 200
    for response in (
        as_reader.post("/api/entries/", new_entry_payload(), format="json"),
        as_reader.patch(f"/api/entries/{entry.pk}/", {"definition": "Autre"}, format="json"),
        as_reader.delete(f"/api/entries/{entry.pk}/"),
        as_reader.post(f"/api/entries/{entry.pk}/validate/"),
        as_reader.post("/api/domains/", {"name": "Fiscalité"}, format="json"),
    ):
        assert response.status_code == 403
        assert "expert" in response.json()["reason"]
    assert Entry.objects.get(pk=entry.pk).definition == entry.definition


def test_expert_creates_an_entry_with_provenance(as_expert, expert):
    domain = DomainFactory(name="Social")
    response = as_expert.post("/api/entries/", new_entry_payload(domain=domain.pk, variants=["Urssaf"], split="test"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["term"] == "URSSAF"
    assert body["domain_slug"] == domain.slug
    assert body["created_by"] == "expert"
    assert body["revision"] == 1
    assert body["split"] == "test" and body["split_pinned"] is True
    assert Entry.objects.get(pk=body["id"]).created_by == expert


def test_token_auth(api_client, expert):
    response = api_client.post("/api/auth/token/", {"username": "expert", "password": "pw-expert"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert Token.objects.get(user=expert).key == token
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.get("/api/entries/").status_code == 200
    assert api_client.post("/api/entries/", new_entry_payload(), format="json").status_code == 201


def test_bad_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    response = api_client.get("/api/entries/")
    assert response.status_code == 401
    assert response.json()["reason"]


def test_wrong_password_gets_no_token(api_client, expert):
    response = api_client.post("/api/auth/token/", {"username": "expert", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["reason"]


# Errors and conflicts.

def test_validation_errors_are_json_with_field_errors(as_expert):
    response = as_expert.post("/api/entries/", {"term": "CAF", "kind": "verb"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["reason"]
    assert set(body["errors"]) == {"definition", "kind"}


def test_service_validation_error_is_400_with_field(as_expert):
    response = as_expert.post("/api/entries/", new_entry_payload(term="   "), format="json")
    assert response.status_code == 400
    assert "term" in response.json()["errors"]


def test_duplicate_entry_is_refused_with_409(as_expert):
    assert as_expert.post("/api/entries/", new_entry_payload(), format="json").status_code == 201
    response = as_expert.post(
        "/api/entries/", new_entry_payload(term="urssaf", definition="Union de recouvrement des cotisations de securite sociale"), format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    assert "Doublon" in response.json()["reason"]
    assert Entry.objects.count() == 1


def test_stale_revision_is_409_and_current_revision_succeeds(as_expert, expert):
    entry = EntryFactory(definition="Première définition")
    services.entry_update(entry=entry, data={"definition": "Changée par quelqu'un d'autre"}, user=expert)
    stale = as_expert.patch(f"/api/entries/{entry.pk}/", {"definition": "Ma version", "revision": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale"
    assert Entry.objects.get(pk=entry.pk).definition == "Changée par quelqu'un d'autre"

    fresh = as_expert.patch(f"/api/entries/{entry.pk}/", {"definition": "Ma version", "revision": 2}, format="json")
    assert fresh.status_code == 200
    assert fresh.json()["revision"] == 3
    assert fresh.json()["definition"] == "Ma version"


def test_patch_without_revision_and_put(as_expert):
    entry = EntryFactory(status=Entry.Status.DRAFT)
    assert as_expert.patch(f"/api/entries/{entry.pk}/", {"contexts": ["Un contexte."]}, format="json").json()["contexts"] == ["Un contexte."]
    response = as_expert.put(f"/api/entries/{entry.pk}/", {"term": "DGFiP", "definition": "Direction générale des finances publiques"}, format="json")
    assert response.status_code == 200
    assert response.json()["term"] == "DGFiP"
    assert as_expert.put(f"/api/entries/{entry.pk}/", {"term": "DGFiP"}, format="json").status_code == 400


def test_unknown_entry_is_404_json(as_reader):
    response = as_reader.get("/api/entries/999999/")
    assert response.status_code == 404
    assert response.json()["reason"]


def test_delete_entry(as_expert):
    entry = EntryFactory()
    assert as_expert.delete(f"/api/entries/{entry.pk}/").status_code == 204
    assert not Entry.objects.filter(pk=entry.pk).exists()


# Listing.

def test_pagination(as_reader):
    EntryFactory.create_batch(3)
    first = as_reader.get("/api/entries/?page_size=2").json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["next"]
    second = as_reader.get(first["next"]).json()
    assert len(second["results"]) == 1


def test_filters_and_search(as_reader):
    fiscal, social = DomainFactory(name="Fiscalité"), DomainFactory(name="Social")
    elysee = EntryFactory(term="Élysée", kind="term", domain=fiscal, status="draft", definition="Palais présidentiel")
    caf = EntryFactory(term="CAF", kind="acronym", domain=social, status="validated", definition="Caisse d'allocations familiales")
    services.entry_create(term="TVA", definition="Taxe sur la valeur ajoutée", kind="acronym", domain=fiscal, split="test")

    def terms(query):
        response = as_reader.get(f"/api/entries/?{query}")
        assert response.status_code == 200, response.json()
        return [row["term"] for row in response.json()["results"]]

    assert terms(f"domain={fiscal.pk}") == ["Élysée", "TVA"]
    assert terms(f"domain={social.slug}") == ["CAF"]
    assert terms("kind=acronym") == ["CAF", "TVA"]
    assert terms("status=draft") == ["Élysée", "TVA"]
    assert terms("split=test") == ["TVA"]
    assert terms("split=unassigned") == ["CAF", "Élysée"]
    assert terms("search=elysee") == [elysee.term]
    assert terms("search=allocations") == [caf.term]
    assert terms("ordering=-term") == ["TVA", "Élysée", "CAF"]
    bad = as_reader.get("/api/entries/?kind=verb")
    assert bad.status_code == 400
    assert "kind" in bad.json()["errors"]


# Actions and history.

def test_validate_and_reject(as_expert):
    entry = EntryFactory(status=Entry.Status.DRAFT)
    assert as_expert.post(f"/api/entries/{entry.pk}/validate/").json()["status"] == "validated"
    assert as_expert.post(f"/api/entries/{entry.pk}/reject/").json()["status"] == "rejected"
    assert Entry.objects.get(pk=entry.pk).status == "rejected"


def test_bulk_status(as_expert):
    drafts = EntryFactory.create_batch(2, status=Entry.Status.DRAFT)
    already = EntryFactory(status=Entry.Status.VALIDATED)
    response = as_expert.post("/api/entries/bulk-status/", {"ids": [e.pk for e in drafts] + [already.pk], "status": "validated"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"changed": 2}
    assert set(Entry.objects.values_list("status", flat=True)) == {"validated"}
    assert as_expert.post("/api/entries/bulk-status/", {"ids": [], "status": "validated"}, format="json").status_code == 400
    huge = as_expert.post("/api/entries/bulk-status/", {"ids": [2**63], "status": "validated"}, format="json")
    assert huge.status_code == 400 and "reason" in huge.json()


def test_history(as_expert):
    created = as_expert.post("/api/entries/", new_entry_payload(), format="json").json()
    as_expert.patch(f"/api/entries/{created['id']}/", {"definition": "Organisme qui recouvre les cotisations."}, format="json")
    as_expert.post(f"/api/entries/{created['id']}/validate/")
    history = as_expert.get(f"/api/entries/{created['id']}/history/").json()
    assert [row["type"] for row in history] == ["changed", "changed", "created"]
    assert [row["revision"] for row in history] == [3, 2, 1]
    assert {"field": "status", "old": "draft", "new": "validated"} in history[0]["changes"]
    assert {"field": "definition", "old": created["definition"], "new": "Organisme qui recouvre les cotisations."} in history[1]["changes"]
    assert history[0]["user"] == "expert"


# Domains.

def test_domains_with_counts_and_delete_rules(as_expert):
    full = DomainFactory(name="Fiscalité")
    EntryFactory.create_batch(2, domain=full)
    created = as_expert.post("/api/domains/", {"name": "Santé", "description": "Politiques de santé"}, format="json")
    assert created.status_code == 201
    assert created.json()["slug"] == "sante"
    assert created.json()["entry_count"] == 0
    counts = {row["name"]: row["entry_count"] for row in as_expert.get("/api/domains/").json()["results"]}
    assert counts == {"Fiscalité": 2, "Santé": 0}

    assert as_expert.post("/api/domains/", {"name": "santé"}, format="json").status_code == 400
    assert as_expert.patch(f"/api/domains/{created.json()['id']}/", {"description": "Hôpitaux"}, format="json").json()["description"] == "Hôpitaux"

    refused = as_expert.delete(f"/api/domains/{full.pk}/")
    assert refused.status_code == 409
    assert refused.json()["code"] == "not_empty"
    assert as_expert.delete(f"/api/domains/{created.json()['id']}/").status_code == 204


# Import and export.

GOOD_CSV = "term,definition,domain,kind,variants,contexts\nCAF,Caisse d'allocations familiales,Social,acronym,,La CAF verse les aides.\nTVA,Taxe sur la valeur ajoutée,Fiscalité,acronym,,\n"
BAD_CSV = "term,definition,domain,kind,variants,contexts\nCAF,Caisse d'allocations familiales,Social,acronym,,\n,Sans terme,Social,term,,\nTVA,,Fiscalité,acronym,,\n"


def upload(text: str, name: str = "glossaire.csv", **fields) -> dict:
    file = io.BytesIO(text.encode())
    file.name = name
    return {"file": file, "format": "csv", **fields}


def test_import_good_file(as_expert):
    response = as_expert.post("/api/imports/", upload(GOOD_CSV, status="validated"), format="multipart")
    assert response.status_code == 201, response.json()
    report = response.json()
    assert report["created"] == 2 and report["imported"] is True and report["errors"] == []
    assert set(Entry.objects.values_list("term", "status")) == {("CAF", "validated"), ("TVA", "validated")}
    batch = as_expert.get(f"/api/imports/{report['batch_id']}/").json()
    assert batch["status"] == "imported"
    assert batch["created_count"] == 2
    assert batch["created_by"] == "expert"


def test_import_bad_rows_is_400_with_line_numbers_and_imports_nothing(as_expert):
    response = as_expert.post("/api/imports/", upload(BAD_CSV), format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["reason"]
    assert body["imported"] is False
    assert [error["line"] for error in body["errors"]] == [3, 4]
    assert not Entry.objects.exists()


def test_import_skip_invalid_and_dry_run(as_expert):
    preview = as_expert.post("/api/imports/", upload(GOOD_CSV, dry_run="true"), format="multipart")
    assert preview.status_code == 200
    assert preview.json()["dry_run"] is True and preview.json()["valid_rows"] == 2
    assert not Entry.objects.exists()
    skipped = as_expert.post("/api/imports/", upload(BAD_CSV, skip_invalid="true"), format="multipart")
    assert skipped.status_code == 201
    assert list(Entry.objects.values_list("term", flat=True)) == ["CAF"]


def test_import_async_answers_202_with_the_batch(as_expert, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_expert.post("/api/imports/", upload(GOOD_CSV, **{"async": "true"}), format="multipart")
    assert response.status_code == 202
    batch_id = response.json()["batch_id"]
    assert response.json()["url"] == f"/api/imports/{batch_id}/"
    assert ImportBatch.objects.get(pk=batch_id).status == "imported"
    assert Entry.objects.count() == 2


def test_import_refusals(as_expert, settings):
    assert as_expert.post("/api/imports/", upload(GOOD_CSV, format="docx"), format="multipart").status_code == 400
    missing_columns = as_expert.post("/api/imports/", upload("nom,texte\nA,B\n"), format="multipart")
    assert missing_columns.status_code == 400
    assert missing_columns.json()["code"] == "refused"
    assert "term" in missing_columns.json()["reason"]
    settings.IMPORT_MAX_BYTES = 10
    too_large = as_expert.post("/api/imports/", upload(GOOD_CSV), format="multipart")
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "too_large"


def test_import_needs_the_expert_role(as_reader):
    response = as_reader.post("/api/imports/", upload(GOOD_CSV), format="multipart")
    assert response.status_code == 403
    assert not Entry.objects.exists()


def test_export_formats(as_reader):
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales")
    csv_response = as_reader.get("/api/export/?format=csv")
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_response["Content-Disposition"]
    assert "Caisse d'allocations familiales" in csv_response.content.decode()

    jsonl = as_reader.get("/api/export/?format=jsonl")
    rows = [json.loads(line) for line in jsonl.content.decode().splitlines() if line.strip()]
    assert [row["term"] for row in rows] == ["CAF"]

    xlsx = as_reader.get("/api/export/?format=xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert "CAF" in [cell.value for row in sheet.iter_rows() for cell in row]

    assert as_reader.get("/api/export/?format=pdf").status_code == 400
