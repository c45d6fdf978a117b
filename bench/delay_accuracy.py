"""How close is an injected delay to the delay asked for, under concurrent load?

Starts the mock as its own process on loopback (pinned to CPU 0 where ``taskset``
exists; this client runs on CPU 1), then in one go:

1. a baseline: the same load with no fault rule, to see what the machine adds;
2. the same load with a fixed delay rule (200 ms by default);
3. a bare aiohttp app (``bench/bare_app.py``) sleeping the same delay and answering
   the same bytes: the floor that the stack itself sets.

The load comes from ``wrk`` when it is installed (``apt-get install wrk``), else from
an aiohttp client in this process, which adds latency of its own. It prints
p50/p90/p99/max for both and the delayed p99 minus the delay. Run it with
``./dev run python bench/delay_accuracy.py`` (``--help`` for the knobs). This is a
measurement, not a test: machines here are shared and noisy, so read the baseline
beside the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from procutil import ROOT, mock_command, start_server, wrk_load

CONTENT_ID = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"


async def load(url: str, concurrency: int, requests: int) -> list[float]:
    """``requests`` POSTs from ``concurrency`` workers on kept-alive connections; latencies in s."""
    latencies: list[float] = []
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                async with session.post(f"{url}/getcontent", json={"contentId": CONTENT_ID}) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def quantiles(values: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}


def delayed_mock(delay: float | None, folder: Path, event_loop: str, workers: int = 1) -> list[str]:
    rules = f"faults:\n  rules:\n    - name: fixed\n      delay: {delay}\n" if delay else ""
    server = f"server:\n  event_loop: {event_loop}\n  workers: {workers}\n"
    return mock_command(folder, server + rules, f"config-{delay}.yaml")


async def answer_bytes(command: list[str], args: argparse.Namespace) -> bytes:
    """The mock's answer for the demo id, for the bare app to send as is."""
    process, url = await start_server(command, args.server_cpu)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/getcontent", json={"contentId": CONTENT_ID}) as response,
        ):
            return await response.read()
    finally:
        process.terminate()
        await process.wait()


async def measure(command: list[str], args: argparse.Namespace, folder: Path) -> dict[str, float]:
    process, url = await start_server(command, args.server_cpu)
    try:
        await load(url, args.concurrency, args.concurrency * 2)  # fill the cache
        if args.loader == "wrk":
            # Warm up at full load first: the interpreter specialises hot code as it runs.
            await wrk_load(url, args.concurrency, args.warmup, args.client_cpu or None, folder, CONTENT_ID)
            return await wrk_load(url, args.concurrency, args.seconds, args.client_cpu or None, folder, CONTENT_ID)
        return quantiles(await load(url, args.concurrency, args.requests))
    finally:
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await process.wait()


def row(name: str, figures: dict[str, float]) -> str:
    return f"{name:<22}" + "".join(f"{figures[k] * 1000:>10.1f}" for k in ("p50", "p90", "p99", "max"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2, help="seconds (default 0.2)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="asyncio",
        help="for the mock and the bare app alike (auto: uvloop when installed)",
    )
    parser.add_argument("--workers", type=int, default=1, help="serve --workers for the mock (the bare app has one)")
    parser.add_argument("--requests", type=int, default=3000, help="with --loader python")
    parser.add_argument("--seconds", type=float, default=10.0, help="with --loader wrk")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (wrk)")
    parser.add_argument(
        "--loader",
        choices=("wrk", "python"),
        default="wrk" if shutil.which("wrk") else "python",
        help="load generator (default: wrk when installed: apt-get install wrk)",
    )
    parser.add_argument("--server-cpu", default="0", help="CPU list for taskset, '' to not pin")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    if args.client_cpu and args.loader == "python" and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(0, {int(c) for c in args.client_cpu.split(",")})
    args.server_cpu = args.server_cpu or None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        body = folder / "answer.json"
        body.write_bytes(await answer_bytes(delayed_mock(None, folder, args.event_loop), args))
        bare = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--body", str(body)]
        bare += ["--event-loop", args.event_loop]
        baseline = await measure(delayed_mock(None, folder, args.event_loop, args.workers), args, folder)
        delayed = await measure(delayed_mock(args.delay, folder, args.event_loop, args.workers), args, folder)
        bare_delayed = await measure([*bare, "--delay", str(args.delay)], args, folder)
    amount = f"{args.seconds:g} s" if args.loader == "wrk" else f"{args.requests} requests"
    print(f"{args.loader}: {amount} each, {args.concurrency} connections, loopback")
    print(f"event loop: {args.event_loop}; mock workers: {args.workers}; server CPUs {args.server_cpu}; times in ms")
    print(f"{'':<22}{'p50':>10}{'p90':>10}{'p99':>10}{'max':>10}")
    print(row("no fault (baseline)", baseline))
    print(row(f"delay {args.delay * 1000:g} ms", delayed))
    print(row(f"bare aiohttp, {args.delay * 1000:g} ms", bare_delayed))
    over = (delayed["p99"] - args.delay) * 1000
    print(f"delayed p99 - delay: {over:.1f} ms (baseline p99 {baseline['p99'] * 1000:.1f} ms)")
    floor = (bare_delayed["p99"] - args.delay) * 1000
    print(f"bare aiohttp p99 - delay: {floor:.1f} ms (the stack's own floor)")


if __name__ == "__main__":
    asyncio.run(main())
