"""Every route of the server, in one place."""

from __future__ import annotations

from aiohttp import web

from . import handlers


def add_routes(app: web.Application, base_path: str) -> None:
    app.router.add_routes(
        [
            web.post(f"{base_path}/getcontent", handlers.get_content),
            web.get(f"{base_path}/healthz", handlers.healthz),
            web.get(f"{base_path}/.well-known/jwks.json", handlers.jwks),
            web.get(f"{base_path}/signing-cert.pem", handlers.signing_certificate),
            web.get(f"{base_path}/", handlers.index),
        ]
    )
