"""``GET /__admin/preview``: each owner's images as served, decoded, the back's JWS verified."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from content_provider.fixtures.generate import card_jpeg

from .helpers import DOC_CARD, MakeClient

TOKEN = "0123456789abcdef-admin"


def image(answer: dict[str, Any], key: str) -> dict[str, Any]:
    return next(i for i in answer["images"] if i["key"] == key)


def jpeg_of(shown: dict[str, Any]) -> bytes:
    head, _, data = shown["dataUri"].partition(",")
    assert head == "data:image/jpeg;base64"
    return base64.b64decode(data)


async def test_a_content_id_shows_the_served_images_and_a_verified_back(
    make_client: MakeClient, fixture_root: Path
) -> None:
    client = await make_client()
    response = await client.get("/__admin/preview", params={"contentId": DOC_CARD})
    assert response.status == 200
    answer = await response.json()
    subject = DOC_CARD.split(":", 1)[1]
    assert (answer["level"], answer["owner"], answer["served"]) == ("user", subject, True)
    assert answer["files"] == {"front": f"users/{subject}/front.jpg", "back": f"users/{subject}/back.jpg"}
    assert jpeg_of(image(answer, "front")) == (fixture_root / "users" / subject / "front.jpg").read_bytes()
    back = image(answer, "back")
    assert jpeg_of(back) == (fixture_root / "users" / subject / "back.jpg").read_bytes()
    assert back["jws"]["verified"] is True
    assert back["jws"]["alg"] == "RS256"
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    assert back["jws"]["kid"] == jwks["keys"][0]["kid"]
    assert answer["problems"] == []


@pytest.mark.parametrize(
    ("query", "level", "owner", "keys"),
    [
        ({"org": "acme"}, "organisation", "acme", ["front", "back"]),
        ({"org": "globex"}, "organisation", "globex", ["front"]),
        ({"user": "alice"}, "user", "alice", ["front"]),
        ({"default": ""}, "default", "default", ["front"]),
        ({"org": "acme", "useCase": "AUTH"}, "organisation", "acme", ["auth_image"]),
        ({"default": "1", "useCase": "AUTH"}, "default", "default", ["auth_image"]),
    ],
)
async def test_an_owner_is_shown_without_a_member_id(
    make_client: MakeClient, query: dict[str, str], level: str, owner: str, keys: list[str]
) -> None:
    client = await make_client()
    answer = await (await client.get("/__admin/preview", params=query)).json()
    assert (answer["level"], answer["owner"]) == (level, owner)
    assert [i["key"] for i in answer["images"]] == keys
    assert all(len(jpeg_of(i)) == i["bytes"] > 0 for i in answer["images"])


async def test_a_card_of_the_wrong_shape_is_shown_with_its_problem(make_client: MakeClient, fixture_root: Path) -> None:
    (fixture_root / "users" / "alice" / "front.jpg").write_bytes(card_jpeg("square", size=(600, 600)))
    client = await make_client()
    answer = await (await client.get("/__admin/preview", params={"user": "alice"})).json()
    assert answer["served"] is True
    assert [p["path"] for p in answer["problems"]] == ["users/alice/front.jpg"]
    assert "aspect" in answer["problems"][0]["reason"]


async def test_under_strict_the_refused_images_are_still_shown(make_client: MakeClient, fixture_root: Path) -> None:
    (fixture_root / "users" / "alice" / "front.jpg").write_bytes(card_jpeg("square", size=(600, 600)))
    client = await make_client(strict=True, check_at_startup=False)
    answer = await (await client.get("/__admin/preview", params={"user": "alice"})).json()
    assert answer["served"] is False
    assert "fixtures.strict" in answer["error"]
    assert jpeg_of(image(answer, "front")) == (fixture_root / "users" / "alice" / "front.jpg").read_bytes()
    assert answer["problems"][0]["path"] == "users/alice/front.jpg"


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ({}, 400, "invalid_query"),
        ({"user": "alice", "org": "acme"}, 400, "invalid_query"),
        ({"user": ""}, 400, "invalid_query"),
        ({"user": "alice", "useCase": "NOPE"}, 400, "invalid_query"),
        # as the OpenAPI document says: useCase is PROV or AUTH, only beside user, org or default; nothing else
        ({"user": "alice", "useCase": "auth"}, 400, "invalid_query"),
        ({"contentId": "PROV:alice", "useCase": "AUTH"}, 400, "invalid_query"),
        ({"contentId": "   "}, 400, "invalid_query"),
        ({"contentId": "PROV:" + "a" * 300}, 400, "invalid_query"),
        ({"user": "alice", "colour": "red"}, 400, "invalid_query"),
        ([("user", "alice"), ("user", "bob")], 400, "invalid_query"),
        ({"contentId": "0", "org": "", "default": "", "useCase": "PROV"}, 400, "invalid_query"),
        ({"user": "../../etc"}, 404, "unknown_content_id"),
        ({"org": "no-such-org"}, 404, "unknown_content_id"),
        ({"user": "alice", "useCase": "AUTH"}, 404, "unknown_content_id"),
    ],
)
async def test_bad_queries_get_a_clear_error(
    make_client: MakeClient, query: dict[str, str] | list[tuple[str, str]], status: int, error: str
) -> None:
    client = await make_client(default_enabled=False)
    response = await client.get("/__admin/preview", params=query)
    assert response.status == status
    assert (await response.json())["error"] == error


async def test_preview_honours_the_admin_token_and_leaves_no_journal_entry(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN)
    assert (await client.get("/__admin/preview", params={"user": "alice"})).status == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await client.get("/__admin/preview", params={"user": "alice"}, headers=auth)).status == 200
    count = await (await client.get("/__admin/requests/count", headers=auth)).json()
    assert count["count"] == 0
