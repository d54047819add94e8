"""The registry of job kinds. Each app registers its kinds in ``AppConfig.ready`` (this app imports none)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.models import Job


@dataclass(frozen=True)
class JobKind:
    name: str
    label: Any  # a lazy translation
    # A running job whose heartbeat is older than this is taken for dead (crash, OOM, machine lost).
    stale_after: timedelta
    # Puts the job's message on the broker; returns the Celery task id. None: the job runs in the process that
    # created it (a command), never through the broker.
    send: Callable[[Job], str | None] | None = None
    # The kind's own page for this job, if any.
    url: Callable[[Job], str | None] | None = None
    # Result-specific clean-up once the job ended in failure or cancellation outside its own code (stale sweep,
    # broker down, cancelled before it started): e.g. a failed training's version is taken out of service.
    on_failed: Callable[[Job], None] | None = None
    # Restart (send again) instead of failing when its worker died: for idempotent work (index builds).
    restartable: bool = False
    max_attempts: int = 3


_REGISTRY: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    _REGISTRY[kind.name] = kind
    return kind


def get(name: str) -> JobKind:
    return _REGISTRY[name]


def all_kinds() -> list[JobKind]:
    return list(_REGISTRY.values())


def label(name: str) -> str:
    kind = _REGISTRY.get(name)
    return str(kind.label) if kind else name
