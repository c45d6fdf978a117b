"""Starting a server process for a benchmark or soak run, and keeping its log pipe drained."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVING = re.compile(rb"serving POST (http://\S+)/getcontent")


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
            asyncio.get_running_loop().create_task(_drain(process.stderr))  # a full pipe would block it
            return process, match.group(1).decode()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
