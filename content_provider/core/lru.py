"""Least-recently-used maps: one bounded by the number of entries, one by the bytes of its values.

Every memory of the server that grows with what clients send (ids, digests, client addresses)
is one of these, so each has a bound and the least recently used entry is the one that goes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar, cast, overload

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")
_K_contra = TypeVar("_K_contra", contravariant=True)
_V_co = TypeVar("_V_co", covariant=True)


class _Peek(Protocol[_K_contra, _V_co]):
    """The signature of :attr:`LRU.peek` (a dictionary's ``get``)."""

    @overload
    def __call__(self, key: _K_contra, /) -> _V_co | None: ...
    @overload
    def __call__(self, key: _K_contra, default: D, /) -> _V_co | D: ...


class LRU(Generic[K, V]):
    """Keeps the ``max_entries`` most recently used entries; putting one more drops the least recent.

    Iterating gives the keys, least recently used first.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[K, V] = OrderedDict()
        # The value without marking it used (``None``, or ``default``, when absent): the dictionary's
        # own ``get``, so a read on the serving path costs one C call, and any thread may make it.
        # (cast: mypy does not match one overloaded signature against another)
        self.peek = cast("_Peek[K, V]", self._items.get)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def get(self, key: K) -> V | None:
        """The value, marked as the most recently used; ``None`` when absent."""
        try:
            self._items.move_to_end(key)
        except KeyError:
            return None
        return self._items[key]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as the most recently used; the least recent goes past the bound."""
        items = self._items
        items[key] = value
        items.move_to_end(key)
        if len(items) > self.max_entries:
            items.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget ``key``; its value, or ``None`` when absent."""
        return self._items.pop(key, None)

    def items(self) -> list[tuple[K, V]]:
        """A copy of the entries, least recently used first."""
        return list(self._items.items())

    def clear(self) -> None:
        self._items.clear()


class ThreadSafeLRU(LRU[K, V]):
    """An :class:`LRU` that threads share: changes take a lock; :attr:`peek` needs none (one dictionary read)."""

    def __init__(self, max_entries: int) -> None:
        super().__init__(max_entries)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:  # another thread may drop the key between the read and the move
            return super().get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            super().put(key, value)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return super().pop(key)

    def items(self) -> list[tuple[K, V]]:
        with self._lock:
            return super().items()

    def clear(self) -> None:
        with self._lock:
            super().clear()


class ByteBoundedLRU(Generic[V]):
    """Keeps the most recently used values whose sizes sum to at most ``max_bytes``.

    A value larger than the whole budget is not kept at all, so one huge fixture
    cannot evict everything else.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def peek(self, key: Hashable) -> V | None:
        """The value without marking it used: one dictionary read, so a worker thread may call it."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        self.discard(key)
        if size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._items.popitem(last=False)
            self.bytes -= evicted

    def discard(self, key: Hashable) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item[1]

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0
