"""The bounded least-recently-used maps every growing memory of the server is kept in."""

from __future__ import annotations

import threading

from content_provider.core.lru import LRU, ThreadSafeLRU


def test_the_least_recently_used_entry_goes_past_the_bound() -> None:
    kept: LRU[str, int] = LRU(2)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.get("a") == 1  # a is now the most recent
    kept.put("c", 3)
    assert list(kept) == ["a", "c"]
    assert kept.get("b") is None
    assert len(kept) == 2
    kept.put("a", 10)  # putting again marks it used too
    kept.put("d", 4)
    assert list(kept) == ["a", "d"]
    assert kept.get("a") == 10


def test_peek_marks_nothing_used_and_tells_a_stored_none_from_absent() -> None:
    kept: LRU[str, str | None] = LRU(2)
    kept.put("fine", None)
    kept.put("bad", "too small")
    assert kept.peek("fine", "absent") is None
    assert kept.peek("missing", "absent") == "absent"
    assert kept.peek("missing") is None
    kept.put("new", None)  # "fine" was only peeked at: it is the least recent still
    assert "fine" not in kept
    assert "bad" in kept
    assert kept.get("bad") == "too small"


def test_get_marks_a_stored_none_used() -> None:
    kept: LRU[str, int | None] = LRU(2)
    kept.put("none", None)
    kept.put("one", 1)
    assert kept.get("none") is None
    kept.put("two", 2)
    assert list(kept) == ["none", "two"]


def test_pop_and_clear() -> None:
    kept: LRU[str, int] = LRU(3)
    kept.put("a", 1)
    kept.put("b", 2)
    assert kept.pop("a") == 1
    assert kept.pop("a") is None
    assert list(kept) == ["b"]
    kept.clear()
    assert len(kept) == 0
    assert not kept
    assert kept.peek("b") is None  # peek still reads the same (cleared) dictionary


def test_a_thread_safe_lru_keeps_its_bound_under_threads() -> None:
    kept: ThreadSafeLRU[int, int] = ThreadSafeLRU(50)

    def churn(offset: int) -> None:
        for n in range(2000):
            kept.put(offset + n, n)
            kept.get(offset + n - 1)
            kept.peek(offset + n - 2)
            if n % 7 == 0:
                kept.pop(offset + n - 3)

    threads = [threading.Thread(target=churn, args=(offset * 10_000,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kept) <= 50
    kept.clear()
    assert len(kept) == 0
