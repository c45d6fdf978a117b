"""``serve --workers 2``: both processes serve the port and share one state (a private redis-server).

Each request here goes on a new connection, so the kernel spreads them over the workers;
with 40 connections the chance that one worker got none is 2 in 2**40.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from content_provider.client import AsyncAdminClient
from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError
from content_provider.fixtures.generate import card_jpeg

from .helpers import DOC_CARD
from .test_cli import Server, serving, write_config

FRESH = 40


@pytest.fixture
async def workers(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> AsyncIterator[Server]:
    async with serving(write_config(tmp_path, fixture_root, signing_dir), tmp_path, "--workers", "2") as running:
        yield running


def gone(pid: int) -> bool:
    """The process has exited and was reaped by its parent (the supervisor)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def fresh(url: str, method: str, path: str, **kwargs: Any) -> list[tuple[int, dict[str, str], Any]]:
    """``FRESH`` requests, each on its own connection: (status, headers, JSON) each."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> tuple[int, dict[str, str], Any]:
            async with session.request(method, url + path, **kwargs) as response:
                return response.status, dict(response.headers), await response.json(content_type=None)

        return [await one() for _ in range(FRESH)]


async def test_two_workers_share_the_port_and_every_admin_change(workers: Server) -> None:
    url = workers.url
    assert "with 2 workers" in "".join(workers.log)
    seen = {answer["worker"] for _, _, answer in await fresh(url, "GET", "/healthz")}
    assert seen == {0, 1}
    async with AsyncAdminClient(url) as admin:
        await admin.clear_requests()
        # a rule added through one worker shapes the answers of both
        await admin.add_rule(name="down", match={"id": DOC_CARD}, outcome=503)
        answers = await fresh(url, "POST", "/getcontent", json={"contentId": DOC_CARD})
        assert {status for status, _, _ in answers} == {503}
        # the journal read through one worker holds what both answered
        assert await admin.request_count(DOC_CARD) == FRESH
        assert len(await admin.requests(DOC_CARD)) == FRESH
        assert len(await admin.requests(DOC_CARD, limit=5)) == 5
        # an upload through one worker is served by both at once (each had remembered "default")
        before = await fresh(url, "POST", "/getcontent", json={"contentId": "PROV:zed"})
        assert {headers["X-Content-Provider-Resolved"] for _, headers, _ in before} == {"default"}
        await admin.put_image("front", card_jpeg("zed"), user="zed")
        after = await fresh(url, "POST", "/getcontent", json={"contentId": "PROV:zed"})
        assert {headers["X-Content-Provider-Resolved"] for _, headers, _ in after} == {"user zed"}
        # trigger counts are exact across the workers (they share a private redis-server)
        await admin.add_rule(name="twice", match={"id": "PROV:twice"}, first=2, outcome=503)
        counted = await fresh(url, "POST", "/getcontent", json={"contentId": "PROV:twice"})
        assert [status for status, _, _ in counted] == [503, 503] + [200] * (FRESH - 2)
        # /metrics through either worker counts every worker's requests, once
        async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
            metrics = await response.text()
        served = re.findall(r'content_provider_requests_total\{[^}]*use_case="PROV"[^}]*\} (\S+)', metrics)
        assert sum(float(value) for value in served) == 4 * FRESH
        # reset through one worker: the rule is gone everywhere, and so is the journal
        await admin.reset()
        answers = await fresh(url, "POST", "/getcontent", json={"contentId": DOC_CARD})
        assert {status for status, _, _ in answers} == {200}
        assert await admin.request_count() == FRESH
    workers.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(workers.process.wait(), 30) == 0
    log = await workers.full_log()
    assert "stopping 2 workers" in log
    pids = re.search(r"pids (\d+), (\d+)", log)
    assert pids is not None
    assert all(gone(int(pid)) for pid in pids.groups())


async def test_a_worker_that_dies_stops_the_rest(workers: Server) -> None:
    pids = re.search(r"pids (\d+), (\d+)", "".join(workers.log))
    assert pids is not None
    os.kill(int(pids.group(1)), signal.SIGKILL)
    assert await asyncio.wait_for(workers.process.wait(), 30) == 1
    log = await workers.full_log()
    assert f"worker pid {pids.group(1)} exited" in log
    assert gone(int(pids.group(2)))


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"server": {"workers": 0}}, {}, "server.workers"),
        ({}, {"CONTENT_PROVIDER_WORKERS": "many"}, "CONTENT_PROVIDER_WORKERS"),
        ({}, {"CONTENT_PROVIDER_WORKERS": "65"}, "CONTENT_PROVIDER_WORKERS"),
    ],
)
def test_bad_worker_counts_name_the_setting(data: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(data, Path.cwd(), env)


def test_workers_from_config_and_environment() -> None:
    assert parse_settings({}, Path.cwd(), {}).workers == 1
    assert parse_settings({"server": {"workers": 3}}, Path.cwd(), {}).workers == 3
    assert parse_settings({"server": {"workers": 3}}, Path.cwd(), {"CONTENT_PROVIDER_WORKERS": "4"}).workers == 4


@pytest.mark.parametrize("second", [["--workers", "2"], []])
async def test_a_port_a_worker_group_holds_is_refused_to_any_other_server(
    workers: Server, tmp_path: Path, fixture_root: Path, signing_dir: Path, second: list[str]
) -> None:
    """Two groups once both started on one port (SO_REUSEPORT) and the kernel split the traffic."""
    port = workers.url.rsplit(":", 1)[1]
    (tmp_path / "second").mkdir()
    config = write_config(tmp_path / "second", fixture_root, signing_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", port, *second,
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert "address already in use" in err.decode().lower()
    assert "Traceback" not in err.decode()
    seen = {answer["worker"] for _, _, answer in await fresh(workers.url, "GET", "/healthz")}
    assert seen == {0, 1}  # the first group still has the port to itself


async def test_a_worker_group_refuses_a_port_one_process_holds(
    tmp_path: Path, fixture_root: Path, signing_dir: Path
) -> None:
    async with serving(write_config(tmp_path, fixture_root, signing_dir), tmp_path) as server:
        await refused_on(server.url.rsplit(":", 1)[1], tmp_path, fixture_root, signing_dir)


async def refused_on(port: str, tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    (tmp_path / "second").mkdir()
    config = write_config(tmp_path / "second", fixture_root, signing_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", port, "--workers", "2",
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert "address already in use" in err.decode().lower()


async def test_workers_stop_when_their_supervisor_is_killed(workers: Server) -> None:
    """Left behind, they would hold the port (and the log pipe) until someone found them."""
    host, port = workers.url.removeprefix("http://").rsplit(":", 1)
    workers.process.kill()
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection(host, int(port))
        except OSError:
            break  # nobody accepts on the port any more
        writer.close()
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the workers still accept connections 10 s after their supervisor was killed")
    log = await asyncio.wait_for(workers.full_log(), 10)
    # Linux sends them SIGTERM (PR_SET_PDEATHSIG); elsewhere they notice their parent is gone
    assert "shutting down" in log or "the supervisor (pid" in log


async def test_workers_without_redis_say_what_to_install(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0", "--workers", "2",
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE, env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert "install redis-server" in err.decode()
    assert "Traceback" not in err.decode()
