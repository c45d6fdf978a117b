"""The application factory: validated settings in, a ready ``web.Application`` out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from aiohttp import web

from .config import ConfigError, Settings, load_settings
from .errors import json_errors
from .faults import FaultEngine
from .keys import CONFIG_ENV, FAULTS, SETTINGS, SIGNER, STORE
from .routes import add_routes
from .signing import load_or_create_signer
from .store import FixtureError, FixtureStore

log = logging.getLogger("content_provider")

# Room for admin uploads later; /getcontent applies its own, much smaller limit.
CLIENT_MAX_SIZE = 32 * 1024 * 1024
CONFIG_POLL_SECONDS = 1.0


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


async def config_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload fault rules when the config file changes; a bad edit keeps the last good config."""
    settings = app[SETTINGS]
    task = None
    if settings.source is not None:
        environ: dict[str, str] = app[CONFIG_ENV]
        task = asyncio.create_task(_watch_config(app, settings.source, environ))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


async def _watch_config(app: web.Application, source: Path, environ: Mapping[str, str]) -> None:
    seen = await asyncio.to_thread(_mtime, source)
    while True:
        await asyncio.sleep(CONFIG_POLL_SECONDS)
        current = await asyncio.to_thread(_mtime, source)
        if current == seen:
            continue
        seen = current
        await reload_config(app, source, environ)


async def reload_config(app: web.Application, source: Path, environ: Mapping[str, str]) -> bool:
    """Read the config again and put its fault rules in force. False when it is not valid."""
    try:
        fresh = await asyncio.to_thread(load_settings, source, environ)
    except ConfigError as exc:
        log.error("config not reloaded, keeping the last good one: %s", exc)
        return False
    engine = app[FAULTS]
    if fresh.faults != engine.settings:
        engine.reconfigure(fresh.faults)
        log.info("config reloaded: %d fault rule(s) in force, counters restarted", len(fresh.faults.rules))
    running = app[SETTINGS]
    changed = [
        f.name
        for f in dataclasses.fields(Settings)
        if f.name not in ("faults", "source") and getattr(fresh, f.name) != getattr(running, f.name)
    ]
    if changed:
        log.warning("config changes to %s take effect after a restart", ", ".join(changed))
    return True


def create_app(settings: Settings, environ: Mapping[str, str] | None = None) -> web.Application:
    """The application for ``settings``; ``environ`` is used again when the config is reloaded."""
    app = web.Application(middlewares=[json_errors], client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app[CONFIG_ENV] = dict(os.environ if environ is None else environ)
    app[FAULTS] = FaultEngine(settings.faults)
    app.cleanup_ctx.append(fixtures_ctx)
    app.cleanup_ctx.append(config_watch_ctx)
    add_routes(app, settings.base_path)
    return app
