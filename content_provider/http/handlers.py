"""Request handlers: the content provider operation and the small service endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import hdrs, web

from content_provider.config.settings import SETTINGS
from content_provider.config.worker_role import ROLE
from content_provider.core.contract import BARE_IDS_OFF, ContentId, parse_content_id
from content_provider.core.errors import ApiError
from content_provider.core.reader import ConfigError
from content_provider.core.records import Entry
from content_provider.core.version import __version__
from content_provider.faults.directives import split_directives
from content_provider.faults.engine import FAULTS, FaultEngine, Plan
from content_provider.faults.rules import Rule
from content_provider.fixtures.answers import Answer, FixtureError
from content_provider.fixtures.explain import EXPLAINER
from content_provider.fixtures.store import STORE, FixtureStore
from content_provider.fixtures.write import unwritable
from content_provider.http.auth import require_basic_auth
from content_provider.http.body import read_limited
from content_provider.http.delivery import deliver
from content_provider.http.parts import ContentParts
from content_provider.signing.jws import SIGNER
from content_provider.state.base import STATE
from content_provider.upstream.proxy import answer_from_upstream, goes_upstream


async def _answer(store: FixtureStore, entry: Entry, content_id: ContentId) -> Answer | None:
    """The prepared answer, noting in the journal entry where it resolved."""
    try:
        answer = await store.answer(content_id)
    except FixtureError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    if answer is not None:
        entry.resolved = answer.resolution.label
    return answer


async def _unknown(app: web.Application, content_id: ContentId) -> ApiError:
    """The 404, with the best near miss when there is one (worked out in a thread, remembered per id)."""
    message = f"no {content_id.use_case.name.lower()} image for this content id"
    hint = await asyncio.to_thread(app[EXPLAINER].hint, content_id)
    if hint is not None:
        message += f"; near miss: {hint}"
    return ApiError(404, "unknown_content_id", message)


async def _unknown_response(app: web.Application, content_id: ContentId) -> web.Response:
    return (await _unknown(app, content_id)).response()


async def get_content(request: web.Request, entry: Entry, parts: ContentParts) -> web.StreamResponse:
    """``POST /getcontent {"contentId": ...}``: the images for a content id. ``entry`` is the request's
    journal entry and ``parts`` the app's parts, both from :func:`~content_provider.http.journaled.journaled`:
    the hot path looks nothing up in the app (see docs/performance.md)."""
    settings = parts.settings
    started = entry.started
    user = None
    if settings.username is not None and settings.password is not None:
        user = entry.user = require_basic_auth(request, settings.username, settings.password)
    body = await read_limited(request, settings.max_body_bytes, settings.body_timeout)
    raw = entry.contentId = parts.parsed_bodies.content_id(body, settings.max_content_id_length)
    faults = parts.faults
    lookup, directive = raw, None
    if faults.settings.content_id_directives:
        try:
            lookup, directive = split_directives(raw, faults.settings.max_delay_seconds)
        except ConfigError as exc:
            raise ApiError(400, "invalid_directive", str(exc)) from None
    content_id = parse_content_id(lookup, settings.bare_ids)
    if content_id is None:
        message = BARE_IDS_OFF
        hint = await asyncio.to_thread(parts.explainer.bare_hint, lookup)
        raise ApiError(404, "unknown_content_id", message + (f"; near miss: {hint}" if hint else ""))
    if settings.upstream is not None and await goes_upstream(request.app, content_id):
        forward = body if directive is None else json.dumps({"contentId": lookup}).encode()
        return await _upstream_content(request, entry, content_id, forward, user, directive, raw, started)
    store = parts.store
    if faults.rules or directive is not None:
        shaped = await _shaped(
            request, content_id, user, directive, raw, started, lambda: _answer(store, entry, content_id)
        )
        if shaped is not None:
            return shaped
    # _answer() inlined, and a hot id's answer taken without a coroutine (see docs/performance.md)
    answer = store.hot(content_id, started)
    if answer is None:
        try:
            answer = await store.answer(content_id)
        except FixtureError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        if answer is None:
            raise await _unknown(request.app, content_id)
    entry.resolved = answer.resolution.label
    if answer.resolution.level == "default":
        parts.explainer.defaulted(content_id)  # logs why, once per id, off this path
    return web.Response(body=answer.body, headers=answer.resolution.headers)


async def _shaped(
    request: web.Request,
    content_id: ContentId,
    user: str | None,
    directive: Rule | None,
    raw: str,
    started: float,
    answer: Callable[[], Awaitable[Answer | None]],
) -> web.StreamResponse | None:
    """The answer as the fault rules shape it, or ``None`` when no rule fires for this request."""
    app = request.app
    faults = app[FAULTS]
    plan = await _plan(faults, content_id, user or request.remote or "unknown", directive, raw)
    if not plan.active:
        return None
    return await deliver(
        request,
        plan,
        started,
        answer,
        lambda: _unknown_response(app, content_id),
        header=faults.settings.header,
        seed=faults.settings.seed,
        max_delay=faults.settings.max_delay_seconds,
    )


async def _plan(faults: FaultEngine, content_id: ContentId, client: str, directive: Rule | None, raw: str) -> Plan:
    """The faults for this request, counted here or, with a shared state backend, there."""
    if faults.remote is None:
        return faults.plan(content_id, client, directive, raw)
    return await faults.plan_remote(content_id, client, directive, raw)


async def _upstream_content(
    request: web.Request,
    entry: Entry,
    content_id: ContentId,
    body: bytes,
    user: str | None,
    directive: Rule | None,
    raw: str,
    started: float,
) -> web.StreamResponse:
    """The upstream's answer (content_provider/upstream/), shaped by the fault rules like any other."""
    app = request.app
    faults = app[FAULTS]
    if faults.rules or directive is not None:
        shaped = await _shaped(
            request,
            content_id,
            user,
            directive,
            raw,
            started,
            lambda: answer_from_upstream(app, entry, content_id, body),
        )
        if shaped is not None:
            return shaped
    answer = await answer_from_upstream(app, entry, content_id, body)
    return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE]
    state = request.app.get(STATE)
    health: dict[str, Any] = {
        "status": "ok" if state is None or state.reachable else "degraded",
        "version": __version__,
        "fixture_problems": [{"path": str(p), "reason": r} for p, r in sorted(store.problems.items())],
        "fixtures_writable": await asyncio.to_thread(unwritable, store.root) is None,
    }
    if state is not None:
        health["state"] = state.health()
    role = request.app.get(ROLE)
    if role is not None:
        health["worker"] = role.index
    return web.json_response(health)


