"""A content id is never a path: no id reads a file outside the fixture folder."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from content_provider.fixtures.generate import card_jpeg

from .helpers import MakeClient, get_content

TRAVERSAL_SUBJECTS = [
    "..",
    ".",
    "../secret",
    "../../secret",
    "..%2fsecret",
    "..%2F..%2Fsecret",
    "%2e%2e/secret",
    "..\\secret",
    "..\\..\\secret",
    "/etc/passwd",
    "/secret",
    "users/../../secret",
    "secret\x00",
    "\x00../secret",
    "....//secret",
    "..;/secret",
    "%00",
    "~",
    "~/secret",
    "\u2024\u2024/secret",  # one-dot leaders
    "\uff0e\uff0e/secret",  # fullwidth full stops
    "..\u2215secret",  # division slash
    "file:///secret",
    "secret/../../..",
    "." * 200,
    "a/" * 100,
    "../orgs/acme",
    "../default",
]


@pytest.fixture
def secret(fixture_root: Path) -> bytes:
    """A JPEG just outside the fixture folder, in every place a traversal would look."""
    data = card_jpeg("SECRET - must never be served")
    outside = fixture_root.parent
    for name in ("secret", "secret.jpg"):
        folder = outside / name
        folder.mkdir(exist_ok=True)
        for side in ("front.jpg", "back.jpg", "auth.jpg"):
            (folder / side).write_bytes(data)
    return data


@pytest.mark.parametrize("subject", TRAVERSAL_SUBJECTS)
@pytest.mark.parametrize("prefix", ["PROV:", "AUTH:", ""])
async def test_traversal_ids_never_read_outside(
    make_client: MakeClient, secret: bytes, subject: str, prefix: str
) -> None:
    client = await make_client(default_enabled=False, check_at_startup=False)
    response = await get_content(client, prefix + subject)
    assert response.status in (400, 404), await response.text()
    assert base64.b64encode(secret[:300]).decode()[:200] not in await response.text()


async def test_symlink_out_of_the_fixture_folder_is_refused(
    make_client: MakeClient, fixture_root: Path, secret: bytes
) -> None:
    os.symlink(fixture_root.parent / "secret", fixture_root / "users" / "linked")
    os.symlink(fixture_root.parent / "secret" / "front.jpg", fixture_root / "default" / "front.jpg.tmp")
    (fixture_root / "default" / "front.jpg").unlink()
    os.rename(fixture_root / "default" / "front.jpg.tmp", fixture_root / "default" / "front.jpg")
    client = await make_client()
    assert (await get_content(client, "PROV:linked")).status == 404
    assert (await get_content(client, "PROV:stranger")).status == 404


async def test_the_admin_api_neither_reads_nor_writes_through_a_symlink_out(
    make_client: MakeClient, fixture_root: Path, secret: bytes
) -> None:
    os.symlink(fixture_root.parent / "secret", fixture_root / "users" / "linked")
    os.symlink(fixture_root.parent / "secret" / "front.jpg", fixture_root / "users" / "alice" / "auth.jpg")
    client = await make_client()
    for method, path in [
        ("GET", "/__admin/fixtures/users/linked/front"),
        ("GET", "/__admin/fixtures/users/alice/auth"),
        ("PUT", "/__admin/fixtures/users/linked/front"),
        ("DELETE", "/__admin/fixtures/users/linked/front"),
    ]:
        response = await client.request(method, path, data=card_jpeg("over") if method == "PUT" else None)
        assert response.status in (400, 404), (method, path, response.status)
        assert secret[:100] not in await response.read()
    assert (fixture_root.parent / "secret" / "front.jpg").read_bytes() == secret


async def test_symlink_inside_the_fixture_folder_is_followed(make_client: MakeClient, fixture_root: Path) -> None:
    os.symlink(fixture_root / "orgs" / "acme", fixture_root / "users" / "alias")
    client = await make_client()
    response = await get_content(client, "PROV:alias")
    assert response.status == 200
    assert response.headers["X-Content-Provider-Resolved"] == "user alias"
