"""fixtures.default: generated: every subject nothing else answers gets a card of its own."""

from __future__ import annotations

import asyncio
import base64
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError
from content_provider.fixtures.store import STORE
from content_provider.signing.jws import verify_back

from .helpers import MakeClient, get_content


async def card(client: Any, content_id: str) -> tuple[str, dict[str, Any]]:
    response = await get_content(client, content_id)
    assert response.status == 200
    return response.headers["X-Content-Provider-Resolved"], {
        e["key"]: e["data"] for e in (await response.json())["data"]
    }


def colour_at_centre(data: str) -> tuple[int, ...]:
    with Image.open(io.BytesIO(base64.b64decode(data))) as image:
        assert image.size == (1200, 757)
        pixel = image.convert("RGB").getpixel((600, 600))
        assert isinstance(pixel, tuple)
        return pixel


async def test_two_subjects_get_two_cards_and_one_subject_the_same_bytes_after_a_restart(
    make_client: MakeClient,
) -> None:
    first = await make_client(default_generated=True)
    label, jane = await card(first, "PROV:jane.doe")
    assert label == "generated jane.doe"
    _, john = await card(first, "PROV:john.smith")
    assert jane["front"] != john["front"]
    assert colour_at_centre(jane["front"]) != colour_at_centre(john["front"])  # a colour of its own
    jwks = await (await first.get("/.well-known/jwks.json")).json()
    _, back = verify_back(jane["back"], jwks)
    assert Image.open(io.BytesIO(back)).size == (1200, 757)
    again = await make_client(default_generated=True)  # a new server with the same settings: a restart
    _, jane_again = await card(again, "PROV:jane.doe")
    assert jane_again["front"] == jane["front"]
    assert jane_again["back"] == jane["back"]  # RS256 signs deterministically


async def test_known_subjects_keep_their_own_images_and_auth_ids_get_an_auth_image(make_client: MakeClient) -> None:
    client = await make_client(default_generated=True)
    assert (await card(client, "PROV:alice"))[0] == "user alice"
    assert (await card(client, "PROV:bob"))[0] == "organisation acme"
    label, auth = await card(client, "AUTH:someone-new")
    assert label == "generated someone-new"
    assert list(auth) == ["auth_image"]


async def test_a_subject_is_drawn_once_even_under_a_burst(make_client: MakeClient) -> None:
    client = await make_client(default_generated=True, revalidate_seconds=60)
    store = client.app[STORE]
    answers = await asyncio.gather(*(get_content(client, "PROV:burst-user") for _ in range(20)))
    bodies = {await answer.read() for answer in answers}
    assert len(bodies) == 1
    assert store.stats.builds == 1


def test_the_setting_is_read_from_config() -> None:
    root = Path(__file__).resolve().parent.parent / "fixtures" / "images"
    settings = parse_settings({"fixtures": {"root": str(root), "default": "generated"}}, Path("/"), {})
    assert (settings.default_enabled, settings.default_generated) == (True, True)
    with pytest.raises(ConfigError, match=r"fixtures\.default: expected true, false or generated, got 'drawn'"):
        parse_settings({"fixtures": {"root": str(root), "default": "drawn"}}, Path("/"), {})
