#!/usr/bin/env bash
# Start web + Celery worker + Celery beat in one terminal; Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
# A local demo: DEBUG on (and so the development SECRET_KEY) unless the environment says otherwise.
export DEBUG="${DEBUG:-true}"
mkdir -p var/log
pids=()
cleanup() { trap - INT TERM EXIT; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup INT TERM EXIT
"$PY" -m celery -A config worker -Q default,training \
  --concurrency "${WORKER_CONCURRENCY:-2}" --loglevel INFO >var/log/worker.log 2>&1 &
pids+=($!)
"$PY" -m celery -A config beat --loglevel INFO --schedule var/celerybeat-schedule >var/log/beat.log 2>&1 &
pids+=($!)
echo "Worker log: var/log/worker.log   Beat log: var/log/beat.log"
echo "Lexique is starting on http://$HOST:$PORT/ ..."
# The web process encodes one query per request: one torch / ONNX Runtime thread each (config/wsgi.py, README).
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} ONNX_INTRA_OP_THREADS=${ONNX_INTRA_OP_THREADS:-1} \
  "$PY" manage.py runserver "$HOST:$PORT" --noreload &
pids+=($!)
# "Ready" only once the site answers an HTTP request (loading the app takes a while after the process starts).
web_pid=$!
for _ in $(seq "${READY_TIMEOUT_S:-300}"); do
  if "$PY" -c "import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen('http://$HOST:$PORT/accounts/login/', timeout=2)
except urllib.error.HTTPError:
    pass  # any HTTP answer means the site is up
except Exception:
    sys.exit(1)" 2>/dev/null; then
    echo "Lexique is ready: http://$HOST:$PORT/"
    break
  fi
  kill -0 "$web_pid" 2>/dev/null || break
  sleep 1
done
wait -n "${pids[@]}"
