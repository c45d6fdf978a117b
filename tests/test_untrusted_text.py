"""Text a client or a terminal sends that is not what it seems: lone surrogates, bytes that are
not UTF-8, escape sequences, characters the font cannot draw (#23 items 12 and 13)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from content_provider.core.text import printable

from .helpers import MakeClient


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return answer


async def test_a_generated_default_for_an_id_with_a_lone_surrogate_is_served(make_client: MakeClient) -> None:
    client = await make_client(default_generated=True)
    body = b'{"contentId": "PROV:\\ud800x"}'  # valid JSON: a lone surrogate escaped
    response = await client.post("/getcontent", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 200, await response.text()
    assert response.headers["X-Content-Provider-Resolved"] == "generated %5Cud800x"
    assert [e["key"] for e in (await response.json())["data"]] == ["front", "back"]


async def test_a_bearer_token_that_is_not_utf8_is_a_401_not_a_500(make_client: MakeClient) -> None:
    client = await make_client(admin_token="t" * 32)
    assert client.port is not None
    answer = await _raw(
        client.port,
        b"GET /__admin/rules HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b'"unauthorized"' in answer


def test_explain_shows_bad_bytes_and_escape_sequences_instead_of_acting_on_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "content_provider", "explain", "PROV:\udcff\x1b[31mred"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"\x1b" not in done.stdout
    assert b"Traceback" not in done.stderr
    assert b"PROV:\\udcff\\x1b[31mred: card image" in done.stdout


def test_printable_escapes_what_would_act_or_not_show() -> None:
    assert printable("plain é, 日本") == "plain é, 日本"
    assert printable("a\x1b[2J\x07\udcff") == "a\\x1b[2J\\x07\\udcff"
    assert printable("café 😀 日", drawable=True) == "café \\U0001f600 \\u65e5"
