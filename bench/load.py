"""A bounded load test on loopback: mixed search, answer, flag and edit traffic from several clients at once,
against gunicorn with a Celery worker, while a training run is going.

    python bench/load.py [--requests 600] [--clients 6] [--minutes 5] [--web-workers 2] [--report load.json]

It installs a throw-away Lexique (its own SQLite database and artifact folder under a temporary directory, the
demo glossary, the embedded filesystem broker), starts gunicorn and a worker, builds the index, starts a small
training run, then sends the traffic until ``--requests`` are done or ``--minutes`` have passed. Afterwards it
reads everything back through the API: every edit and every flag that was acknowledged must be there (a missing
one is a lost write). It prints and writes errors (5xx and connection failures), conflicts (409: two edits of
one entry), throttled requests, lost writes and latency percentiles per kind of request.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ("C'est quoi l'URSSAF ?", "Que veut dire TVA ?", "Qu'est-ce qu'un dégrèvement ?", "À quoi sert la CAF ?", "DGFiP")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def _django_shell(env: dict, code: str) -> str:
    return _manage(env, "shell", "-c", code).strip().splitlines()[-1]


class Installation:
    """A throw-away Lexique: database, artifacts, web server and worker, all under one temporary folder."""

    def __init__(self, *, web_workers: int):
        self.folder = Path(tempfile.mkdtemp(prefix="lexique-load-"))
        self.port = _free_port()
        self.web_workers = web_workers
        self.env = {
            **os.environ,
            "LEXIQUE_VAR_DIR": str(self.folder),
            "DATABASE_URL": f"sqlite:///{self.folder / 'load.sqlite3'}",
            "ARTIFACTS": str(self.folder / "artifacts"),
            "CELERY_BROKER_URL": "filesystem://",
            "DEBUG": "false", "SECURE_SSL_REDIRECT": "false", "SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "false",
            "SECRET_KEY": uuid.uuid4().hex * 2, "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "THROTTLE_SEARCH": "100000/min", "THROTTLE_ANSWER": "100000/min", "THROTTLE_RETRAIN": "100/min",
            "DEMO_PASSWORD": "load-test-password", "LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen] = []
        self.base = f"http://127.0.0.1:{self.port}"

    def prepare(self) -> dict[str, str]:
        _manage(self.env, "migrate", "--no-input")
        _manage(self.env, "setup_demo")
        _manage(self.env, "build_index")
        tokens = _django_shell(self.env, (
            "from rest_framework.authtoken.models import Token; from django.contrib.auth import get_user_model as g; import json; "
            "print(json.dumps({u: Token.objects.get_or_create(user=g().objects.get(username=u))[0].key for u in ('expert', 'maintainer')}))"
        ))
        return json.loads(tokens)

    def start(self) -> None:
        log = open(self.folder / "processes.log", "w")
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "default,training", "--pool", "solo", "--loglevel", "WARNING"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.web_workers),
             "--timeout", "120", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/api/schema/", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.5)
        raise RuntimeError(f"gunicorn did not answer: see {self.folder / 'processes.log'}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


class Traffic:
    """The mixed traffic of one run, its measurements and the writes to check afterwards."""

    def __init__(self, *, base: str, token: str, entry_ids: list[int], total: int, deadline: float):
        self.base, self.token, self.entry_ids = base, token, entry_ids
        self.remaining, self.deadline = total, deadline
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.errors: list[str] = []
        self.edits: dict[int, str] = {}  # entry id -> the context written last (acknowledged)
        self.flags: list[str] = []  # comments of acknowledged flags

    def _take(self) -> bool:
        with self.lock:
            if self.remaining <= 0 or time.monotonic() > self.deadline:
                return False
            self.remaining -= 1
            return True

    def _record(self, kind: str, started: float, response: httpx.Response | None, error: str = "") -> None:
        with self.lock:
            self.latencies[kind].append((time.perf_counter() - started) * 1000)
            if response is None:
                self.errors.append(f"{kind}: {error}")
                self.statuses[kind][0] += 1
            else:
                self.statuses[kind][response.status_code] += 1
                if response.status_code >= 500:
                    self.errors.append(f"{kind}: HTTP {response.status_code}")

    def client(self, number: int, own_entries: list[int]) -> None:
        rng = random.Random(number)
        http = httpx.Client(base_url=self.base, headers={"Authorization": f"Token {self.token}"}, timeout=120)
        last_question = None
        while self._take():
            kind = rng.choices(("search", "answer", "flag", "edit"), weights=(5, 2, 1, 2))[0]
            if kind == "flag" and last_question is None:
                kind = "answer"
            started = time.perf_counter()
            try:
                if kind == "search":
                    response = http.get("/api/search", params={"q": rng.choice(QUESTIONS)})
                elif kind == "answer":
                    response = http.post("/api/answers", json={"question": rng.choice(QUESTIONS)})
                    if response.status_code == 201:
                        last_question = response.json()["question_id"]
                elif kind == "flag":
                    comment = f"load-{number}-{uuid.uuid4().hex[:10]}"
                    response = http.post("/api/flags", json={"question_id": last_question, "reason": "bad_wording", "comment": comment})
                    if response.status_code == 201:
                        with self.lock:
                            self.flags.append(comment)
                else:
                    entry_id = rng.choice(own_entries)
                    current = http.get(f"/api/entries/{entry_id}/").json()
                    context = f"Contexte de charge {number}-{uuid.uuid4().hex[:10]}."
                    response = http.patch(f"/api/entries/{entry_id}/", json={"contexts": [context], "revision": current["revision"]})
                    if response.status_code == 200:
                        with self.lock:
                            self.edits[entry_id] = context
            except httpx.HTTPError as error:
                self._record(kind, started, None, f"{type(error).__name__}: {error}")
                continue
            self._record(kind, started, response)

    def lost_writes(self) -> dict[str, list]:
        http = httpx.Client(base_url=self.base, headers={"Authorization": f"Token {self.token}"}, timeout=120)
        lost_edits = [entry_id for entry_id, context in self.edits.items() if context not in http.get(f"/api/entries/{entry_id}/").json()["contexts"]]
        stored, url = set(), "/api/flags"
        while url:
            page = http.get(url).json()
            rows = page["results"] if isinstance(page, dict) else page
            stored |= {row["comment"] for row in rows}
            url = page.get("next") if isinstance(page, dict) else None
        return {"edits": lost_edits, "flags": [comment for comment in self.flags if comment not in stored]}


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)  # noqa: E731
    return {"count": len(ordered), "p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": round(ordered[-1], 1), "mean_ms": round(statistics.fmean(ordered), 1)}


def run(*, requests: int, clients: int, minutes: float, web_workers: int, keep: bool = False) -> dict:
    installation = Installation(web_workers=web_workers)
    tokens = installation.prepare()
    installation.start()
    try:
        maintainer = httpx.Client(base_url=installation.base, headers={"Authorization": f"Token {tokens['maintainer']}"}, timeout=120)
        run_request = maintainer.post("/api/training-runs", json={"max_steps": 200})
        training_run = run_request.json().get("id")
        entry_ids = [row["id"] for row in maintainer.get("/api/entries/", params={"page_size": 200}).json()["results"]]
        traffic = Traffic(base=installation.base, token=tokens["expert"], entry_ids=entry_ids, total=requests, deadline=time.monotonic() + minutes * 60)
        # Each client edits its own entries: a conflict between two clients would be a 409, not a lost write.
        threads = [
            threading.Thread(target=traffic.client, args=(number, entry_ids[number::clients][:20])) for number in range(clients)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        run_state = maintainer.get(f"/api/training-runs/{training_run}").json() if training_run else {}
        lost = traffic.lost_writes()
    finally:
        installation.stop()
        if not keep:
            shutil.rmtree(installation.folder, ignore_errors=True)
    done = sum(len(values) for values in traffic.latencies.values())
    return {
        "requests": done, "clients": clients, "web_workers": web_workers, "seconds": round(elapsed, 1),
        "throughput_per_s": round(done / elapsed, 2),
        "errors": len(traffic.errors), "error_samples": traffic.errors[:10],
        "statuses": {kind: dict(codes) for kind, codes in traffic.statuses.items()},
        "latency": {kind: _percentiles(values) for kind, values in traffic.latencies.items()},
        # Edits: the entries edited (the last acknowledged text of each is checked); flags: every acknowledged one.
        "acknowledged_writes": {"edited_entries": len(traffic.edits), "flags": len(traffic.flags)},
        "lost_writes": lost,
        "training_run": {key: run_state.get(key) for key in ("id", "status", "progress_step", "progress_total", "error")},
        "folder": str(installation.folder) if keep else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None, help="Write the result as JSON here.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary installation (database, logs) for inspection.")
    args = parser.parse_args(argv)
    result = run(requests=args.requests, clients=args.clients, minutes=args.minutes, web_workers=args.web_workers, keep=args.keep)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.report:
        args.report.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    lost = sum(len(values) for values in result["lost_writes"].values())
    return 1 if result["errors"] or lost else 0


if __name__ == "__main__":
    sys.exit(main())
