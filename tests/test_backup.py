"""Backup and restore: everything saved comes back identical in an empty database; occupied databases are refused."""
from __future__ import annotations

import hashlib
import io
import json
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
from retrieval import versions as retrieval_versions
from retrieval.models import Flag, IndexState, ModelVersion, PromotionEvent, QuestionLog
from retrieval.selectors import champion_version_get
from tests.factories import DomainFactory, EntryFactory, import_batch
from jobs.models import Job
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
    import_batch(file_name="g.csv", file_format="csv", status=ImportBatch.Status.IMPORTED, created_by=expert, report={"created": 2})
    base = champion_version_get()
    version = retrieval_versions.model_version_create(
        base_model=base.base_model, label="run 1", parent=base, adapter_path="versions/run-1/adapter", merged_path="versions/run-1/merged",
        artifact_checksums={name: hashlib.sha256(data).hexdigest() for name, data in ARTIFACTS.items() if name.startswith("versions/")},
        metrics={"def_only": {"mrr@10": 0.81}},
    )
    IndexState.objects.create(version=version, revision=1, artifact_path="indexes/v1/r1.npz", passage_count=4)
    PromotionEvent.objects.create(version=base, action=PromotionEvent.Action.PROMOTE, user=maintainer, reason="départ")
    log = QuestionLog.objects.create(user=expert, question="C'est quoi la TVA ?", version=base, hits=[{"entry_id": caf.pk, "rank": 1}], answer_text="…")
    Flag.objects.create(question_log=log, created_by=expert, reason=Flag.Reason.WRONG_ENTRY, correct_entry=tva, comment="mauvaise entrée", wrongly_ranked_entry_ids=[caf.pk])
    snapshot = DataSnapshot.objects.create(content_hash="abc", total=1, artifact_path="snapshots/abc.jsonl")
    run = TrainingRun.objects.create(
        job=Job.objects.create(kind="training", status="succeeded", requested_by=maintainer, started_at=timezone.now(), finished_at=timezone.now(), log="[..] fini\n"),
        snapshot=snapshot, model_version=version,
    )
    NegativeCandidate.objects.create(anchor="TVA", anchor_entry=tva, negative_entry=caf, negative_text="Caisse", score=0.8, positive_score=0.7, reason="proche", run=run)
    EvaluationRun.objects.create(version=version, job=Job.objects.create(kind="evaluation", status="succeeded"), report={"dense": {"n": 3}}, test_set_hash="h" * 64, training_run_id=run.pk)


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
    # A new installation: only the "base" version that migrate (and flush) records.
    assert list(ModelVersion.objects.values_list("number", flat=True)) == [0]
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
    from retrieval import artifacts

    artifacts.verify_artifacts(ModelVersion.objects.get(label="run 1"))


def test_restore_refuses_an_occupied_database_unless_forced(installation, tmp_path):
    archive = tmp_path / "lexique.tar.gz"
    backup_write(path=archive)
    EntryFactory(term="NOUVEAU", definition="Ajouté après la sauvegarde")
    with pytest.raises(BackupRefused, match="is not empty"):
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
    with pytest.raises(BackupRefused, match="Damaged file"):
        restore_read(path=damaged)
    assert database_picture()["glossary.entry"] == [] and artifact_picture() == {}
    (tmp_path / "not-a-backup.tar.gz").write_bytes(b"hello")
    with pytest.raises(BackupRefused, match="Unreadable"):
        restore_read(path=tmp_path / "not-a-backup.tar.gz")


def test_commands(installation, tmp_path, capsys):
    archive = tmp_path / "cmd.tar.gz"
    call_command("backup", str(archive))
    assert "Backup written" in capsys.readouterr().out
    with pytest.raises(CommandError, match="is not empty"):
        call_command("restore", str(archive))
    call_command("restore", str(archive), "--force")
    assert "restored" in capsys.readouterr().out


# --- A restore checks the whole archive first and replaces the database in one transaction (issue #16, item 1) ---


def rewrite_archive(source_path, target_path, *, edit_data=None, edit_artifact=None, fix_data_checksum=False) -> None:
    """Copy an archive, changing its data part or an artifact; ``fix_data_checksum`` also rewrites the manifest's
    checksum, as a hand-edited archive or a format 1 archive (no data checksum) would look."""
    with tarfile.open(source_path, "r:gz") as source:
        members = {member.name: (member, source.extractfile(member).read()) for member in source.getmembers()}
    data_name = "data.lexiquejson"
    if edit_data:
        member, data = members[data_name]
        members[data_name] = (member, edit_data(data))
    if edit_artifact:
        for name, (member, data) in list(members.items()):
            if name.startswith("artifacts/") and name.endswith("model.safetensors"):
                members[name] = (member, edit_artifact(data))
    if fix_data_checksum:
        member, manifest = members["manifest.json"]
        manifest = json.loads(manifest)
        manifest["data_sha256"] = hashlib.sha256(members[data_name][1]).hexdigest()
        members["manifest.json"] = (member, json.dumps(manifest).encode())
    with tarfile.open(target_path, "w:gz") as target:
        for member, data in members.values():
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))


def _edit_objects(change):
    def edit(data: bytes) -> bytes:
        objects = json.loads(data)
        change(objects)
        return json.dumps(objects).encode()

    return edit


def _make_expert_superuser(objects):
    for item in objects:
        if item["model"] == "auth.user" and item["fields"]["username"] == "expert":
            item["fields"]["is_superuser"] = True


