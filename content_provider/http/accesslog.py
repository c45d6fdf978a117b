"""One line per request: method, path, status, content id, where it resolved, time."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from content_provider.core.records import EXCHANGE


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        entry = request.get(EXCHANGE)  # only POST /getcontent has one
        broken = entry.broken if entry is not None else None
        status = f"[{broken}]" if broken else str(response.status)
        parts = [f"{request.method} {request.path} {status}"]
        if entry is not None:
            if entry.contentId is not None:
                parts.append(f"id={entry.contentId!r}")
            if entry.resolved is not None:
                parts.append(f"from={entry.resolved!r}")
            if entry.user is not None:
                parts.append(f"user={entry.user!r}")
            if entry.fault is not None:
                parts.append(f"fault={entry.fault!r}")
            if entry.upstream is not None:
                parts.append(entry.upstream.describe())
            if entry.client_closed:
                sent = entry.bytes_sent
                said = "before the answer" if sent is None else f"after {sent} body bytes"
                parts.append(f"client closed {said}")
        parts.append(f"{response.body_length}B {time * 1000:.1f}ms")
        self.logger.info(" ".join(parts))
