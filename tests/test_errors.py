"""One error mapping (issue #13, part 5): a service's refusal is typed (config.errors) and turned into an HTTP
status and a JSON body with a reason once, by the API's exception handler (config.api); never a 500."""
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIRequestFactory

from config import errors
from config.api import json_exception_handler
from glossary import imports, services as glossary_services
from glossary.models import Domain
from retrieval.selectors import champion_version_get
from tests.factories import DomainFactory, EntryFactory
from training.models import TrainingRun


def _answer(error: Exception):
    request = APIRequestFactory().get("/api/anything")
    response = json_exception_handler(error, {"request": request, "view": None})
    return response.status_code, response.data


@pytest.mark.parametrize("kind,status,code", [
    (errors.Invalid, 400, "invalid"),
    (errors.Forbidden, 403, "permission_denied"),
    (errors.NotFound, 404, "not_found"),
    (errors.Conflict, 409, "conflict"),
    (errors.TooLarge, 413, "too_large"),
    (errors.Unavailable, 503, "unavailable"),
])
def test_each_kind_of_refusal_has_one_status_and_a_reason(kind, status, code):
    assert _answer(kind("Quelque chose ne va pas.")) == (status, {
        "reason": "Quelque chose ne va pas.", "code": code, **({"errors": {"non_field_errors": ["Quelque chose ne va pas."]}} if status == 400 else {}),
    })


def test_a_refusal_keeps_its_code_its_extra_fields_and_its_field_errors():
    assert _answer(errors.Conflict("Déjà en cours.", code="already_running", run_id=7)) == (
        409, {"reason": "Déjà en cours.", "code": "already_running", "run_id": 7},
    )
    status, body = _answer(errors.Conflict({"name": ["Pris."]}, code="taken"))
    assert (status, body["reason"], body["code"], body["errors"]) == (409, "name: Pris.", "taken", {"name": ["Pris."]})


def test_the_services_own_refusals_are_kinds_of_these():
    assert issubclass(glossary_services.DuplicateEntryError, errors.Conflict)
    assert issubclass(glossary_services.StaleEntryError, errors.Conflict)
    assert issubclass(imports.ImportConflict, errors.Conflict) and issubclass(imports.ImportConflict, imports.ImportRefused)
    assert issubclass(imports.ImportRefused, errors.Invalid) and issubclass(imports.ImportTooLarge, errors.TooLarge)
    # Typed refusals are still ValidationErrors (pages show them as before), and read as their message.
    refusal = imports.ImportRefused("Le fichier est vide.")
    assert isinstance(refusal, ValidationError) and str(refusal) == "Le fichier est vide." and refusal.code == "refused"
    assert _answer(imports.ImportTooLarge("Trop gros."))[0] == 413


def test_a_plain_validation_error_is_invalid_with_its_field_errors():
    assert _answer(ValidationError({"term": ["Obligatoire."]})) == (
        400, {"reason": "term: Obligatoire.", "code": "invalid", "errors": {"term": ["Obligatoire."]}},
    )
    assert _answer(ValidationError("Mode inconnu.", code="mode")) == (
        400, {"reason": "Mode inconnu.", "code": "mode", "errors": {"non_field_errors": ["Mode inconnu."]}},
    )


def test_a_missing_row_is_404_not_a_server_error():
    status, body = _answer(Domain.DoesNotExist("Domain matching query does not exist."))
    assert status == 404 and body["code"] == "not_found" and body["reason"]


def test_refusals_as_types_what_an_older_service_raises_and_lets_typed_ones_through():
    with pytest.raises(errors.Conflict) as raised:
        with errors.refusals_as(errors.Conflict, code="not_promotable"):
            raise ValidationError("La version sert déjà.")
    assert (raised.value.code, str(raised.value)) == ("not_promotable", "La version sert déjà.")
    with pytest.raises(errors.Unavailable) as raised:
        with errors.refusals_as(errors.Unavailable, code="search_unavailable", of=(RuntimeError,)):
            raise RuntimeError("Index absent.")
    assert raised.value.code == "search_unavailable"
    with pytest.raises(errors.Forbidden):
        with errors.refusals_as(errors.Conflict, code="x"):
            raise errors.Forbidden("Pas à vous.")


# ---- through the API: the status codes and bodies the apps answered before, now from the one mapping ------


@pytest.mark.django_db
def test_api_refusals_of_three_apps_come_from_the_one_mapping(api_client, expert, maintainer, django_capture_on_commit_callbacks):
    api_client.force_authenticate(expert)
    domain = DomainFactory(name="Social")
    EntryFactory(term="CAF", definition="Caisse d'allocations familiales", domain=domain)
    not_empty = api_client.delete(f"/api/domains/{domain.pk}/")
    assert (not_empty.status_code, not_empty.json()["code"]) == (409, "not_empty") and not_empty.json()["reason"]
    duplicate = api_client.post("/api/entries/", {"term": "CAF", "definition": "Caisse d'allocations familiales", "kind": "acronym"}, format="json")
    assert (duplicate.status_code, duplicate.json()["code"]) == (409, "duplicate")
    refused = api_client.post("/api/imports/", {"file": SimpleUploadedFile("g.csv", b"term;meaning\nx;y\n"), "format": "csv"}, format="multipart")
    assert (refused.status_code, refused.json()["code"]) == (400, "refused") and refused.json()["reason"]

    api_client.force_authenticate(maintainer)
    with django_capture_on_commit_callbacks(execute=False):
        first = api_client.post("/api/training-runs", {}, format="json")
        again = api_client.post("/api/training-runs", {}, format="json")
    assert first.status_code == 202
    assert (again.status_code, again.json()["code"], again.json()["run_id"]) == (409, "already_running", first.json()["id"])
    run = TrainingRun.objects.get(pk=first.json()["id"])
    cancelled = api_client.post(f"/api/training-runs/{run.pk}/cancel")
    finished = api_client.post(f"/api/training-runs/{run.pk}/cancel")
    assert cancelled.status_code == 200 and (finished.status_code, finished.json()["code"]) == (409, "finished")

    never_evaluated = champion_version_get()
    missing = api_client.get(f"/api/model-versions/{never_evaluated.pk}/report")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found") and "no successful evaluation" in missing.json()["reason"]