def _history_by_a_ghost(objects):
    """Still valid JSON with the right counts, but one row points to a user that does not exist: loaddata fails late."""
    for item in objects:
        if item["model"] == "glossary.historicalentry" and item["fields"].get("history_user"):
            item["fields"]["history_user"] = ["ghost-user-not-in-the-archive"]
            return
    raise AssertionError("no history row with a user in the archive")


DAMAGES = {
    "damaged artifact": (dict(edit_artifact=lambda data: data[:-1] + b"!"), "Damaged file"),
    "truncated data file": (dict(edit_data=lambda data: data[: len(data) // 2]), "checksum"),
    "truncated data file, checksum rewritten": (dict(edit_data=lambda data: data[: len(data) // 2], fix_data_checksum=True), "truncated"),
    "edited data file (a user made superuser)": (dict(edit_data=_edit_objects(_make_expert_superuser)), "checksum"),
    "rows removed, checksum rewritten": (
        dict(edit_data=_edit_objects(lambda objects: objects.__delitem__(slice(len(objects) - 1, None))), fix_data_checksum=True),
        "Incomplete data",
    ),
    "fails while loading, checksum rewritten": (dict(edit_data=_edit_objects(_history_by_a_ghost), fix_data_checksum=True), "cancelled"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_restore_force_with_a_bad_archive_fails_and_keeps_the_existing_database(installation, tmp_path, damage):
    archive, bad = tmp_path / "lexique.tar.gz", tmp_path / "bad.tar.gz"
    backup_write(path=archive)
    EntryFactory(term="NOUVEAU", definition="Ajouté après la sauvegarde")
    changes, message = DAMAGES[damage]
    rewrite_archive(archive, bad, **changes)
    before, files_before = database_picture(), artifact_picture()
    assert before["glossary.entry"] and before["auth.user"] and before["retrieval.modelversion"]

    with pytest.raises(CommandError, match=message):
        call_command("restore", str(bad), "--force")

    assert database_picture() == before
    assert artifact_picture() == files_before
    assert not type(Token.objects.first().user).objects.filter(is_superuser=True).exists()


def test_a_truncated_archive_file_is_refused_and_the_database_kept(installation, tmp_path):
    archive = tmp_path / "lexique.tar.gz"
    backup_write(path=archive)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    before = database_picture()
    with pytest.raises(BackupRefused, match="Unreadable"):
        restore_read(path=cut, force=True)
    assert database_picture() == before


def test_an_archive_of_format_1_without_data_checksum_still_restores(installation, tmp_path):
    archive, old = tmp_path / "lexique.tar.gz", tmp_path / "old.tar.gz"
    backup_write(path=archive)
    with tarfile.open(archive, "r:gz") as source, tarfile.open(old, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest["format"] = 1
                del manifest["data_sha256"]
                data = json.dumps(manifest).encode()
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    before = database_picture()
    empty_everything()
    restore_read(path=old)
    assert database_picture()["glossary.entry"] == before["glossary.entry"]


# --- Backups on a fresh install, and never a partial archive (issue #16, item 9) ---


def test_backup_works_on_a_fresh_install_without_an_artifact_folder(db, tmp_path, settings):
    from django.core.files.storage import storages as storage_handler

    missing = tmp_path / "never-created"
    settings.STORAGES = {**settings.STORAGES, "artifacts": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(missing)}}}
    storage_handler._storages = {}
    EntryFactory(term="TVA", definition="Taxe sur la valeur ajoutée")
    archive = tmp_path / "fresh.tar.gz"

    summary = backup_write(path=archive)

    assert summary.artifacts == {} and summary.rows["glossary.entry"] == 1 and len(summary.data_sha256) == 64
    call_command("flush", interactive=False, verbosity=0)
    restore_read(path=archive)
    assert glossary_services.Entry.objects.get().term == "TVA"


def test_a_failed_backup_leaves_no_partial_archive_and_keeps_the_previous_one(installation, tmp_path, monkeypatch):
    archive = tmp_path / "lexique.tar.gz"
    backup_write(path=archive)
    previous = archive.read_bytes()
    storage = storages["artifacts"]
    real_open = type(storage).open

    def failing_open(self, name, mode="rb"):
        if name.endswith("model.safetensors"):
            raise OSError("disque illisible")
        return real_open(self, name, mode)

    monkeypatch.setattr(type(storage), "open", failing_open)
    with pytest.raises(OSError, match="disque illisible"):
        call_command("backup", str(archive))
    assert archive.read_bytes() == previous
    assert sorted(path.name for path in tmp_path.iterdir() if "lexique" in path.name) == ["lexique.tar.gz"]

    fresh = tmp_path / "other.tar.gz"
    with pytest.raises(OSError):
        backup_write(path=fresh)
    assert not fresh.exists() and not list(tmp_path.glob(".other*"))


def test_the_manifest_holds_the_checksum_of_the_data_part(installation, tmp_path):
    archive = tmp_path / "lexique.tar.gz"
    summary = backup_write(path=archive)
    with tarfile.open(archive, "r:gz") as source:
        manifest = json.load(source.extractfile("manifest.json"))
        data = source.extractfile("data.lexiquejson").read()
    assert manifest["format"] == 2
    assert manifest["data_sha256"] == hashlib.sha256(data).hexdigest() == summary.data_sha256
