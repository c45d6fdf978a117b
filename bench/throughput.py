"""Requests/s and latency of the mock next to a bare aiohttp app answering the same bytes.

Both run pinned to CPU 0 on the same event loop, wrk on CPU 1, in one go, at several
connection counts; the figure that counts is the mock's requests/s over the bare app's
(absolute numbers vary run to run on shared machines). The last line is
``ratio at 64 connections: R``. Run it with ``bench/run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

import aiohttp
from procutil import ROOT, start_server, wrk_load

CONTENT_ID = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"  # front and back


def mock_command(folder: Path, event_loop: str) -> list[str]:
    config = folder / "config.yaml"
    config.write_text(
        f"signing:\n  directory: {folder / 'signing'}\nlogging:\n  access_log: false\n"
        f"server:\n  event_loop: {event_loop}\n",
        encoding="utf-8",
    )
    return [sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0"]


async def measure(
    command: list[str], args: argparse.Namespace, folder: Path
) -> tuple[dict[int, dict[str, float]], bytes]:
    process, url = await start_server(command, args.server_cpu)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/getcontent", json={"contentId": CONTENT_ID}) as response,
        ):
            body = await response.read()
        results = {}
        for connections in args.connections:
            await wrk_load(url, connections, args.warmup, args.client_cpu, folder, CONTENT_ID)
            results[connections] = await wrk_load(url, connections, args.seconds, args.client_cpu, folder, CONTENT_ID)
        return results, body
    finally:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await process.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk (bench/run does it)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        mock, body = await measure(mock_command(folder, args.event_loop), args, folder)
        (folder / "answer.json").write_bytes(body)
        bare_command = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--body", str(folder / "answer.json")]
        bare, _ = await measure([*bare_command, "--event-loop", args.event_loop], args, folder)
    print(f"answer: {len(body)} bytes ({CONTENT_ID}); event loop {args.event_loop}; wrk {args.seconds:g} s each")
    print(f"{'server':<14}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for name, figures in (("bare aiohttp", bare), ("mock", mock)):
        for connections, f in figures.items():
            print(f"{name:<14}{connections:>6}{f['rps']:>10.0f}{f['p50'] * 1000:>9.1f}{f['p99'] * 1000:>9.1f}")
    for connections in args.connections:
        ratio = mock[connections]["rps"] / bare[connections]["rps"]
        p99 = mock[connections]["p99"] / bare[connections]["p99"]
        print(f"mock / bare at {connections} connections: {ratio:.2f} of the requests/s, {p99:.2f}x the p99")
    print(f"ratio at 64 connections: {mock[64]['rps'] / bare[64]['rps']:.2f}" if 64 in mock else "")


if __name__ == "__main__":
    asyncio.run(main())
