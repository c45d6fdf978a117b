"""``fixtures.default: generated`` under load: distinct made-up subjects, each asked once.

Starts the mock as a process on an empty fixture folder with ``fixtures.default: generated``,
asks ``--subjects`` distinct subjects once each (default 100,000; ``--concurrency`` at a
time), and prints requests/s, p50 and p99 latency, the drawings made (one per subject), and
resident memory before and after, next to the answer cache's limit. Every answer is a
front and a signed back drawn for its subject, so this is the cold path at its dearest.

Run it with ``./dev run python bench/generated_subjects.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from large_fixtures import cold_requests
from procutil import mock_command, resident_mb, start_server, stop


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=100_000, help="distinct subjects, each asked once")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cache-mb", type=int, default=64, help="cache.max_bytes in MB (64 is the default)")
    parser.add_argument("--server-cpu", default="0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "images").mkdir()
        (folder / "signing").mkdir()
        yaml = (
            f"fixtures:\n  root: {folder / 'images'}\n  default: generated\n"
            f"cache:\n  max_bytes: {args.cache_mb * 1024 * 1024}\n"
        )
        process, url = await start_server(mock_command(folder, yaml), args.server_cpu)
        try:
            before = resident_mb(process.pid)
            ids = [f"PROV:made-up-{n:06d}" for n in range(args.subjects)]
            started = time.perf_counter()
            latencies = await cold_requests(url, ids, args.concurrency)
            took = time.perf_counter() - started
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            after = resident_mb(process.pid)
            print(
                f"{args.subjects} generated subjects ({args.concurrency} at a time): "
                f"{args.subjects / took:.0f} req/s, p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"
            )
            limit = f"answer cache limit {args.cache_mb} MB"
            print(f"resident: {before:.0f} MB after start-up, {after:.0f} MB after ({limit})")
        finally:
            await stop(process)


if __name__ == "__main__":
    asyncio.run(main())
