"""Uploads waiting between their preview and the user's confirmation, kept in the artifact store.

The session only names the file: a 17 MB upload used to make a 21 MB session row (base64 in the session).
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import PurePath

from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone
from django.utils.text import get_valid_filename

PREFIX = "imports/pending"
# A preview nobody confirmed is forgotten after this.
KEEP_FOR = timedelta(days=1)


def save(*, content: bytes, file_name: str) -> str:
    safe_name = get_valid_filename(PurePath(file_name).name) or "import"
    return storages["artifacts"].save(f"{PREFIX}/{secrets.token_hex(16)}/{safe_name}", ContentFile(content))


def read(path: str) -> bytes:
    if not path.startswith(f"{PREFIX}/"):
        raise FileNotFoundError(path)
    with storages["artifacts"].open(path, "rb") as stored:
        return stored.read()


def delete(path: str) -> None:
    if path.startswith(f"{PREFIX}/"):
        storages["artifacts"].delete(path)


def delete_forgotten() -> int:
    """Delete the uploads previewed over KEEP_FOR ago and never confirmed; returns how many."""
    storage = storages["artifacts"]
    try:
        folders, _files = storage.listdir(PREFIX)
    except (FileNotFoundError, NotImplementedError):
        return 0
    deleted = 0
    for folder in folders:
        for name in storage.listdir(f"{PREFIX}/{folder}")[1]:
            path = f"{PREFIX}/{folder}/{name}"
            if storage.get_modified_time(path) < timezone.now() - KEEP_FOR:
                storage.delete(path)
                deleted += 1
    return deleted
