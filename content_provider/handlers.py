"""Request handlers: the content provider operation and the small service endpoints."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import hdrs, web

from . import __version__
from .auth import require_basic_auth
from .contract import BARE_IDS_OFF, ContentId, parse_content_id
from .delivery import deliver
from .errors import ApiError
from .faults import FaultEngine, Plan, Rule, split_directives
from .journal import Entry
from .keys import EXCHANGE, EXPLAINER, FAULTS, PARSED_BODIES, ROLE, SETTINGS, SIGNER, STATE, STORE
from .schema import ConfigError
from .store import Answer, FixtureError, FixtureStore
from .upstream.proxy import answer_from_upstream, goes_upstream

JSON = "application/json"
# What makes a content id "empty": the same set as the OpenAPI pattern, which JSON Schema tools agree on
# (str.strip() alone would also take the \x1c-\x1f separators and Unicode spaces).
ASCII_SPACE = " \t\n\r\x0b\x0c"


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", f"the request body exceeds {limit} bytes")


async def read_limited(request: web.Request, limit: int, seconds: float) -> bytes:
    """The whole body, or a 413 as soon as it is known to exceed ``limit`` bytes, or a 408
    when it has not all arrived within ``seconds`` (a slow client must not hold a handler)."""
    length = request.content_length
    if length is not None and length > limit:
        raise _too_large(limit)
    if length is not None and request.content.is_eof():
        return await request.read()  # the whole body is here already: the common case, and the cheapest
    try:
        async with asyncio.timeout(seconds):
            if length is not None:
                return await request.read()
            body = bytearray()
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit)
            return bytes(body)
    except TimeoutError:
        raise ApiError(
            408, "body_timeout", f"the request body did not arrive within {seconds:g} s", {"Connection": "close"}
        ) from None


def content_id_from(body: bytes, max_length: int) -> str:
    """The ``contentId`` of a request body, or a 400 saying what is wrong with it."""
    if not body.strip():
        raise ApiError(400, "malformed_body", 'the body is empty; send {"contentId": "..."}')
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "malformed_body", f"the body must be a JSON object, not {type(payload).__name__}")
    if "contentId" not in payload:
        raise ApiError(400, "missing_content_id", 'the body has no "contentId" member')
    value = payload["contentId"]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_content_id", f'"contentId" must be a string, not {type(value).__name__}')
    if not value.strip(ASCII_SPACE):
        raise ApiError(400, "invalid_content_id", '"contentId" is empty')
    if len(value) > max_length:
        raise ApiError(400, "invalid_content_id", f'"contentId" is {len(value)} characters; the limit is {max_length}')
    return value


class ParsedBodies:
    """The content id in each recently seen request body, so a hot id skips JSON parsing.

    A pure function of the bytes, remembered for small bodies only and forgotten in bulk
    when full, so it stays a few hundred kB whatever clients send.
    """

    MAX_BODY = 512
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._seen: dict[bytes, str] = {}

    def content_id(self, body: bytes, max_length: int) -> str:
        raw = self._seen.get(body)
        if raw is None:
            raw = content_id_from(body, max_length)
            if len(body) <= self.MAX_BODY:
                if len(self._seen) >= self.MAX_ENTRIES:
                    self._seen.clear()
                self._seen[body] = raw
        return raw


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


async def get_content(request: web.Request) -> web.StreamResponse:
    """``POST /getcontent {"contentId": ...}``: the images for a content id."""
    started = asyncio.get_running_loop().time()
    app = request.app
    settings = app[SETTINGS]
    entry = request[EXCHANGE]  # made by journaled(), which every /getcontent route has
    user = None
    if settings.username is not None and settings.password is not None:
        user = entry.user = require_basic_auth(request, settings.username, settings.password)
    body = await read_limited(request, settings.max_body_bytes, settings.body_timeout)
    raw = entry.contentId = app[PARSED_BODIES].content_id(body, settings.max_content_id_length)
    faults = app[FAULTS]
    lookup, directive = raw, None
    if faults.settings.content_id_directives:
        try:
            lookup, directive = split_directives(raw, faults.settings.max_delay_seconds)
        except ConfigError as exc:
            raise ApiError(400, "invalid_directive", str(exc)) from None
    content_id = parse_content_id(lookup, settings.bare_ids)
    if content_id is None:
        message = BARE_IDS_OFF
        hint = await asyncio.to_thread(app[EXPLAINER].bare_hint, lookup)
        raise ApiError(404, "unknown_content_id", message + (f"; near miss: {hint}" if hint else ""))
    if settings.upstream is not None and await goes_upstream(app, content_id):
        forward = body if directive is None else json.dumps({"contentId": lookup}).encode()
        return await _upstream_content(request, entry, content_id, forward, user, directive, raw, started)
    if faults.rules or directive is not None:
        shaped = await _shaped(
            request, content_id, user, directive, raw, started, lambda: _answer(app[STORE], entry, content_id)
        )
        if shaped is not None:
            return shaped
    # _answer() inlined: the hot path saves a coroutine per request here (see docs/performance.md)
    try:
        answer = await app[STORE].answer(content_id)
    except FixtureError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    if answer is None:
        raise await _unknown(app, content_id)
    entry.resolved = answer.resolution.label
    if answer.resolution.level == "default":
        app[EXPLAINER].defaulted(content_id)  # logs why, once per id, off this path
    return web.Response(
        body=answer.body,
        content_type=JSON,
        headers={"X-Content-Provider-Resolved": answer.resolution.label},
    )


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


OPENAPI = json.loads(resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8"))


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of the operation and the admin API (kept in the repository)."""
    return web.json_response(OPENAPI)
