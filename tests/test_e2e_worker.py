"""End to end: a web request queues an import, a real Celery worker process runs it on the real broker."""
import io

import pytest

from glossary.models import Entry, ImportBatch
from tests.live import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GLOSSARY_CSV = (
    "term,definition,domain,kind,variants,contexts\n"
    "URSSAF,Union de recouvrement des cotisations de sécurité sociale et d'allocations familiales,Social,acronym,Urssaf,\n"
    "DGFiP,Direction générale des finances publiques,Fiscalité,acronym,,La DGFiP gère l'impôt.\n"
)


def test_queued_import_is_run_by_the_worker(live_worker, expert, api_client):
    api_client.force_authenticate(expert)
    upload = io.BytesIO(GLOSSARY_CSV.encode())
    upload.name = "glossaire.csv"

    response = api_client.post(
        "/api/imports/", {"file": upload, "format": "csv", "status": "validated", "async": "true"}, format="multipart",
    )

    assert response.status_code == 202, response.json()
    batch_id = response.json()["batch_id"]
    finished = wait_for(
        lambda: ImportBatch.objects.with_status("imported", "failed").filter(pk=batch_id).first(),
        timeout=120, message=f"the worker to finish import batch {batch_id}",
    )
    assert finished.status == "imported", f"{finished.error}\n{live_worker.log()}"
    assert finished.created_count == 2
    entries = Entry.objects.select_related("domain", "import_batch").order_by("term_key")
    assert [(e.term, e.domain.name, e.status, e.import_batch_id) for e in entries] == [
        ("DGFiP", "Fiscalité", "validated", batch_id),
        ("URSSAF", "Social", "validated", batch_id),
    ]
    # The task ran in the worker process, not inline in the test process.
    assert "glossary.tasks.import_run[" in live_worker.log()
    assert api_client.get(f"/api/imports/{batch_id}/").json()["status"] == "imported"
