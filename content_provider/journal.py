"""A bounded, in-memory record of recent ``POST /getcontent`` requests, for tests to read."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .errors import error_response
from .keys import EXCHANGE, JOURNAL, METRICS

if TYPE_CHECKING:
    from .upstream.proxy import UpstreamNote

DEFAULT_CAPACITY = 1000
CLIENT_CLOSED = "client closed"  # the status of a request whose client went away before any answer


class Entry:
    """One ``POST /getcontent``: filled in while it is handled, then kept in the journal.

    Made once per request by :func:`journaled` and carried on the request under
    :data:`EXCHANGE`, so the handler, fault delivery, the access log and the journal share
    one object instead of looking up a request key per field. A plain slotted class: it is
    made on the hot path, and nothing is formatted until someone reads the journal.
    """

    __slots__ = (
        "broken",
        "bytes_sent",
        "client_closed",
        "contentId",
        "fault",
        "resolved",
        "seconds",
        "sent_status",
        "status",
        "time",
        "upstream",
        "user",
    )

    def __init__(self, time: float) -> None:
        self.time = time  # seconds since the epoch; shown as ISO 8601 UTC
        self.contentId: str | None = None
        self.user: str | None = None  # the basic-auth user name, never the password
        self.status: int | str = 500  # an HTTP status, or reset / close / partial / garbage / hang / shutdown
        self.fault: str | None = None  # the rules that shaped the answer, as in the log line
        self.resolved: str | None = None  # user ..., organisation ..., default
        self.seconds = 0.0  # from the handler's start to its answer
        self.broken: str | None = None  # the connection fault, when no whole HTTP answer was sent
        self.client_closed = False  # the client hung up while the body was being sent (not our error)
        self.bytes_sent: int | None = None  # of the body, when the client hung up
        self.sent_status: int | None = None  # the status line already sent, when the body is streamed
        self.upstream: UpstreamNote | None = None  # when the answer came from upstream.url: status, verdict

    def as_json(self) -> dict[str, Any]:
        return shown(self.packed())

    def packed(self) -> list[Any]:
        """The entry as a short JSON array: what a journal kept elsewhere (state/redis.py) writes per
        request, leaving the formatting (:func:`shown`) to whoever reads it."""
        upstream = None if self.upstream is None else self.upstream.as_json()
        closed = [True, self.bytes_sent] if self.client_closed else []
        return [
            self.time,
            self.contentId,
            self.user,
            self.status,
            self.fault,
            self.resolved,
            self.seconds,
            upstream,
            *closed,
        ]


def shown(packed: list[Any]) -> dict[str, Any]:
    """A journal entry as the admin API shows it, from :meth:`Entry.packed`."""
    moment = datetime.datetime.fromtimestamp(packed[0], datetime.UTC)
    entry: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds"),
        "contentId": packed[1],
        "user": packed[2],
        "status": packed[3],
        "fault": packed[4],
        "resolved": packed[5],
        "latencyMs": round(packed[6] * 1000, 2),
    }
    if len(packed) > 8:
        entry["clientClosed"] = True
        entry["bytesSent"] = packed[9]
    if packed[7] is not None:
        entry["upstream"] = packed[7]
    return entry


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def journaled(handler: Handler) -> Handler:
    """Record every request the handler answers, however it ends; errors become JSON answers."""

    async def record(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        start = loop.time()
        entry = request[EXCHANGE] = Entry(time.time())  # the time is formatted only when someone reads it
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
        except asyncio.CancelledError:  # a server that cancels handlers when their client goes away
            transport = request.transport
            if transport is None or transport.is_closing():
                entry.client_closed = True
            raise
        except Exception as exc:
            response = error_response(request, exc)
        finally:
            if entry.broken is not None:
                entry.status = entry.broken
            elif entry.client_closed:  # what it was sent before it went: a status line, or nothing
                entry.status = entry.sent_status or CLIENT_CLOSED
            elif response is not None:
                entry.status = response.status
            else:
                entry.status = 500
            entry.seconds = loop.time() - start
            app = request.app
            app[JOURNAL].record(entry)
            app[METRICS].observe(entry)
        return response

    return record
