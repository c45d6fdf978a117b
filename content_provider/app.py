"""Every route of the content provider and its web page, in one place (the admin API's are in admin.py)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping

from aiohttp import web

from content_provider.admin import webui
from content_provider.admin.api import PREFIX, add_admin_routes
from content_provider.admin.reload import config_watch_ctx
from content_provider.config.settings import CONFIG_ENV, SETTINGS, Settings
from content_provider.config.worker_role import ROLE, WorkerRole
from content_provider.faults.engine import FAULTS, FaultEngine
from content_provider.fixtures.answers import FixtureError
from content_provider.fixtures.explain import EXPLAINER, Explainer
from content_provider.fixtures.store import STORE, FixtureStore
from content_provider.fixtures.write import unwritable
from content_provider.http import handlers, metrics
from content_provider.http.body import PARSED_BODIES, ParsedBodies
from content_provider.http.delivery import INJECTED_WAITS, InjectedWaits
from content_provider.http.errors import json_errors, no_route
from content_provider.http.journaled import journaled
from content_provider.http.metrics import METRICS, Metrics, metrics_ctx
from content_provider.http.origin import host_checked, preflight
from content_provider.http.parts import ContentParts
from content_provider.signing.jws import SIGNER, signer_for
from content_provider.state import state_ctx
from content_provider.state.journal import JOURNAL, Journal
from content_provider.upstream.proxy import upstream_ctx


def add_routes(app: web.Application, base_path: str) -> None:
    """The content provider's routes, the admin API's, then one that answers every other path."""
    parts = ContentParts()
    app.on_startup.append(parts.take)  # on_startup runs after the cleanup contexts have made the parts
    app.router.add_routes(
        [
            # journaled() also turns errors into JSON; the other routes get json_errors() for that.
            web.post(f"{base_path}/getcontent", journaled(handlers.get_content, parts)),
            web.get(f"{base_path}/healthz", json_errors(handlers.healthz)),
            web.get(f"{base_path}/metrics", json_errors(host_checked(metrics.metrics))),
            web.get(f"{base_path}/.well-known/jwks.json", json_errors(handlers.jwks)),
            web.get(f"{base_path}/signing-cert.pem", json_errors(handlers.signing_certificate)),
            web.get(f"{base_path}/openapi.json", json_errors(handlers.openapi)),
            web.get(f"{base_path}/", json_errors(handlers.index)),
            # host_checked: the page and /metrics only for this machine's names (no DNS rebinding)
            web.get(f"{base_path}/ui", json_errors(host_checked(webui.to_page))),
            web.get(f"{base_path}/ui/", json_errors(host_checked(webui.page))),
            web.get(f"{base_path}/ui/{{name:{webui.ASSET_NAMES}}}", json_errors(host_checked(webui.asset))),
        ]
    )
    add_admin_routes(app, base_path)
    # CORS preflights, once per admin path: a grant only for server.allowed_origins (http/origin.py)
    preflighted = set()
    for resource in list(app.router.resources()):
        path = resource.canonical
        if isinstance(resource, web.Resource) and path.startswith(base_path + PREFIX + "/") and path not in preflighted:
            preflighted.add(path)
            resource.add_route("OPTIONS", json_errors(preflight))
    # last: 404, or 405 naming the methods, for every path ([\s\S]: "." would not match an encoded newline)
    app.router.add_route("*", r"/{tail:[\s\S]*}", json_errors(no_route))


log = logging.getLogger("content_provider")

# Admin uploads (at most fixtures.write.MAX_IMAGE_BYTES) fit; /getcontent applies its own, much smaller limit.
CLIENT_MAX_SIZE = 32 * 1024 * 1024
# At SIGTERM in-flight requests get this long; an injected wait (a delay, a dribble, a hang) that
# would end later is ended at once and its connection closed, so the process is gone in time.
SHUTDOWN_TIMEOUT = 10.0
SHUTDOWN_MARGIN = 1.0  # of the timeout, kept for writing what the waits that may finish send


# With fixtures.check_at_startup: auto, a fixture folder with more user and organisation
# folders than this is not decoded at start-up: each image is checked when first served.
STARTUP_CHECK_FOLDERS = 500


def _check_now(store: FixtureStore) -> bool:
    """Whether to decode every fixture at start-up; blocking."""
    check = store.settings.check_at_startup
    if check != "auto":
        return check
    folders = store.count_folders(STARTUP_CHECK_FOLDERS + 1)
    if folders <= STARTUP_CHECK_FOLDERS:
        return True
    log.info(
        "more than %d user and organisation folders: images are checked when first served, not now "
        "(fixtures.check_at_startup: true checks all at start-up; content-provider check-fixtures does it offline)",
        STARTUP_CHECK_FOLDERS,
    )
    return False


async def fixtures_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the signing key and the fixture store; check every fixture once at start-up."""
    settings = app[SETTINGS]
    signer = await asyncio.to_thread(signer_for, settings)
    log.info(
        "back sides signed %s, kid %s, with the development key %s (JWKS at %s/.well-known/jwks.json)",
        signer.algorithm,
        signer.kid,
        signer.key_file,
        settings.base_path,
    )
    store = FixtureStore(settings, signer)
    persistent = await asyncio.to_thread(store.open_persistent)
    read_only = await asyncio.to_thread(unwritable, store.root)
    if read_only is not None:  # served as it is; uploads and deletes answer 409 fixtures_read_only
        log.warning("fixtures: %s; uploads and deletes through the admin API are refused", read_only)
    if await asyncio.to_thread(_check_now, store):
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
    app[EXPLAINER] = explainer = Explainer(store.resolver)
    saving = None if persistent is None else asyncio.ensure_future(persistent.keep_saving())
    yield
    await explainer.finish()  # the "why the default" log lines still being written
    store.close()
    if saving is not None and persistent is not None:  # what is new, kept for the next start
        saving.cancel()
        await asyncio.to_thread(persistent.save)
        log.info("%s", persistent.summary())


