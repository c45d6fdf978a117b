"""The admin API over real HTTP: every operation, its bad inputs, and who may call it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from content_provider.admin.api import admin_guard
from content_provider.client import AdminError
from content_provider.config.parse import parse_settings
from content_provider.config.settings import SETTINGS, Settings
from content_provider.core.errors import ApiError
from content_provider.fixtures.generate import auth_jpeg, card_jpeg
from content_provider.fixtures.store import STORE
from content_provider.http.metrics import METRICS, Metrics, metrics

from .helpers import DOC_CARD, MakeClient, get_content, png_bytes

TOKEN = "0123456789abcdef-admin"


async def add(client: Any, **spec: Any) -> Any:
    return await client.post("/__admin/rules", json=spec)


# --------------------------------------------------------------------------- rules


async def test_add_list_and_delete_rules(make_client: MakeClient) -> None:
    client = await make_client()
    assert await (await client.get("/__admin/rules")).json() == {"rules": []}
    response = await add(client, name="down", match={"id": DOC_CARD}, outcome=503)
    assert response.status == 201
    assert await response.json() == {"name": "down", "match": {"id": DOC_CARD}, "outcome": 503}
    assert (await get_content(client, DOC_CARD)).status == 503
    assert (await get_content(client, "PROV:bob")).status == 200
    unnamed = await (await add(client, delay="10ms")).json()
    assert unnamed["name"] == "rule-2"
    listed = await (await client.get("/__admin/rules")).json()
    assert [r["name"] for r in listed["rules"]] == ["down", "rule-2"]
    assert await (await client.get("/__admin/rules/down")).json() == listed["rules"][0]
    assert (await client.delete("/__admin/rules/down")).status == 200
    assert (await get_content(client, DOC_CARD)).status == 200
    for method in (client.get, client.delete):
        missing = await method("/__admin/rules/down")
        assert missing.status == 404
        assert (await missing.json())["error"] == "no_such_rule"
    assert await (await client.delete("/__admin/rules")).json() == {"rules": []}


async def test_adding_a_rule_keeps_the_others_counting(make_client: MakeClient) -> None:
    client = await make_client()
    await add(client, name="twice", first=2, outcome=503)
    assert (await get_content(client, DOC_CARD)).status == 503
    await add(client, name="slow", delay="1ms")
    codes = [(await get_content(client, DOC_CARD)).status for _ in range(3)]
    assert codes == [503, 200, 200]


async def test_replace_rules(make_client: MakeClient) -> None:
    client = await make_client()
    await add(client, name="old", outcome=500)
    response = await client.put("/__admin/rules", json={"rules": [{"name": "new", "outcome": 418}]})
    assert [r["name"] for r in (await response.json())["rules"]] == ["new"]
    assert (await get_content(client, DOC_CARD)).status == 418


@pytest.mark.parametrize(
    ("method", "body", "status", "code", "message"),
    [
        ("post", {"outcome": "explode"}, 400, "invalid_rule", "rule.outcome: unknown outcome 'explode'"),
        ("post", {"name": "x"}, 400, "invalid_rule", "rule: the rule does nothing"),
        ("post", {"outcome": 503, "colour": "red"}, 400, "invalid_rule", "rule.colour: unknown key"),
        ("post", [1, 2], 400, "invalid_rule", "rule: expected a mapping"),
        ("post", b"{nope", 400, "malformed_body", "not valid JSON"),
        ("put", {"rule": []}, 400, "invalid_rule", '{"rules": [...]}'),
        ("put", {"rules": [{"delay": "soon"}]}, 400, "invalid_rule", "rules[0].delay: expected a duration"),
        ("put", {"rules": [], "more": 1}, 400, "invalid_rule", "and nothing else"),
        ("put", {"rules": [{"name": "a", "delay": 1}, {"name": "a", "delay": 2}]}, 409, "rule_exists", "named 'a'"),
        ("post", {"outcome": None, "sequence": [None, None]}, 400, "invalid_rule", "rule.outcome: no value (null)"),
        ("post", {"name": "a\nb", "outcome": 503}, 400, "invalid_rule", "is not a rule name"),
    ],
)
async def test_bad_rules_get_a_4xx_naming_the_field(
    make_client: MakeClient, method: str, body: Any, status: int, code: str, message: str
) -> None:
    client = await make_client()
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    response = await getattr(client, method)("/__admin/rules", **kwargs)
    assert response.status == status
    payload = await response.json()
    assert payload["error"] == code
    assert message in payload["message"]


async def test_a_refused_rule_name_leaves_the_operation_answering(make_client: MakeClient) -> None:
    """A name with a line break used to be taken, and then every answer it shaped broke its connection
    (the name goes into the X-Content-Provider-Fault header)."""
    client = await make_client()
    assert (await add(client, name="down\r\nX-Evil: 1", outcome=503)).status == 400
    assert (await add(client, name="down", outcome=503)).status == 201
    response = await get_content(client, DOC_CARD)
    assert response.status == 503
    assert response.headers["X-Content-Provider-Fault"].startswith("down;")


async def test_duplicate_rule_name_is_a_conflict(make_client: MakeClient) -> None:
    client = await make_client()
    await add(client, name="a", outcome=503)
    response = await add(client, name="a", outcome=500)
    assert response.status == 409
    assert (await response.json())["error"] == "rule_exists"


async def test_reset_restores_the_configured_rules_and_empties_the_journal(
    make_client: MakeClient, settings: Settings
) -> None:
    from content_provider.core.reader import Reader
    from content_provider.faults.rules import parse_fault_settings

    configured = parse_fault_settings(Reader({"rules": [{"name": "cfg", "every": 1000, "outcome": 500}]}, "f"))
    client = await make_client(faults=configured)
    await add(client, name="extra", outcome=503)
    await get_content(client, DOC_CARD)
    response = await client.post("/__admin/reset")
    assert [r["name"] for r in (await response.json())["rules"]] == ["cfg"]
    assert (await (await client.get("/__admin/requests/count")).json())["count"] == 0
    assert (await get_content(client, DOC_CARD)).status == 200


async def test_reload_without_a_config_file_is_a_conflict(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post("/__admin/reload")
    assert response.status == 409
    assert (await response.json())["error"] == "no_config_file"


# --------------------------------------------------------------------------- journal


async def test_journal_records_what_was_asked_and_answered(make_client: MakeClient) -> None:
    client = await make_client(username="hermod", password="s3cret-pass")
    auth = {"Authorization": "Basic " + base64.b64encode(b"hermod:s3cret-pass").decode()}
    await add(client, name="bob-down", match={"id": "PROV:bob"}, outcome=503)
    await get_content(client, DOC_CARD, headers=auth)
    await get_content(client, "PROV:bob", headers=auth)
    await get_content(client, "PROV:bob")  # no credentials
    entries = (await (await client.get("/__admin/requests")).json())["requests"]
    assert [(e["contentId"], e["status"], e["user"]) for e in entries] == [
        (None, 401, None),
        ("PROV:bob", 503, "hermod"),
        (DOC_CARD, 200, "hermod"),
    ]
    assert entries[1]["fault"] == "bob-down; outcome=status 503"
    assert entries[2]["resolved"] == "user 67d21afb-e830-4fee-a691-00a997ffbe1a"
    assert all(e["latencyMs"] >= 0 and e["time"].endswith("+00:00") for e in entries)
    assert "s3cret-pass" not in str(entries)


async def test_journal_filter_limit_count_and_clear(make_client: MakeClient) -> None:
    client = await make_client()
    for content_id in ("PROV:a", "PROV:b", "PROV:a", "PROV:a"):
        await get_content(client, content_id)
    only_a = await (await client.get("/__admin/requests", params={"contentId": "PROV:a", "limit": "2"})).json()
    assert [e["contentId"] for e in only_a["requests"]] == ["PROV:a", "PROV:a"]
    count = await (await client.get("/__admin/requests/count", params={"contentId": "PROV:a"})).json()
    assert count == {"contentId": "PROV:a", "count": 3}
    bad = await client.get("/__admin/requests", params={"limit": "-1"})
    assert bad.status == 400
    assert "limit" in (await bad.json())["message"]
    await client.delete("/__admin/requests")
    assert (await (await client.get("/__admin/requests/count")).json())["count"] == 0


async def test_journal_is_bounded(make_client: MakeClient) -> None:
    client = await make_client(journal_size=3)
    for i in range(5):
        await get_content(client, f"PROV:{i}")
    entries = (await (await client.get("/__admin/requests")).json())["requests"]
    assert [e["contentId"] for e in entries] == ["PROV:4", "PROV:3", "PROV:2"]


async def test_journal_records_broken_connections(make_client: MakeClient) -> None:
    client = await make_client()
    await add(client, name="rst", outcome="reset")
    with pytest.raises(aiohttp.ClientOSError):  # the connection was reset
        await get_content(client, DOC_CARD)
    await client.delete("/__admin/rules/rst")
    entries = (await (await client.get("/__admin/requests")).json())["requests"]
    assert entries[0]["status"] == "reset"


# --------------------------------------------------------------------------- fixtures


async def test_inventory_and_resolve(make_client: MakeClient) -> None:
    client = await make_client()
    inventory = await (await client.get("/__admin/fixtures")).json()
    users = {u["name"]: u["images"] for u in inventory["users"]}
    assert users["67d21afb-e830-4fee-a691-00a997ffbe1a"] == ["front", "back"]
    orgs = {o["name"]: o for o in inventory["organisations"]}
    assert orgs["acme"]["members"] == ["alice", "bob"]
    assert orgs["acme"]["patterns"] == ["acme-*"]
    assert inventory["default"] == ["front", "auth"]
    resolved = await (await client.get("/__admin/fixtures/resolve", params={"contentId": "AUTH:alice"})).json()
    assert resolved.pop("explanation")["answeredBy"] == "organisation acme"  # tests/test_explain.py has the rest
    assert resolved == {
        "contentId": "AUTH:alice",
        "useCase": "AUTH",
        "subject": "alice",
        "level": "organisation",
        "owner": "acme",
        "files": {"auth": "orgs/acme/auth.jpg"},
    }
    missing = await client.get("/__admin/fixtures/resolve")
    assert missing.status == 400


async def test_upload_is_served_at_once_and_delete_removes_it(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client(revalidate_seconds=3600)
    assert (await get_content(client, "PROV:zoe")).headers["X-Content-Provider-Resolved"] == "default"
    image = card_jpeg("Zoe")
    created = await client.put("/__admin/fixtures/users/zoe/front", data=image)
    assert created.status == 201
    assert await created.json() == {"path": "users/zoe/front.jpg", "bytes": len(image)}
    assert (fixture_root / "users/zoe/front.jpg").read_bytes() == image
    served = await get_content(client, "PROV:zoe")
    assert served.headers["X-Content-Provider-Resolved"] == "user zoe"
    element = (await served.json())["data"][0]
    assert base64.b64decode(element["data"]) == image
    read = await client.get("/__admin/fixtures/users/zoe/front")
    assert (read.status, read.content_type, await read.read()) == (200, "image/jpeg", image)
    replaced = await client.put("/__admin/fixtures/users/zoe/front", data=card_jpeg("Zoe 2"))
    assert replaced.status == 200
    assert await (await client.get("/__admin/fixtures/users/zoe/front")).read() == card_jpeg("Zoe 2")
    assert (await client.put("/__admin/fixtures/orgs/acme/auth", data=auth_jpeg("acme 2"))).status == 200
    assert (await client.put("/__admin/fixtures/default/back", data=card_jpeg("back"))).status == 201
    deleted = await client.delete("/__admin/fixtures/users/zoe/front")
    assert deleted.status == 200
    assert (await get_content(client, "PROV:zoe")).headers["X-Content-Provider-Resolved"] == "default"
    assert (await client.delete("/__admin/fixtures/users/zoe/front")).status == 404
    gone = await client.get("/__admin/fixtures/users/zoe/front")
    assert (gone.status, (await gone.json())["error"]) == (404, "no_such_image")
    default_back = await client.get("/__admin/fixtures/default/back")
    assert await default_back.read() == card_jpeg("back")


async def test_a_recorded_back_is_read_as_the_jws_it_is(make_client: MakeClient, fixture_root: Path) -> None:
    (fixture_root / "users/rec").mkdir()
    (fixture_root / "users/rec/back.jws").write_text("eyJhbGciOiJSUzI1NiJ9.eyJ9.c2ln", encoding="ascii")
    client = await make_client()
    read = await client.get("/__admin/fixtures/users/rec/back")
    assert (read.status, read.content_type) == (200, "application/jose")
    assert await read.text() == "eyJhbGciOiJSUzI1NiJ9.eyJ9.c2ln"


@pytest.mark.parametrize(
    ("path", "body", "code", "message"),
    [
        ("/__admin/fixtures/users/zoe/front", png_bytes(), "invalid_image", "body: not a JPEG"),
        (
            "/__admin/fixtures/users/zoe/front",
            auth_jpeg("square"),
            "invalid_image",
            "body: aspect ratio 640x640",
        ),
        ("/__admin/fixtures/users/zoe/front", b"", "invalid_image", "body: empty file"),
        ("/__admin/fixtures/users/zoe/side", card_jpeg("x"), "invalid_fixture", "side: expected one of"),
        ("/__admin/fixtures/people/zoe/front", card_jpeg("x"), "invalid_fixture", "kind: expected users"),
        (
            "/__admin/fixtures/users/..zoe/front",
            card_jpeg("x"),
            "invalid_fixture",
            "name: '..zoe' is not a folder",
        ),
    ],
)
async def test_bad_uploads_name_the_field_and_write_nothing(
    make_client: MakeClient, fixture_root: Path, path: str, body: bytes, code: str, message: str
) -> None:
    client = await make_client()
    before = sorted(p for p in fixture_root.parent.rglob("*"))
    response = await client.put(path, data=body)
    assert response.status == 400
    payload = await response.json()
    assert payload["error"] == code
    assert message in payload["message"]
    assert sorted(p for p in fixture_root.parent.rglob("*")) == before


@pytest.mark.parametrize("path", ["/__admin/fixtures/users/%2E%2E/front", "/__admin/fixtures/users/../../front"])
async def test_dot_dot_in_an_upload_path_writes_nothing(make_client: MakeClient, fixture_root: Path, path: str) -> None:
    client = await make_client()
    before = sorted(p for p in fixture_root.parent.rglob("*"))
    response = await client.put(path, data=card_jpeg("x"))
    assert response.status in (400, 404)
    assert sorted(p for p in fixture_root.parent.rglob("*")) == before


async def test_auth_images_may_have_any_shape(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.put("/__admin/fixtures/users/zoe/auth", data=auth_jpeg("zoe"))).status == 201


async def test_concurrent_uploads_to_one_image_end_whole(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    images = [card_jpeg(f"version {i}") for i in range(12)]
    responses = await asyncio.gather(
        *(client.put("/__admin/fixtures/users/race/front", data=image) for image in images)
    )
    assert {r.status for r in responses} <= {200, 201}
    assert (fixture_root / "users/race/front.jpg").read_bytes() in images
    assert [p.name for p in (fixture_root / "users/race").iterdir()] == ["front.jpg"]  # no temporary left


# --------------------------------------------------------------------------- access


async def test_token_is_required_when_configured(make_client: MakeClient) -> None:
    client = await make_client(admin_token=TOKEN, username="hermod", password="s3cret-pass")
    assert (await client.get("/__admin/rules")).status == 401
    wrong = await client.get("/__admin/rules", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    basic = "Basic " + base64.b64encode(b"hermod:s3cret-pass").decode()
    assert (await client.get("/__admin/rules", headers={"Authorization": basic})).status == 401
    assert (await client.get("/__admin/rules", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_admin_can_be_switched_off(make_client: MakeClient) -> None:
    client = await make_client(admin_enabled=False)
    response = await client.get("/__admin/rules")
    assert response.status == 404
    assert (await get_content(client, DOC_CARD)).status == 200


@pytest.mark.parametrize(("peer", "allowed"), [("127.0.0.1", True), ("::1", True), ("10.1.2.3", False)])
async def test_without_a_token_only_loopback_is_served(peer: str, allowed: bool) -> None:
    app = web.Application()
    app[SETTINGS] = Settings()
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    request = make_mocked_request("GET", "/__admin/rules", app=app, transport=transport)

    async def handler(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    if allowed:
        assert (await admin_guard(request, handler)).status == 200
    else:
        with pytest.raises(ApiError) as caught:
            await admin_guard(request, handler)
        assert caught.value.status == 403


async def test_metrics_answer_without_the_token_unless_admin_protect_metrics_says_so(make_client: MakeClient) -> None:
    assert (await (await make_client(admin_token=TOKEN)).get("/metrics")).status == 200  # the default, as always
    client = await make_client(admin_token=TOKEN, protect_metrics=True, username="hermod", password="s3cret-pass")
    refused = await client.get("/metrics")
    assert refused.status == 401
    assert (await refused.json())["error"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    basic = "Basic " + base64.b64encode(b"hermod:s3cret-pass").decode()
    assert (await client.get("/metrics", headers={"Authorization": basic})).status == 401
    granted = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert granted.status == 200
    assert "content_provider_requests_total" in await granted.text()
    # the web page holds no data: it stays open, and what it shows comes from the admin API with the token
    assert (await client.get("/ui/")).status == 200
    assert (await client.get("/__admin/rules")).status == 401


@pytest.mark.parametrize(("peer", "allowed"), [("127.0.0.1", True), ("10.1.2.3", False)])
async def test_protected_metrics_without_a_token_answer_only_loopback(peer: str, allowed: bool) -> None:
    app = web.Application()
    app[SETTINGS] = Settings(protect_metrics=True)
    app[METRICS] = Metrics()
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    request = make_mocked_request("GET", "/metrics", app=app, transport=transport)
    if allowed:
        assert (await metrics(request)).status == 200
    else:
        with pytest.raises(ApiError) as caught:
            await metrics(request)
        assert (caught.value.status, caught.value.code) == (403, "forbidden")


def test_protect_metrics_from_the_file_or_the_environment() -> None:
    assert not parse_settings({}, Path.cwd(), {}).protect_metrics
    assert parse_settings({"admin": {"protect_metrics": True}}, Path.cwd(), {}).protect_metrics
    assert parse_settings({}, Path.cwd(), {"CONTENT_PROVIDER_PROTECT_METRICS": "true"}).protect_metrics


async def test_unnamed_rules_get_names_no_rule_in_force_has(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await (await add(client, outcome=503)).json())["name"] == "rule-1"
    assert (await (await add(client, outcome=503)).json())["name"] == "rule-2"
    assert (await client.delete("/__admin/rules/rule-1")).status == 200
    response = await add(client, outcome=418)  # the second rule in force, but rule-2 is taken
    assert response.status == 201, await response.text()
    assert (await response.json())["name"] == "rule-3"
    assert (await (await add(client, outcome=429)).json())["name"] == "rule-4"
    listed = await (await client.get("/__admin/rules")).json()
    assert [rule["name"] for rule in listed["rules"]] == ["rule-2", "rule-3", "rule-4"]


async def test_unnamed_rules_in_a_list_do_not_take_a_given_name(make_client: MakeClient) -> None:
    client = await make_client()
    rules = [{"outcome": 503}, {"name": "rule-1", "outcome": 418}, {"outcome": 429}]
    response = await client.put("/__admin/rules", json={"rules": rules})
    assert response.status == 200, await response.text()
    assert [rule["name"] for rule in (await response.json())["rules"]] == ["rule-2", "rule-1", "rule-3"]


async def test_fixture_listing_reads_problems_on_the_event_loop(make_client: MakeClient) -> None:
    """The loop changes the store's problems while serving; the listing thread must not iterate them."""
    import threading

    client = await make_client()
    store = client.app[STORE]
    loop_thread = threading.get_ident()
    seen_from: list[int] = []

    class Watched(dict[Path, str]):
        def items(self) -> Any:
            seen_from.append(threading.get_ident())
            return super().items()

    store.problems = Watched({Path("default/front.jpg"): "a problem"})
    response = await client.get("/__admin/fixtures")
    assert response.status == 200
    assert (await response.json())["problems"] == [{"path": "default/front.jpg", "reason": "a problem"}]
    assert seen_from == [loop_thread]


