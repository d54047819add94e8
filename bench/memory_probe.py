"""Run as a child process: resident memory of a fresh web-like process at each step of serving search.

Prints one JSON object: RSS (MiB) after Django set-up, after loading the model, after loading the champion's
index (vectors + BM25 + term lookup + vocabulary), and after 50 searches.
"""
from __future__ import annotations

import json
import os

import psutil


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    import django

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as config/wsgi.py
    django.setup()
    from retrieval import encoding, indexing, search, selectors

    steps = {"django": rss_mb()}
    version = selectors.champion_version_get()
    encoding.model_for_version(version)
    steps["model"] = rss_mb()
    served = indexing.served_index_get(version=version)
    steps["index"] = rss_mb()
    for number in range(50):
        search.search(query=f"allocation logement {number}", version=version)
    steps["after_50_searches"] = rss_mb()
    steps["passages"] = len(served.vectors)
    steps["matrix_mb"] = served.vectors.matrix.nbytes / 2**20
    print(json.dumps(steps))


if __name__ == "__main__":
    main()
