"""The migration that puts imports on the one job model keeps every existing batch, each with a job in the status
it had (issue #13, part 1)."""
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("glossary", "0003_stale_imports_schedule")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_batches_get_their_job_with_the_status_they_had():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    try:
        old = _migrate(BEFORE)
        ImportBatch = old.get_model("glossary", "ImportBatch")
        user = old.get_model("auth", "User").objects.create(username="ancien")
        started = timezone.now() - timedelta(hours=1)
        for status in ("previewed", "queued", "running", "imported", "failed"):
            ImportBatch.objects.create(
                file_name=f"{status}.csv", file_format="csv", status=status, options={"dry_run": status == "previewed"},
                error="Colonnes manquantes" if status == "failed" else "", created_by=user, attempts=1 if status != "queued" else 0,
                worker="celery@old" if status != "queued" else "", started_at=None if status == "queued" else started,
                finished_at=started if status in ("previewed", "imported", "failed") else None, created_count=2 if status == "imported" else 0,
            )
        _migrate(latest)
    finally:
        _migrate(latest)

    from django_celery_beat.models import PeriodicTask

    from glossary.models import ImportBatch as Current

    batches = {batch.file_name: batch for batch in Current.objects.select_related("job")}
    assert {name: batch.status for name, batch in batches.items()} == {
        f"{status}.csv": status for status in ("previewed", "queued", "running", "imported", "failed")
    }
    failed, running, imported = batches["failed.csv"], batches["running.csv"], batches["imported.csv"]
    assert failed.job.kind == "import" and failed.error == "Colonnes manquantes" and failed.finished_at == started
    assert (running.job.status, running.job.worker, running.job.attempts, running.job.heartbeat_at) == ("running", "celery@old", 1, started)
    assert imported.created_count == 2 and imported.job.requested_by.username == "ancien"
    assert imported.job.created_at == imported.created_at
    assert not PeriodicTask.objects.filter(task="glossary.tasks.fail_stale_imports").exists()
