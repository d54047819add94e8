"""CPU of a warm GET /api/search in process, and of the load generator per request (not a ``python -m bench`` part).

    nice -n 10 .venv/bin/python -m bench.request_cpu setup          # once: bench database, 10k passages, index, int8 encoder
    nice -n 10 .venv/bin/python -m bench.request_cpu search [N]     # thread CPU per warm search through Django's WSGI handler
    nice -n 10 .venv/bin/python -m bench.request_cpu compare [N]    # the same, before / after this path's lightening, interleaved
    nice -n 10 .venv/bin/python -m bench.request_cpu client [N]     # the load generator's process CPU per request (gunicorn)

``search`` times each request with ``time.thread_time`` (CPU of this thread only: what a sync worker spends on it,
without gunicorn's HTTP parsing), the questions cycled so the query cache (QUERY_CACHE_SIZE, on by default) never
hits, and again with every question repeated, so that the query encoder is skipped: what the request costs besides
encoding. Medians over N requests (300 by default), the two runs interleaved in rounds.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

from bench.environment import BENCH_DIR, bench_env

PASSAGES = 10_000


def setup() -> None:
    from bench.environment import data_dir, fresh_django
    from bench.glossary_db import add_synthetic_entries, import_sigles, validated_passage_count
    from bench.synthetic import questions

    fresh_django()
    from django.conf import settings

    from retrieval import encoder_check, indexing, selectors

    asked = questions()
    import_sigles(data_dir() / "sigles.csv", quick=True, keep_terms={question.term for question in asked})
    add_synthetic_entries(PASSAGES)
    version = selectors.champion_version_get()
    settings.ENCODER_BUILD_ON_INDEX = False
    indexing.index_rebuild(version=version)
    encoder_check.encoders_build(version=version)
    version.refresh_from_db()
    print(f"{validated_passage_count()} passages; served encoder: {version.encoder_check['served']}")


def _django() -> None:
    os.environ.update({**bench_env(), "OMP_NUM_THREADS": "1", "ONNX_INTRA_OP_THREADS": "1"})  # one thread, as a bench worker
    import django

    django.setup()


def _queries() -> list[str]:
    from bench.synthetic import questions

    return [question.query for question in questions()]


def _wsgi_get(application, path: str, query: str, token: str) -> tuple[int, bytes]:
    """One GET through Django's WSGI handler as gunicorn calls it (no test client: its own bookkeeping is not the server's)."""
    import io

    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_AUTHORIZATION": f"Token {token}", "HTTP_ACCEPT": "*/*", "HTTP_CONNECTION": "close",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    status = []
    response = application(environ, lambda code, headers, exc_info=None: status.append(code))
    try:
        body = b"".join(response)
    finally:
        response.close()
    return int(status[0].split(" ", 1)[0]), body


def search_cpu(count: int, *, profile: bool = False) -> None:
    """Median thread CPU (ms) of a warm GET /api/search: distinct questions (encoded) and repeated ones (cached)."""
    import json
    from urllib.parse import urlencode

    _django()
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application

    from bench.api import api_token

    settings.ALLOWED_HOSTS = ["*"]
    application = get_wsgi_application()
    token = api_token()
    queries = _queries()

    def one(query: str) -> tuple[float, float]:
        started = time.thread_time()
        status, body = _wsgi_get(application, "/api/search", urlencode({"q": query, "top_k": 10}), token)
        spent = time.thread_time() - started
        assert status == 200, body[:300]
        return 1000 * spent, float(json.loads(body)["timings_ms"]["dense"])

    for query in queries[:50]:  # warm: models, index, caches, the repeated questions' vectors
        one(query)
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _round in range(count // 50):
            for query in queries[:50]:
                one(query)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    fresh, cached, dense = [], [], []
    offset = 50
    for _round in range(count // 50):
        for query in queries[offset:offset + 50]:
            spent, dense_ms = one(query)
            fresh.append(spent)
            dense.append(dense_ms)
        offset = 50 + (offset + 50) % max(len(queries) - 100, 1)
        for query in queries[:50]:
            cached.append(one(query)[0])
    print(f"warm GET /api/search through the WSGI handler, thread CPU ms (median over {len(fresh)} / {len(cached)} requests):")
    print(f"  distinct questions (int8 encoder runs): {statistics.median(fresh):.2f}  (dense stage wall {statistics.median(dense):.2f})")
    print(f"  repeated questions (query cache, no encoding): {statistics.median(cached):.2f}")


def compare_cpu(count: int) -> None:
    """This branch's request path against its parent's, re-created in the same process and interleaved request by
    request (the machine's load drifts alike for both): ``before`` scans with ``np.einsum``, validates the
    parameters with SearchQuerySerializer, writes the processed query with ``dataclasses.asdict`` and keeps the
    throttle's history over a minute (the bench's old 1000000/min); ``after`` is the code as it is, with the bench's 100000/s. Each has its own user, so its own
    throttle history. Distinct questions alternate between the two (never the same one twice: the query cache
    would answer the second); repeated ones are the same 50 warm questions for both."""
    import json
    from urllib.parse import urlencode

    from dataclasses import asdict

    import numpy as np

    _django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.wsgi import get_wsgi_application
    from rest_framework.authtoken.models import Token
    from rest_framework.throttling import ScopedRateThrottle

    from retrieval import api as search_api
    from retrieval import search, serializers, vector_index

    settings.ALLOWED_HOSTS = ["*"]
    application = get_wsgi_application()
    tokens = {name: Token.objects.get_or_create(user=get_user_model().objects.get_or_create(username=f"bench-{name}")[0])[0].key
              for name in ("before", "after")}
    current = {"scores_of": vector_index.scores_of, "params": search_api.search_query_params, "processed": search.processed_query_as_dict}

    def serializer_params(query_params):
        params = serializers.SearchQuerySerializer(data=query_params)
        params.is_valid(raise_exception=True)
        return params.validated_data

    def asdict_processed(processed):
        if processed is None:
            return {}
        data = asdict(processed)
        data["corrections"] = [list(pair) for pair in processed.corrections]
        return data

    variants = {
        "before": ({"scores_of": lambda matrix, query: np.einsum("ij,j->i", matrix, query), "params": serializer_params,
                    "processed": asdict_processed}, "1000000/min"),
        "after": (current, "100000/s"),
    }

    def one(name: str, query: str) -> float:
        patches, rate = variants[name]
        vector_index.scores_of, search_api.search_query_params, search.processed_query_as_dict = patches["scores_of"], patches["params"], patches["processed"]
        ScopedRateThrottle.THROTTLE_RATES = {**ScopedRateThrottle.THROTTLE_RATES, "search": rate}
        started = time.thread_time()
        status, body = _wsgi_get(application, "/api/search", urlencode({"q": query, "top_k": 10}), tokens[name])
        spent = time.thread_time() - started
        assert status == 200, body[:300]
        json.loads(body)
        return 1000 * spent

    queries = _queries()
    warm, distinct = queries[:50], queries[50:]
    for query in warm:
        for name in variants:
            one(name, query)
    fresh = {name: [] for name in variants}
    cached = {name: [] for name in variants}
    for number in range(count):
        order = list(variants) if number % 2 else list(variants)[::-1]
        for offset, name in enumerate(order):
            fresh[name].append(one(name, distinct[(2 * number + offset) % len(distinct)]))
        for name in order:
            cached[name].append(one(name, warm[number % len(warm)]))
    vector_index.scores_of, search_api.search_query_params, search.processed_query_as_dict = current["scores_of"], current["params"], current["processed"]
    print(f"warm GET /api/search through the WSGI handler, thread CPU ms, medians over {count} requests each, interleaved:")
    for name in variants:
        print(f"  {name:6s} distinct questions (int8 encoder runs) {statistics.median(fresh[name]):.2f}, "
              f"repeated questions (query cache: no encoding) {statistics.median(cached[name]):.2f}")


def client_cpu(count: int) -> None:
    """The load generator's process CPU per request against a running gunicorn (2 sync workers, one thread each, as
    the bench's chosen set-up), and the workers' own CPU per request (HTTP handling included), 5 bursts of ``count``
    requests at 10 clients. The questions cycle, so after the first burst the workers' query cache answers most."""
    import psutil

    _django()
    from bench import api

    token = api.api_token()
    queries = _queries()
    with api.GunicornServer(workers=2, env={"OMP_NUM_THREADS": "1", "ONNX_INTRA_OP_THREADS": "1"}) as server:
        api.warm_up(server.base_url, token, queries[:40], workers=2)
        workers = psutil.Process(server.process.pid).children()

        def workers_cpu() -> float:
            return sum(sum(worker.cpu_times()[:2]) for worker in workers)

        client, served = [], []
        for _round in range(5):
            started, server_started = time.process_time(), workers_cpu()
            result = api.search_load(server.base_url, token, queries, clients=10, total=count)
            client.append(1000 * (time.process_time() - started) / count)
            served.append(1000 * (workers_cpu() - server_started) / count)
            print(f"  {count} requests, {result.errors} errors, {result.throughput:.1f} q/s: client CPU {client[-1]:.2f} ms/request, "
                  f"workers' CPU {served[-1]:.2f} ms/request", flush=True)
    print(f"medians of 5 bursts of {count}: load generator CPU {statistics.median(client):.2f} ms/request, "
          f"gunicorn workers' CPU {statistics.median(served):.2f} ms/request")


if __name__ == "__main__":
    command, number = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    {"setup": lambda: setup(), "search": lambda: search_cpu(number), "profile": lambda: search_cpu(number, profile=True),
     "compare": lambda: compare_cpu(number), "client": lambda: client_cpu(number)}[command]()
