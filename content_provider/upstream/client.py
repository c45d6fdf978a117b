"""The HTTP client towards the upstream: one session for the app's life, and errors that say what went wrong.

Every way a call can fail becomes an :class:`~content_provider.errors.ApiError` naming the
upstream (host and port only: never its path's secrets or its credentials):

- 502 ``upstream_unreachable``: no connection (refused, no route, unknown host);
- 502 ``upstream_tls_error``: the TLS handshake failed (certificate not trusted, wrong host name);
- 504 ``upstream_timeout``: no whole answer within ``upstream.timeout``;
- 502 ``upstream_bad_answer``: connected, but the answer was not HTTP, was cut off, or too large.

A redirect (3xx) is the upstream's answer like any other: passed on as it came, with its
``Location``, never followed (a 307 would post Hermod's body, with the upstream's credentials
beside it, to whatever host it names).

A call that fails on a kept-alive connection the upstream has since closed (it restarted, say)
is made once more on a fresh one: ``POST /getcontent`` only reads, so it is safe to repeat.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from content_provider.config.upstream import UpstreamSettings
from content_provider.core.b64 import basic_authorization
from content_provider.core.contract import JSON_TYPE
from content_provider.core.errors import ApiError

log = logging.getLogger("content_provider.upstream")

MAX_ANSWER_BYTES = 64 * 1024 * 1024
# Not passed on from the upstream's answer: they describe one hop (RFC 9110, 7.6.1), or aiohttp
# sets them itself for the answer it sends (Content-Length, Date, Server).
HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
        "Date",
        "Server",
    )
)


@dataclass(frozen=True)
class Fetched:
    """The upstream's answer, as it came."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def passed_headers(self) -> CIMultiDict[str]:
        """The end-to-end headers, to be sent on as they came."""
        return CIMultiDict((name, value) for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP)


class UpstreamClient:
    """Posts request bodies to ``{upstream.url}/getcontent`` with the upstream's own credentials."""

    def __init__(self, settings: UpstreamSettings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.address = settings.address
        self._url = f"{settings.url}/getcontent"
        self._headers = {"Content-Type": JSON_TYPE, "Accept-Encoding": "identity"}
        if settings.username is not None and settings.password is not None:
            self._headers["Authorization"] = basic_authorization(settings.username, settings.password)
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)

    async def post(self, body: bytes) -> Fetched:
        """The upstream's answer to ``body``, or an ``ApiError`` saying why there is none."""
        start = time.monotonic()
        for attempt in (1, 2):
            try:
                return await self._post(body, start)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A kept-alive connection the upstream has closed: once more, on a new connection
                if attempt == 1 and not isinstance(exc, aiohttp.ClientConnectorError):
                    continue
                raise self._error(exc) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, body: bytes, start: float) -> Fetched:
        async with self.session.post(
            self._url, data=body, headers=self._headers, timeout=self._timeout, allow_redirects=False
        ) as response:
            if response.content_length is not None and response.content_length > MAX_ANSWER_BYTES:
                raise ApiError(
                    502,
                    "upstream_bad_answer",
                    f"the upstream {self.address} answered with {response.content_length} bytes, "
                    f"more than {MAX_ANSWER_BYTES}",
                )
            data = bytearray()
            async for chunk in response.content.iter_any():
                data += chunk
                if len(data) > MAX_ANSWER_BYTES:
                    raise ApiError(
                        502,
                        "upstream_bad_answer",
                        f"the upstream {self.address} sent more than {MAX_ANSWER_BYTES} bytes",
                    )
            return Fetched(response.status, response.headers, bytes(data), time.monotonic() - start)

    def _error(self, exc: BaseException) -> ApiError:
        where = f"the upstream {self.address}"
        if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
            return ApiError(
                504, "upstream_timeout", f"{where} did not answer within {self.settings.timeout:g} s (upstream.timeout)"
            )
        if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
            hint = "; upstream.ca_file names the CA to trust" if self.settings.ca_file is None else ""
            return ApiError(502, "upstream_tls_error", f"TLS with {where} failed: {_reason(exc)}{hint}")
        if isinstance(exc, aiohttp.ClientConnectorError):
            return ApiError(502, "upstream_unreachable", f"cannot connect to {where}: {_reason(exc)}")
        return ApiError(502, "upstream_bad_answer", f"{where} sent no whole HTTP answer: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error.strerror or str(exc.os_error) or type(exc).__name__
    return str(exc) or type(exc).__name__


def ssl_context(settings: UpstreamSettings) -> ssl.SSLContext | bool:
    """TLS towards the upstream: the system's CAs, or ``upstream.ca_file``'s alone."""
    if settings.ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_file))


async def session_ctx(settings: UpstreamSettings) -> AsyncIterator[aiohttp.ClientSession]:
    """The session every upstream call shares (connections kept alive), closed at shutdown."""
    connector = aiohttp.TCPConnector(ssl=ssl_context(settings), limit=256)
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar())
    try:
        yield session
    finally:
        await session.close()
        await asyncio.sleep(0)  # let the connector close its sockets before the loop ends
