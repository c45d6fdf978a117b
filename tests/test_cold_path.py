"""A cold id (a user asked for the first time) is read, checked and signed once, even under a burst.

Without ``fixtures.strict`` the image check runs behind serving, in the background, and a
problem is still reported; the backlog of files waiting for it and the memory of checked
files are bounded. Nothing here is timed: bench/cold.py measures the speed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from PIL import Image

from content_provider.config.settings import SETTINGS
from content_provider.conformance.jpeg import jpeg_problem
from content_provider.core.contract import parse_content_id
from content_provider.fixtures import build as build_module
from content_provider.fixtures.answers import FixtureError
from content_provider.fixtures.generate import card_jpeg
from content_provider.fixtures.store import STORE
from content_provider.signing.jws import Signer, verify_back

from .helpers import MakeClient, get_content


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Every file read, image decoded (checked) and payload signed by the store, by size."""
    seen: dict[str, list[int]] = {"read": [], "checked": [], "signed": []}
    read_file = build_module.read_file
    sign = Signer.sign_compact

    def reading(path: str) -> bytes:
        data: bytes = read_file(path)
        seen["read"].append(len(data))
        return data

    def checking(data: bytes, **kwargs: Any) -> str | None:
        seen["checked"].append(len(data))
        return jpeg_problem(data, **kwargs)

    def signing(self: Signer, payload: bytes, digest: bytes | None = None) -> bytes:
        seen["signed"].append(len(payload))
        return sign(self, payload, digest)

    monkeypatch.setattr("content_provider.fixtures.build.read_file", reading)
    monkeypatch.setattr("content_provider.fixtures.checks.jpeg_problem", checking)
    monkeypatch.setattr(Signer, "sign_compact", signing)
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
    monkeypatch.setattr("content_provider.fixtures.checks.CHECK_BACKLOG", 0)
    client = await make_client(revalidate_seconds=3600)
    add_user(fixture_root, "squared", back=False)
    (fixture_root / "users" / "squared" / "front.jpg").write_bytes(square_jpeg())
    assert (await get_content(client, "PROV:squared")).status == 200
    assert "users/squared/front.jpg" in {
        p["path"] for p in (await (await client.get("/healthz")).json())["fixture_problems"]
    }
    assert client.app[STORE].checks.backlog == {}


async def test_checked_files_are_remembered_within_a_bound(
    make_client: MakeClient, fixture_root: Path, monkeypatch: pytest.MonkeyPatch, counted: dict[str, list[int]]
) -> None:
    monkeypatch.setattr("content_provider.fixtures.checks.CHECKED_ENTRIES", 5)
    client = await make_client(revalidate_seconds=3600, check_at_startup=False)
    store = client.app[STORE]
    for n in range(12):
        add_user(fixture_root, f"user-{n}", back=False)
        assert (await get_content(client, f"PROV:user-{n}")).status == 200
        await store.checks_done()
    assert len(counted["checked"]) == 12
    assert len(store.checks.results) == 5


