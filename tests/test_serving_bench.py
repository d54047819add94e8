"""The serving bench's own machinery (bench/query_encoders.py, bench/query_encoders_api.py, bench/api.py): the
replayed traffic, the choice of the web set-up, the interleaved measurements. No timing is asserted."""
from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from bench import api
from bench.query_encoders import interleaved_single_ms
from bench.query_encoders_api import (
    ANCHOR, MAX_WORKERS_ALIVE, PHASES, TODAY, ApiRow, ServerSpec, Setup, best_setup, final_phases, grid_ratios,
    littles_law_note, replay, same_phase,
)


def test_replay_is_a_few_hundred_questions_with_a_skewed_repeat_distribution():
    distinct = [f"question {number}" for number in range(300)]
    traffic = replay(distinct, 2000)
    assert traffic == replay(distinct, 2000)  # seeded: every run replays the same traffic
    counts = Counter(traffic)
    assert 150 <= len(counts) <= 300
    top = [text for text, _count in counts.most_common(3)]
    assert top[0] == "question 0"
    assert counts["question 0"] > 20 * max(1, counts["question 299"])
    assert sum(count for _text, count in counts.most_common(30)) > len(traffic) / 2


def test_best_setup_keeps_one_worker_per_core_within_the_noise_then_prefers_fewer_workers():
    one_per_core = Setup(2, 1)
    measured = {Setup(1, 1): 0.97, Setup(2, 1): 1.0, Setup(3, 1): 0.97, Setup(4, 1): 0.78, Setup(1, 2): 0.53}
    assert best_setup(measured, preferred=one_per_core) == one_per_core
    assert best_setup(measured) == Setup(1, 1)
    assert best_setup({Setup(1, 1): 1.03, Setup(2, 1): 1.0, Setup(3, 1): 1.04}, preferred=one_per_core) == one_per_core
    assert best_setup({Setup(2, 1): 1.0, Setup(3, 1): 1.2, Setup(4, 1): 1.22}, preferred=one_per_core) == Setup(3, 1)
    assert best_setup({Setup(1, 1): 0.6, Setup(1, 2): 1.0, Setup(2, 1): 0.8}, preferred=one_per_core) == Setup(1, 2)


def _row(phase, kind, workers, threads, ratio, cache=0):
    result = api.LoadResult(10, 100, 0, 1.0, {"p50": 1.0, "p95": 2.0})
    return ApiRow(phase, ServerSpec(kind, Setup(workers, threads), "torch" if kind == "torch" else "auto", cache), result, ratio)


def test_grid_ratios_take_the_served_path_without_cache_through_the_anchor():
    rows = [
        _row(1, "torch", 3, 1, 0.4), _row(1, "served", 3, 1, 0.9), _row(1, "served", 2, 1, 1.0),
        _row(2, "served", 1, 1, 0.7), _row(2, "served", 2, 1, 1.0),
        _row(3, "served", 2, 1, 2.0, cache=4096),
    ]
    assert grid_ratios(rows) == {Setup(3, 1): 0.9, Setup(2, 1): 1.0, Setup(1, 1): 0.7}


def test_phases_compare_through_the_anchor_and_fit_in_memory():
    anchor = ServerSpec("served", ANCHOR, "auto", 0)
    for phase in PHASES:
        assert anchor in phase
        assert sum(spec.setup.workers for spec in phase) <= MAX_WORKERS_ALIVE
    assert ServerSpec("torch", TODAY, "torch", 0) in PHASES[0]
    for best in {spec.setup for phase in PHASES for spec in phase}:
        phases = final_phases(best)
        assert all(sum(spec.setup.workers for spec in phase) <= MAX_WORKERS_ALIVE for phase in phases)
        flat = [spec for phase in phases for spec in phase]
        assert ServerSpec("torch", TODAY, "torch", 0) in flat and ServerSpec("served", best, "auto", 4096) in flat
        # the cache and the torch path are each compared with the served path in one phase
        rows = [_row(number, spec.kind, spec.setup.workers, spec.setup.threads, None, spec.cache_size)
                for number, phase in enumerate(phases, start=10) for spec in phase]
        assert same_phase(rows, ServerSpec("served", best, "auto", 0), ServerSpec("torch", TODAY, "torch", 0))
        assert same_phase(rows, ServerSpec("served", best, "auto", 4096), ServerSpec("served", best, "auto", 0))


