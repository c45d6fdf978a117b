"""Serving in this process: the app on its listening sockets until SIGINT or SIGTERM, the event
loop it runs on, and the private copy of the demo set that is served instead of the original."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from content_provider.app import SHUTDOWN_TIMEOUT, create_app
from content_provider.config.settings import DEMO_FIXTURES, Settings, in_package
from content_provider.config.worker_role import WorkerRole
from content_provider.core.fsutil import copy_tree
from content_provider.core.reader import ConfigError
from content_provider.http.accesslog import AccessLogger
from content_provider.serving.listener import listen
from content_provider.signing.devtls import server_context

log = logging.getLogger("content_provider")


async def serve(settings: Settings, environ: Mapping[str, str]) -> None:
    """Run until SIGINT or SIGTERM, then let in-flight requests finish (bounded)."""
    app = create_app(settings, environ)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("content_provider.access") if settings.access_log else None,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        keepalive_timeout=settings.idle_timeout,
    )
    context = server_context(settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    role = WorkerRole.from_environ(environ)
    await runner.setup()
    # What start-up made (modules, the app, the signing key) lives as long as the process: moved out
    # of the garbage collector's sight, its full passes cover only what serving made (docs/performance.md).
    gc.collect()
    gc.freeze()
    listeners: list[asyncio.Server] = []
    try:
        if role is None:
            listeners = [await listen(runner, settings.host, settings.port, context, settings.max_connections)]
        else:  # the supervisor's sockets (see workers.py)
            listeners = [
                await listen(runner, settings.host, settings.port, context, settings.max_connections, sock=sock)
                for sock in role.listening_sockets()
            ]
        if role is not None:  # the supervisor says where it serves
            await asyncio.to_thread(role.announce)
        for sock in listeners[0].sockets if role is None else ():
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            scheme = "https" if context else "http"
            log.info("serving POST %s://%s:%d%s/getcontent", scheme, shown, port, settings.base_path)
        log.info("fixtures: %s", settings.fixture_root)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        orphan_watch = asyncio.create_task(_stop_when_orphaned(stop)) if role is not None else None
        await stop.wait()
        if orphan_watch is not None:
            orphan_watch.cancel()
        log.info("shutting down: no new connections; in-flight requests get %g s", SHUTDOWN_TIMEOUT)
    finally:
        for server in listeners:
            server.close()
        await runner.cleanup()
    log.info("stopped")


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose supervisor is gone (killed with -9, say) stops too, rather than hold the port."""
    parent = os.getppid()
    while True:  # Linux says nothing when a parent dies (short of prctl), so look every second
        await asyncio.sleep(1.0)
        if os.getppid() != parent:
            break
    log.warning("the supervisor (pid %d) is gone; stopping", parent)
    stop.set()


def run_loop(main: Coroutine[Any, Any, None], choice: str) -> None:
    """Run on uvloop when chosen, or with ``auto`` when it is installed; else on asyncio."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("server.event_loop: uvloop is not installed (pip install uvloop)") from None
        else:
            log.info("event loop: uvloop")
            uvloop.run(main)
            return
    log.info("event loop: asyncio")
    asyncio.run(main)


@contextlib.contextmanager
def writable_fixtures(settings: Settings) -> Iterator[Path | None]:
    """Serving the demo set (the package's copy when installed, ``fixtures/images`` in a checkout):
    serve a private copy of it instead, so what a user tries through the admin API changes neither
    the package nor a tracked file; removed when the server stops. ``None`` for a folder of the
    user's own, served as it is."""
    if settings.fixture_root.resolve() != DEMO_FIXTURES.resolve() and not in_package(settings.fixture_root):
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="content-provider-demo-"))
    try:
        copy = copy_tree(settings.fixture_root, folder / "images")
        log.info(
            "fixtures: the demo set, copied to %s for this run: uploads and deletes go there and end with it "
            "(serve a folder of your own with --fixtures DIR to keep them)",
            copy,
        )
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)
