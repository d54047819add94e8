"""Messages kept in the database in no language: the English source string and its parameters, rendered in the
reader's language when shown (job logs and errors, query-file errors, the audit log's automatic reasons...).

    runner.job_log(job=job, message=stored(gettext_noop("Revision %(revision)s: %(passages)s passages."),
                                           revision=3, passages=120))
    render(job.error)      # one message, in the active language
    render_log(job.log)    # a log, line by line ("[time] message")

A stored message is the JSON text ``{"msgid": ..., "params": {...}}`` (``message()`` gives the dict itself, for
JSON columns). ``gettext_noop`` marks the English string for ``makemessages``; the French is in the catalogue.
A parameter may be a number or a text (kept as it is), another stored message or a lazy translation (a choice's
label: kept as its English source, both rendered in the reader's language), or a list of them (joined by
spaces). Anything else is stored as its text.

Text that is not a stored message (an exception's text, what a user typed, rows written before) is shown as it
is. This module does not import Django at import time: pure modules may build messages.
"""
from __future__ import annotations

import json
import re
from typing import Any

_PREFIX = '{"msgid": '
_LOG_LINE = re.compile(r"^(\[[^\]]*\] )(.*)$")


def gettext_noop(msgid: str) -> str:
    """Marks an English message for ``makemessages`` in modules without Django (Django's does the same)."""
    return msgid


def message(msgid: str, **params: Any) -> dict:
    """A stored message as a dict (for a JSON column)."""
    data: dict[str, Any] = {"msgid": str(msgid)}
    if params:
        data["params"] = {name: _param(value) for name, value in params.items()}
    return data


def stored(msgid: str, **params: Any) -> str:
    """A stored message as text (for a text column, a job's log line or error)."""
    return json.dumps(message(msgid, **params), ensure_ascii=False)


def is_stored(value: Any) -> bool:
    return _decode(value) is not None


def _decode(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value if isinstance(value.get("msgid"), str) else None
    if isinstance(value, str) and value.startswith(_PREFIX):
        try:
            data = json.loads(value)
        except ValueError:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("msgid"), str) else None
    return None


def _param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    decoded = _decode(value)
    if decoded is not None:
        return decoded
    if isinstance(value, (list, tuple)):
        return [_param(item) for item in value]
    from django.utils.functional import Promise

    if isinstance(value, Promise):  # a lazy translation: its English source
        from django.utils import translation

        with translation.override(None):
            return {"msgid": str(value)}
    return str(value)


def render(value: Any) -> str:
    """A stored message in the active language; any other value as its text ("" for None)."""
    data = _decode(value)
    if data is None:
        return "" if value is None else str(value)
    from django.utils.translation import gettext

    params = {name: _render_param(param) for name, param in (data.get("params") or {}).items()}
    text = gettext(data["msgid"])
    if not params:
        return text
    try:
        return text % params
    except (KeyError, TypeError, ValueError):  # a translation that does not fit its parameters
        try:
            return data["msgid"] % params
        except (KeyError, TypeError, ValueError):
            return data["msgid"]


def render_all(value: Any) -> Any:
    """A JSON document (a report, an API answer) with every stored message in it rendered in the active
    language; everything else as it is."""
    if _decode(value) is not None:
        return render(value)
    if isinstance(value, dict):
        return {key: render_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [render_all(item) for item in value]
    return value


def english(value: Any) -> str:
    """A stored message in English (server logs, command output)."""
    from django.utils import translation

    with translation.override(None):
        return render(value)


def _render_param(value: Any) -> Any:
    if isinstance(value, list):
        return " ".join(str(_render_param(item)) for item in value)
    if _decode(value) is not None:
        return render(value)
    return value


def render_log(log: str | None) -> str:
    """A job's log ("[time] message" lines) with each stored message in the active language."""
    if not log:
        return ""
    lines = []
    for line in log.splitlines(keepends=True):
        body = line.rstrip("\n")
        match = _LOG_LINE.match(body)
        if match and is_stored(match.group(2)):
            body = match.group(1) + render(match.group(2))
        elif is_stored(body):
            body = render(body)
        lines.append(body + line[len(line.rstrip("\n")):])
    return "".join(lines)
