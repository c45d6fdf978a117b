"""Reading a ``POST /getcontent`` body: bounded in size and time, and its ``contentId`` checked."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from content_provider.core.contract import content_id_problem
from content_provider.core.errors import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes")


async def read_limited(request: web.Request, limit: int, seconds: float) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed ``limit`` bytes, or a 408
    when it has not all arrived within ``seconds`` (a slow client must not hold a handler)."""
    if request.content.is_eof():  # the whole body is here already: the common case, and the cheapest
        try:
            whole = await request.read()
        except web.HTTPRequestEntityTooLarge:  # over the app's client_max_size, which is above any limit
            raise _too_large(limit) from None
        if len(whole) > limit:
            raise _too_large(limit)
        return whole
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    try:
        async with asyncio.timeout(seconds):
            if length is not None:
                return await request.read()
            body = bytearray()
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
            return bytes(body)
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the request body did not arrive within {seconds:g} s", {"Connection": "close"}
        ) from None


def content_id_from(body: bytes, max_length: int) -> str:
    """The ``contentId`` of a request body, or a 400 saying what is wrong with it."""
    if not body.strip():
        raise ApiError(400, "malformed_body", 'the body is empty; send {"contentId": "..."}')
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "malformed_body", f"the body must be a JSON object, not {type(payload).__name__}")
    if "contentId" not in payload:
        raise ApiError(400, "missing_content_id", 'the body has no "contentId" member')
    value = payload["contentId"]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_content_id", f'"contentId" must be a string, not {type(value).__name__}')
    problem = content_id_problem(value, max_length)
    if problem is not None:
        raise ApiError(400, "invalid_content_id", f'"contentId" {problem}')
    return value


class ParsedBodies:
    """The content id in each recently seen request body, so a hot id skips JSON parsing.

    A pure function of the bytes, remembered for small bodies only and forgotten in bulk
    when full, so it stays a few hundred kB whatever clients send.
    """

    MAX_BODY = 512
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._seen: dict[bytes, str] = {}

    def content_id(self, body: bytes, max_length: int) -> str:
        raw = self._seen.get(body)
        if raw is None:
            raw = content_id_from(body, max_length)
            if len(body) <= self.MAX_BODY:
                if len(self._seen) >= self.MAX_ENTRIES:
                    self._seen.clear()
                self._seen[body] = raw
        return raw


PARSED_BODIES: web.AppKey[ParsedBodies] = web.AppKey("parsed_bodies")
