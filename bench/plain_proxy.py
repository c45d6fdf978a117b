"""The reference for the proxy benchmark: a minimal aiohttp pass-through proxy, no validation.

``POST /getcontent`` is sent on to ``--upstream`` over one kept-alive client session and its
answer passed back as it is. Measured beside the mock in proxy mode in front of the same bare
app, it shows how much of the mock's proxy cost is the unavoidable second hop and how much is ours.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the base URL: POST {upstream}/getcontent")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    target = args.upstream.rstrip("/") + "/getcontent"

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            app[SESSION] = session
            yield

    async def getcontent(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with request.app[SESSION].post(target, data=body, headers=headers) as answer:
            data = await answer.read()
            return web.Response(status=answer.status, body=data, content_type=answer.content_type)

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/getcontent", getcontent)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    print(f"serving POST http://127.0.0.1:{sock.getsockname()[1]}/getcontent", file=sys.stderr, flush=True)
    web.run_app(app, sock=sock, access_log=None, print=None)


if __name__ == "__main__":
    main()
