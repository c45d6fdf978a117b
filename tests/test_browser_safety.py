"""Safe from the developer's own browser (#30): no cross-site writes, no DNS rebinding.

Over real HTTP with the headers a browser sends: a foreign ``Origin`` on a simple request,
a foreign ``Host`` after DNS rebinding, and CORS preflights. The browser itself, end to
end, is in test_webui_browser.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from content_provider.cli import _effective_environ, build_parser
from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError
from content_provider.http.origin import split_host

from .helpers import MakeClient

EVIL = "http://evil.example"
RULE = '{"name": "csrf", "outcome": 503}'


async def rules(client: Any) -> list[str]:
    listed = await (await client.get("/__admin/rules")).json()
    return [rule["name"] for rule in listed["rules"]]


def own(client: Any) -> str:
    return f"http://{client.host}:{client.port}"


# --------------------------------------------------------------------------- the four points


async def test_a_simple_cross_site_post_adds_no_rule(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post("/__admin/rules", data=RULE, headers={"Content-Type": "text/plain", "Origin": EVIL})
    assert response.status == 403
    body = await response.json()
    assert body["error"] == "origin_not_allowed"
    assert "server.allowed_origins" in body["message"]
    assert "Access-Control-Allow-Origin" not in response.headers
    assert await rules(client) == []


async def test_a_cross_site_form_post_does_not_reset(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.post("/__admin/rules", json={"name": "kept", "outcome": 503})).status == 201
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": EVIL}
    response = await client.post("/__admin/reset", data="a=b", headers=form)
    assert response.status == 403
    assert (await response.json())["error"] == "origin_not_allowed"
    for method in ("PUT", "DELETE"):  # no admin route takes PATCH (405)
        assert (await client.request(method, "/__admin/rules", headers={"Origin": EVIL})).status == 403, method
    assert await rules(client) == ["kept"]


@pytest.mark.parametrize("path", ["/__admin/rules", "/__admin/requests", "/__admin/fixtures", "/ui/", "/metrics"])
async def test_a_rebound_host_reads_nothing(make_client: MakeClient, path: str) -> None:
    client = await make_client()
    response = await client.get(path, headers={"Host": "evil.example:8080"})
    assert response.status == 403
    body = await response.json()
    assert body == {"error": "host_not_allowed", "message": body["message"]}
    assert "server.allowed_hosts" in body["message"]


async def test_a_foreign_preflight_gets_no_grant(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.options(
        "/__admin/rules",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x"},
    )
    assert response.status == 403
    assert (await response.json())["error"] == "origin_not_allowed"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    null = await client.options("/__admin/reset", headers={"Origin": "null", "Access-Control-Request-Method": "POST"})
    assert null.status == 403


# --------------------------------------------------------------------------- what still works


async def test_no_origin_works_whatever_the_content_type(make_client: MakeClient) -> None:
    client = await make_client()
    form = {"Content-Type": "application/x-www-form-urlencoded"}  # what curl -d sends
    assert (await client.post("/__admin/rules", data=RULE, headers=form)).status == 201
    assert (await client.post("/__admin/reset", headers=form)).status == 200


async def test_its_own_origin_may_write(make_client: MakeClient) -> None:
    client = await make_client()
    headers = {"Origin": own(client), "Content-Type": "application/json"}
    assert (await client.post("/__admin/rules", data=RULE, headers=headers)).status == 201
    assert (await client.delete("/__admin/rules/csrf", headers=headers)).status == 200
    # the same name by another of the machine's names is another origin, as the browser sees it
    other = {"Origin": f"http://localhost:{client.port}"}
    assert (await client.post("/__admin/reset", headers=other)).status == 403
    wrong_scheme = {"Origin": f"https://{client.host}:{client.port}"}
    assert (await client.post("/__admin/reset", headers=wrong_scheme)).status == 403
    assert (await client.post("/__admin/reset", headers={"Origin": "null"})).status == 403


async def test_a_default_port_is_the_same_origin(make_client: MakeClient) -> None:
    client = await make_client()
    headers = {"Host": "LocalHost.", "Origin": "http://localhost:80"}
    assert (await client.post("/__admin/reset", headers=headers)).status == 200
    headers = {"Host": "localhost:80", "Origin": "http://localhost"}
    assert (await client.post("/__admin/reset", headers=headers)).status == 200


async def test_a_listed_origin_may_write_and_read(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins=("https://mock.team.example", "http://localhost:3000"))
    for origin in ("https://mock.team.example", "https://MOCK.team.example:443", "http://localhost:3000"):
        response = await client.post("/__admin/reset", headers={"Origin": origin})
        assert response.status == 200, origin
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"
    refused = await client.post("/__admin/reset", headers={"Origin": "http://localhost:3001"})
    assert refused.status == 403
    error = await client.delete("/__admin/rules/nothing", headers={"Origin": "http://localhost:3000"})
    assert error.status == 404  # an error is readable by the listed origin too
    assert error.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    preflight = await client.options(
        "/__admin/rules", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"}
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert preflight.headers["Access-Control-Allow-Methods"] == "DELETE, GET, OPTIONS, POST, PUT"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


async def test_a_preflight_without_origin_says_the_methods(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.options("/__admin/reset")
    assert response.status == 204
    assert response.headers["Allow"] == "OPTIONS, POST"
    both = await client.options("/__admin/requests")  # GET and DELETE, on two resources of aiohttp's
    assert both.headers["Allow"] == "DELETE, GET, OPTIONS"
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_reads_from_another_origin_are_not_refused(make_client: MakeClient) -> None:
    """A cross-origin GET cannot read the answer without a CORS grant, and changes nothing."""
    client = await make_client()
    response = await client.get("/__admin/rules", headers={"Origin": EVIL})
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8080",
        "LOCALHOST:8080",
        "localhost.:8080",
        "app.localhost:8080",
        "127.0.0.1:8080",
        "127.1.2.3",
        "[::1]:8080",
        "[::1]",
        "10.0.0.7:8080",  # an address is its own origin: rebinding needs a name
        "[fe80::1%25eth0]:8080",
    ],
)
async def test_this_machines_names_and_addresses_are_served(make_client: MakeClient, host: str) -> None:
    client = await make_client()
    assert (await client.get("/__admin/rules", headers={"Host": host})).status == 200
    assert (await client.get("/ui/", headers={"Host": host})).status == 200


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "evil.localhost.example:80", "x:y", ""])
async def test_other_names_are_not(make_client: MakeClient, host: str) -> None:
    client = await make_client()
    assert (await client.get("/__admin/rules", headers={"Host": host})).status == 403


async def test_the_listen_address_and_allowed_hosts(make_client: MakeClient) -> None:
    client = await make_client(host="devbox", allowed_hosts=("provider", ".team.example"))
    for host in ("devbox:8080", "DevBox.", "provider:8080", "team.example", "mock.team.example:443"):
        assert (await client.get("/__admin/rules", headers={"Host": host})).status == 200, host
    assert (await client.get("/__admin/rules", headers={"Host": "evil.example"})).status == 403
    assert (await client.get("/__admin/rules", headers={"Host": "xteam.example"})).status == 403


async def test_every_interface_does_not_allow_every_name(make_client: MakeClient) -> None:
    client = await make_client(host="0.0.0.0")
    assert (await client.get("/__admin/rules", headers={"Host": "evil.example:8080"})).status == 403


async def test_a_star_turns_the_host_check_off(make_client: MakeClient) -> None:
    client = await make_client(allowed_hosts=("*",))
    assert (await client.get("/__admin/rules", headers={"Host": "evil.example:8080"})).status == 200
    assert (await client.get("/metrics", headers={"Host": "evil.example:8080"})).status == 200
    writes = {"Host": "evil.example:8080", "Origin": EVIL + ":8080"}
    assert (await client.post("/__admin/reset", headers={**writes, "Origin": "http://other.example"})).status == 403
    assert (await client.post("/__admin/reset", headers=writes)).status == 200  # same-origin for the Host given


@pytest.mark.parametrize("path", ["/healthz", "/.well-known/jwks.json", "/signing-cert.pem", "/openapi.json", "/"])
async def test_the_contract_paths_answer_any_host(make_client: MakeClient, path: str) -> None:
    client = await make_client()
    assert (await client.get(path, headers={"Host": "provider:8080"})).status == 200


async def test_getcontent_answers_any_host_and_origin(make_client: MakeClient) -> None:
    client = await make_client()
    headers = {"Host": "provider:8080", "Origin": EVIL}
    response = await client.post("/getcontent", json={"contentId": "PROV:bob"}, headers=headers)
    assert response.status == 200


async def test_the_token_is_still_needed(make_client: MakeClient) -> None:
    client = await make_client(admin_token="0123456789abcdef-admin")
    assert (await client.post("/__admin/reset", headers={"Origin": own(client)})).status == 401
    authorised = {"Origin": own(client), "Authorization": "Bearer 0123456789abcdef-admin"}
    assert (await client.post("/__admin/reset", headers=authorised)).status == 200
    assert (await client.post("/__admin/reset", headers={**authorised, "Origin": EVIL})).status == 403


async def test_admin_off_stays_404(make_client: MakeClient) -> None:
    client = await make_client(admin_enabled=False)
    assert (await client.options("/__admin/rules", headers={"Origin": EVIL})).status == 404
    assert (await client.post("/__admin/reset", headers={"Host": "evil.example"})).status == 404


def test_split_host() -> None:
    assert split_host("Example.COM.:8080") == ("example.com", 8080)
    assert split_host("[::1]:80") == ("::1", 80)
    assert split_host("[::1]") == ("::1", None)
    assert split_host("::1") == ("::1", None)
    assert split_host("localhost:") == ("localhost", None)
    assert split_host("localhost:8o") == ("", None)


# --------------------------------------------------------------------------- settings


def test_settings_from_file_environment_and_flags() -> None:
    file = {"server": {"allowed_hosts": ["Provider.", ".X"], "allowed_origins": ["https://Mock.example/"]}}
    settings = parse_settings(file, Path.cwd(), {})
    assert settings.allowed_hosts == ("provider", ".x")
    assert settings.allowed_origins == ("https://mock.example",)
    environ = {"CONTENT_PROVIDER_ALLOWED_HOSTS": "a, b ,", "CONTENT_PROVIDER_ALLOWED_ORIGINS": "http://a:3000"}
    settings = parse_settings(file, Path.cwd(), environ)
    assert settings.allowed_hosts == ("a", "b")
    assert settings.allowed_origins == ("http://a:3000",)
    args = build_parser().parse_args(
        ["serve", "--allowed-host", "provider", "--allowed-host", "*", "--allowed-origin", "http://x:1"]
    )
    flags = _effective_environ(args, environ)
    assert flags["CONTENT_PROVIDER_ALLOWED_HOSTS"] == "provider,*"
    assert parse_settings({}, Path.cwd(), flags).allowed_origins == ("http://x:1",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"allowed_hosts": "provider"}, "server.allowed_hosts: expected a list"),
        ({"allowed_hosts": ["http://provider"]}, "server.allowed_hosts: expected host names"),
        ({"allowed_hosts": ["provider:8080"]}, "without scheme or port"),
        ({"allowed_origins": ["mock.example"]}, "server.allowed_origins: expected origins"),
        ({"allowed_origins": ["null"]}, "expected origins"),
        ({"allowed_origins": ["*"]}, "expected origins"),
        ({"allowed_origins": ["https://mock.example/path"]}, "expected origins"),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"server": data}, Path.cwd(), {})


def test_a_bad_variable_names_it() -> None:
    with pytest.raises(ConfigError, match="CONTENT_PROVIDER_ALLOWED_ORIGINS"):
        parse_settings({}, Path.cwd(), {"CONTENT_PROVIDER_ALLOWED_ORIGINS": "evil.example"})
