"""Starting a server process for a benchmark or soak run, and keeping its log pipe drained."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import sys
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
SERVING = re.compile(rb"serving POST (http://\S+)/getcontent")
_DRAINS: set[asyncio.Task[None]] = set()  # the event loop keeps only weak references to tasks


def add_load_arguments(parser: argparse.ArgumentParser, rounds: int, seconds: float, warmup: float) -> None:
    """The knobs every pinned load test has: rounds, their length, the warm-up, the event loop, the CPUs."""
    parser.add_argument("--rounds", type=int, default=rounds, help="measurements of each server")
    parser.add_argument("--seconds", type=float, default=seconds, help="length of one measurement")
    parser.add_argument("--warmup", type=float, default=warmup)
    parser.add_argument("--event-loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")


async def start_server(command: list[str], cpu: str | None = None) -> tuple[asyncio.subprocess.Process, str]:
    """Run ``command`` (pinned to ``cpu`` with taskset when there is one) until it says where it serves."""
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    process = await asyncio.create_subprocess_exec(*command, cwd=ROOT, stderr=asyncio.subprocess.PIPE)
    assert process.stderr is not None
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        if not line:
            raise SystemExit("the server exited before serving")
        match = SERVING.search(line)
        if match:
            # a full pipe would block the server; the set keeps the task from being collected mid-run
            task = asyncio.get_running_loop().create_task(_drain(process.stderr))
            _DRAINS.add(task)
            task.add_done_callback(_DRAINS.discard)
            return process, match.group(1).decode()


async def stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then wait for it to exit (it may have gone already)."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
        await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{{"contentId": "{content_id}"}}'
wrk.headers["Content-Type"] = "application/json"
"""
WRK_LINE = re.compile(r"^\s+(50|90|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
WRK_MAX = re.compile(r"Latency\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)")
WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


WRK_ISSUED = re.compile(r"^ids issued: (\d+)$", re.MULTILINE)


async def wrk_load(
    url: str, concurrency: int, seconds: float, cpu: str | None, folder: Path, content_id: str, lua: str | None = None
) -> dict[str, float]:
    """Requests/s and latency percentiles (seconds) from wrk, which adds little of its own.

    ``lua``, when given, is the wrk script instead of one that posts ``content_id``; a line
    ``ids issued: N`` it prints at the end is returned as ``issued``."""
    script = folder / "post.lua"
    script.write_text(lua or WRK_SCRIPT.format(content_id=content_id), encoding="utf-8")
    command = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    command.append(f"{url}/getcontent")
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    text = out.decode()
    figures = {f"p{q}": float(v) * UNITS[u] for q, v, u in WRK_LINE.findall(text)}
    top = WRK_MAX.search(text)
    rate = WRK_RATE.search(text)
    if len(figures) != 3 or top is None or rate is None or "Non-2xx" in text:
        raise SystemExit(f"could not read wrk's output:\n{text}")
    figures["max"] = float(top.group(1)) * UNITS[top.group(2)]
    figures["rps"] = float(rate.group(1))
    issued = WRK_ISSUED.search(text)
    if issued is not None:
        figures["issued"] = float(issued.group(1))
    return figures


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far; Linux."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_value(pid: int, key: str) -> int:
    """A number from /proc/<pid>/status, e.g. ``VmRSS:`` in kB; 0 when it is not there."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def resident_mb(pid: int) -> float:
    return status_value(pid, "VmRSS:") / 1024


def mock_command(folder: Path, yaml: str = "", name: str = "config.yaml") -> list[str]:
    """``serve`` on a free port with a config in ``folder``: its own signing key, no access log,
    and the YAML given (which must not repeat the ``signing`` or ``logging`` sections); its state
    folder (the persistent cache) is :func:`state_folder`, never the home folder's."""
    config = folder / name
    config.write_text(
        f"signing:\n  directory: {folder / 'signing'}\nlogging:\n  access_log: false\n{yaml}", encoding="utf-8"
    )
    state = f"CONTENT_PROVIDER_STATE_DIR={state_folder(folder, name)}"
    return ["env", state, sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0"]


def state_folder(folder: Path, name: str = "config.yaml") -> Path:
    """The state folder of the mock :func:`mock_command` runs with the config ``name``."""
    return folder / f"{Path(name).stem}-state"


async def start_listening(
    command: list[str], url: str, cpu: str | None, seconds: float = 60.0
) -> asyncio.subprocess.Process:
    """Run ``command`` (pinned like :func:`start_server`) until a POST to ``url`` answers 200."""
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu, *command]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as session:
        while True:
            if process.returncode is not None:
                raise SystemExit(f"{command[0]} exited with status {process.returncode} before serving")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.post(url, data=b"{}") as response:
                    if response.status == 200:
                        return process
            if asyncio.get_running_loop().time() > deadline:
                process.kill()
                raise SystemExit(f"{' '.join(command)} did not answer {url} within {seconds:g} s")
            await asyncio.sleep(0.2)
