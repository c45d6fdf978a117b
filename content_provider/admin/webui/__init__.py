"""The web page at ``/ui/``: cards as the phone shows them, live traffic, fault rules.

Plain HTML, one script and one style sheet shipped in the package: no build step and
nothing fetched from elsewhere (a strict Content-Security-Policy says so to the
browser). The page holds no data itself; everything comes from the admin API, with
its token when one is set, so the page is exactly as open as the admin API.
"""

from __future__ import annotations

import html
from importlib import resources
from string import Template

from aiohttp import web

from content_provider.config.settings import SETTINGS
from content_provider.conformance.html import STYLE_HASH as REPORT_STYLE
from content_provider.core.errors import ApiError
from content_provider.core.version import __version__
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import CONNECTION_MODES

# The text colours the app offers for the name, issuer and activation date. The vendor's
# list is cut off after WHITE and BLACK in the public page; CLEAR hides the text.
TEXT_COLOURS = ("WHITE", "BLACK", "CLEAR")

_FILES = resources.files(__package__)
_PAGE = Template(_FILES.joinpath("index.html").read_text(encoding="utf-8"))
ASSETS = {
    "app.js": (_FILES.joinpath("app.js").read_bytes(), "text/javascript"),
    "style.css": (_FILES.joinpath("style.css").read_bytes(), "text/css"),
}
SECURITY_HEADERS = {
    # Everything from this server; images also as data: URIs (the previews). The conformance report's
    # style sheet by its hash: the page opens the report as a blob: URL when a token is set, and a
    # blob: document keeps the policy of the page that made it.
    "Content-Security-Policy": (
        f"default-src 'none'; script-src 'self'; style-src 'self' '{REPORT_STYLE}'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _options(values: list[tuple[str, str]]) -> str:
    return "".join(f'<option value="{html.escape(v)}">{html.escape(label)}</option>' for v, label in values)


def render_page(base_path: str) -> str:
    payloads = [(name, f"{name}: {mode.description}") for name, mode in PAYLOAD_MODES.items()]
    return _PAGE.substitute(
        base=html.escape(base_path),
        version=html.escape(__version__),
        colour_options=_options([(c, c) for c in TEXT_COLOURS]),
        payload_options=_options(payloads),
        connection_options=_options([(m, m) for m in CONNECTION_MODES]),
    )


def _admin_on(request: web.Request) -> None:
    if not request.app[SETTINGS].admin_enabled:
        raise ApiError(404, "not_found", "the web page needs the admin API, which is off (admin.enabled: false)")


async def page(request: web.Request) -> web.Response:
    _admin_on(request)
    return web.Response(
        text=render_page(request.app[SETTINGS].base_path), content_type="text/html", headers=SECURITY_HEADERS
    )


async def asset(request: web.Request) -> web.Response:
    _admin_on(request)
    body, content_type = ASSETS[request.match_info["name"]]
    return web.Response(body=body, content_type=content_type, headers=SECURITY_HEADERS)


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{request.app[SETTINGS].base_path}/ui/")


ASSET_NAMES = "|".join(name.replace(".", r"\.") for name in ASSETS)  # the route's pattern
