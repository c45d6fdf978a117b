"""Every number read from a request, a query, the environment or config.yaml is ASCII digits.

``str.isdigit()`` also accepts ``²``, which ``int()`` refuses: such input once gave 500
``internal_error`` on the wire and a traceback at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from content_provider.admin import reload as app_reload
from content_provider.config.parse import load_settings, parse_settings
from content_provider.core.reader import ConfigError, ascii_int

from .helpers import DOC_CARD, MakeClient, faults, get_content

# superscript two, Arabic-Indic one two, mixed, a Roman numeral, fullwidth one zero
ODD_DIGITS = ["\u00b2", "\u0661\u0662", "3\u00b2", "\u216b", "\uff11\uff10"]


@pytest.mark.parametrize("text", ODD_DIGITS)
def test_only_ascii_digits_make_a_number(text: str) -> None:
    assert ascii_int(text) is None
    assert ascii_int("0042") == 42


@pytest.mark.parametrize("directive", ["fault=²", "bandwidth=²", "seq=²,ok", "fault=status:²", "bandwidth=١٢"])
async def test_odd_digits_in_a_directive_are_a_clear_400(make_client: MakeClient, directive: str) -> None:
    client = await make_client(faults=faults(content_id_directives=True))
    response = await get_content(client, f"PROV:bob;{directive}")
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_directive"
    assert "internal" not in body["message"]


@pytest.mark.parametrize("limit", ["\u00b2", "\u0661", "0", "-1", "1.5"])
async def test_odd_digits_in_the_journal_limit_are_a_clear_400(make_client: MakeClient, limit: str) -> None:
    client = await make_client()
    response = await client.get("/__admin/requests", params={"limit": limit})
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_query"


async def test_odd_digits_in_an_admin_rule_are_a_clear_400(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post("/__admin/rules", json={"outcome": "²"})
    assert response.status == 400
    assert "unknown outcome '²'" in (await response.json())["message"]


@pytest.mark.parametrize("name", ["PORT", "WORKERS"])
def test_odd_digits_in_the_environment_name_the_variable(name: str, fixture_root: Path) -> None:
    environ = {f"CONTENT_PROVIDER_{name}": "\uff18\uff10"}
    with pytest.raises(ConfigError, match=f"CONTENT_PROVIDER_{name}: expected a whole number"):
        parse_settings({"fixtures": {"root": str(fixture_root)}}, Path("/"), environ)


async def test_odd_digits_in_config_at_start_are_a_config_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text('faults:\n  rules:\n    - outcome: "²"\n', encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    text = err.decode()
    assert "config error" in text
    assert "faults.rules[0].outcome: unknown outcome '²'" in text
    assert "Traceback" not in text


async def test_the_config_watcher_survives_a_bad_file_and_reloads_the_next_good_one(
    tmp_path: Path,
    fixture_root: Path,
    signing_dir: Path,
    aiohttp_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiohttp.test_utils import TestServer

    from content_provider.app import create_app

    monkeypatch.setattr(app_reload, "CONFIG_POLL_SECONDS", 0.05)
    path = tmp_path / "config.yaml"
    head = f"fixtures:\n  root: {fixture_root}\nsigning:\n  directory: {signing_dir}\n"

    def write(faults_text: str, bump: int) -> None:
        path.write_text(head + faults_text, encoding="utf-8")
        import os

        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump * 1_000_000))

    write("faults:\n  rules:\n    - outcome: 503\n", 0)
    settings = load_settings(path, {}).replace(revalidate_seconds=0.0)
    client: TestClient[Any, Any] = await aiohttp_client(TestServer(create_app(settings, {})))
    assert (await get_content(client, DOC_CARD)).status == 503

    async def until(check: Callable[[], Awaitable[bool]]) -> bool:
        for _ in range(200):
            if await check():
                return True
            await asyncio.sleep(0.05)
        return False

    async def logged() -> bool:
        return "unknown outcome '²'" in caplog.text

    with caplog.at_level(logging.ERROR, logger="content_provider"):
        write('faults:\n  rules:\n    - outcome: "²"\n', 5)
        assert await until(logged)
    assert (await get_content(client, DOC_CARD)).status == 503  # the last good rules stay
    write("faults:\n  rules:\n    - outcome: 418\n", 10)

    async def teapot() -> bool:
        status: int = (await get_content(client, DOC_CARD)).status
        return status == 418

    assert await until(teapot), "the watcher stopped after the bad file"
