"""One line per request: method, path, status, content id, where it resolved, time."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .keys import AUTH_USER, CONTENT_ID, RESOLVED


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        parts = [f"{request.method} {request.path} {response.status}"]
        content_id = request.get(CONTENT_ID)
        if content_id is not None:
            parts.append(f"id={content_id!r}")
        resolved = request.get(RESOLVED)
        if resolved is not None:
            parts.append(f"from={resolved!r}")
        user = request.get(AUTH_USER)
        if user is not None:
            parts.append(f"user={user!r}")
        parts.append(f"{response.body_length}B {time * 1000:.1f}ms")
        self.logger.info(" ".join(parts))
