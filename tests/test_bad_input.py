"""Every user mistake gets a clear JSON error and never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .helpers import MakeClient

LONG_ID = "PROV:" + "x" * 300


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "malformed_body"),
        (b"   ", 400, "malformed_body"),
        (b"{not json", 400, "malformed_body"),
        (b'{"contentId": "PROV:x"', 400, "malformed_body"),
        (b"[1, 2]", 400, "malformed_body"),
        (b'"PROV:x"', 400, "malformed_body"),
        (b"null", 400, "malformed_body"),
        (b"{}", 400, "missing_content_id"),
        (b'{"contentid": "PROV:x"}', 400, "missing_content_id"),
        (b'{"contentId": null}', 400, "invalid_content_id"),
        (b'{"contentId": 42}', 400, "invalid_content_id"),
        (b'{"contentId": ["PROV:x"]}', 400, "invalid_content_id"),
        (b'{"contentId": ""}', 400, "invalid_content_id"),
        (b'{"contentId": "   "}', 400, "invalid_content_id"),
        (b'{"contentId": " \\t\\r\\n\\u000b\\u000c"}', 400, "invalid_content_id"),
        # not "empty": only ASCII white space is, as in the OpenAPI document's pattern for contentId
        (b'{"contentId": "\\u001e"}', 200, None),
        (b'{"contentId": "\\u00a0"}', 200, None),
        (b'{"contentId": "' + LONG_ID.encode() + b'"}', 400, "invalid_content_id"),
        (b"\xff\xfe\x00garbage", 400, "malformed_body"),
        (b'{"contentId": "\xc3\x28"}', 400, "malformed_body"),  # not UTF-8
        (b"[" * 5000 + b"]" * 5000, 400, "malformed_body"),  # deep nesting
        (b'{"contentId": "PROV:nobody-at-all"}', 200, None),  # the default card
        (b'{"contentId": "AUTH:x", "extra": {"ignored": true}}', 200, None),
    ],
)
async def test_bad_bodies(make_client: MakeClient, body: bytes, status: int, code: str | None) -> None:
    client = await make_client()
    response = await client.post("/getcontent", data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    payload: dict[str, Any] = await response.json()
    if code is not None:
        assert payload["error"] == code
        assert isinstance(payload["message"], str)
        assert payload["message"]


async def test_unknown_id_is_404_when_default_is_off(make_client: MakeClient) -> None:
    client = await make_client(default_enabled=False)
    response = await client.post("/getcontent", json={"contentId": "PROV:nobody"})
    assert response.status == 404
    assert (await response.json())["error"] == "unknown_content_id"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_get_405(make_client: MakeClient, method: str) -> None:
    client = await make_client()
    response = await client.request(method, "/getcontent")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"] == "method_not_allowed"


async def test_oversized_body_gets_413(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=1024)
    big = b'{"contentId": "PROV:x", "pad": "' + b"a" * 2000 + b'"}'
    response = await client.post("/getcontent", data=big)
    assert response.status == 413
    assert (await response.json())["error"] == "body_too_large"


async def test_oversized_chunked_body_gets_413(make_client: MakeClient) -> None:
    client = await make_client(max_body_bytes=1024)

    async def chunks() -> Any:
        for _ in range(50):
            yield b"a" * 100

    response = await client.post("/getcontent", data=chunks())
    assert response.status == 413


async def test_declared_oversized_body_gets_413_before_it_has_arrived(make_client: MakeClient) -> None:
    """A Content-Length over the limit is refused at once, not read first (the body is not all here)."""
    client = await make_client(max_body_bytes=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        head = b"POST /getcontent HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
        writer.write(head + b'{"contentId": "PROV:x", "pad": "')  # and the rest never comes
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    assert status.split()[1] == b"413"


async def test_wrong_content_type_is_still_read_as_json(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post(
        "/getcontent", data=b'{"contentId": "PROV:bob"}', headers={"Content-Type": "text/plain"}
    )
    assert response.status == 200


async def test_unknown_path_is_json_404(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/nothing/here")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"


@pytest.mark.parametrize("path", ["/nope", "/ui/%0A", "/a/%0Ab/c", "/__admin/nope", "/getcontent/extra"])
async def test_unknown_paths_get_a_json_404(make_client: MakeClient, path: str) -> None:
    client = await make_client()
    response = await client.get(path)
    assert response.status == 404
    assert response.content_type == "application/json"
    assert (await response.json())["error"] == "not_found"


async def test_an_upload_that_is_no_image_says_so_without_a_python_repr(make_client: MakeClient) -> None:
    """It answered "cannot identify image file <_io.BytesIO object at 0x7f0b...>" (#28 item 8)."""
    client = await make_client()
    response = await client.put("/__admin/fixtures/users/zoe/front", data=b"hello, I am not an image")
    assert response.status == 400
    body = await response.json()
    assert body["message"] == "body: not a readable image: cannot identify image file"
