"""``GET /__admin/``: every admin endpoint and what it does, read from the OpenAPI document
(the one place the routes are described), as JSON or, for a browser, a plain page."""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import hdrs, web

from content_provider.admin.webui import SECURITY_HEADERS
from content_provider.config.settings import SETTINGS
from content_provider.http.handlers import OPENAPI

PREFIX = "/__admin"
METHODS = ("get", "post", "put", "delete")


def admin_endpoints(base_path: str) -> list[dict[str, str]]:
    """``{"method", "path", "summary"}`` of each admin operation, in the document's order."""
    return [
        {"method": method.upper(), "path": base_path + path, "summary": str(operation.get("summary", ""))}
        for path, item in OPENAPI["paths"].items()
        if path.startswith(PREFIX + "/") and path != PREFIX + "/"
        for method, operation in item.items()
        if method in METHODS
    ]


def _page(listing: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{escape(e['method'])}</td><td>"
        + (
            f'<a href="{escape(e["path"])}">{escape(e["path"])}</a>'
            if e["method"] == "GET" and "{" not in e["path"]
            else escape(e["path"])
        )
        + f"</td><td>{escape(e['summary'])}</td></tr>"
        for e in listing["endpoints"]
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>content-provider admin API</title>'
        f'<link rel="stylesheet" href="{escape(listing["web_page"])}style.css"></head><body><main>'
        "<h1>Admin API</h1>"
        f'<p>The web page: <a href="{escape(listing["web_page"])}">{escape(listing["web_page"])}</a>; '
        f'the whole API: <a href="{escape(listing["openapi"])}">{escape(listing["openapi"])}</a>.</p>'
        f"<table><thead><tr><th>method</th><th>path</th><th>what it does</th></tr></thead><tbody>{rows}</tbody>"
        "</table></main></body></html>"
    )


async def admin_index(request: web.Request) -> web.Response:
    """``GET /__admin/``."""
    base = request.app[SETTINGS].base_path
    listing = {"endpoints": admin_endpoints(base), "openapi": f"{base}/openapi.json", "web_page": f"{base}/ui/"}
    if "text/html" in request.headers.get(hdrs.ACCEPT, ""):
        return web.Response(text=_page(listing), content_type="text/html", headers=SECURITY_HEADERS)
    return web.json_response(listing)
