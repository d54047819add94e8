"""A model version's files in the artifact store: local copies for loading, and their checksums checked once
per process (a version is never served from damaged weights)."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from django.conf import settings
from django.core.files.storage import storages

from retrieval.models import ModelVersion

# Versions whose artifact files this process found intact (checked once: model files are large).
_verified_versions: set[int] = set()

logger = logging.getLogger(__name__)


class ArtifactCorrupted(Exception):
    """A file of a model version is missing from the artifact store or differs from its recorded checksum."""


def artifact_storage():
    return storages["artifacts"]


def local_artifact_dir(storage_path: str) -> str:
    """A local folder holding the artifact folder ``storage_path`` (models load from disk, not from S3)."""
    storage = artifact_storage()
    try:
        return storage.path(storage_path)
    except NotImplementedError:
        pass
    target = Path(settings.MODEL_CACHE_DIR) / storage_path
    marker = target / ".complete"
    if not marker.exists():
        _download_folder(storage, storage_path, target)
        marker.touch()
    return str(target)


def _download_folder(storage, prefix: str, target: Path) -> None:
    folders, files = storage.listdir(prefix)
    target.mkdir(parents=True, exist_ok=True)
    for name in files:
        with storage.open(f"{prefix}/{name}", "rb") as source, open(target / name, "wb") as out:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                out.write(chunk)
    for folder in folders:
        _download_folder(storage, f"{prefix}/{folder}", target / folder)


def _file_problem(storage, path: str, expected: str) -> str | None:
    """Why the stored file ``path`` is not the one recorded (sha256 ``expected``), or None when it is."""
    if not storage.exists(path):
        return f"{path}: missing"
    digest = hashlib.sha256()
    with storage.open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return None if digest.hexdigest() == expected else f"{path}: checksum differs"


def verify_artifacts(version: ModelVersion) -> None:
    """Check, once per process, every file in ``version.artifact_checksums`` (storage path -> sha256).

    Raises ArtifactCorrupted naming each missing or altered file: a version is never served from damaged weights.
    """
    if version.pk in _verified_versions or not version.artifact_checksums:
        return
    storage = artifact_storage()
    problems = [problem for path, expected in sorted(version.artifact_checksums.items()) if (problem := _file_problem(storage, path, expected))]
    if problems:
        logger.error("Artifacts of model version %s are damaged: %s", version, "; ".join(problems))
        raise ArtifactCorrupted(f"Files of version {version} are damaged: " + "; ".join(problems))
    _verified_versions.add(version.pk)


def verify_files(checksums: dict[str, str]) -> None:
    """Raise ArtifactCorrupted at the first of these files (storage path -> sha256) that is missing or altered."""
    storage = artifact_storage()
    for path, expected in sorted(checksums.items()):
        problem = _file_problem(storage, path, expected)
        if problem:
            raise ArtifactCorrupted(problem)


def forget_verified() -> None:
    """Check every version's files again at its next load (tests; after a restore)."""
    _verified_versions.clear()
