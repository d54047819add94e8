"""Which Celery broker to use: the configured one, local Redis when it answers, else an embedded one.

The embedded broker is kombu's filesystem transport under ``var/broker``: it needs no server, so a
single machine runs web + worker + beat with nothing else installed.
"""
from __future__ import annotations

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
