"""Every error a client sees is a small JSON object; nothing leaks a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from .contract import error_body
from .keys import SETTINGS

log = logging.getLogger("content_provider.errors")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by handlers; rendered by :func:`json_errors` as ``{"error", "message"}``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return json_error(self.status, self.code, self.message, self.headers)


def json_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(code, message), status=status, headers=headers)


_HTTP_CODES = {
    404: ("not_found", "no such path; the content provider operation is POST {base}/getcontent"),
    405: ("method_not_allowed", "use {allowed} on this path"),
    413: ("body_too_large", "the request body is too large"),
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`ApiError`, aiohttp's own HTTP errors and bugs into JSON answers."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, template = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        allowed = exc.headers.get("Allow", "")
        message = template.format(base=request.app[SETTINGS].base_path, allowed=allowed or "another method")
        headers = {"Allow": allowed} if allowed else None
        return json_error(exc.status, code, message, headers)
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return json_error(500, "internal_error", "the mock failed unexpectedly; see its log")
