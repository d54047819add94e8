"""Backup and restore: everything saved comes back identical in an empty database; occupied databases are refused."""
from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.backup import BACKUP_APPS, EXCLUDED_MODELS, BackupRefused, backup_write, restore_read
from config.roles import has_role
from evaluation.models import EvaluationRun
from glossary import services as glossary_services
from glossary.models import ImportBatch
from retrieval import services as retrieval_services
from retrieval.models import Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog
from retrieval.selectors import champion_version_get
from tests.factories import DomainFactory, EntryFactory
from training.models import DataSnapshot, NegativeCandidate, TrainingRun

# Restoring flushes the database, which PostgreSQL refuses inside the test's wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = {
    "versions/run-1/adapter/adapter_model.safetensors": b"\x00lora weights\xff" * 50,
    "versions/run-1/merged/model.safetensors": b"merged weights" * 100,
    "indexes/v1/r1.npz": b"index bytes",
    "snapshots/abc.jsonl": '{"anchor": "TVA", "positive": "Taxe sur la valeur ajoutée"}\n'.encode(),
}


@pytest.fixture
def installation(expert, maintainer):
    """A small installation touching every app: people, glossary with history, questions, versions, runs, reports."""
    storage = storages["artifacts"]
    for name, data in ARTIFACTS.items():
        storage.save(name, ContentFile(data))
    Token.objects.create(user=expert)
    domain = DomainFactory(name="Fiscalité")
    tva = EntryFactory(term="TVA", definition="Taxe sur la valeur ajoutée", domain=domain)
    caf = EntryFactory(term="CAF", definition="Caisse d'allocations familiales", domain=domain)
    glossary_services.entry_update(entry=tva, data={"definition": "Impôt indirect sur la consommation"}, user=expert)
    ImportBatch.objects.create(file_name="g.csv", file_format="csv", status=ImportBatch.Status.IMPORTED, created_by=expert, report={"created": 2})
    base = champion_version_get()
    version = retrieval_services.model_version_create(
        base_model=base.base_model, label="run 1", parent=base, adapter_path="versions/run-1/adapter", merged_path="versions/run-1/merged",
        artifact_checksums={name: hashlib.sha256(data).hexdigest() for name, data in ARTIFACTS.items() if name.startswith("versions/")},
        metrics={"def_only": {"mrr@10": 0.81}},
    )
    IndexState.objects.create(version=version, revision=1, artifact_path="indexes/v1/r1.npz", status=IndexState.Status.READY, passage_count=4)
    PromotionEvent.objects.create(version=base, action=PromotionEvent.Action.PROMOTE, user=maintainer, reason="départ")
    log = QuestionLog.objects.create(user=expert, question="C'est quoi la TVA ?", version=base, hits=[{"entry_id": caf.pk, "rank": 1}], answer_text="…")
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=tva, comment="mauvaise entrée", wrongly_ranked_entry_ids=[caf.pk])
    snapshot = DataSnapshot.objects.create(content_hash="abc", total=1, artifact_path="snapshots/abc.jsonl")
    run = TrainingRun.objects.create(
        status=TrainingRun.Status.SUCCEEDED, lock=None, requested_by=maintainer, snapshot=snapshot, model_version=version,
        started_at=timezone.now(), finished_at=timezone.now(), log="[..] fini\n",
    )
    NegativeCandidate.objects.create(anchor="TVA", anchor_entry=tva, negative_entry=caf, negative_text="Caisse", score=0.8, positive_score=0.7, reason="proche", run=run)
    EvaluationRun.objects.create(version=version, status=EvaluationRun.Status.SUCCEEDED, report={"dense": {"n": 3}}, test_set_hash="h" * 64, training_run_id=run.pk)


def database_picture() -> dict[str, list[dict]]:
    """Every row of every backed-up model, as plain values."""
    picture = {}
    for label in BACKUP_APPS:
        for model in apps.get_app_config(label).get_models():
            # django-celery-beat's "schedules changed" marker is rewritten by its own signals when schedules load.
            if model._meta.label_lower not in (*EXCLUDED_MODELS, "django_celery_beat.periodictasks") and not model._meta.proxy:
                picture[model._meta.label_lower] = list(model._default_manager.order_by("pk").values())
    return picture


