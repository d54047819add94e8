"""The HTTP API under load: gunicorn on loopback against the bench database, and a bounded load generator."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

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

    def __init__(self, *, workers: int, env: dict[str, str] | None = None):
        self.workers = workers
        self.env = dict(env or {})  # on top of the bench's (e.g. QUERY_ENCODER, OMP_NUM_THREADS, ONNX_INTRA_OP_THREADS)
        self.port = _free_port()
        self.log_path = BENCH_DIR / f"gunicorn-{self.port}.log"  # one per server: several may run at once
        self.cache_stats_dir = BENCH_DIR / f"cache-stats-{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "GunicornServer":
        shutil.rmtree(self.cache_stats_dir, ignore_errors=True)
        env = {**os.environ, **bench_env(), "PYTHONUNBUFFERED": "1", "BENCH_CACHE_STATS_DIR": str(self.cache_stats_dir), **self.env}
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", str(self.workers),
             "--config", str(Path(__file__).with_name("gunicorn_cache_stats.py")),
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

    def cache_stats(self) -> list[dict]:
        """Each worker's query-cache counters, written as it exited (after ``__exit__``)."""
        return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(self.cache_stats_dir.glob("*.json"))]

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
    latencies_s: list[float] = field(default_factory=list, repr=False)  # of the answered requests
    # The server's own timings of each answered search (the API's ``timings_ms``: index, preprocess, dense, lexical,
    # total), to tell the search from what surrounds it (HTTP, auth, serialisation, queueing).
    server_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def server_median_ms(self, stage: str) -> float:
        return stats.median(self.server_ms.get(stage, []))

    @property
    def throughput(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else float("nan")

    @classmethod
    def combined(cls, parts: list["LoadResult"]) -> "LoadResult":
        """Several bursts against one server as one measurement: answered requests over the bursts' total time."""
        latencies = [value for part in parts for value in part.latencies_s]
        server_ms: dict[str, list[float]] = {}
        for part in parts:
            for stage, values in part.server_ms.items():
                server_ms.setdefault(stage, []).extend(values)
        return cls(parts[0].clients, sum(part.requests for part in parts), sum(part.errors for part in parts),
                   sum(part.seconds for part in parts), stats.percentiles_ms(latencies), latencies, server_ms)


def _get(host: str, port: int, target: str, headers: bytes, *, timeout: float) -> tuple[int, bytes]:
    """One ``GET target`` on a new connection, closed after the answer: the status and the body. ``headers``: header
    lines besides Host and Connection, each ending with CRLF.

    Raw sockets rather than ``requests``: the load generator runs on the same cores as the servers it measures, and a
    ``requests`` session cost 1.2-1.7 ms of CPU per search (URL preparation, header dicts, urllib3's pool, the
    e-mail header parser, decoding the whole JSON into objects) that the servers lost. gunicorn's sync workers close
    every connection after one answer anyway, so nothing is lost by not keeping it alive."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"GET " + target.encode("ascii") + b" HTTP/1.1\r\nHost: " + f"{host}:{port}".encode("ascii") + b"\r\n" + headers
                     + b"Connection: close\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        raise OSError("incomplete HTTP answer")
    status_line, _, header_lines = head.partition(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in header_lines.lower():
        body = _unchunked(body)
    return status, body


def _unchunked(body: bytes) -> bytes:
    parts, position = [], 0
    while True:
        line_end = body.index(b"\r\n", position)
        size = int(body[position:line_end].split(b";", 1)[0], 16)
        if size == 0:
            return b"".join(parts)
        parts.append(body[line_end + 2:line_end + 2 + size])
        position = line_end + 2 + size + 2


def search_load(base_url: str, token: str, queries: list[str], *, clients: int, total: int, params: dict | None = None) -> LoadResult:
    """``total`` GET /api/search requests spread over ``clients`` threads, each request on its own connection (as
    gunicorn's sync workers answer: one request per connection). Only what is counted is read: the status, and the
    body's ``timings_ms`` (one ``json.loads``)."""
    latencies: list[float] = []
    server_ms: dict[str, list[float]] = {}
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))
    address = urlsplit(base_url)
    host, port = address.hostname, address.port or 80
    headers = f"Authorization: Token {token}\r\nAccept: */*\r\n".encode("latin-1")
    targets = [f"{address.path.rstrip('/')}/api/search?{urlencode({'q': query, 'top_k': 10, **(params or {})})}" for query in queries]

    def client() -> None:
        nonlocal errors
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            target = targets[number % len(targets)]
            started = time.perf_counter()
            try:
                status, body = _get(host, port, target, headers, timeout=60)
                ok = status == 200
            except (OSError, ValueError, IndexError):  # refused, timed out, cut short, not HTTP
                ok = False
            elapsed = time.perf_counter() - started
            timings = {}
            if ok:
                try:
                    timings = dict(json.loads(body).get("timings_ms") or {})
                except ValueError:
                    timings = {}
                if "total" in timings:  # what the named stages leave out of the search's total
                    timings["rest"] = timings["total"] - sum(value for stage, value in timings.items() if stage != "total")
            with lock:
                if ok:
                    latencies.append(elapsed)
                    for stage, value in timings.items():
                        server_ms.setdefault(stage, []).append(float(value))
                else:
                    errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(clients, total, errors, time.perf_counter() - started, stats.percentiles_ms(latencies), latencies, server_ms)


def interleaved_load(base_urls: dict[Any, str], token: str, queries: list[str], *, clients: int, per_round: int, rounds: int) -> dict[str, LoadResult]:
    """The same requests against several running servers, one burst of ``per_round`` each in turn, for ``rounds``
    rounds (the order rotating): on a machine shared with other work the load drifts alike for every server, so
    their ratios hold even when the absolute times do not. Round r sends ``queries[r * per_round:]`` (cycled)."""
    labels = list(base_urls)
    parts: dict[Any, list[LoadResult]] = {label: [] for label in labels}
    for number in range(rounds):
        offset = (number * per_round) % len(queries)
        burst = (queries[offset:] + queries[:offset])[:per_round] if len(queries) >= per_round else queries
        for label in labels[number % len(labels):] + labels[:number % len(labels)]:
            parts[label].append(search_load(base_urls[label], token, burst, clients=clients, total=per_round))
    return {label: LoadResult.combined(parts[label]) for label in labels}


def warm_up(base_url: str, token: str, queries: list[str], *, workers: int) -> None:
    """Enough concurrent requests that every worker has loaded the model and the index."""
    search_load(base_url, token, queries, clients=workers * 2, total=workers * 8)