async def test_the_blocking_client_has_every_call_the_async_one_has(make_client: MakeClient) -> None:
    from content_provider.client import AdminClient, AsyncAdminClient

    def calls(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")} - {"close"}

    assert calls(AsyncAdminClient) <= calls(AdminClient)
    client = await make_client()
    admin = AdminClient(str(client.make_url("")))

    def use() -> None:
        admin.replace_rules([{"name": "down", "outcome": 503}])
        assert [rule["name"] for rule in admin.rules()] == ["down"]
        assert admin.rule("down")["outcome"] == 503
        card = card_jpeg("ida")
        admin.put_image("front", card, user="ida")
        assert admin.image("front", user="ida") == card
        assert admin.delete_image("front", user="ida")["deleted"] == "users/ida/front.jpg"
        with pytest.raises(AdminError) as missing:
            admin.image("front", user="ida")
        assert (missing.value.status, missing.value.body["error"]) == (404, "no_such_image")
        with pytest.raises(AdminError) as error:
            admin.reload()
        assert error.value.status == 409  # no config file: the call reached the server and said why
        admin.clear_requests()

    await get_content(client, DOC_CARD)
    await asyncio.to_thread(use)
    assert (await get_content(client, DOC_CARD)).status == 503
    assert [e["status"] for e in (await (await client.get("/__admin/requests")).json())["requests"]] == [503]