async def start_fault_windows(app: web.Application) -> None:
    app[FAULTS].restart_windows()


async def end_injected_waits(app: web.Application) -> None:
    """Runs at shutdown, before in-flight requests are waited for."""
    ended = app[INJECTED_WAITS].stop(SHUTDOWN_TIMEOUT - SHUTDOWN_MARGIN)
    if ended:
        log.info("shutting down: ended %d injected wait(s) that would outlast the shutdown", ended)


def create_app(settings: Settings, environ: Mapping[str, str] | None = None) -> web.Application:
    """The application for ``settings``; ``environ`` is used again when the config is reloaded."""
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)  # no middleware: see errors.json_errors
    app[SETTINGS] = settings
    env = dict(os.environ if environ is None else environ)
    app[CONFIG_ENV] = env
    app[FAULTS] = FaultEngine(settings.faults)
    app[JOURNAL] = Journal(settings.journal_size)
    app[PARSED_BODIES] = ParsedBodies()
    app[INJECTED_WAITS] = InjectedWaits()
    app[METRICS] = Metrics()
    app.on_startup.append(start_fault_windows)  # after the cleanup contexts' start-up (key, fixtures)
    app.on_shutdown.append(end_injected_waits)
    app.cleanup_ctx.append(fixtures_ctx)
    app.cleanup_ctx.append(state_ctx)  # after the fixtures: shared uploads are written into them
    app.cleanup_ctx.append(metrics_ctx)
    if settings.upstream is not None:
        app.cleanup_ctx.append(upstream_ctx)
    role = WorkerRole.from_environ(env)
    if role is not None:
        app[ROLE] = role
    app.cleanup_ctx.append(config_watch_ctx)
    add_routes(app, settings.base_path)
    return app
