"""Fault rules in config.yaml are reloaded without a restart; a bad edit keeps the last good ones."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from content_provider.admin import reload as app_module
from content_provider.app import create_app
from content_provider.config.parse import load_settings

from .helpers import DOC_CARD, get_content

RULE_503 = """
faults:
  rules:
    - name: down
      outcome: 503
"""
RULE_418 = """
faults:
  rules:
    - name: teapot
      outcome: 418
"""


@pytest.fixture
def config_file(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> Callable[[str], Path]:
    path = tmp_path / "config.yaml"

    def write(faults: str) -> Path:
        text = f"fixtures:\n  root: {fixture_root}\nsigning:\n  directory: {signing_dir}\n{faults}"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # as an editor saving atomically would
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a distinct mtime
        return path

    return write


@pytest.fixture
def start(aiohttp_client: Any) -> Callable[[Path], Awaitable[TestClient[Any, Any]]]:
    async def run(path: Path) -> TestClient[Any, Any]:
        settings = load_settings(path, {}).replace(revalidate_seconds=0.0)
        server = TestServer(create_app(settings, {}))
        client: TestClient[Any, Any] = await aiohttp_client(server)
        return client

    return run


async def wait_for_status(client: TestClient[Any, Any], status: int, seconds: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if (await get_content(client, DOC_CARD)).status == status:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_edited_rules_take_effect_without_restart(
    config_file: Callable[[str], Path],
    start: Callable[[Path], Awaitable[TestClient[Any, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(app_module, "CONFIG_POLL_SECONDS", 0.05)
    client = await start(config_file(RULE_503))
    assert (await get_content(client, DOC_CARD)).status == 503
    config_file(RULE_418)
    assert await wait_for_status(client, 418)
    config_file("")
    assert await wait_for_status(client, 200)


async def test_bad_edit_keeps_the_last_good_config(
    config_file: Callable[[str], Path],
    start: Callable[[Path], Awaitable[TestClient[Any, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(app_module, "CONFIG_POLL_SECONDS", 0.05)
    client = await start(config_file(RULE_503))
    with caplog.at_level(logging.ERROR, logger="content_provider"):
        config_file("faults:\n  rules:\n    - outcome: explode\n")
        for _ in range(200):
            if "config not reloaded" in caplog.text:
                break
            await asyncio.sleep(0.05)
    assert "config not reloaded, keeping the last good one" in caplog.text
    assert "faults.rules[0].outcome: unknown outcome 'explode'" in caplog.text
    assert (await get_content(client, DOC_CARD)).status == 503
    config_file("faults: [unclosed\n")
    await asyncio.sleep(0.3)
    assert (await get_content(client, DOC_CARD)).status == 503


async def test_reload_says_which_changes_need_a_restart(
    config_file: Callable[[str], Path],
    start: Callable[[Path], Awaitable[TestClient[Any, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = config_file(RULE_503)
    client = await start(path)
    path.write_text(path.read_text() + "server:\n  port: 9999\n")
    with caplog.at_level(logging.WARNING, logger="content_provider"):
        assert await app_module.reload_config(client.app, path) is None
    assert "config changes to port" in caplog.text
    assert "take effect after a restart" in caplog.text
