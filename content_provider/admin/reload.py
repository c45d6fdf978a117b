"""Reloading ``config.yaml`` while running: fault rules change, everything else waits for a restart."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from content_provider.config.parse import load_settings
from content_provider.config.settings import CONFIG_ENV, SETTINGS, Settings
from content_provider.core.reader import ConfigError
from content_provider.faults.engine import FAULTS
from content_provider.state.base import STATE

log = logging.getLogger("content_provider")

CONFIG_POLL_SECONDS = 1.0


async def config_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """Reload fault rules when the config file changes; a bad edit keeps the last good config."""
    settings = app[SETTINGS]
    task = None
    if settings.source is not None:
        # The file as it was loaded is the baseline: read it before serving, not later.
        seen = await asyncio.to_thread(_mtime, settings.source)
        task = asyncio.create_task(_watch_config(app, settings.source, seen))
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


async def _watch_config(app: web.Application, source: Path, seen: int | None) -> None:
    while True:
        await asyncio.sleep(CONFIG_POLL_SECONDS)
        current = await asyncio.to_thread(_mtime, source)
        if current == seen:
            continue
        seen = current
        try:
            await reload_config(app, source)
        except Exception as exc:  # the watcher outlives any file: a bug in reading one must not stop it
            log.error("config not reloaded, keeping the last good one: unexpected %s: %s", type(exc).__name__, exc)


async def reload_config(app: web.Application, source: Path) -> str | None:
    """Read the config again and put its fault rules in force; why not, when it is not valid."""
    try:
        fresh = await asyncio.to_thread(load_settings, source, app[CONFIG_ENV])
    except ConfigError as exc:
        log.error("config not reloaded, keeping the last good one: %s", exc)
        return str(exc)
    engine = app[FAULTS]
    if fresh.faults != engine.settings:
        state = app.get(STATE)
        if state is None or state.kind == "memory":
            engine.reconfigure(fresh.faults)
            log.info("config reloaded: %d fault rule(s) in force, counters restarted", len(fresh.faults.rules))
        else:  # shared rules: put the file's in force everywhere, unless another replica did already
            shared = [rule.spec for rule in engine.rules]
            engine.settings = fresh.faults
            if [rule.spec for rule in fresh.faults.rules] != shared:
                await state.change_rules(lambda _: fresh.faults.rules, restart=True)
                log.info("config reloaded: %d shared fault rule(s) in force, counters restarted", len(engine.rules))
    running = app[SETTINGS]
    changed = [
        f.name
        for f in dataclasses.fields(Settings)
        if f.name not in ("faults", "source") and getattr(fresh, f.name) != getattr(running, f.name)
    ]
    if changed:
        log.warning("config changes to %s take effect after a restart", ", ".join(changed))
    return None
