"""Values a process read from the database recently: a bounded, thread-safe map whose entries are read again once
older than a given number of seconds (the least recently used go first when it is full)."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class RecentReads(Generic[V]):
    def __init__(self, size: int):
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable, *, seconds: float, read: Callable[[], V]) -> V:
        """The value of ``key`` read less than ``seconds`` ago, else ``read()``, remembered (an exception from
        ``read`` is raised and nothing is remembered)."""
        now = time.monotonic()
        with self._lock:
            cached = self._items.get(key)
        if cached is not None and now - cached[0] < seconds:
            return cached[1]
        value = read()
        with self._lock:
            self._items[key] = (now, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def forget(self, where: Callable[[V], bool] | None = None) -> None:
        """Forget the values for which ``where`` is true (every value when None)."""
        with self._lock:
            if where is None:
                self._items.clear()
                return
            for key in [key for key, (_at, value) in self._items.items() if where(value)]:
                del self._items[key]
