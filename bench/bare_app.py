"""The reference for benchmarks: a bare aiohttp app answering prepared bytes.

It does what no real handler can do with less: read the body, optionally sleep until
``--delay`` seconds after the handler started, and answer the same bytes every time.
Measuring it beside the mock in the same run shows what the stack itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from aiohttp import web


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body", required=True, help="file with the answer's bytes")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--event-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    args = parser.parse_args()
    with open(args.body, "rb") as handle:
        body = handle.read()
    delay = args.delay

    async def getcontent(request: web.Request) -> web.Response:
        started = asyncio.get_running_loop().time()
        await request.read()
        if delay:
            await asyncio.sleep(max(0.0, started + delay - asyncio.get_running_loop().time()))
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/getcontent", getcontent)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)  # connections wait in the backlog until the app starts accepting
    print(f"serving POST http://127.0.0.1:{sock.getsockname()[1]}/getcontent", file=sys.stderr, flush=True)
    loop = None
    if args.event_loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if args.event_loop == "uvloop":
                raise
        else:
            loop = uvloop.new_event_loop()
    web.run_app(app, sock=sock, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
