"""The provisioning pattern: every user asked once (the cold path), next to the hot id, in one run.

Generates ``--users`` user folders (default 100,000; each a front.jpg, every second one a
back.jpg, hard links to two card images as in large_fixtures.py; with ``--distinct`` every
file has bytes of its own, so none is decoded or signed on the strength of another), starts
the mock on them pinned to CPU 0 and loads it with wrk on CPU 1, in interleaved rounds; each
round measures

- hot: one id over and over (``PROV:user-000000``, front and back), and
- cold: distinct ids in turn (a wrk Lua script walks ``PROV:user-000001``, ``-000002``, ...,
  a fresh range each round, so no id is asked twice; when the set is used up the mock is
  restarted, so every id asked is cold).

- after restart: the mock is stopped and started again (its persistent cache of signatures
  and image checks kept, ``cache.directory``), then asked the ids of the round's cold pass
  again: every id asked since the cache was last emptied, each once, for as long as that
  range lasts at the hot id's speed (wrk runs for its whole duration, in whole seconds, so
  the range wraps round only when it is shorter than one second of hot requests).

A cold pass asks ids no process has seen: when the set is used up and the mock is restarted
for fresh ids, its persistent cache is emptied first. The order of the loads alternates round
by round, and so does the order of the mocks.
After each cold measurement the mock is left until its CPU is idle again: what it does
then (image checks that run off the serving path) is counted in the "all-in" CPU per
request. With ``--baseline DIR`` a second mock runs from the source tree DIR (an earlier
commit, e.g. ``git archive REV | tar -x -C DIR``), measured in the same rounds, for the
after/before ratios.

Prints, per mock and load, the medians of the rounds: requests/s, p50, p99, the mock's CPU
time per request (read from /proc, while serving and all-in) and its peak resident memory;
then cold/hot and after-restart/hot per round. The last lines are ``cold/hot at N connections: R``
and ``after restart/hot at N connections: R``. Run it with
``bench/run --cold`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from large_fixtures import generate
from procutil import cpu_seconds, mock_command, start_server, state_folder, status_value, wrk_load

HOT_ID = "PROV:user-000000"  # user 0 has a back: the same answer size as a cold id with one
COLD_LUA = """
local first = {first}
local span = {span}
n = first
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function request()
    local body = string.format('{{"contentId": "PROV:user-%06d"}}', span and first + (n - first) % span or n)
    n = n + 1
    return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
end
function done(summary, latency, requests)
    for _, thread in ipairs(threads) do io.write(string.format("ids issued: %d\\n", thread:get("n") - first)) end