def artifact_picture() -> dict[str, bytes]:
    storage = storages["artifacts"]

    def walk(prefix: str) -> dict[str, bytes]:
        folders, files = storage.listdir(prefix or ".")
        found = {f"{prefix}{name}": storage.open(f"{prefix}{name}").read() for name in files}
        for folder in folders:
            found |= walk(f"{prefix}{folder}/")
        return found

    return walk("")


def empty_everything() -> None:
    """A new installation: migrated tables without rows, an empty artifact store."""
    call_command("flush", interactive=False, verbosity=0)
    storage = storages["artifacts"]
    for name in artifact_picture():
        storage.delete(name)


def test_backup_then_restore_into_an_empty_database_gives_everything_back(installation, tmp_path, expert):
    before, files_before = database_picture(), artifact_picture()
    assert set(ARTIFACTS) <= set(files_before)
    archive = tmp_path / "lexique.tar.gz"

    summary = backup_write(path=archive)
    assert summary.rows["glossary.entry"] == 2 and summary.rows["glossary.historicalentry"] == 3
    assert set(ARTIFACTS) <= set(summary.artifacts)

    empty_everything()
    assert database_picture()["glossary.entry"] == [] and artifact_picture() == {}
    restore_read(path=archive)

    after = database_picture()
    changed = {
        model: [
            {key: (row[key], restored[key]) for key in row if row[key] != restored.get(key)}
            for row, restored in zip(rows, after[model])
        ] if len(rows) == len(after[model]) else f"{len(rows)} rows, now {len(after[model])}"
        for model, rows in before.items()
        if rows != after[model]
    }
    assert not changed, changed
    assert artifact_picture() == files_before
    restored_expert = type(expert).objects.get(username="expert")
    assert has_role(restored_expert, "expert") and Token.objects.get(user=restored_expert)
    assert champion_version_get().number == 0
    assert ModelVersion.objects.get(label="run 1").metrics == {"def_only": {"mrr@10": 0.81}}
    # The restored artifacts are the ones the version's checksums describe.
    from retrieval import serving

    serving.verify_artifacts(ModelVersion.objects.get(label="run 1"))


def test_restore_refuses_an_occupied_database_unless_forced(installation, tmp_path):
    archive = tmp_path / "lexique.tar.gz"
    backup_write(path=archive)
    EntryFactory(term="NOUVEAU", definition="Ajouté après la sauvegarde")
    with pytest.raises(BackupRefused, match="n'est pas vide"):
        restore_read(path=archive)
    assert glossary_services.Entry.objects.filter(term="NOUVEAU").exists()
    restore_read(path=archive, force=True)
    assert not glossary_services.Entry.objects.filter(term="NOUVEAU").exists()
    assert glossary_services.Entry.objects.count() == 2


def test_a_damaged_archive_is_refused_before_anything_is_written(installation, tmp_path):
    archive = tmp_path / "lexique.tar.gz"
    backup_write(path=archive)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as source, tarfile.open(damaged, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name.endswith("model.safetensors"):
                data = data[:-1] + b"!"
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    empty_everything()
    with pytest.raises(BackupRefused, match="endommagé"):
        restore_read(path=damaged)
    assert database_picture()["glossary.entry"] == [] and artifact_picture() == {}
    (tmp_path / "not-a-backup.tar.gz").write_bytes(b"hello")
    with pytest.raises(BackupRefused, match="illisible"):
        restore_read(path=tmp_path / "not-a-backup.tar.gz")


def test_commands(installation, tmp_path, capsys):
    archive = tmp_path / "cmd.tar.gz"
    call_command("backup", str(archive))
    assert "Sauvegarde écrite" in capsys.readouterr().out
    with pytest.raises(CommandError, match="n'est pas vide"):
        call_command("restore", str(archive))
    call_command("restore", str(archive), "--force")
    assert "restaurée" in capsys.readouterr().out
