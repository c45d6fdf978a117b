"""The answer's shape, as the contract describes it, for every demo id."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from content_provider.core.contract import (
    CARD_ASPECT,
    JWS_TYPE,
    UseCase,
    answer_body,
    answer_of_parts,
    image_element,
    image_part,
    jws_element,
    jws_part,
    parse_content_id,
)
from content_provider.fixtures.generate import card_jpeg
from content_provider.signing.jws import stand_in_signer

from .helpers import DOC_AUTH, DOC_CARD, MakeClient, get_content

CARD_IDS = [DOC_CARD, "PROV:alice", "PROV:bob", "PROV:acme-42", "PROV:carol", "PROV:globex-7", "PROV:nobody"]
AUTH_IDS = [DOC_AUTH, "AUTH:bob", "AUTH:carol", "AUTH:nobody"]


def decode_jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG"
    return image


def jws_payload(compact: str) -> bytes:
    header, payload, signature = compact.split(".")
    assert header
    assert signature
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))


async def test_doc_card_id_has_front_and_signed_back(make_client: MakeClient) -> None:
    client = await make_client()
    response = await get_content(client, DOC_CARD)
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert list(body) == ["data"]
    front, back = body["data"]
    assert front == {
        "content_encoding": "base64",
        "content_type": "image/jpeg",
        "key": "front",
        "data": front["data"],
    }
    assert back["key"] == "back"
    assert back["content_encoding"] == "text/plain"
    assert back["content_type"] == JWS_TYPE
    assert back["data"].count(".") == 2
    decode_jpeg(jws_payload(back["data"]))


async def test_doc_auth_id_has_one_auth_image(make_client: MakeClient) -> None:
    client = await make_client()
    response = await get_content(client, DOC_AUTH)
    assert response.status == 200
    body = await response.json()
    [element] = body["data"]
    assert {k: element[k] for k in ("content_encoding", "content_type", "key")} == {
        "content_encoding": "base64",
        "content_type": "image/jpeg",
        "key": "auth_image",
    }
    decode_jpeg(base64.b64decode(element["data"], validate=True))


@pytest.mark.parametrize("content_id", CARD_IDS + AUTH_IDS)
async def test_every_served_image_is_a_jpeg_of_the_right_shape(make_client: MakeClient, content_id: str) -> None:
    client = await make_client()
    response = await get_content(client, content_id)
    assert response.status == 200, await response.text()
    elements = (await response.json())["data"]
    card = content_id.startswith("PROV:")
    assert [e["key"] for e in elements][:1] == (["front"] if card else ["auth_image"])
    assert 1 <= len(elements) <= (2 if card else 1)
    for element in elements:
        assert all(isinstance(element[k], str) for k in ("content_encoding", "content_type", "key", "data"))
        if element["key"] == "back":
            raw = jws_payload(element["data"])
        else:
            raw = base64.b64decode(element["data"], validate=True)
        image = decode_jpeg(raw)
        if card:
            width, height = image.size
            assert abs(width / height / CARD_ASPECT - 1) < 0.01
            assert image.size == (1200, 757)


async def test_bare_id_is_served_as_a_card_by_default(make_client: MakeClient) -> None:
    client = await make_client()
    body = await (await get_content(client, "67d21afb-e830-4fee-a691-00a997ffbe1a")).json()
    assert [e["key"] for e in body["data"]] == ["front", "back"]


async def test_bare_id_as_auth_image_or_off(make_client: MakeClient) -> None:
    client = await make_client(bare_ids="auth")
    body = await (await get_content(client, "4018e11f-1209-45f5-ade7-e59004e10745")).json()
    assert [e["key"] for e in body["data"]] == ["auth_image"]
    client = await make_client(bare_ids="off")
    response = await get_content(client, "4018e11f-1209-45f5-ade7-e59004e10745")
    assert response.status == 404
    assert (await response.json())["error"] == "unknown_content_id"


async def test_prefix_is_case_insensitive(make_client: MakeClient) -> None:
    client = await make_client()
    response = await get_content(client, DOC_CARD.replace("PROV:", "prov:"))
    assert response.status == 200
    assert response.headers["X-Content-Provider-Resolved"] == "user 67d21afb-e830-4fee-a691-00a997ffbe1a"


def test_parse_content_id() -> None:
    assert parse_content_id("AUTH:x", "card") is not None
    parsed = parse_content_id("PROV:a:b", "card")
    assert parsed is not None
    assert parsed.use_case is UseCase.CARD
    assert parsed.subject == "a:b"
    bare = parse_content_id("OTHER:x", "auth")
    assert bare is not None
    assert bare.use_case is UseCase.AUTH
    assert bare.subject == "OTHER:x"
    assert parse_content_id("x", "off") is None


async def test_base_path_prefixes_the_operation(make_client: MakeClient) -> None:
    client = await make_client(base_path="/cp")
    assert (await client.post("/cp/getcontent", json={"contentId": DOC_CARD})).status == 200
    assert (await client.post("/getcontent", json={"contentId": DOC_CARD})).status == 404


def test_encoded_parts_make_the_same_bytes_as_json() -> None:
    """The store splices base64 into the answer instead of having json.dumps scan it: same bytes."""
    signer = stand_in_signer("RS256", "expired")
    front, back, auth = card_jpeg("front"), card_jpeg("back"), b"\x00\xff" * 100
    jws = signer.sign(back)
    expected = answer_body([image_element("front", front), jws_element("back", jws), image_element("auth_image", auth)])
    spliced = answer_of_parts([image_part("front", front), jws_part("back", jws), image_part("auth_image", auth)])
    assert spliced == expected
