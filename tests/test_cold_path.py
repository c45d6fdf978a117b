"""A cold id (a user asked for the first time) is read, checked and signed once, even under a burst.

Without ``fixtures.strict`` the image check runs behind serving, in the background, and a
problem is still reported; the backlog of files waiting for it and the memory of checked
files are bounded. Nothing here is timed: bench/cold.py measures the speed.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from content_provider import store as store_module
from content_provider.generate import card_jpeg
from content_provider.imagecheck import jpeg_problem
from content_provider.keys import STORE
from content_provider.signing import Signer

from .helpers import MakeClient, get_content


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Every file read, image decoded (checked) and payload signed by the store, by size."""
    seen: dict[str, list[int]] = {"read": [], "checked": [], "signed": []}
    read_file = store_module.read_file
    sign = Signer.sign

    def reading(path: str) -> bytes:
        data: bytes = read_file(path)
        seen["read"].append(len(data))
        return data

    def checking(data: bytes, **kwargs: Any) -> str | None:
        seen["checked"].append(len(data))
        return jpeg_problem(data, **kwargs)

    def signing(self: Signer, payload: bytes, **header: Any) -> str:
        seen["signed"].append(len(payload))
        return sign(self, payload, **header)

    monkeypatch.setattr("content_provider.store.read_file", reading)
    monkeypatch.setattr("content_provider.store.jpeg_problem", checking)
    monkeypatch.setattr(Signer, "sign", signing)
    return seen


def add_user(root: Path, name: str, back: bool = True) -> None:
    folder = root / "users" / name
    folder.mkdir()
    (folder / "front.jpg").write_bytes(card_jpeg(f"{name} front"))
    if back:
        (folder / "back.jpg").write_bytes(card_jpeg(f"{name} back"))


def square_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 800), "blue").save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("strict", [False, True])
async def test_a_cold_id_is_read_checked_and_signed_once_under_a_burst(
    make_client: MakeClient, fixture_root: Path, counted: dict[str, list[int]], strict: bool
) -> None:
    client = await make_client(revalidate_seconds=3600, strict=strict)
    add_user(fixture_root, "newcomer")  # after start-up, so the start-up check has not seen it
    for seen in counted.values():
        seen.clear()  # what the start-up check of the bundled images did
    store = client.app[STORE]
    responses = await asyncio.gather(*(get_content(client, "PROV:newcomer") for _ in range(32)))
    assert {r.status for r in responses} == {200}
    assert len({await r.read() for r in responses}) == 1
    await store.checks_done()
    for _ in range(5):
        assert (await get_content(client, "PROV:newcomer")).status == 200
    await store.checks_done()
    assert len(counted["read"]) == 2  # front and back
    assert len(counted["checked"]) == 2
    assert len(counted["signed"]) == 1  # the back
    assert store.stats.builds == 1
    assert store.stats.checks == 2
    assert store.problems == {}


async def test_a_problem_is_reported_after_serving_and_refused_under_strict(
    make_client: MakeClient, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_user(fixture_root, "squared", back=False)
    (fixture_root / "users" / "squared" / "front.jpg").write_bytes(square_jpeg())
    relaxed = await make_client(check_at_startup=False)
    with caplog.at_level(logging.WARNING, logger="content_provider"):
        assert (await get_content(relaxed, "PROV:squared")).status == 200
        await relaxed.app[STORE].checks_done()
    assert "users/squared/front.jpg: aspect ratio 800x800" in caplog.text
    health = await (await relaxed.get("/healthz")).json()
    assert [p["path"] for p in health["fixture_problems"]] == ["users/squared/front.jpg"]
    fixtures = await (await relaxed.get("/__admin/fixtures")).json()
    assert [p["path"] for p in fixtures["problems"]] == ["users/squared/front.jpg"]

    strict = await make_client(check_at_startup=False, strict=True)
    response = await get_content(strict, "PROV:squared")
    assert response.status == 500
    assert (await response.json())["error"] == "fixture_invalid"


async def test_a_full_backlog_makes_the_serving_thread_check(
    make_client: MakeClient, fixture_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-pressure: with no room to wait, a file is checked before its answer is served."""
    monkeypatch.setattr("content_provider.store.CHECK_BACKLOG", 0)
    client = await make_client(revalidate_seconds=3600)
    add_user(fixture_root, "squared", back=False)
    (fixture_root / "users" / "squared" / "front.jpg").write_bytes(square_jpeg())
    assert (await get_content(client, "PROV:squared")).status == 200
    assert "users/squared/front.jpg" in {
        p["path"] for p in (await (await client.get("/healthz")).json())["fixture_problems"]
    }
    assert client.app[STORE]._unchecked == {}


async def test_checked_files_are_remembered_within_a_bound(
    make_client: MakeClient, fixture_root: Path, monkeypatch: pytest.MonkeyPatch, counted: dict[str, list[int]]
) -> None:
    monkeypatch.setattr("content_provider.store.CHECKED_ENTRIES", 5)
    client = await make_client(revalidate_seconds=3600, check_at_startup=False)
    store = client.app[STORE]
    for n in range(12):
        add_user(fixture_root, f"user-{n}", back=False)
        assert (await get_content(client, f"PROV:user-{n}")).status == 200
        await store.checks_done()
    assert len(counted["checked"]) == 12
    assert len(store._checked) == 5