@pytest.fixture
def key_operations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every private-key operation of the signing algorithm (RS256 by default), by input size."""
    algorithm = type(jws.JWSRegistry.algorithms["RS256"])
    sign = algorithm.sign
    done: list[int] = []

    def signing(self: Any, msg: bytes, key: Any) -> bytes:
        done.append(len(msg))
        result: bytes = sign(self, msg, key)
        return result

    monkeypatch.setattr(algorithm, "sign", signing)
    return done


@pytest.mark.parametrize("strict", [False, True])
async def test_users_with_the_same_images_get_them_decoded_and_signed_once(
    make_client: MakeClient,
    fixture_root: Path,
    counted: dict[str, list[int]],
    key_operations: list[int],
    strict: bool,
) -> None:
    """A fixture set is often one card copied into every user's folder: each copy is read and
    served, and its check result is recorded for its own path, but the bytes are decoded once and
    the back signed once; every client still gets a back that verifies against the JWKS."""
    client = await make_client(revalidate_seconds=3600, check_at_startup=False, strict=strict)
    front, back = card_jpeg("copied front"), card_jpeg("copied back")
    names = [f"copy-{n}" for n in range(6)]
    for name in names:
        folder = fixture_root / "users" / name
        folder.mkdir()
        (folder / "front.jpg").write_bytes(front)
        (folder / "back.jpg").write_bytes(back)
    responses = await asyncio.gather(*(get_content(client, f"PROV:{name}") for name in names for _ in range(3)))
    assert {r.status for r in responses} == {200}
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    for response in responses:
        served = {element["key"]: element["data"] for element in (await response.json())["data"]}
        assert base64.b64decode(served["front"]) == front
        assert verify_back(served["back"], jwks)[1] == back
    store = client.app[STORE]
    await store.checks_done()
    assert len(counted["read"]) == 12  # each user's own two files
    assert len(counted["checked"]) == 2  # the two images, whichever folders hold them
    assert len(key_operations) == 1  # the one back
    assert store.stats.checks == 12
    assert store.problems == {}


async def test_a_problem_in_copied_images_is_reported_for_every_copy(
    make_client: MakeClient, fixture_root: Path, counted: dict[str, list[int]]
) -> None:
    client = await make_client(revalidate_seconds=3600, check_at_startup=False)
    for n in range(3):
        add_user(fixture_root, f"square-{n}", back=False)
        (fixture_root / "users" / f"square-{n}" / "front.jpg").write_bytes(square_jpeg())
    for n in range(3):
        assert (await get_content(client, f"PROV:square-{n}")).status == 200
    await client.app[STORE].checks_done()
    assert len(counted["checked"]) == 1
    health = await (await client.get("/healthz")).json()
    assert sorted(p["path"] for p in health["fixture_problems"]) == [f"users/square-{n}/front.jpg" for n in range(3)]


async def test_cold_ids_go_in_batches_of_a_bounded_size(
    make_client: MakeClient, fixture_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("content_provider.fixtures.cold.COLD_BATCH", 4)
    client = await make_client(revalidate_seconds=3600, check_at_startup=False)
    store = client.app[STORE]
    sizes: list[int] = []
    make_all = store.cold._resolve_and_make_all

    def recording(keys: list[Any], check_now: bool) -> list[Any]:
        sizes.append(len(keys))
        made: list[Any] = make_all(keys, check_now)
        return made

    monkeypatch.setattr(store.cold, "_resolve_and_make_all", recording)
    for n in range(20):
        add_user(fixture_root, f"batched-{n}", back=False)
    responses = await asyncio.gather(*(get_content(client, f"PROV:batched-{n}") for n in range(20)))
    assert [r.headers["X-Content-Provider-Resolved"] for r in responses] == [f"user batched-{n}" for n in range(20)]
    assert sum(sizes) == 20
    assert max(sizes) <= 4


async def test_cold_ids_waiting_at_shutdown_are_told_not_left_hanging(
    make_client: MakeClient, fixture_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(revalidate_seconds=3600, check_at_startup=False)
    store = client.app[STORE]
    make_one = store.cold._resolve_and_make_one

    def slow(*args: Any) -> Any:
        time.sleep(0.3)  # in the build thread: the ids after the first wait in the queue meanwhile
        return make_one(*args)

    monkeypatch.setattr(store.cold, "_resolve_and_make_one", slow)
    monkeypatch.setattr("content_provider.fixtures.cold.COLD_BATCH", 1)
    for n in range(3):
        add_user(fixture_root, f"late-{n}", back=False)
    ids = [parse_content_id(f"PROV:late-{n}", client.app[SETTINGS].bare_ids) for n in range(3)]
    asked = [asyncio.ensure_future(store.answer(content_id)) for content_id in ids if content_id is not None]
    await asyncio.sleep(0.1)
    store.close()
    done, pending = await asyncio.wait(asked, timeout=5)
    assert not pending
    errors = [task.exception() for task in done if task.exception() is not None]
    assert errors
    told = {(error.code, error.status) for error in errors if isinstance(error, FixtureError)}
    assert told == {("shutting_down", 503)}
    assert all(isinstance(error, FixtureError) for error in errors)
