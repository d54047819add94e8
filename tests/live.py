"""Real processes for end-to-end tests: a Celery worker on the real broker, sharing the test database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def child_database_url() -> str:
    """A DATABASE_URL that points a child process at the database the tests are using."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = db["NAME"]
        if name in (":memory:", "") or "mode=memory" in str(name):
            raise RuntimeError("Live-process tests need a file SQLite test database (see tests/conftest.py).")
        return f"sqlite:///{name}"
    user = quote(db.get("USER") or "", safe="")
    password = f":{quote(str(db['PASSWORD']), safe='')}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def reset_routing(app) -> None:
    """Make Celery route by the current ``task_routes``/``task_default_queue``.

    Celery builds its router, queue table and default queue once per process and caches them: without this, a
    second live worker in the same test process would never receive the tasks routed to its own queues.
    """
    for cached in ("router", "queues", "default_queue"):
        app.amqp.__dict__.pop(cached, None)
    app.amqp._rtable = None


class LiveWorker:
    """A ``celery worker`` child process consuming this test session's own queues."""

    def __init__(self, *, queues: tuple[str, ...] = ("default", "training"), extra_env: dict | None = None, prefix: str | None = None):
        # The prefix names the queues and the worker's node; reusing one restarts "the same" worker.
        self.prefix = prefix or f"t{uuid.uuid4().hex[:8]}-"
        self.queues = queues
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"worker-{self.prefix}log"

    def env(self) -> dict:
        env = {**os.environ, **self.extra_env}
        env["DATABASE_URL"] = child_database_url()
        env["LEXIQUE_QUEUE_PREFIX"] = self.prefix
        env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
        env["ARTIFACTS"] = settings.STORAGES["artifacts"]["OPTIONS"]["location"]
        env["CELERY_TASK_ALWAYS_EAGER"] = "false"
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> "LiveWorker":
        from config.celery import app

        # The test process publishes to the same prefixed queues as the worker consumes.
        app.conf.task_always_eager = False
        app.conf.task_default_queue = f"{self.prefix}default"
        app.conf.task_routes = {
            "training.tasks.*": {"queue": f"{self.prefix}training"},
            "evaluation.tasks.*": {"queue": f"{self.prefix}training"},
        }
        reset_routing(app)
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(self.queue_names), "--pool", "solo",
             "--concurrency", "1", "--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", f"{self.prefix}@%h"],
            cwd=ROOT, env=self.env(), stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            # A fixture whose set-up fails is never torn down: leave no worker and no changed Celery config behind.
            self.stop()
            raise
        return self

    @property
    def queue_names(self) -> list[str]:
        return [self.prefix + queue for queue in self.queues]

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Worker exited early:\n{self.log()}")
            if "ready." in self.log():
                return
            time.sleep(0.3)
        raise RuntimeError(f"Worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """Kill the worker the hard way (SIGKILL), as a crash or an OOM would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        from config.celery import app

        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._delete_queues()
        app.conf.task_always_eager = settings.CELERY_TASK_ALWAYS_EAGER
        app.conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        app.conf.task_routes = settings.CELERY_TASK_ROUTES
        reset_routing(app)
        if getattr(self, "log_file", None):
            self.log_file.close()

    def _delete_queues(self) -> None:
        delete_queues(self.queue_names)


def delete_queues(names) -> None:
    """Remove queues (and any message left in them) from the broker, which others share."""
    from kombu import Exchange, Queue

    from config.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for name in names:
            # Declared as Celery declares a missing queue, so that deleting it also removes its binding.
            queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(channel)
            queue.declare()
            queue.delete()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")
