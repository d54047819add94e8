"""Back up and restore a whole installation: the content of every app's tables and the artifact files.

One ``.tar.gz`` archive holds ``manifest.json`` (when, how many rows per model, every artifact file with its
sha256, and the sha256 of the data part), ``data.lexiquejson`` (Django's ``dumpdata`` in JSON of the apps below: users, roles and API tokens, the glossary with
its history and imports, questions, flags, model versions and promotions, training runs, screening and review
decisions, evaluation reports, schedules) and ``artifacts/`` (model adapters and merged weights, indexes, data
snapshots, stored imports). Restoring needs a migrated, empty database (or ``force``, which replaces its content).

Restoring checks the whole archive first (every checksum, the data part parsed in full), then replaces the
database content inside one transaction: an archive that fails part-way leaves the old database as it was.
A checksum detects a damaged or edited file; it is not a signature (whoever can rewrite the archive can rewrite
the manifest too): keep backups where only administrators can write.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import zlib
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

# 2: the manifest also holds the sha256 of the data part. Archives of format 1 are still restored (their data part
# is parsed and checked in full, but there is no checksum to compare it with).
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
# Apps whose tables are saved; contenttypes and permissions are rebuilt by `migrate` and referenced by natural keys.
BACKUP_APPS = ("auth", "authtoken", "django_celery_beat", "jobs", "glossary", "retrieval", "training", "evaluation")
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
    data_sha256: str = ""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _artifact_files(storage, prefix: str = "") -> list[str]:
    try:
        folders, files = storage.listdir(prefix or ".")
    except FileNotFoundError:
        # A fresh installation has no artifact folder yet: nothing to save.
        return []
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




def _sha256_of(handle) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: handle.read(1024 * 1024), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def backup_write(*, path: str | Path) -> BackupSummary:
    """Write the database content and the artifact files to one archive at ``path``.

    The archive is written to a temporary file beside ``path`` and renamed at the end: a failure part-way (disk
    full, a file that vanished) leaves no partial archive that could later be mistaken for a backup.
    """
    path = Path(path)
    storage = storages["artifacts"]
    partial = path.with_name(f".{path.name}.partial")
    try:
        with tempfile.TemporaryDirectory() as workdir:
            data_path = Path(workdir) / DATA_NAME
            # One transaction: the dump is a consistent picture even while people keep working.
            with transaction.atomic():
                call_command(
                    "dumpdata", *BACKUP_APPS, exclude=list(EXCLUDED_MODELS), natural_foreign=True, format=DATA_FORMAT,
                    output=str(data_path), verbosity=0,
                )
                summary = BackupSummary(path=str(path), created_at=timezone.now().isoformat(), rows=_row_counts())
            with data_path.open("rb") as handle:
                summary.data_sha256, _ = _sha256_of(handle)
            with tarfile.open(partial, "w:gz") as archive:
                archive.add(data_path, arcname=DATA_NAME)
                for name in _artifact_files(storage):
                    with storage.open(name, "rb") as handle:
                        summary.artifacts[name], size = _sha256_of(handle)
                        handle.seek(0)
                        info = tarfile.TarInfo(ARTIFACTS_PREFIX + name)
                        info.size = size
                        archive.addfile(info, handle)
                manifest = json.dumps({"format": FORMAT_VERSION, **asdict(summary)}, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST_NAME)
                info.size = len(manifest)
                archive.addfile(info, io.BytesIO(manifest))
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return summary


def database_is_empty(*, counting_base_version: bool = True) -> bool:
    """No row in OCCUPIED_WHEN_ANY. Without ``counting_base_version``, version "base" (number 0) does not count:
    ``migrate`` records it in every new database (retrieval.apps), so a migrated database is still new with it."""
    for label in OCCUPIED_WHEN_ANY:
        rows = apps.get_model(label)._default_manager.all()
        if label == "retrieval.modelversion" and not counting_base_version:
            rows = rows.exclude(number=0)
        if rows.exists():
            return False
    return True


def restore_read(*, path: str | Path, force: bool = False) -> BackupSummary:
    """Restore an archive written by ``backup_write`` into this (migrated) database and artifact store.

    Nothing is written before the whole archive has been checked; the database content is then replaced in one
    transaction, so that a failure while loading leaves the old content in place.
    """
    from retrieval.versions import champion_ensure

    try:
        archive = tarfile.open(path, "r:gz")
    except (OSError, tarfile.TarError) as error:
        raise BackupRefused(f"Unreadable archive: {error}") from error
    try:
        with archive, tempfile.TemporaryDirectory() as workdir:
            manifest = _manifest(archive)
            if not database_is_empty(counting_base_version=False) and not force:
                raise BackupRefused("The database is not empty: restore into a new database, or force it (its content will be replaced).")
            _check_artifacts(archive, manifest["artifacts"])
            data_path = Path(workdir) / DATA_NAME
            _extract_data(archive, manifest, data_path)
            try:
                with transaction.atomic():
                    if not database_is_empty():
                        call_command("flush", interactive=False, verbosity=0)
                    # `migrate` and `flush` record version "base" (retrieval.apps): the archive brings its own versions.
                    apps.get_model("retrieval.modelversion")._default_manager.all().delete()
                    call_command("loaddata", str(data_path), verbosity=0)
                    champion_ensure()  # an archive of an installation that never searched has no champion yet
                    # Inside the transaction: an artifact store that refuses a file also undoes the database part.
                    _restore_artifacts(archive, manifest["artifacts"])
            except BackupRefused:
                raise
            except Exception as error:
                raise BackupRefused(f"Restore cancelled, the database was not changed: {error}") from error
    except (OSError, EOFError, tarfile.TarError, zlib.error) as error:
        # A truncated or corrupted .tar.gz shows up while its members are read.
        raise BackupRefused(f"Unreadable or truncated archive: {error}") from error
    from retrieval import serving

    serving.clear()  # whatever this process loaded before belongs to the old database
    return BackupSummary(
        path=str(path), created_at=manifest["created_at"], rows=manifest["rows"], artifacts=manifest["artifacts"],
        data_sha256=manifest.get("data_sha256", ""),
    )


def _manifest(archive: tarfile.TarFile) -> dict:
    try:
        manifest = json.load(archive.extractfile(archive.getmember(MANIFEST_NAME)))
        archive.getmember(DATA_NAME)
    except (KeyError, ValueError) as error:
        raise BackupRefused(f"This file is not a Lexique backup: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        raise BackupRefused(f"Unknown backup format: {manifest.get('format') if isinstance(manifest, dict) else manifest!r}.")
    if not isinstance(manifest.get("artifacts"), dict) or not isinstance(manifest.get("rows"), dict):
        raise BackupRefused("Incomplete backup manifest: the list of files or rows is missing.")
    if manifest["format"] >= 2 and not manifest.get("data_sha256"):
        raise BackupRefused("Incomplete backup manifest: the data checksum is missing.")
    return manifest


def _check_artifacts(archive: tarfile.TarFile, expected: dict[str, str]) -> None:
    """Every artifact file is in the archive, intact, before anything is written."""
    for name, checksum in expected.items():
        try:
            data = archive.extractfile(archive.getmember(ARTIFACTS_PREFIX + name))
        except KeyError:
            raise BackupRefused(f"File missing from the archive: {name}.") from None
        if _sha256_of(data)[0] != checksum:
            raise BackupRefused(f"Damaged file in the archive: {name}.")


def _extract_data(archive: tarfile.TarFile, manifest: dict, data_path: Path) -> None:
    """Extract the data part, compare it with its checksum and parse it in full before anything is written."""
    with archive.extractfile(archive.getmember(DATA_NAME)) as source, data_path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
    expected = manifest.get("data_sha256")
    if expected:
        with data_path.open("rb") as handle:
            if _sha256_of(handle)[0] != expected:
                raise BackupRefused(f"Damaged or altered data in the archive ({DATA_NAME} does not match its checksum).")
    try:
        with data_path.open("rb") as handle:
            objects = json.load(handle)
    except (ValueError, RecursionError) as error:
        raise BackupRefused(f"Unreadable data in the archive ({DATA_NAME}, truncated or damaged): {error}") from error
    if not isinstance(objects, list):
        raise BackupRefused(f"Unreadable data in the archive: {DATA_NAME} is not a list of objects.")
    found: dict[str, int] = {}
    for position, item in enumerate(objects, start=1):
        label = item.get("model") if isinstance(item, dict) else None
        if not isinstance(label, str) or not isinstance(item.get("fields"), dict):
            raise BackupRefused(f"Unreadable data in the archive: object no. {position} is malformed.")
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            raise BackupRefused(f"Unreadable data in the archive: unknown model {label!r} (object no. {position}).") from None
        found[label] = found.get(label, 0) + 1
    # The manifest counted the rows in the same transaction as the dump: a data part that lost or gained rows is refused.
    differing = {
        label: (count, found.get(label, 0)) for label, count in manifest["rows"].items()
        if found.get(label, 0) != count
    }
    if differing:
        details = ", ".join(f"{label}: {expected} expected, {actual} found" for label, (expected, actual) in sorted(differing.items()))
        raise BackupRefused(f"Incomplete data in the archive ({details}).")


def _restore_artifacts(archive: tarfile.TarFile, expected: dict[str, str]) -> None:
    storage = storages["artifacts"]
    for name in expected:
        data = archive.extractfile(archive.getmember(ARTIFACTS_PREFIX + name))
        if storage.exists(name):
            storage.delete(name)
        saved = storage.save(name, File(data, name=name))
        if saved != name:
            raise BackupRefused(f"The file {name} could not be restored in its place ({saved}).")
