"""A bounded, in-memory record of recent ``POST /getcontent`` requests, for tests to read."""

from __future__ import annotations

from collections import deque

from aiohttp import web

from content_provider.core.records import Entry

DEFAULT_CAPACITY = 1000


class Journal:
    """The newest ``capacity`` requests; older ones fall off."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._entries: deque[Entry] = deque(maxlen=capacity)

    def record(self, entry: Entry) -> None:
        self._entries.append(entry)

    def entries(self, content_id: str | None = None, limit: int | None = None) -> list[Entry]:
        """Newest first, optionally only one content id."""
        found = [e for e in reversed(self._entries) if content_id is None or e.contentId == content_id]
        return found if limit is None else found[:limit]

    def count(self, content_id: str | None = None) -> int:
        return sum(1 for e in self._entries if content_id is None or e.contentId == content_id)

    def clear(self) -> None:
        self._entries.clear()


JOURNAL: web.AppKey[Journal] = web.AppKey("journal")
