"""Bad fixtures are reported with path and reason; ``strict`` makes them fatal."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from content_provider.app import create_app
from content_provider.config.settings import Settings
from content_provider.conformance.jpeg import jpeg_problem
from content_provider.fixtures.answers import FixtureError
from content_provider.fixtures.generate import card_jpeg
from content_provider.fixtures.store import STORE

from .helpers import MakeClient, get_content, png_bytes


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "blue").save(out, "JPEG")
    return out.getvalue()


BAD = {
    "png": (png_bytes(), "not a JPEG"),
    "truncated": (card_jpeg("x")[:5000], "not a readable image"),
    "square": (jpeg_bytes((800, 800)), "aspect ratio 800x800"),
    "empty": (b"", "empty file"),
    "text": (b"hello, I am not an image", "not a readable image"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_jpeg_problem_names_the_reason(name: str) -> None:
    data, reason = BAD[name]
    problem = jpeg_problem(data, card=True, tolerance=0.01)
    assert problem is not None
    assert reason in problem


def test_good_images_pass_and_tolerance_is_relative() -> None:
    assert jpeg_problem(card_jpeg("x"), card=True, tolerance=0.01) is None
    assert jpeg_problem(jpeg_bytes((1200, 760)), card=True, tolerance=0.01) is None
    assert jpeg_problem(jpeg_bytes((1200, 800)), card=True, tolerance=0.01) is not None
    assert jpeg_problem(jpeg_bytes((300, 300)), card=False, tolerance=0.01) is None  # auth images: any shape


async def test_problems_reported_at_startup_and_in_healthz(
    make_client: MakeClient, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (fixture_root / "users" / "bob").mkdir()
    (fixture_root / "users" / "bob" / "front.jpg").write_bytes(png_bytes())
    (fixture_root / "orgs" / "globex" / "front.jpg").write_bytes(jpeg_bytes((800, 800)))
    with caplog.at_level(logging.WARNING, logger="content_provider"):
        client = await make_client()
    logged = caplog.text
    assert "users/bob/front.jpg: not a JPEG (Pillow reads it as PNG)" in logged
    assert "orgs/globex/front.jpg: aspect ratio 800x800" in logged
    health = await (await client.get("/healthz")).json()
    assert {p["path"] for p in health["fixture_problems"]} == {"users/bob/front.jpg", "orgs/globex/front.jpg"}


async def test_non_strict_serves_a_bad_fixture_and_reports_it_when_loaded(
    make_client: MakeClient, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    (fixture_root / "users" / "bob").mkdir()
    (fixture_root / "users" / "bob" / "front.jpg").write_bytes(jpeg_bytes((800, 800)))
    with caplog.at_level(logging.WARNING, logger="content_provider"):
        response = await get_content(client, "PROV:bob")
        assert response.status == 200
        await client.app[STORE].checks_done()  # served first, checked behind it
    assert "users/bob/front.jpg: aspect ratio 800x800" in caplog.text
    health = await (await client.get("/healthz")).json()
    problems = {p["path"]: p["reason"] for p in health["fixture_problems"]}
    assert "aspect ratio 800x800" in problems["users/bob/front.jpg"]


async def test_the_web_page_checks_an_image_not_checked_yet(make_client: MakeClient, fixture_root: Path) -> None:
    """The preview the web page shows does not wait for the background check: it checks then and there."""
    client = await make_client()
    (fixture_root / "users" / "bob").mkdir()
    (fixture_root / "users" / "bob" / "front.jpg").write_bytes(jpeg_bytes((800, 800)))
    response = await client.get("/__admin/preview", params={"contentId": "PROV:bob"})
    assert response.status == 200
    body = await response.json()
    assert body["served"] is True
    assert [p["path"] for p in body["problems"]] == ["users/bob/front.jpg"]
    assert "aspect ratio 800x800" in body["problems"][0]["reason"]


async def test_strict_refuses_to_start(settings: Settings, fixture_root: Path) -> None:
    (fixture_root / "default" / "front.jpg").write_bytes(card_jpeg("x")[:3000])
    runner = web.AppRunner(create_app(settings.replace(strict=True)))
    try:
        with pytest.raises(FixtureError, match=r"default/front.jpg: not a readable image"):
            await runner.setup()
    finally:
        await runner.cleanup()


async def test_strict_answers_500_for_a_fixture_broken_after_start(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client(strict=True)
    (fixture_root / "default" / "auth.jpg").write_bytes(png_bytes((300, 300)))
    response = await get_content(client, "AUTH:stranger")
    assert response.status == 500
    body = await response.json()
    assert body["error"] == "fixture_invalid"
    assert "default/auth.jpg: not a JPEG" in body["message"]


async def test_a_folder_in_place_of_an_image_counts_as_missing(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    target = fixture_root / "default" / "front.jpg"
    target.unlink()
    target.mkdir()  # a folder where a file should be: treated as missing
    response = await get_content(client, "PROV:stranger")
    assert response.status == 404


async def test_read_error_is_a_clear_500_not_a_crash(make_client: MakeClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await make_client()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("content_provider.fixtures.build.read_file", refuse)
    response = await get_content(client, "PROV:stranger")
    assert response.status == 500
    body = await response.json()
    assert body == {
        "error": "fixture_unreadable",
        "message": "cannot read fixture default/front.jpg: Permission denied",
    }
    monkeypatch.undo()
    assert (await get_content(client, "PROV:stranger")).status == 200


async def test_an_unreadable_fixture_folder_is_a_clear_500_per_request(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("content_provider.fixtures.folder.os.stat", refuse)
    for _ in range(2):
        response = await get_content(client, "PROV:stranger")
        assert response.status == 500
        assert await response.json() == {
            "error": "fixture_unreadable",
            "message": "cannot read the fixture folder: Permission denied",
        }
    monkeypatch.undo()
    assert (await get_content(client, "PROV:stranger")).status == 200
    assert (await client.get("/healthz")).status == 200
