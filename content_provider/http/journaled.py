"""The wrapper every ``POST /getcontent`` route has: one journal entry per request, however it ends."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from content_provider.core.records import CLIENT_CLOSED, EXCHANGE, Entry
from content_provider.http.errors import Handler, error_response
from content_provider.http.metrics import METRICS
from content_provider.state.journal import JOURNAL


def journaled(handler: Handler) -> Handler:
    """Record every request the handler answers, however it ends; errors become JSON answers."""

    async def record(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        # the time is formatted only when someone reads it; the handler times its delays from entry.started
        entry = request[EXCHANGE] = Entry(time.time(), loop.time())
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
            entry.seconds = loop.time() - entry.started
            app = request.app
            app[JOURNAL].record(entry)
            app[METRICS].observe(entry)
        return response

    return record
