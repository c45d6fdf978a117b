"""A large fixture set: start-up time and resident memory with 100,000 users.

Generates ``--users`` user folders (default 100,000), each with a front.jpg hard-linked to
one card-shaped JPEG (so the disk holds a couple of images, but every user is its own file to the
mock and its own cache entry), starts the mock on it as a process, and prints:

- the start-up time (process start to listening) and resident memory after start-up;
- cold requests: ``--requests`` distinct users asked once each, p50/p99 latency, and the
  store's file reads per request (one: the user's own front);
- resident memory after them, next to the answer cache's limit (``cache.max_bytes``).

Run it with ``./dev run python bench/large_fixtures.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from procutil import mock_command, resident_mb, start_server, stop

from content_provider.fixtures.generate import card_jpeg

LINKS_PER_FILE = 50_000


def generate(root: Path, users: int, back_every: int = 0, distinct: bool = False) -> float:
    """``users`` user folders under ``root``, each with a front.jpg and, with ``back_every`` N, every
    Nth (user 0, N, 2N, ...) also a back.jpg; the seconds it took. Hard links to one image per side,
    or with ``distinct`` a file of its own for every user, differing from the others in a JPEG
    comment (so every file has its own bytes to check, encode and sign)."""
    started = time.perf_counter()
    sides = {"front": card_jpeg("Large fixture set")}
    if back_every:
        sides["back"] = card_jpeg("Large fixture set, back")
    top = root / "images" / "users"
    top.mkdir(parents=True)
    for n in range(users):
        folder = top / f"user-{n:06d}"
        folder.mkdir()
        for side, card in sides.items():
            if side == "back" and n % back_every:
                continue
            if distinct:
                (folder / f"{side}.jpg").write_bytes(with_comment(card, f"user {n:06d} {side}"))
                continue
            # file systems cap the links to one file (ext4: 65,000): a new source every LINKS_PER_FILE users
            source = root / f"{side}-{n // LINKS_PER_FILE}.jpg"
            if not source.exists():
                source.write_bytes(card)
            os.link(source, folder / f"{side}.jpg")
    return time.perf_counter() - started


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The JPEG with a comment (COM segment) right after its start marker: other bytes, same image."""
    comment = text.encode("ascii")
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]


async def cold_requests(url: str, ids: list[str], concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue = list(ids)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while queue:
                content_id = queue.pop()
                started = time.perf_counter()
                async with session.post(f"{url}/getcontent", json={"contentId": content_id}) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{content_id}: HTTP {response.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000, help="distinct cold users to ask for")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cache-mb", type=int, default=64, help="cache.max_bytes in MB (64 is the default)")
    parser.add_argument("--server-cpu", default="0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        made = generate(folder, args.users)
        print(f"generated {args.users} users (hard links to one {len(card_jpeg('x')) // 1024} kB card) in {made:.1f} s")
        command = mock_command(
            folder, f"fixtures:\n  root: {folder / 'images'}\ncache:\n  max_bytes: {args.cache_mb * 1024 * 1024}\n"
        )
        (folder / "signing").mkdir()
        # a first start makes the signing key, so the timed start measures start-up, not RSA key generation
        process, _ = await start_server(command, args.server_cpu)
        await stop(process)
        started = time.perf_counter()
        process, url = await start_server(command, args.server_cpu)
        try:
            startup = time.perf_counter() - started
            after_start = resident_mb(process.pid)
            print(f"start-up: {startup:.2f} s to listening; resident {after_start:.0f} MB")
            ids = [f"PROV:user-{n:06d}" for n in random.Random(7).sample(range(args.users), args.requests)]
            started = time.perf_counter()
            latencies = await cold_requests(url, ids, args.concurrency)
            took = time.perf_counter() - started
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            after = resident_mb(process.pid)
            async with aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as response:
                problems = len((await response.json())["fixture_problems"])
            print(
                f"{args.requests} cold ids ({args.concurrency} at a time): {args.requests / took:.0f} req/s, "
                f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms; fixture problems: {problems}"
            )
            print(f"resident after them: {after:.0f} MB (answer cache limit {args.cache_mb} MB)")
        finally:
            await stop(process)


if __name__ == "__main__":
    asyncio.run(main())
