"""The wrapper every ``POST /getcontent`` route has: one journal entry per request, however it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from content_provider.core.records import CLIENT_CLOSED, EXCHANGE, Entry
from content_provider.http.errors import Handler, error_response
from content_provider.http.parts import ContentParts

# a /getcontent handler: the request, its journal entry (also at request[EXCHANGE]) and the app's parts
ContentHandler = Callable[[web.Request, Entry, ContentParts], Awaitable[web.StreamResponse]]


def journaled(handler: ContentHandler, parts: ContentParts) -> Handler:
    """Record every request the handler answers, however it ends; errors become JSON answers."""

    async def record(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        # the time is formatted only when someone reads it; the handler times its delays from entry.started
        entry = request[EXCHANGE] = Entry(time.time(), loop.time())
        response: web.StreamResponse | None = None
        try:
            response = await handler(request, entry, parts)
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
            entry.seconds = loop.time() - entry.started
            parts.journal.record(entry)
            parts.metrics.observe(entry)
        return response

    return record
