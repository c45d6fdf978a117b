"""Every route of the content provider and its web page, in one place (the admin API's are in admin.py)."""

from __future__ import annotations

from aiohttp import web

from . import handlers, webui
from .journal import journaled


def add_routes(app: web.Application, base_path: str) -> None:
    app.router.add_routes(
        [
            web.post(f"{base_path}/getcontent", journaled(handlers.get_content)),
            web.get(f"{base_path}/healthz", handlers.healthz),
            web.get(f"{base_path}/.well-known/jwks.json", handlers.jwks),
            web.get(f"{base_path}/signing-cert.pem", handlers.signing_certificate),
            web.get(f"{base_path}/openapi.json", handlers.openapi),
            web.get(f"{base_path}/", handlers.index),
            web.get(f"{base_path}/ui", webui.to_page),
            web.get(f"{base_path}/ui/", webui.page),
            web.get(f"{base_path}/ui/{{name:{webui.ASSET_NAMES}}}", webui.asset),
        ]
    )
