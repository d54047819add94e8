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
    "debug": settings.DEBUG,
    "development_key": settings.SECRET_KEY.startswith("django-insecure-"),
    "queue_prefix": settings.QUEUE_PREFIX,
    "default_queue": settings.CELERY_TASK_DEFAULT_QUEUE,
    "routes": settings.CELERY_TASK_ROUTES,
}))
"""

# Variables that would leak the calling environment (CI sets some) into the cases below.
_ISOLATED = (
    "DATABASE_URL", "ARTIFACTS", "LEXIQUE_VAR_DIR", "AWS_S3_ENDPOINT_URL", "SECRET_KEY", "DEBUG", "LEXIQUE_QUEUE_PREFIX",
    "REDIS_URL",
)
A_SECRET_KEY = "a-production-key-" + "x" * 50


def run_settings(**env: str | None) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter; a variable given as None is left unset."""
    base = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": "filesystem://", "SECRET_KEY": A_SECRET_KEY})
    base.update(env)
    base = {key: value for key, value in base.items() if value is not None}
    return subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120,
    )


def load_settings(**env: str | None) -> dict:
    done = run_settings(**env)
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



# --- DEBUG and SECRET_KEY (issue #16, item 11) ---


def test_debug_is_off_unless_asked_for():
    assert load_settings(DEBUG=None)["debug"] is False
    assert load_settings(DEBUG="true")["debug"] is True


def test_without_a_secret_key_and_debug_off_the_settings_refuse_to_load():
    done = run_settings(SECRET_KEY=None, DEBUG=None)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and "SECRET_KEY is not set" in done.stderr
    assert run_settings(SECRET_KEY="", DEBUG="false").returncode != 0


def test_local_development_with_debug_on_uses_the_development_key():
    loaded = load_settings(SECRET_KEY=None, DEBUG="true")
    assert loaded["debug"] is True and loaded["development_key"] is True
    assert load_settings(DEBUG=None)["development_key"] is False


def test_the_demo_script_turns_debug_on_explicitly():
    script = (ROOT / "scripts" / "run.sh").read_text()
    assert 'export DEBUG="${DEBUG:-true}"' in script
    assert "run: export DEBUG ?= true" in (ROOT / "Makefile").read_text()


# --- Queue prefixes: installations sharing one Redis never take each other's tasks (issue #13, item 8) ---

REDIS = "redis://127.0.0.1:6399/3"  # configured, so never probed: the settings load without a server


def test_two_installations_on_one_redis_get_different_stable_prefixes(tmp_path):
    first = load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL="postgres://lexique@db.internal:5432/lexique_a")
    second = load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL="postgres://lexique@db.internal:5432/lexique_b")
    assert first["queue_prefix"] and second["queue_prefix"] and first["queue_prefix"] != second["queue_prefix"]
    assert first == load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL="postgres://lexique@db.internal:5432/lexique_a")
    for loaded in (first, second):
        assert loaded["default_queue"] == loaded["queue_prefix"] + "default"
        assert {route["queue"] for route in loaded["routes"].values()} == {loaded["queue_prefix"] + "training"}
    sqlite_a = load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}")
    sqlite_b = load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL=f"sqlite:///{tmp_path / 'b.sqlite3'}")
    assert sqlite_a["queue_prefix"] != sqlite_b["queue_prefix"]


def test_an_explicit_queue_prefix_wins_even_empty():
    database = "postgres://lexique@db.internal:5432/lexique_a"
    assert load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL=database, LEXIQUE_QUEUE_PREFIX="prod-")["default_queue"] == "prod-default"
    assert load_settings(CELERY_BROKER_URL=REDIS, DATABASE_URL=database, LEXIQUE_QUEUE_PREFIX="")["default_queue"] == "default"


def test_the_embedded_broker_needs_no_prefix():
    assert load_settings(CELERY_BROKER_URL="filesystem://")["queue_prefix"] == ""


def test_the_broker_and_the_prefix_are_logged_at_start_up():
    """The web process (config.wsgi) logs them once logging is configured; the worker does the same (config.celery)."""
    env = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", SECRET_KEY=A_SECRET_KEY, LOG_LEVEL="INFO", LEXIQUE_WARM_UP="0",
        CELERY_BROKER_URL="redis://:hunter2@127.0.0.1:6399/3",
    )
    done = subprocess.run([sys.executable, "-c", "import config.wsgi"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if "Celery broker:" in line)
    assert "queue prefix 'lexique-" in line and "hunter2" not in line and ":***@" in line
