"""Every error a client sees is a small JSON object; nothing leaks a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from content_provider.config.settings import SETTINGS
from content_provider.core.errors import ApiError, json_error

log = logging.getLogger("content_provider.errors")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_HTTP_CODES = {
    404: ("not_found", "no such path; the content provider operation is POST {base}/getcontent"),
    405: ("method_not_allowed", "use {allowed} on this path"),
    413: ("body_too_large", "the request body is too large"),
}


def error_response(request: web.Request, exc: BaseException) -> web.StreamResponse:
    """The JSON answer for an exception a handler raised; a redirect is raised again."""
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code, template = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
        allowed = exc.headers.get("Allow", "")
        message = template.format(base=request.app[SETTINGS].base_path, allowed=allowed or "another method")
        return json_error(exc.status, code, message, {"Allow": allowed} if allowed else None)
    log.error("internal error answering %s %s", request.method, request.path, exc_info=exc)
    return json_error(500, "internal_error", "the mock failed unexpectedly; see its log")


def json_errors(handler: Handler) -> Handler:
    """``handler`` with :class:`ApiError`, aiohttp's own HTTP errors and bugs turned into JSON.

    A wrapper per route rather than a middleware: a middleware would also wrap the hot
    ``POST /getcontent``, whose own wrapper (:func:`journal.journaled`) does this itself.
    """

    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(request, exc)

    return answer


async def no_route(request: web.Request) -> web.StreamResponse:
    """The last route, matching every path: 405 when another method has this path, else 404."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is request.match_info.route.resource:
            continue
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, sorted(allowed))
    raise web.HTTPNotFound()
