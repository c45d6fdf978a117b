"""What of the hot path's CPU is ours: the mock measured with its own parts taken out, one at a time.

A profiler's view of "our code" leaves out much of what that code costs (the C work it asks
for, the coroutines and frames it adds), so this takes the parts out instead and measures what
is left, all in the same rounds (servers pinned to CPU 0, wrk on CPU 1, order alternating):

- bare aiohttp: ``bench/bare_app.py`` answering the mock's bytes (the reference);
- mock, bare handler: the mock's process (its app, routes, settings, signing key, loaded
  fixtures, everything imported) with the ``/getcontent`` route answering as the bare app does;
- mock, journaled bare handler: the same inside the mock's ``journaled()`` wrapper (the
  journal entry, the journal, the metrics count);
- mock: as it ships.

Prints the CPU time per request of each (median of the rounds) and its ratio to the bare app's
(median of the per-round ratios): the steps between the lines are what the process, the
wrapper and the handler with the store each cost. Run it with
``./dev run python bench/ours.py`` (``--help`` for the knobs).

``--serve MODE`` is how the script starts the altered mocks: ``serve`` with the route replaced
before the app is made (``BARE_BODY`` names the answer file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import runpy
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from procutil import add_load_arguments, cpu_seconds, mock_command, start_server, wrk_load
from throughput import CONTENT_ID, Server, start_bare, start_mock

MODES = ("bare", "journaled")


def serve_altered(mode: str, serve_args: list[str]) -> None:
    """``content-provider serve`` with the /getcontent route's handler replaced per ``mode``."""
    from aiohttp import web

    import content_provider.app as app_module
    from content_provider.http.journaled import journaled as wrapped

    body = Path(os.environ["BARE_BODY"]).read_bytes()

    async def bare(request: web.Request, *_: Any) -> web.Response:  # what bench/bare_app.py does
        await request.read()
        return web.Response(body=body, content_type="application/json")

    def altered(handler: Any, parts: Any) -> Any:
        return bare if mode == "bare" else wrapped(bare, parts)

    app_module.__dict__["journaled"] = altered  # what add_routes() calls when the app is made
    sys.argv = ["content-provider", "serve", *serve_args]
    runpy.run_module("content_provider", run_name="__main__", alter_sys=True)


async def start_altered(folder: Path, mode: str, args: argparse.Namespace) -> Server:
    command = mock_command(folder, f"server:\n  event_loop: {args.event_loop}\n", f"{mode}.yaml")
    at = command.index(sys.executable)  # env STATE=... python -m content_provider serve ARGS
    serve_args = command[at + 4 :]
    command = [
        *command[:at],
        f"BARE_BODY={folder / 'answer.json'}",
        sys.executable,
        __file__,
        "--serve",
        mode,
        *serve_args,
    ]
    process, url = await start_server(command, args.server_cpu)
    label = "mock, bare handler" if mode == "bare" else "mock, journaled bare handler"
    return Server(label, process, url)


async def main(args: argparse.Namespace) -> None:
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            mock = await start_mock(folder, args)
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{mock.url}/getcontent", json={"contentId": CONTENT_ID}) as response,
            ):
                (folder / "answer.json").write_bytes(await response.read())
            servers = [await start_bare(folder, args)]
            servers += [await start_altered(folder, mode, args) for mode in MODES]
            servers.append(mock)
            for server in servers:
                await wrk_load(server.url, args.connections, args.warmup, args.client_cpu, folder, CONTENT_ID)
            cpu: dict[str, list[float]] = {server.name: [] for server in servers}
            for index in range(args.rounds):
                for server in servers if index % 2 == 0 else servers[::-1]:
                    before = cpu_seconds(server.process.pid)
                    figures = await wrk_load(
                        server.url, args.connections, args.seconds, args.client_cpu, folder, CONTENT_ID
                    )
                    used = cpu_seconds(server.process.pid) - before
                    cpu[server.name].append(used / (figures["rps"] * args.seconds) * 1e6)
        finally:
            for server in servers:
                server.process.terminate()
                await server.process.wait()
    rounds = f"{args.rounds} rounds x {args.seconds:g} s, {args.connections} connections, {args.event_loop} loop"
    print(f"CPU time per request ({rounds}; medians of the rounds)")
    bare = cpu["bare aiohttp"]
    for name, per_round in cpu.items():
        ratio = statistics.median(mine / reference for mine, reference in zip(per_round, bare, strict=True))
        each = ", ".join(f"{x:.0f}" for x in per_round)
        print(f"{name:<30} {statistics.median(per_round):6.0f} us  {ratio:5.2f}x bare  (rounds: {each})")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        serve_altered(sys.argv[2], sys.argv[3:])
        raise SystemExit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=16)
    add_load_arguments(parser, rounds=8, seconds=3.0, warmup=2.0)
    if sys.platform != "linux":
        raise SystemExit("this benchmark reads /proc and pins with taskset: Linux only")
    asyncio.run(main(parser.parse_args()))
