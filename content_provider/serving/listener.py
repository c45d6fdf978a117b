"""The listening socket, with a bound on how many connections are held at once.

aiohttp closes a connection that has not sent a whole request head within its keep-alive
timeout (``server.idle_timeout``), and the handler bounds the body (``server.body_timeout``);
this bounds how many such connections can be open at the same time. One over the bound
gets ``503`` and is closed at once, so the ones already being served are not starved.
"""

from __future__ import annotations

import asyncio
import logging
import socket
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


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` (one port for all, also when ``port`` is 0).

    For ``serve --workers N``: the supervisor binds once and every worker accepts on the same
    sockets. Nothing sets SO_REUSEPORT, so a port that another server holds is refused here
    (exit 2), and there is no gap between choosing a free port and binding it.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not REUSEPORT: see above
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address[:2]!r}: {(exc.strerror or str(exc)).lower()}",
                ) from None
            sock.listen(1024)
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


async def listen(
    runner: web.AppRunner,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    max_connections: int,
    sock: socket.socket | None = None,
) -> asyncio.Server:
    """Start accepting for ``runner`` (after ``runner.setup()``) on ``host:port``, or on ``sock``
    when it is given (a worker's share of the supervisor's socket)."""
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
    if sock is not None:
        return await loop.create_server(protocol, sock=sock, ssl=context, backlog=1024)
    return await loop.create_server(protocol, host, port, ssl=context, backlog=1024, reuse_address=True)
