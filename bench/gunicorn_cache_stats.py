"""gunicorn configuration the bench adds (``-c``): each worker writes its query-cache counters when it exits, so that
the serving bench reports the API's own hit rate (each worker has its own cache) rather than an estimate."""
import json
import os
from pathlib import Path


def worker_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    folder = os.environ.get("BENCH_CACHE_STATS_DIR")
    if not folder:
        return
    try:
        from retrieval import encoding

        counters = encoding.query_cache().stats()
    except Exception as error:  # noqa: BLE001 - a worker that never set Django up still exits cleanly
        counters = {"error": repr(error)}
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(counters), encoding="utf-8")
