"""The application factory: validated settings in, a ready ``web.Application`` out."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from .app_reload import config_watch_ctx
from .config import Settings
from .faults import FaultEngine
from .handlers import PARSED_BODIES, ParsedBodies
from .journal import JOURNAL, Journal
from .keys import CONFIG_ENV, FAULTS, SETTINGS, SIGNER, STORE
from .routes import add_routes
from .signing import load_or_create_signer
from .store import FixtureError, FixtureStore

log = logging.getLogger("content_provider")

# Room for admin uploads later; /getcontent applies its own, much smaller limit.
CLIENT_MAX_SIZE = 32 * 1024 * 1024


async def fixtures_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the signing key and the fixture store; check every fixture once at start-up."""
    settings = app[SETTINGS]
    signer = await asyncio.to_thread(load_or_create_signer, settings.algorithm, settings.key_file, settings.cert_file)
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
                f"{len(problems)} fixture problem(s) and fixtures.strict is on: " + "; ".join(str(p) for p in problems),
                tuple(problems),
            )
    app[SIGNER] = signer
    app[STORE] = store
    yield


def create_app(settings: Settings, environ: Mapping[str, str] | None = None) -> web.Application:
    """The application for ``settings``; ``environ`` is used again when the config is reloaded."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)  # no middleware: see errors.json_errors
    app[SETTINGS] = settings
    app[CONFIG_ENV] = dict(os.environ if environ is None else environ)
    app[FAULTS] = FaultEngine(settings.faults)
    app[JOURNAL] = Journal(settings.journal_size)
    app[PARSED_BODIES] = ParsedBodies()
    app.cleanup_ctx.append(fixtures_ctx)
    app.cleanup_ctx.append(config_watch_ctx)
    add_routes(app, settings.base_path)
    return app
