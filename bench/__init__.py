"""Lexique's benchmark suite: speed, scale and quality in one command (``python -m bench``).

Every benchmark returns a ``bench.results.Section``; ``bench.runner`` runs them, stores each result as JSON under
``var/bench/results/`` and rewrites ``docs/BENCHMARKS.md`` (``bench.report``). Timings are medians of repeated
runs, next to a reference measured in the same run.
"""
