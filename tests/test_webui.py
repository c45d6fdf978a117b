"""The web page as HTTP sees it: served with its assets, nothing from elsewhere, as open as the admin API."""

from __future__ import annotations

import re

import pytest

from content_provider.admin.webui import TEXT_COLOURS
from content_provider.faults.payloads import PAYLOAD_MODES

from .helpers import MakeClient


async def test_the_page_and_its_assets_are_served(make_client: MakeClient) -> None:
    client = await make_client()
    page = await client.get("/ui/")
    assert page.status == 200
    assert page.content_type == "text/html"
    text = await page.text()
    # Everything the page loads is on this server: no CDN, works offline.
    loaded = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert loaded, text
    assert all(url.startswith("/") or url.startswith("#") or url == "data:," for url in loaded), loaded
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    for name, content_type in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = await client.get(f"/ui/{name}")
        assert asset.status == 200
        assert asset.content_type == content_type
        assert len(await asset.read()) > 1000


async def test_the_page_offers_every_payload_mode_and_text_colour(make_client: MakeClient) -> None:
    text = await (await (await make_client()).get("/ui/")).text()
    for mode in PAYLOAD_MODES:
        assert f'<option value="{mode}">' in text
    for colour in TEXT_COLOURS:
        assert f'<option value="{colour}">' in text
    assert "CLEAR" in TEXT_COLOURS


async def test_a_browser_at_the_root_is_sent_to_the_page_and_a_script_gets_json(make_client: MakeClient) -> None:
    client = await make_client()
    browser = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"}, allow_redirects=False)
    assert browser.status == 302
    assert browser.headers["Location"] == "/ui/"
    script = await client.get("/")
    assert (await script.json())["web_page"] == "/ui/"
    bare = await client.get("/ui", allow_redirects=False)
    assert (bare.status, bare.headers["Location"]) == (302, "/ui/")


async def test_the_page_follows_the_base_path(make_client: MakeClient) -> None:
    client = await make_client(base_path="/cp")
    text = await (await client.get("/cp/ui/")).text()
    assert 'data-base="/cp"' in text
    assert 'src="/cp/ui/app.js"' in text
    assert (await client.get("/cp/ui/style.css")).status == 200


@pytest.mark.parametrize("path", ["/ui/", "/ui/app.js"])
async def test_with_the_admin_api_off_there_is_no_page(make_client: MakeClient, path: str) -> None:
    client = await make_client(admin_enabled=False)
    response = await client.get(path)
    assert response.status == 404
    assert "admin.enabled: false" in (await response.json())["message"]
    root = await client.get("/", headers={"Accept": "text/html"}, allow_redirects=False)
    assert root.status == 200  # the JSON index, not a redirect to a page that is not there


@pytest.mark.parametrize("path", ["/ui/index.html", "/ui/__init__.py", "/ui/app.js.map", "/ui/%2e%2e/__init__.py"])
async def test_only_the_pages_own_files_are_served(make_client: MakeClient, path: str) -> None:
    response = await (await make_client()).get(path)
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
