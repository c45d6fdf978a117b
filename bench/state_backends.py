"""Requests/s of the Redis state backend over the memory backend's, in the same run.

Six mocks run pinned to the server CPU (wrk and a private redis-server on the client CPU):
memory and redis with no rule, memory and redis with one counted rule (``every: 1000000000`` on
the benchmarked id: every request is counted, none is failed, so each costs the Redis backend
one round trip), and memory and redis with one rule that matches every request but counts
nothing (``outcome: ok``: not ``Rule.counted``, so no round trip). Rounds are interleaved: each
round measures all six back to back (in turn
forwards and backwards), and the ratios are taken per round and reported as medians, so a
slow patch of this shared machine hits both sides alike; the mocks' CPU time per request,
read from /proc, is printed beside requests/s as the steadier measure. The last lines are
``redis / memory at 64 connections, no rules: R``, ``... one counted rule: R`` and ``... one
rule counted nowhere: R``. Run by
``bench/run`` after bench/throughput.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from procutil import add_load_arguments, cpu_seconds, mock_command, start_server, wrk_load

from content_provider.serving.workers import free_port

CONTENT_ID = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"
COUNTED = (
    f'faults:\n  rules:\n    - name: counted\n      match: {{id: "{CONTENT_ID}"}}\n'
    "      every: 1000000000\n      outcome: 503\n"
)
UNCOUNTED = f'faults:\n  rules:\n    - name: always\n      match: {{id: "{CONTENT_ID}"}}\n      outcome: ok\n'


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[64])
    add_load_arguments(parser, rounds=3, seconds=5.0, warmup=3.0)
    args, _ = parser.parse_known_args()  # bench/run passes throughput.py's arguments too
    binary = shutil.which("redis-server")
    if binary is None:
        print("state backends: no redis-server here (apt-get install redis-server); not measured")
        return
    port = free_port("127.0.0.1")
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", args.client_cpu, *command]
    redis = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    loop = f"server:\n  event_loop: {args.event_loop}\n"
    kinds = {
        "memory": loop,
        "redis": f"{loop}state:\n  redis_url: {url}\n  namespace: bench-plain\n",
        "memory+rule": loop + COUNTED,
        "redis+rule": f"{loop}state:\n  redis_url: {url}\n  namespace: bench-rule\n" + COUNTED,
        "memory+always": loop + UNCOUNTED,
        "redis+always": f"{loop}state:\n  redis_url: {url}\n  namespace: bench-always\n" + UNCOUNTED,
    }
    servers: dict[str, tuple[asyncio.subprocess.Process, str]] = {}
    runs: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], list[float]] = {}  # the mock's CPU time per request, microseconds
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            await asyncio.sleep(0.3)  # redis-server listening
            for name, yaml in kinds.items():
                servers[name] = await start_server(mock_command(folder, yaml, f"{name}.yaml"), args.server_cpu)
            for _, server_url in servers.values():
                await wrk_load(server_url, 64, args.warmup, args.client_cpu, folder, CONTENT_ID)
            for index in range(args.rounds):
                for connections in args.connections:
                    order = list(servers.items()) if index % 2 == 0 else list(servers.items())[::-1]
                    for name, (process, server_url) in order:  # neither side always measured first
                        before = cpu_seconds(process.pid)
                        figures = await wrk_load(
                            server_url, connections, args.seconds, args.client_cpu, folder, CONTENT_ID
                        )
                        used = cpu_seconds(process.pid) - before
                        runs.setdefault((name, connections), []).append(figures["rps"])
                        cpu.setdefault((name, connections), []).append(used / (figures["rps"] * args.seconds) * 1e6)
        finally:
            for process, _ in servers.values():
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            redis.terminate()
            await redis.wait()
    print(f"state backends: {args.rounds} interleaved rounds x {args.seconds:g} s; medians of per-round ratios")
    for connections in args.connections:
        for name in kinds:
            rps = statistics.median(runs[name, connections])
            per_request = statistics.median(cpu[name, connections])
            print(f"{name:<14}{connections:>6} conns {rps:>9.0f} req/s {per_request:>7.0f} us CPU/req")
        for label, over, under in (
            ("no rules", "redis", "memory"),
            ("one counted rule", "redis+rule", "memory+rule"),
            ("one rule counted nowhere", "redis+always", "memory+always"),
        ):
            pairs = zip(runs[over, connections], runs[under, connections], strict=True)
            ratios = [o / u for o, u in pairs]
            each = ", ".join(f"{r:.2f}" for r in ratios)
            ratio = statistics.median(ratios)
            cost = statistics.median(
                o / u for o, u in zip(cpu[over, connections], cpu[under, connections], strict=True)
            )
            print(
                f"redis / memory at {connections} connections, {label}: {ratio:.2f} (rounds: {each}); "
                f"{cost:.2f}x the CPU per request"
            )


if __name__ == "__main__":
    asyncio.run(main())
