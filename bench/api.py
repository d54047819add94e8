"""The HTTP API under load: gunicorn on loopback against the bench database, and a bounded load generator."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import psutil
import requests

from bench import stats
from bench.environment import BENCH_DIR, ROOT, bench_env


def api_token() -> str:
    """A DRF token of a bench user (search needs an authenticated client)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench")
    return Token.objects.get_or_create(user=user)[0].key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """``gunicorn config.wsgi`` with ``workers`` sync workers on 127.0.0.1, stopped on exit."""

    def __init__(self, *, workers: int):
        self.workers = workers
        self.port = _free_port()
        self.log_path = BENCH_DIR / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "GunicornServer":
        env = {**os.environ, **bench_env(), "PYTHONUNBUFFERED": "1"}
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(self.workers),
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "300", "--graceful-timeout", "10", "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()  # never leave a server behind when the start fails
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                # Any answer (401 without a token) means the workers accept requests.
                requests.get(self.base_url + "/api/search", timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer within 120 s")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(timeout=10)
        self.log_file.close()

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker process (the master only forks them)."""
        return [child.memory_info().rss / 2**20 for child in psutil.Process(self.process.pid).children()]


@dataclass
class LoadResult:
    clients: int
    requests: int
    errors: int
    seconds: float
    latency_ms: dict[str, float]

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else float("nan")


def search_load(base_url: str, token: str, queries: list[str], *, clients: int, total: int, params: dict | None = None) -> LoadResult:
    """``total`` GET /api/search requests spread over ``clients`` threads, each with its own connection."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        nonlocal errors
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            query = queries[number % len(queries)]
            started = time.perf_counter()
            try:
                response = session.get(f"{base_url}/api/search", params={"q": query, "top_k": 10, **(params or {})}, timeout=60)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(clients, total, errors, time.perf_counter() - started, stats.percentiles_ms(latencies))


def warm_up(base_url: str, token: str, queries: list[str], *, workers: int) -> None:
    """Enough concurrent requests that every worker has loaded the model and the index."""
    search_load(base_url, token, queries, clients=workers * 2, total=workers * 8)
