"""Soak: run the mock for a while under a mix of traffic and changes, then check it held up.

Starts ``content-provider serve`` on loopback over a temporary copy of the fixtures and,
for ``--seconds``, keeps doing at once:

- normal requests for card and authentication ids, each answer checked;
- a fault rule switched on and off through the admin API for one id, each answer
  checked against the rule in force (an answer that overlaps a switch may be either);
- images uploaded for a few users, and answers checked to carry the last upload;
- journal reads and clears.

Every second it samples the server's resident memory and open file descriptors. It
fails (exit 1) on any wrong answer, on memory growing by more than ``--max-growth-mb``
after the first quarter of the run, or on descriptors not back to the start at the end.

    ./dev run python bench/soak.py --seconds 300
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from procutil import mock_command, start_server, status_value  # noqa: E402

from content_provider.config.settings import DEMO_FIXTURES  # noqa: E402
from content_provider.fixtures.generate import card_jpeg  # noqa: E402

CARD = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"
AUTH = "AUTH:4018e11f-1209-45f5-ade7-e59004e10745"
TOGGLED = "PROV:bob"
USERS = [f"soak-{i}" for i in range(3)]


@dataclass
class Tally:
    requests: int = 0
    wrong: list[str] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    def fail(self, text: str) -> None:
        if len(self.wrong) < 20:
            self.wrong.append(text)


async def start(folder: Path) -> tuple[asyncio.subprocess.Process, str]:
    return await start_server(
        mock_command(folder, f"fixtures:\n  root: {folder / 'images'}\ncache:\n  revalidate_seconds: 0.2\n")
    )


async def normal(session: aiohttp.ClientSession, url: str, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        for content_id, keys in ((CARD, ["front", "back"]), (AUTH, ["auth_image"])):
            async with session.post(f"{url}/getcontent", json={"contentId": content_id}) as response:
                tally.requests += 1
                body = await response.json()
                got = [e["key"] for e in body.get("data", [])]
                if response.status != 200 or got != keys:
                    tally.fail(f"{content_id}: {response.status} {got}")


async def toggled(session: aiohttp.ClientSession, url: str, deadline: float, tally: Tally) -> None:
    """Switch a 503 rule on and off; check each answer against the rule in force."""
    on_since: float | None = None
    off_since: float | None = time.monotonic()
    rule = {"name": "soak-toggle", "match": {"id": TOGGLED}, "outcome": 503}
    flips = 0
    while time.monotonic() < deadline:
        for _ in range(10):
            sent = time.monotonic()
            async with session.post(f"{url}/getcontent", json={"contentId": TOGGLED}) as response:
                await response.read()
                tally.requests += 1
                if on_since is not None and sent >= on_since and response.status != 503:
                    tally.fail(f"{TOGGLED} with the rule on: {response.status}")
                if off_since is not None and sent >= off_since and response.status != 200:
                    tally.fail(f"{TOGGLED} with the rule off: {response.status}")
        flips += 1
        if flips % 2:
            off_since = None
            async with session.post(f"{url}/__admin/rules", json=rule) as response:
                assert response.status == 201, await response.text()
            on_since = time.monotonic()
        else:
            on_since = None
            async with session.delete(f"{url}/__admin/rules/soak-toggle") as response:
                assert response.status == 200, await response.text()
            off_since = time.monotonic()


async def uploads(session: aiohttp.ClientSession, url: str, deadline: float, tally: Tally) -> None:
    images = [card_jpeg(f"soak {i}") for i in range(4)]
    round_ = 0
    while time.monotonic() < deadline:
        for user in USERS:
            image = images[round_ % len(images)]
            async with session.put(f"{url}/__admin/fixtures/users/{user}/front", data=image) as response:
                if response.status not in (200, 201):
                    tally.fail(f"upload {user}: {response.status} {await response.text()}")
                    continue
            async with session.post(f"{url}/getcontent", json={"contentId": f"PROV:{user}"}) as response:
                tally.requests += 1
                body = await response.json()
                served = base64.b64decode(body["data"][0]["data"]) if response.status == 200 else b""
                if served != image:
                    tally.fail(f"PROV:{user}: not the last upload ({response.status})")
        round_ += 1
        await asyncio.sleep(0.05)


async def journal(session: aiohttp.ClientSession, url: str, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        async with session.get(f"{url}/__admin/requests", params={"limit": "50"}) as response:
            if response.status != 200:
                tally.fail(f"journal: {response.status}")
            await response.read()
        async with session.delete(f"{url}/__admin/requests") as response:
            await response.read()
        await asyncio.sleep(0.5)


async def sample(pid: int, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        tally.rss_kb.append(status_value(pid, "VmRSS:"))
        tally.fds.append(len(os.listdir(f"/proc/{pid}/fd")))
        await asyncio.sleep(1.0)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-growth-mb", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(DEMO_FIXTURES, folder / "images")
        process, url = await start(folder)
        tally = Tally()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{url}/getcontent", json={"contentId": CARD}) as response:
                    await response.read()  # warm the cache before the baseline
                start_fds = len(os.listdir(f"/proc/{process.pid}/fd"))
                deadline = time.monotonic() + args.seconds
                await asyncio.gather(
                    normal(session, url, deadline, tally),
                    toggled(session, url, deadline, tally),
                    uploads(session, url, deadline, tally),
                    journal(session, url, deadline, tally),
                    sample(process.pid, deadline, tally),
                )
            await asyncio.sleep(0.5)
            end_fds = len(os.listdir(f"/proc/{process.pid}/fd"))
        finally:
            process.terminate()
            await process.wait()
    settled = tally.rss_kb[len(tally.rss_kb) // 4 :] or tally.rss_kb
    growth_mb = (max(settled) - settled[0]) / 1024 if settled else 0.0
    print(f"{tally.requests} requests in {args.seconds:g} s; wrong answers: {len(tally.wrong)}")
    print(
        f"resident memory: {min(tally.rss_kb) / 1024:.1f}-{max(tally.rss_kb) / 1024:.1f} MB, "
        f"growth after warm-up {growth_mb:.1f} MB (limit {args.max_growth_mb:g})"
    )
    print(f"open file descriptors: {start_fds} at the start, {end_fds} at the end (peak {max(tally.fds)})")
    for text in tally.wrong:
        print(f"  wrong: {text}")
    ok = not tally.wrong and growth_mb <= args.max_growth_mb and end_fds <= start_fds
    print("soak: OK" if ok else "soak: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
