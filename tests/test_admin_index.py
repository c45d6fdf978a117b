"""``GET /__admin/``: the admin API says what it has (``/`` links to it; it was a 404)."""

from __future__ import annotations

from content_provider.http.handlers import OPENAPI

from .helpers import MakeClient


async def test_the_admin_index_lists_every_admin_operation(make_client: MakeClient) -> None:
    client = await make_client()
    index = await (await client.get("/")).json()
    response = await client.get(index["admin"])
    assert response.status == 200
    listing = await response.json()
    listed = {(e["method"], e["path"]) for e in listing["endpoints"]}
    documented = {
        (method.upper(), path)
        for path, item in OPENAPI["paths"].items()
        if path.startswith("/__admin/") and path != "/__admin/"
        for method in item
        if method in ("get", "post", "put", "delete")
    }
    assert listed == documented
    assert ("POST", "/__admin/rules") in listed
    assert all(e["summary"] for e in listing["endpoints"])
    assert listing["web_page"] == "/ui/"


async def test_a_browser_gets_a_page_of_links(make_client: MakeClient) -> None:
    client = await make_client(base_path="/cp")
    response = await client.get("/cp/__admin/", headers={"Accept": "text/html"})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    page = await response.text()
    assert '<a href="/cp/__admin/rules">/cp/__admin/rules</a>' in page
    assert "/cp/__admin/fixtures/{kind}/{name}/{side}" in page  # shown, not linked: it takes parameters
    assert '<a href="/cp/ui/">' in page


async def test_the_index_is_behind_the_admin_token_like_the_rest(make_client: MakeClient) -> None:
    client = await make_client(admin_token="t" * 32)
    assert (await client.get("/__admin/")).status == 401
    response = await client.get("/__admin/", headers={"Authorization": "Bearer " + "t" * 32})
    assert response.status == 200