def test_interleaved_single_ms_times_every_query_with_every_encoder_in_rotating_order():
    calls = []
    encoders = {name: (lambda batch, name=name: calls.append((name, batch[0]))) for name in ("a", "b", "c")}
    timings = interleaved_single_ms(encoders, ["q1", "q2", "q3"])
    assert {name: len(values) for name, values in timings.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(value >= 0 for values in timings.values() for value in values)
    measured = calls[3:]  # after one untimed call each
    assert [name for name, _ in measured] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [text for _, text in measured] == ["q1"] * 3 + ["q2"] * 3 + ["q3"] * 3


@pytest.fixture
def two_servers():
    """Two real HTTP servers on loopback that answer /api/search and record, in order, what they were asked."""
    log: list[tuple[str, str]] = []
    lock = threading.Lock()
    servers = []
    for name in ("left", "right"):
        class Handler(BaseHTTPRequestHandler):
            server_name_ = name

            def do_GET(self):  # noqa: N802 - http.server's name
                query = parse_qs(urlparse(self.path).query)["q"][0]
                with lock:
                    log.append((self.server_name_, query))
                body = b'{"hits": [], "timings_ms": {"total": 4.0, "dense": 3.0}}'
                self.send_response(200 if query != "boom" else 500)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield {name: f"http://127.0.0.1:{server.server_address[1]}" for name, server in zip(("left", "right"), servers)}, log
    for server in servers:
        server.shutdown()
        server.server_close()


def test_interleaved_load_sends_the_same_requests_to_each_server_in_turn(two_servers):
    urls, log = two_servers
    queries = [f"q{number}" for number in range(6)] + ["boom"]
    results = api.interleaved_load(urls, "token", queries, clients=3, per_round=4, rounds=3)
    asked = {name: Counter(query for server, query in log if server == name) for name in urls}
    assert asked["left"] == asked["right"]
    assert sum(asked["left"].values()) == 12
    # round 1: q0-q3; round 2: q4, q5, boom, q0; round 3: q1-q4
    assert asked["left"] == Counter({"q0": 2, "q1": 2, "q2": 2, "q3": 2, "q4": 2, "q5": 1, "boom": 1})
    # the servers take turns: the first round starts with left, the second with right
    first_of_round_two = log[8][0]
    assert [server for server, _ in log[:4]] == ["left"] * 4 and first_of_round_two == "right"
    for result in results.values():
        assert result.requests == 12 and result.errors == 1 and len(result.latencies_s) == 11
        assert result.throughput == pytest.approx(11 / result.seconds)
        assert result.latency_ms["n"] == 11
        assert result.server_median_ms("total") == 4.0 and result.server_median_ms("dense") == 3.0
        assert result.server_median_ms("rest") == 1.0
        assert len(result.server_ms["total"]) == 11


def test_the_load_generator_reads_the_status_and_body_of_plain_and_chunked_answers():
    """bench.api's raw-socket client: what it sent (path, query string, token) and what it read back."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append((self.path, self.headers["Authorization"]))
            self.send_response(200 if "chunked" in self.path else 401)
            if "chunked" in self.path:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (b'{"timings_ms": ', b'{"total": 2.5}}'):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                body = b'{"reason": "no"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        headers = b"Authorization: Token abc\r\n"
        assert api._get("127.0.0.1", port, "/api/search?q=chunked+%C3%A9t%C3%A9", headers, timeout=10) == (200, b'{"timings_ms": {"total": 2.5}}')
        assert api._get("127.0.0.1", port, "/api/search?q=x", headers, timeout=10) == (401, b'{"reason": "no"}')
        result = api.search_load(f"http://127.0.0.1:{port}", "abc", ["chunked été"], clients=2, total=3)
        assert result.errors == 0 and result.server_median_ms("total") == 2.5
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0] == ("/api/search?q=chunked+%C3%A9t%C3%A9", "Token abc")
    assert parse_qs(urlparse(seen[-1][0]).query) == {"q": ["chunked été"], "top_k": ["10"]}


def test_each_gunicorn_worker_leaves_its_query_cache_counters_on_exit(tmp_path, monkeypatch, settings):
    from bench import gunicorn_cache_stats
    from retrieval import encoding

    settings.QUERY_CACHE_SIZE = 8
    cache = encoding.query_cache()
    cache.clear()
    cache.get_or_encode(version_key=1, variant="onnx", texts=["a", "b", "a"], encode=lambda texts: [[1.0]] * len(texts))
    monkeypatch.setenv("BENCH_CACHE_STATS_DIR", str(tmp_path / "stats"))
    gunicorn_cache_stats.worker_exit(None, None)
    server = api.GunicornServer(workers=1)
    server.cache_stats_dir = tmp_path / "stats"
    [counters] = server.cache_stats()
    assert counters["hits"] == 0 and counters["misses"] == 3 and counters["size"] == 2
    cache.get_or_encode(version_key=1, variant="onnx", texts=["a"], encode=lambda texts: [[1.0]] * len(texts))
    gunicorn_cache_stats.worker_exit(None, None)
    assert server.cache_stats()[0]["hits"] == 1
    cache.clear()


def test_littles_law_note_derives_the_encoders_share_and_the_ceiling_from_the_last_phase():
    def row(phase, path, workers, qps, search, dense):
        return {"phase": phase, "path": path, "workers": workers, "threads": 1, "qps": qps, "search_ms": search, "dense_ms": dense}

    rows = [
        row(1, "torch (QUERY_ENCODER=torch)", 2, 99.0, 1.0, 1.0),  # an earlier phase is not used
        row(4, "torch (QUERY_ENCODER=torch)", 3, 8.0, 250.0, 230.0),  # another set-up
        row(4, "torch (QUERY_ENCODER=torch)", 2, 10.0, 160.0, 140.0),
        row(4, "onnx-int8 (QUERY_ENCODER=auto)", 2, 20.0, 60.0, 40.0),
        row(4, "onnx-int8 (QUERY_ENCODER=auto) + query cache", 2, 25.0, 35.0, 15.0),
    ]
    note = littles_law_note(rows, best=Setup(2, 1), served_variant="onnx-int8")
    # 2 workers / 20 q/s = 100 ms held per request, 40 of it encoding: 60 ms left; torch holds 200 ms: at most 3.3x.
    assert "2 / 20.0 q/s = 100 ms with onnx-int8 (search 60 ms, of it 40 ms" in note
    assert "against 200 ms with torch" in note and "still hold it 60 ms" in note and "at most 3.3x" in note
    assert littles_law_note(rows, best=Setup(1, 1), served_variant="onnx-int8") == ""
