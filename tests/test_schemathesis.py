"""Property-based: Schemathesis, with every check in every phase (examples, coverage, fuzzing and
stateful: create, read, delete along the document's links), against a real server on a free
loopback port, as ``schemathesis.toml`` and docs/contract.md say to run it. Any failure fails.

It fails when the document allows a request the server refuses, or refuses one the server takes,
when an answer is outside its schema or its status undocumented, on any 5xx, and when a resource
is still there after its DELETE."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from .test_cli import REPOSITORY, serving, write_config

CONFIG = REPOSITORY / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
RUN_TIMEOUT = 540.0


@pytest.mark.timeout(RUN_TIMEOUT + 60)
async def test_every_operation_passes_every_check(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, "logging:\n  access_log: false\n")
    async with serving(config, tmp_path) as server:
        run = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json", "--no-color",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        )  # fmt: skip
        output, _ = await asyncio.wait_for(run.communicate(), RUN_TIMEOUT)
    report = output.decode(errors="replace")
    assert run.returncode == 0, report[-30000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-30000:]
    assert "No issues found" in report, report[-30000:]
    # nothing went wrong inside either (aiohttp's own "Error handling request" for a header with a NUL
    # in it, answered 400 before any route, is its parser's, not ours)
    assert not [line for line in server.log if "ERROR content_provider" in line]
