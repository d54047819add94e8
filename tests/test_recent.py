"""config.recent.RecentReads: read once within the delay, read again after it, bounded, nothing kept on failure."""
import pytest

from config import recent
from config.recent import RecentReads


def test_reads_once_within_the_delay_then_again_and_forgets(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: clock[0])
    reads = []
    cache: RecentReads[str] = RecentReads(2)

    def read(value):
        reads.append(value)
        return value

    assert cache.get("a", seconds=1, read=lambda: read("A1")) == "A1"
    assert cache.get("a", seconds=1, read=lambda: read("A2")) == "A1"
    clock[0] += 1
    assert cache.get("a", seconds=1, read=lambda: read("A3")) == "A3"
    assert cache.get("b", seconds=0, read=lambda: read("B1")) == "B1"  # 0 seconds: read every time, the last read kept
    assert cache.get("b", seconds=0, read=lambda: read("B2")) == "B2"
    assert cache.get("b", seconds=1, read=lambda: read("B3")) == "B2"
    cache.get("c", seconds=1, read=lambda: read("C"))  # the least recently used ("a") goes
    assert cache.get("a", seconds=1, read=lambda: read("A4")) == "A4"
    cache.forget(lambda value: value == "C")
    assert cache.get("c", seconds=1, read=lambda: read("C2")) == "C2"
    cache.forget()
    assert cache.get("c", seconds=1, read=lambda: read("C3")) == "C3"
    assert reads == ["A1", "A3", "B1", "B2", "C", "A4", "C2", "C3"]

    def fails():
        raise LookupError("unknown")

    with pytest.raises(LookupError):
        cache.get("x", seconds=1, read=fails)
    assert cache.get("x", seconds=1, read=lambda: read("X")) == "X"
