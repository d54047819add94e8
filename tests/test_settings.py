"""Settings come from environment variables: each case loads them in a fresh interpreter."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Settings and storages load without django.setup(): no app (and no ML library) is imported.
_PRINT_SETTINGS = """
import json
from django.conf import settings
from django.core.files.storage import storages
artifacts = storages["artifacts"]
print(json.dumps({
    "database": {key: settings.DATABASES["default"].get(key) for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")},
    "artifacts_backend": settings.STORAGES["artifacts"]["BACKEND"],
    "artifacts_options": settings.STORAGES["artifacts"]["OPTIONS"],
    "artifacts_class": type(artifacts).__name__,
    "bucket": getattr(artifacts, "bucket_name", None),
    "location": str(artifacts.location),
}))
"""

# Variables that would leak the calling environment (CI sets some) into the cases below.
_ISOLATED = ("DATABASE_URL", "ARTIFACTS", "LEXIQUE_VAR_DIR", "AWS_S3_ENDPOINT_URL")


def load_settings(**env: str) -> dict:
    base = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": "filesystem://"}, **env)
    done = subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_database_url_is_parsed():
    loaded = load_settings(DATABASE_URL="postgres://lexique:secret@db.example:5433/glossaire")
    assert loaded["database"] == {
        "ENGINE": "django.db.backends.postgresql", "NAME": "glossaire", "USER": "lexique",
        "PASSWORD": "secret", "HOST": "db.example", "PORT": 5433,
    }


def test_s3_artifacts_select_the_s3_backend_with_bucket_and_prefix():
    loaded = load_settings(ARTIFACTS="s3://lexique-models/prod/artifacts", AWS_S3_ENDPOINT_URL="http://minio.example:9000")
    assert loaded["artifacts_backend"] == "storages.backends.s3.S3Storage"
    assert loaded["artifacts_options"] == {
        "bucket_name": "lexique-models", "location": "prod/artifacts", "endpoint_url": "http://minio.example:9000",
    }
    assert loaded["artifacts_class"] == "S3Storage"
    assert loaded["bucket"] == "lexique-models"
    assert loaded["location"] == "prod/artifacts"


def test_defaults_are_sqlite_and_artifact_files_under_var():
    loaded = load_settings()
    assert loaded["database"]["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(loaded["database"]["NAME"]) == ROOT / "var" / "lexique.sqlite3"
    assert loaded["artifacts_backend"] == "django.core.files.storage.FileSystemStorage"
    assert loaded["artifacts_class"] == "FileSystemStorage"
    assert Path(loaded["location"]) == ROOT / "var" / "artifacts"


def test_local_artifacts_folder_can_be_chosen(tmp_path):
    loaded = load_settings(ARTIFACTS=str(tmp_path / "store"))
    assert Path(loaded["location"]) == tmp_path / "store"