async def jwks(request: web.Request) -> web.Response:
    """The public key that verifies the back side's JWS."""
    return web.json_response(request.app[SIGNER].jwks())


async def signing_certificate(request: web.Request) -> web.Response:
    """The development certificate, PEM, for a trust store."""
    return web.Response(body=request.app[SIGNER].certificate_pem, content_type="application/x-pem-file")


async def index(request: web.Request) -> web.Response:
    """What this server is and where things are, for a human poking at it; a browser gets the web page."""
    settings = request.app[SETTINGS]
    base = settings.base_path
    if settings.admin_enabled and "text/html" in request.headers.get(hdrs.ACCEPT, ""):
        raise web.HTTPFound(f"{base}/ui/")
    return web.json_response(
        {
            "service": "content-provider (mock)",
            "version": __version__,
            "operation": f"POST {base}/getcontent",
            "try": {"contentId": "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"},
            "health": f"{base}/healthz",
            "jwks": f"{base}/.well-known/jwks.json",
            "signing_certificate": f"{base}/signing-cert.pem",
            "openapi": f"{base}/openapi.json",
            "admin": f"{base}/__admin/",
            "web_page": f"{base}/ui/",
        }
    )


OPENAPI = json.loads(resources.files("content_provider").joinpath("openapi.json").read_text(encoding="utf-8"))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the operation and the admin API (kept in the repository)."""
    return web.json_response(OPENAPI)
