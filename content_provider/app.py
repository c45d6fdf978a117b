"""The application factory: validated settings in, a ready ``web.Application`` out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from .config import Settings
from .errors import json_errors
from .faults import FaultEngine
from .keys import FAULTS, SETTINGS, SIGNER, STORE
from .routes import add_routes
from .signing import load_or_create_signer
from .store import FixtureError, FixtureStore

log = logging.getLogger("content_provider")

# Room for admin uploads later; /getcontent applies its own, much smaller limit.
CLIENT_MAX_SIZE = 32 * 1024 * 1024


async def fixtures_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the signing key and the fixture store; check every fixture once at start-up."""
    settings = app[SETTINGS]
    signer = await asyncio.to_thread(
        load_or_create_signer, settings.algorithm, settings.key_file, settings.cert_file
    )
    log.info(
        "back sides signed %s, kid %s, with the development key %s (JWKS at %s/.well-known/jwks.json)",
        signer.algorithm,
        signer.kid,
        signer.key_file,
        settings.base_path,
    )
    store = FixtureStore(settings, signer)
    if settings.check_at_startup:
        problems = await asyncio.to_thread(store.check_all)
        for problem in problems:
            log.warning("fixture problem: %s", problem)
        if problems and settings.strict:
            raise FixtureError(
                "fixture_invalid",
                f"{len(problems)} fixture problem(s) and fixtures.strict is on: "
                + "; ".join(str(p) for p in problems),
                tuple(problems),
            )
    app[SIGNER] = signer
    app[STORE] = store
    yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app[FAULTS] = FaultEngine(settings.faults)
    app.cleanup_ctx.append(fixtures_ctx)
    add_routes(app, settings.base_path)
    return app
