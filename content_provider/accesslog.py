"""One line per request: method, path, status, content id, where it resolved, time."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import AUTH_USER, CONNECTION_FAULT, CONTENT_ID, FAULT, RESOLVED


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        broken = request.get(CONNECTION_FAULT)
        status = f"[{broken}]" if broken else str(response.status)
        parts = [f"{request.method} {request.path} {status}"]
        content_id = request.get(CONTENT_ID)
        if content_id is not None:
            parts.append(f"id={content_id!r}")
        resolved = request.get(RESOLVED)
        if resolved is not None:
            parts.append(f"from={resolved!r}")
        user = request.get(AUTH_USER)
        if user is not None:
            parts.append(f"user={user!r}")
        fault = request.get(FAULT)
        if fault is not None:
            parts.append(f"fault={fault!r}")
        parts.append(f"{response.body_length}B {time * 1000:.1f}ms")
        self.logger.info(" ".join(parts))
