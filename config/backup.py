"""Back up and restore a whole installation: the content of every app's tables and the artifact files.

One ``.tar.gz`` archive holds ``manifest.json`` (when, how many rows per model, every artifact file with its
sha256), ``data.lexiquejson`` (Django's ``dumpdata`` in JSON of the apps below: users, roles and API tokens, the glossary with
its history and imports, questions, flags, model versions and promotions, training runs, screening and review
decisions, evaluation reports, schedules) and ``artifacts/`` (model adapters and merged weights, indexes, data
snapshots, stored imports). Restoring needs a migrated, empty database (or ``force``, which empties it first).
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.apps import apps
from django.core.files.base import File
from django.core.files.storage import storages
from django.core.management import call_command
from django.core.serializers import json as json_serialization
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

FORMAT_VERSION = 1
# Apps whose tables are saved; contenttypes and permissions are rebuilt by `migrate` and referenced by natural keys.
BACKUP_APPS = ("auth", "authtoken", "django_celery_beat", "glossary", "retrieval", "training", "evaluation")
EXCLUDED_MODELS = ("auth.permission",)
# A database holding any of these already serves someone: restoring over it needs ``force``.
OCCUPIED_WHEN_ANY = ("auth.user", "glossary.entry", "glossary.domain", "retrieval.modelversion", "training.trainingrun")
# Django's JSON with whole timestamps (see Serializer below), registered in settings.SERIALIZATION_MODULES.
DATA_FORMAT = "lexiquejson"
DATA_NAME = f"data.{DATA_FORMAT}"
MANIFEST_NAME = "manifest.json"
ARTIFACTS_PREFIX = "artifacts/"


class _WholeTimestampsEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder cuts times to the millisecond; a backup must give back exactly what it saved."""

    def default(self, o):
        if isinstance(o, (datetime.datetime, datetime.time)):
            return o.isoformat()
        return super().default(o)


class Serializer(json_serialization.Serializer):
    """The ``lexiquejson`` format of ``dumpdata``: Django's JSON with whole timestamps."""

    def _init_options(self):
        super()._init_options()
        self.json_kwargs["cls"] = _WholeTimestampsEncoder


Deserializer = json_serialization.Deserializer


class BackupRefused(Exception):
    """The archive cannot be restored here (not empty, not a Lexique backup, damaged); the message says why."""


@dataclass
class BackupSummary:
    path: str
    created_at: str
    rows: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _artifact_files(storage, prefix: str = "") -> list[str]:
    folders, files = storage.listdir(prefix or ".")
    found = [f"{prefix}{name}" for name in files]
    for folder in folders:
        found += _artifact_files(storage, f"{prefix}{folder}/")
    return sorted(found)


def _row_counts() -> dict[str, int]:
    counts = {}
    for label in BACKUP_APPS:
        for model in apps.get_app_config(label).get_models():
            key = model._meta.label_lower
            if key not in EXCLUDED_MODELS and not model._meta.proxy:
                counts[key] = model._default_manager.count()
    return counts


def backup_write(*, path: str | Path) -> BackupSummary:
    """Write the database content and the artifact files to one archive at ``path``."""
    path = Path(path)
    storage = storages["artifacts"]
    with tempfile.TemporaryDirectory() as workdir:
        data_path = Path(workdir) / DATA_NAME
        # One transaction: the dump is a consistent picture even while people keep working.
        with transaction.atomic():
            call_command(
                "dumpdata", *BACKUP_APPS, exclude=list(EXCLUDED_MODELS), natural_foreign=True, format=DATA_FORMAT,
                output=str(data_path), verbosity=0,
            )
            summary = BackupSummary(path=str(path), created_at=timezone.now().isoformat(), rows=_row_counts())
        with tarfile.open(path, "w:gz") as archive:
            archive.add(data_path, arcname=DATA_NAME)
            for name in _artifact_files(storage):
                digest = hashlib.sha256()
                with storage.open(name, "rb") as handle:
                    size = 0
                    for chunk in iter(lambda: handle.read(1024 * 1024), b""):
                        digest.update(chunk)
                        size += len(chunk)
                    handle.seek(0)
                    info = tarfile.TarInfo(ARTIFACTS_PREFIX + name)
                    info.size = size
                    archive.addfile(info, handle)
                summary.artifacts[name] = digest.hexdigest()
            manifest = json.dumps({"format": FORMAT_VERSION, **asdict(summary)}, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(manifest)
            archive.addfile(info, io.BytesIO(manifest))
    return summary


def database_is_empty() -> bool:
    return not any(apps.get_model(label)._default_manager.exists() for label in OCCUPIED_WHEN_ANY)


def restore_read(*, path: str | Path, force: bool = False) -> BackupSummary:
    """Restore an archive written by ``backup_write`` into this (migrated) database and artifact store."""
    try:
        archive = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as error:
        raise BackupRefused(f"Archive illisible : {error}") from error
    with archive, tempfile.TemporaryDirectory() as workdir:
        manifest = _manifest(archive)
        if not database_is_empty():
            if not force:
                raise BackupRefused("La base de données n'est pas vide : restaurez dans une base neuve, ou forcez (elle sera vidée d'abord).")
            call_command("flush", interactive=False, verbosity=0)
        _check_artifacts(archive, manifest["artifacts"])
        data_path = Path(workdir) / DATA_NAME
        data_path.write_bytes(archive.extractfile(archive.getmember(DATA_NAME)).read())
        with transaction.atomic():
            call_command("loaddata", str(data_path), verbosity=0)
        _restore_artifacts(archive, manifest["artifacts"])
    from retrieval import serving

    serving.clear()  # whatever this process loaded before belongs to the old database
    return BackupSummary(path=str(path), created_at=manifest["created_at"], rows=manifest["rows"], artifacts=manifest["artifacts"])


def _manifest(archive: tarfile.TarFile) -> dict:
    try:
        manifest = json.load(archive.extractfile(archive.getmember(MANIFEST_NAME)))
        archive.getmember(DATA_NAME)
    except (KeyError, ValueError) as error:
        raise BackupRefused(f"Ce fichier n'est pas une sauvegarde Lexique : {error}") from error
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupRefused(f"Format de sauvegarde inconnu : {manifest.get('format')!r}.")
    return manifest


def _check_artifacts(archive: tarfile.TarFile, expected: dict[str, str]) -> None:
    """Every artifact file is in the archive, intact, before anything is written."""
    for name, checksum in expected.items():
        try:
            data = archive.extractfile(archive.getmember(ARTIFACTS_PREFIX + name))
        except KeyError:
            raise BackupRefused(f"Fichier absent de l'archive : {name}.") from None
        digest = hashlib.sha256()
        for chunk in iter(lambda: data.read(1024 * 1024), b""):
            digest.update(chunk)
        if digest.hexdigest() != checksum:
            raise BackupRefused(f"Fichier endommagé dans l'archive : {name}.")


def _restore_artifacts(archive: tarfile.TarFile, expected: dict[str, str]) -> None:
    storage = storages["artifacts"]
    for name in expected:
        data = archive.extractfile(archive.getmember(ARTIFACTS_PREFIX + name))
        if storage.exists(name):
            storage.delete(name)
        saved = storage.save(name, File(data, name=name))
        if saved != name:
            raise BackupRefused(f"Le fichier {name} n'a pas pu être restauré à sa place ({saved}).")
