"""Which Celery broker to use: the configured one, local Redis when it answers, else an embedded one.

The embedded broker is kombu's filesystem transport under ``var/broker``: it needs no server, so a
single machine runs web + worker + beat with nothing else installed.
"""
from __future__ import annotations

import hashlib
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

logger = logging.getLogger("lexique.broker")

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BrokerChoice:
    url: str
    transport_options: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def is_embedded(self) -> bool:
        return self.url.startswith("filesystem://")


def redis_answers(url: str, *, timeout: float = 0.3) -> bool:
    """True when a Redis server answers PING at ``url`` (raw socket: no client import at start-up)."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH", b"-ERR"))
    except OSError:
        return False


def embedded_broker(var_dir: Path) -> BrokerChoice:
    folder = var_dir / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }
    return BrokerChoice("filesystem://", options, f"embedded filesystem broker under {folder}")


def choose_broker(env: dict, var_dir: Path) -> BrokerChoice:
    configured = env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")
    if configured:
        if configured.startswith("filesystem://"):
            return embedded_broker(var_dir)
        return BrokerChoice(configured, {}, "configured by CELERY_BROKER_URL/REDIS_URL")
    if redis_answers(LOCAL_REDIS_URL):
        return BrokerChoice(LOCAL_REDIS_URL, {}, "Redis answered on localhost")
    return embedded_broker(var_dir)


# The queues every installation has; names on the broker are the installation's prefix + one of these.
LOGICAL_QUEUES = ("default", "training")


@dataclass(frozen=True)
class QueuePrefix:
    prefix: str
    reason: str


def installation_identity(database: dict) -> str:
    """What tells one installation from another on a shared broker: its database (stable across restarts)."""
    name = str(database.get("NAME") or "")
    if database.get("ENGINE", "").endswith("sqlite3"):
        name = str(Path(name).resolve())
    return "|".join(str(database.get(key) or "") for key in ("ENGINE", "HOST", "PORT")) + f"|{name}"


def choose_queue_prefix(env: dict, broker: BrokerChoice, database: dict) -> QueuePrefix:
    """The prefix of this installation's queue names.

    ``LEXIQUE_QUEUE_PREFIX`` wins, even empty. Otherwise the embedded broker belongs to this installation alone
    (no prefix), and on Redis the prefix is derived from the database, so that two installations sharing one
    Redis never take each other's tasks while the web, worker and beat processes of one installation agree.
    """
    explicit = env.get("LEXIQUE_QUEUE_PREFIX")
    if explicit is not None:
        return QueuePrefix(explicit, "set by LEXIQUE_QUEUE_PREFIX")
    if broker.is_embedded:
        return QueuePrefix("", "embedded broker, used by this installation alone")
    digest = hashlib.sha256(installation_identity(database).encode()).hexdigest()[:10]
    return QueuePrefix(f"lexique-{digest}-", "derived from the database (LEXIQUE_QUEUE_PREFIX unset)")


def queue_settings(prefix: str) -> dict:
    """The Celery queue settings for a prefix (settings.py and the test session use the same)."""
    training = f"{prefix}training"
    return {
        "QUEUE_PREFIX": prefix,
        "CELERY_TASK_DEFAULT_QUEUE": f"{prefix}default",
        "TRAINING_QUEUE": training,
        # Heavy jobs go to their own queue so a GPU worker on another machine can take them alone.
        "CELERY_TASK_ROUTES": {"training.tasks.*": {"queue": training}, "evaluation.tasks.*": {"queue": training}},
    }


def installation_queue_name(name: str, prefix: str) -> str:
    """``celery worker -Q default`` means this installation's default queue, whatever its prefix."""
    return f"{prefix}{name}" if name in LOGICAL_QUEUES and prefix and not name.startswith(prefix) else name


def redacted(url: str) -> str:
    """A broker URL for the log, without its password."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def log_broker_choice() -> None:
    """Say which broker and queue prefix this process uses (called once logging is configured)."""
    from django.conf import settings

    logger.info("%s", settings.BROKER_LOG_LINE)
