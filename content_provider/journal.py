"""A bounded, in-memory record of recent ``POST /getcontent`` requests, for tests to read."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError
from .keys import AUTH_USER, CONNECTION_FAULT, CONTENT_ID, FAULT, RESOLVED

DEFAULT_CAPACITY = 1000


@dataclass(slots=True)  # not frozen: frozen dataclasses are slow to make, and one is made per request
class Entry:
    time: float  # seconds since the epoch; shown as ISO 8601 UTC
    contentId: str | None
    user: str | None  # the basic-auth user name, never the password
    status: int | str  # an HTTP status, or reset / close / partial / garbage / hang
    fault: str | None  # the rules that shaped the answer, as in the log line
    resolved: str | None  # user ..., organisation ..., default
    latencyMs: float

    def as_json(self) -> dict[str, Any]:
        shown = asdict(self)
        moment = datetime.datetime.fromtimestamp(self.time, datetime.UTC)
        shown["time"] = moment.isoformat(timespec="milliseconds")
        return shown


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


JOURNAL = web.AppKey("journal", Journal)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def journaled(handler: Handler) -> Handler:
    """Record every request the handler answers, however it ends."""

    async def record(request: web.Request) -> web.StreamResponse:
        start = asyncio.get_running_loop().time()
        status: int | str = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except ApiError as exc:
            status = exc.status
            raise
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            broken = request.get(CONNECTION_FAULT)
            request.app[JOURNAL].record(
                Entry(
                    time=time.time(),  # formatted only when someone reads the journal
                    contentId=request.get(CONTENT_ID),
                    user=request.get(AUTH_USER),
                    status=broken if broken else status,
                    fault=request.get(FAULT),
                    resolved=request.get(RESOLVED),
                    latencyMs=round((asyncio.get_running_loop().time() - start) * 1000, 2),
                )
            )

    return record
