"""Stored JSON objects read and written back through their types (the evaluation reports and the gate's records).

``load_stored`` reads what any version stored; ``dump_stored`` writes the same document back: a key an older
version did not write stays absent, a key this code does not know is kept.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

_BOOKKEEPING = ("absent", "extra")
Record = TypeVar("Record", bound="Stored")


@dataclass(frozen=True, kw_only=True)
class Stored:
    """A stored JSON object: ``absent`` are the keys its writer did not write, ``extra`` the keys this code does not
    know; both come back as they were (``to_dict``)."""

    absent: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _stored_fields(cls) -> list[str]:
    return [item.name for item in fields(cls) if item.name not in _BOOKKEEPING and item.metadata.get("stored", True)]


def load_stored(
    cls: type[Record], data: Mapping[str, Any] | None, *, keys: Mapping[str, str] | None = None, **readers: Callable
) -> Record:
    """``cls`` from its stored dict: ``keys`` maps a field to its stored key when they differ, ``readers`` convert."""
    data = data or {}
    names = _stored_fields(cls)
    stored_keys = {name: (keys or {}).get(name, name) for name in names}
    values = {
        name: readers[name](data[key]) if name in readers else data[key]
        for name, key in stored_keys.items() if key in data
    }
    return cls(
        **values,
        absent=frozenset(name for name, key in stored_keys.items() if key not in data),
        extra={key: value for key, value in data.items() if key not in stored_keys.values()},
    )


def dump_stored(record: Stored, *, keys: Mapping[str, str] | None = None, **writers: Callable) -> dict[str, Any]:
    """The stored dict of ``record``: its fields (but those its writer never wrote), then the keys it did not know."""
    data = {}
    for name in _stored_fields(type(record)):
        if name not in record.absent:
            value = getattr(record, name)
            data[(keys or {}).get(name, name)] = writers[name](value) if name in writers else value
    return {**data, **record.extra}


def dict_of(read: Callable) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A reader of ``{name: stored object}`` that reads each object with ``read``."""
    return lambda data: {name: read(value) for name, value in (data or {}).items()}


def dump_each(records: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: record}`` written back as ``{name: record.to_dict()}``."""
    return {name: record.to_dict() for name, record in records.items()}