end
"""


@dataclass
class Mock:
    name: str
    command: list[str]
    state: Path  # its state folder: the persistent cache is its cache/
    process: asyncio.subprocess.Process | None = None
    url: str = ""
    next_id: int = 1  # the next cold user; 0 is the hot one
    peak_mb: float = 0.0
    restarts: int = 0
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)


async def start(mock: Mock, args: argparse.Namespace, folder: Path, fresh: bool = True) -> None:
    """Start the mock; ``fresh``: asking ids from the first again, with an empty persistent cache."""
    if fresh:
        shutil.rmtree(mock.state / "cache", ignore_errors=True)
    mock.process, mock.url = await start_server(mock.command, args.server_cpu)
    if fresh:
        mock.next_id = 1
    await wrk_load(mock.url, args.connections, args.warmup, args.client_cpu, folder, HOT_ID)


async def stop(mock: Mock) -> None:
    if mock.process is not None:
        mock.peak_mb = max(mock.peak_mb, status_value(mock.process.pid, "VmHWM:") / 1024)
        mock.process.terminate()
        with contextlib.suppress(ProcessLookupError):
            await mock.process.wait()
        mock.process = None


async def idle_cpu(pid: int, limit: float = 300.0) -> float:
    """CPU seconds the process spends from now until it is idle (no clock tick in 0.3 s)."""
    started = last = cpu_seconds(pid)
    waited = 0.0
    while waited < limit:
        await asyncio.sleep(0.3)
        waited += 0.3
        now = cpu_seconds(pid)
        if now - last <= 0.01:
            return now - started
        last = now
    raise SystemExit(f"the mock was still busy {limit:g} s after the load")


async def measure(mock: Mock, load: str, seconds: float, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    assert mock.process is not None
    pid = mock.process.pid
    before = cpu_seconds(pid)
    if load == "hot":
        figures = await wrk_load(mock.url, args.connections, seconds, args.client_cpu, folder, HOT_ID)
        after = serving = cpu_seconds(pid)
    elif load == "cold":
        lua = COLD_LUA.format(first=mock.next_id, span="nil")
        figures = await wrk_load(mock.url, args.connections, seconds, args.client_cpu, folder, "", lua)
        serving = cpu_seconds(pid)
        after = serving + await idle_cpu(pid)
        mock.next_id += int(figures["issued"])
    else:  # after restart: the last cold pass's ids again, once each, in a process started since
        await stop(mock)
        await start(mock, args, folder, fresh=False)
        pid = mock.process.pid if mock.process else pid
        before = cpu_seconds(pid)
        first, last = 1, mock.next_id  # every id asked since the cache was last emptied
        span = last - first - args.connections  # the ids surely asked (not only in flight when it ended)
        # wrk runs for its whole duration (whole seconds): short enough that an id is asked twice
        # only if the range is shorter than a second at the hot id's speed
        hot = mock.runs["hot"][-1]["rps"] if mock.runs.get("hot") else 0.0
        seconds = max(1, min(int(seconds), int(0.9 * span / hot))) if hot else seconds
        lua = COLD_LUA.format(first=first, span=span)
        figures = await wrk_load(mock.url, args.connections, seconds, args.client_cpu, folder, "", lua)
        serving = cpu_seconds(pid)
        after = serving + await idle_cpu(pid)
        mock.next_id = max(mock.next_id, last)
        figures["requests"] = figures["rps"] * seconds
    requests = figures.get("requests") or figures["rps"] * seconds
    figures["cpu_us"] = (serving - before) / requests * 1e6
    figures["all_in_us"] = (after - before) / requests * 1e6
    return figures


async def ensure_ids(mock: Mock, args: argparse.Namespace, folder: Path) -> None:
    """Restart the mock when the users left may not last a cold measurement."""
    issued = [run["issued"] for run in mock.runs.get("cold", [])]
    needed = max(issued, default=args.users / 4) * 1.5 + args.connections
    if mock.next_id + needed > args.users:
        await stop(mock)
        mock.restarts += 1
        await start(mock, args, folder)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="measurements of each load")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measurement")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--cache-mb", type=int, default=64, help="cache.max_bytes in MB (64 is the default)")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="every user's files with bytes of their own (default: hard links to one image per side)",
    )
    parser.add_argument("--baseline", type=Path, help="a source tree of another version, measured alongside")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        made = generate(folder, args.users, back_every=2, distinct=args.distinct)
        files = "every file its own bytes" if args.distinct else "hard links to one image per side"
        print(f"generated {args.users} users (a front each, a back every second; {files}) in {made:.1f} s")
        (folder / "signing").mkdir()
        yaml = f"fixtures:\n  root: {folder / 'images'}\ncache:\n  max_bytes: {args.cache_mb * 1024 * 1024}\n"
        mocks = [Mock("mock", mock_command(folder, yaml), state_folder(folder))]
        if args.baseline is not None:
            # -m imports from the working folder first: run the baseline from its own tree
            command = ["env", "-C", str(args.baseline.resolve()), *mock_command(folder, yaml, "baseline.yaml")]
            mocks.append(Mock("baseline", command, state_folder(folder, "baseline.yaml")))
        try:
            for mock in mocks:
                await start(mock, args, folder)
                await measure(mock, "cold", args.warmup, args, folder)
            for index in range(args.rounds):
                for load in ("hot", "cold", "restart") if index % 2 == 0 else ("cold", "restart", "hot"):
                    for mock in mocks if index % 2 == 0 else mocks[::-1]:  # neither always measured first
                        if load == "cold":
                            await ensure_ids(mock, args, folder)
                        mock.runs.setdefault(load, []).append(await measure(mock, load, args.seconds, args, folder))
        finally:
            for mock in mocks:
                await stop(mock)
    report(mocks, args)


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def report(mocks: list[Mock], args: argparse.Namespace) -> None:
    rounds = f"{args.rounds} rounds x {args.seconds:g} s of each load"
    print(f"{args.connections} connections; {rounds}; medians of the rounds")
    header = f"{'server':<10}{'load':>8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>11}{'all-in':>8}"
    print(f"{header}{'peak RSS MB':>12}")
    for mock in mocks:
        for load in ("hot", "cold", "restart"):
            runs = mock.runs[load]
            print(
                f"{mock.name:<10}{load:>8}{median(runs, 'rps'):>8.0f}{median(runs, 'p50') * 1000:>8.1f}"
                f"{median(runs, 'p99') * 1000:>8.1f}{median(runs, 'cpu_us'):>11.0f}{median(runs, 'all_in_us'):>8.0f}"
                f"{mock.peak_mb:>12.0f}"
            )
    for mock in mocks:
        pairs = list(zip(mock.runs["cold"], mock.runs["hot"], strict=True))
        each = ", ".join(f"{c['rps'] / h['rps']:.2f}" for c, h in pairs)
        ratio = statistics.median(c["rps"] / h["rps"] for c, h in pairs)
        cpu = statistics.median(c["cpu_us"] / h["cpu_us"] for c, h in pairs)
        all_in = statistics.median(c["all_in_us"] / h["cpu_us"] for c, h in pairs)
        restarts = f"; restarted {mock.restarts}x for fresh ids" if mock.restarts else ""
        print(
            f"{mock.name}: cold/hot {ratio:.2f} of the requests/s (rounds: {each}); cold CPU per request "
            f"{cpu:.1f}x hot's, {all_in:.1f}x all-in{restarts}"
        )
        pairs = list(zip(mock.runs["restart"], mock.runs["hot"], strict=True))
        each = ", ".join(f"{r['rps'] / h['rps']:.2f}" for r, h in pairs)
        ratio = statistics.median(r["rps"] / h["rps"] for r, h in pairs)
        cpu = statistics.median(r["cpu_us"] / h["cpu_us"] for r, h in pairs)
        print(
            f"{mock.name}: after restart/hot {ratio:.2f} of the requests/s (rounds: {each}); "
            f"CPU per request {cpu:.1f}x hot's"
        )
    if len(mocks) == 2:
        after, before = mocks
        for load in ("hot", "cold", "restart"):
            pairs = list(zip(after.runs[load], before.runs[load], strict=True))
            each = ", ".join(f"{a['rps'] / b['rps']:.2f}" for a, b in pairs)
            rps = statistics.median(a["rps"] / b["rps"] for a, b in pairs)
            cpu = statistics.median(a["cpu_us"] / b["cpu_us"] for a, b in pairs)
            print(f"after/before, {load}: {rps:.2f} of the requests/s (rounds: {each}), {cpu:.2f}x the CPU per request")
    mock = mocks[0]
    print(f"cold p99: {median(mock.runs['cold'], 'p99') * 1000:.1f} ms")
    ratio = statistics.median(c["rps"] / h["rps"] for c, h in zip(mock.runs["cold"], mock.runs["hot"], strict=True))
    print(f"cold/hot at {args.connections} connections: {ratio:.2f}")
    ratio = statistics.median(r["rps"] / h["rps"] for r, h in zip(mock.runs["restart"], mock.runs["hot"], strict=True))
    print(f"after restart/hot at {args.connections} connections: {ratio:.2f}")


if __name__ == "__main__":
    if sys.platform != "linux":
        raise SystemExit("this benchmark reads /proc and pins with taskset: Linux only")
    asyncio.run(main())
