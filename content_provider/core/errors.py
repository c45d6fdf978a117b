"""The error a handler raises: a status, a stable code and a message, rendered as a small JSON object."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from content_provider.core.contract import error_body


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
