"""The listening socket, with a bound on how many connections are held at once.

aiohttp closes a connection that has not sent a whole request head within its keep-alive
timeout (``server.idle_timeout``), and the handler bounds the body (``server.body_timeout``);
this bounds how many such connections can be open at the same time. One over the bound
gets ``503`` and is closed at once, so the ones already being served are not starved.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import cast

from aiohttp import web

log = logging.getLogger("content_provider")

REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: 90\r\n\r\n"
    b'{"error": "too_many_connections", "message": "the mock holds too many connections; retry"}'
)
assert len(REFUSAL.split(b"\r\n\r\n", 1)[1]) == 90


class _Refuse(asyncio.Protocol):
    """Answer 503 and close, reading (and dropping) what the client sends meanwhile, so the
    close does not turn into a reset that would swallow the answer."""

    transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.transport = transport
        transport.write(REFUSAL)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(1.0, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        if self.transport is not None:
            self.transport.close()
        return False


async def listen(
    runner: web.AppRunner,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    max_connections: int,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Start accepting for ``runner`` (after ``runner.setup()``); ``reuse_port`` to share the port
    with sibling workers (SO_REUSEPORT: the kernel spreads new connections over them)."""
    handlers = runner.server
    assert handlers is not None, "runner.setup() first"
    refused = 0

    def protocol() -> asyncio.Protocol:
        nonlocal refused
        if len(handlers.connections) >= max_connections:
            refused += 1
            if refused == 1 or refused % 100 == 0:
                log.warning(
                    "refused a connection: %d open (server.max_connections); %d refused", max_connections, refused
                )
            return _Refuse()
        return handlers()

    loop = asyncio.get_running_loop()
    return await loop.create_server(
        protocol, host, port, ssl=context, backlog=1024, reuse_address=True, reuse_port=reuse_port or None
    )
