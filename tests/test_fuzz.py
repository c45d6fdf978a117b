"""Property-based fuzzing of the body and the content id: never a 5xx, never a file from outside."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_provider.fixtures.generate import card_jpeg
from content_provider.pytest_plugin import ContentProviderServer

SECRET = card_jpeg("SECRET from outside the fixture folder")
SECRET_B64 = base64.b64encode(SECRET).decode()[200:400]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
PIECES = ["..", "../", "/", "\\", ".", "%2e", "%2f", "~", ":", ";", "\x00", " ", "\u2024", "\uff0e", "\u2215", "secret"]
hostile_text = st.lists(st.sampled_from(PIECES) | st.characters(), max_size=20).map("".join)


@pytest.fixture(scope="module")
def server(content_provider_server: ContentProviderServer) -> ContentProviderServer:
    outside = content_provider_server.settings.fixture_root.parent
    for folder in ("secret", "users", "default", "orgs"):
        for side in ("front.jpg", "back.jpg", "auth.jpg"):
            target = outside / folder / side
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(SECRET)
    return content_provider_server


def post(server: ContentProviderServer, body: bytes, content_type: str = "application/json") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", "/getcontent", body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(payload=json_values)
def test_any_json_body_gets_no_5xx(server: ContentProviderServer, payload: Any) -> None:
    status, body = post(server, json.dumps(payload).encode())
    assert status < 500, body[:200]
    json.loads(body)  # every answer, error or not, is JSON


@SETTINGS
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/plain", "", "x/\x7f"]))
def test_any_bytes_get_no_5xx(server: ContentProviderServer, raw: bytes, content_type: str) -> None:
    status, _ = post(server, raw, content_type)
    assert status < 500


@SETTINGS
@given(subject=hostile_text, prefix=st.sampled_from(["PROV:", "AUTH:", "", "prov:"]))
def test_no_content_id_reads_outside_the_fixture_folder(
    server: ContentProviderServer, subject: str, prefix: str
) -> None:
    status, body = post(server, json.dumps({"contentId": prefix + subject}).encode())
    assert status in (200, 400, 404), body[:200]
    assert SECRET_B64.encode() not in body
