#!/usr/bin/env bash
# The test suite, as `make test` and CI run it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export RAGAS_DO_NOT_TRACK=true HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DJANGO_SETTINGS_MODULE=tests.settings "$PY" manage.py makemigrations --check --dry-run >/dev/null || { echo "Missing migrations: run makemigrations"; exit 1; }
exec "$PY" -m pytest -n "${TEST_WORKERS:-2}" --dist loadgroup -q "$@"
