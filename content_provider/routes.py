"""Every route of the content provider and its web page, in one place (the admin API's are in admin.py)."""

from __future__ import annotations

from aiohttp import web

from . import handlers, metrics, webui
from .admin import add_admin_routes
from .errors import json_errors, no_route
from .journal import journaled


def add_routes(app: web.Application, base_path: str) -> None:
    """The content provider's routes, the admin API's, then one that answers every other path."""
    app.router.add_routes(
        [
            # journaled() also turns errors into JSON; the other routes get json_errors() for that.
            web.post(f"{base_path}/getcontent", journaled(handlers.get_content)),
            web.get(f"{base_path}/healthz", json_errors(handlers.healthz)),
            web.get(f"{base_path}/metrics", json_errors(metrics.metrics)),
            web.get(f"{base_path}/.well-known/jwks.json", json_errors(handlers.jwks)),
            web.get(f"{base_path}/signing-cert.pem", json_errors(handlers.signing_certificate)),
            web.get(f"{base_path}/openapi.json", json_errors(handlers.openapi)),
            web.get(f"{base_path}/", json_errors(handlers.index)),
            web.get(f"{base_path}/ui", json_errors(webui.to_page)),
            web.get(f"{base_path}/ui/", json_errors(webui.page)),
            web.get(f"{base_path}/ui/{{name:{webui.ASSET_NAMES}}}", json_errors(webui.asset)),
        ]
    )
    add_admin_routes(app, base_path)
    # last: 404, or 405 naming the methods, for every path ([\s\S]: "." would not match an encoded newline)
    app.router.add_route("*", r"/{tail:[\s\S]*}", json_errors(no_route))
