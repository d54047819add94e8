"""`manage.py check --deploy` in a production-like environment: clean with real settings, loud without them."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables of the calling environment (CI sets some) that must not leak into the cases below.
_ISOLATED = ("DATABASE_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DJANGO_ALLOW_ASYNC_UNSAFE")


def deploy_check(**env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in _ISOLATED}
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": "filesystem://", "LOG_LEVEL": "WARNING"}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=300,
    )


def test_production_settings_pass_the_deploy_check():
    done = deploy_check(DEBUG="false", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="lexique.example.org")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_forgetting_the_secret_key_or_debug_is_reported():
    done = deploy_check(DEBUG="true", ALLOWED_HOSTS="lexique.example.org")
    assert done.returncode != 0
    report = done.stdout + done.stderr
    assert "security.W009" in report, "the development SECRET_KEY must be flagged"
    assert "security.W018" in report, "DEBUG left on must be flagged"
