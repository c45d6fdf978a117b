"""Optional basic authentication, from config or the environment."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError

from .helpers import DOC_CARD, MakeClient, get_content


async def test_no_credentials_configured_means_open(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await get_content(client, DOC_CARD)).status == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic " + base64.b64encode(b"hermod:wrong").decode(),
        "Basic " + base64.b64encode(b"other:s3cret").decode(),
        "Basic " + base64.b64encode(b"hermod").decode(),
        "Basic " + base64.b64encode(b"hermod:s3cret:").decode(),
        "Basic !!!not-base64",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Bearer s3cret",
        "Basic",
        "",
    ],
)
async def test_missing_or_wrong_credentials_get_401(make_client: MakeClient, authorization: str | None) -> None:
    client = await make_client(username="hermod", password="s3cret")
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await get_content(client, DOC_CARD, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert (await response.json())["error"] == "unauthorized"


async def test_right_credentials_get_200(make_client: MakeClient) -> None:
    client = await make_client(username="hermod", password="pässword:with:colons")
    token = base64.b64encode("hermod:pässword:with:colons".encode()).decode()
    response = await get_content(client, DOC_CARD, headers={"Authorization": f"Basic {token}"})
    assert response.status == 200


async def test_auth_is_checked_before_the_body(make_client: MakeClient) -> None:
    client = await make_client(username="hermod", password="s3cret")
    response = await client.post("/getcontent", data=b"not json")
    assert response.status == 401


async def test_health_and_keys_stay_open(make_client: MakeClient) -> None:
    client = await make_client(username="hermod", password="s3cret")
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/.well-known/jwks.json")).status == 200


def test_credentials_from_the_environment_win(fixture_root: Path) -> None:
    data = {"fixtures": {"root": str(fixture_root)}, "auth": {"username": "file", "password": "file"}}
    env = {"CONTENT_PROVIDER_USERNAME": "env-user", "CONTENT_PROVIDER_PASSWORD": "env-pass"}
    settings = parse_settings(data, Path.cwd(), env)
    assert (settings.username, settings.password) == ("env-user", "env-pass")


def test_half_configured_credentials_are_an_error(fixture_root: Path) -> None:
    with pytest.raises(ConfigError, match="set both username and password"):
        parse_settings({"fixtures": {"root": str(fixture_root)}}, Path.cwd(), {"CONTENT_PROVIDER_USERNAME": "u"})
