"""A large fixture set: start-up lists folders but reads no image; a cold id reads its own file only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from content_provider.app import STARTUP_CHECK_FOLDERS
from content_provider.config.parse import parse_settings
from content_provider.conformance.jpeg import jpeg_problem
from content_provider.core.reader import ConfigError
from content_provider.fixtures.generate import card_jpeg
from content_provider.fixtures.store import STORE

from .helpers import MakeClient, get_content

USERS = STARTUP_CHECK_FOLDERS + 100


@pytest.fixture
def many_users(fixture_root: Path, tmp_path: Path) -> Path:
    """``USERS`` user folders, each with a front.jpg hard-linked to one small card."""
    source = tmp_path / "card.jpg"
    source.write_bytes(card_jpeg("many", size=(240, 151)))
    for n in range(USERS):
        folder = fixture_root / "users" / f"user-{n:05d}"
        folder.mkdir()
        os.link(source, folder / "front.jpg")
    return fixture_root


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every image the store checks (decodes), in order."""
    seen: list[int] = []

    def counting(data: bytes, **kwargs: Any) -> str | None:
        seen.append(len(data))
        return jpeg_problem(data, **kwargs)

    monkeypatch.setattr("content_provider.fixtures.checks.jpeg_problem", counting)
    return seen


async def test_start_up_with_a_large_set_reads_no_image(
    make_client: MakeClient, many_users: Path, decoded: list[int]
) -> None:
    client = await make_client(revalidate_seconds=3600)
    store = client.app[STORE]
    assert decoded == []
    assert store.stats.file_reads == 0
    response = await get_content(client, "PROV:user-00042")
    assert response.status == 200
    assert response.headers["X-Content-Provider-Resolved"] == "user user-00042"
    assert store.stats.file_reads == 1  # that user's front, nothing else
    await store.checks_done()  # checked after it was served
    assert len(decoded) == 1
    assert (await get_content(client, "PROV:user-00042")).status == 200
    assert store.stats.file_reads == 1


async def test_a_small_set_is_checked_at_start_up(make_client: MakeClient, decoded: list[int]) -> None:
    await make_client()
    assert len(decoded) >= 10  # every bundled image


async def test_check_at_startup_true_checks_a_large_set_too(
    make_client: MakeClient, many_users: Path, decoded: list[int]
) -> None:
    await make_client(check_at_startup=True)
    assert len(decoded) >= USERS


@pytest.mark.parametrize(("value", "expected"), [(None, "auto"), ("auto", "auto"), (True, True), (False, False)])
def test_check_at_startup_values(value: Any, expected: Any) -> None:
    data = {} if value is None else {"fixtures": {"check_at_startup": value}}
    assert parse_settings(data, Path.cwd(), {}).check_at_startup == expected


def test_check_at_startup_rejects_other_values() -> None:
    with pytest.raises(ConfigError, match=r"fixtures\.check_at_startup: expected true, false or auto"):
        parse_settings({"fixtures": {"check_at_startup": "sometimes"}}, Path.cwd(), {})
