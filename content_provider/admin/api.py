"""The admin API under ``/__admin/``: arrange faults and fixtures, read the journal.

Access: with ``admin.token`` set, every call needs ``Authorization: Bearer <token>``;
without one, only callers on loopback are served. Hermod's basic-auth credentials
never open it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from content_provider.admin.index import admin_index
from content_provider.admin.preview import preview
from content_provider.admin.reload import reload_config
from content_provider.admin.report import report
from content_provider.config.settings import SETTINGS
from content_provider.core.contract import BARE_IDS_OFF, JPEG_TYPE, JWS_TYPE, error_body, parse_content_id
from content_provider.core.errors import ApiError
from content_provider.core.layout import is_recorded_back
from content_provider.core.reader import ConfigError, ascii_int
from content_provider.faults.engine import FAULTS
from content_provider.faults.rules import DuplicateRuleName, Rule, parse_rule, parse_rules, unused_name
from content_provider.fixtures import owners
from content_provider.fixtures.explain import EXPLAINER, looked_up
from content_provider.fixtures.store import STORE
from content_provider.fixtures.write import (
    MAX_IMAGE_BYTES,
    BadFixturePath,
    FixtureImage,
    image_problem,
    present,
    put_image,
    read_image,
    remove_image,
    unwritable,
)
from content_provider.http.auth import check_admin_access
from content_provider.http.errors import Handler, error_response, json_errors
from content_provider.http.origin import check_host, check_origin, cors_grant, listed_origin
from content_provider.state.base import STATE, unavailable

PREFIX = "/__admin"


async def admin_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Let the call through to ``handler`` only for who may use the admin API."""
    settings = request.app[SETTINGS]
    if not settings.admin_enabled:
        raise ApiError(404, "not_found", "the admin API is off (admin.enabled: false)")
    check_host(request)  # a page on another site, by DNS rebinding
    check_origin(request)  # a page on another site writing (CSRF)
    listed = listed_origin(request)
    if listed is None:
        return await _authorised(request, handler)
    try:  # another origin that server.allowed_origins lists: it may read the answer, errors too
        response = await _authorised(request, handler)
    except Exception as exc:
        response = error_response(request, exc)
    if not response.prepared:
        response.headers.update(cors_grant(listed))
    return response


async def _authorised(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The token, or without one the loopback peer, as before any browser checks."""
    check_admin_access(request)
    return await handler(request)


def guarded(handler: Handler) -> Handler:
    """The admin routes' handlers, behind :func:`admin_guard` (the content provider's are not)."""

    async def guard(request: web.Request) -> web.StreamResponse:
        return await admin_guard(request, handler)

    return guard


async def _json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_body", f"the body is not valid JSON: {exc}") from None


def _rule_error(exc: ConfigError) -> ApiError:
    return ApiError(400, "invalid_rule", str(exc))


def _rules_json(request: web.Request) -> dict[str, Any]:
    """The rules as written and, for those with a time window, whether each is in force and for how long."""
    engine = request.app[FAULTS]
    shown: dict[str, Any] = {"rules": [rule.spec for rule in engine.rules]}
    windows = engine.windows()
    if windows:
        shown["windows"] = windows
    return shown


# --------------------------------------------------------------------------- rules


async def list_rules(request: web.Request) -> web.Response:
    return web.json_response(_rules_json(request))


async def add_rule(request: web.Request) -> web.Response:
    """Add one rule, last in order. Its name must be new (among the shared rules, with Redis)."""
    engine = request.app[FAULTS]
    data = await _json_body(request)
    added: list[Rule] = []

    def change(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        try:
            rule = parse_rule(
                data, "rule", engine.settings.max_delay_seconds, unused_name((r.name for r in rules), len(rules) + 1)
            )
        except ConfigError as exc:
            raise _rule_error(exc) from None
        if any(r.name == rule.name for r in rules):
            raise ApiError(409, "rule_exists", f"rule.name: a rule named {rule.name!r} is already in force")
        added[:] = [rule]
        return (*rules, rule)

    await request.app[STATE].change_rules(change, restart=False)
    return web.json_response(added[0].spec, status=201)


async def replace_rules(request: web.Request) -> web.Response:
    """Replace every rule: ``{"rules": [...]}``. Counters start again."""
    engine = request.app[FAULTS]
    data = await _json_body(request)
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or len(data) != 1:
        raise ApiError(
            400, "invalid_rule", 'the body must be {"rules": [...]} and nothing else (an empty list removes all)'
        )
    try:
        rules = parse_rules(data["rules"], "rules", engine.settings.max_delay_seconds)
    except DuplicateRuleName as exc:
        raise ApiError(409, "rule_exists", str(exc)) from None
    except ConfigError as exc:
        raise _rule_error(exc) from None
    await request.app[STATE].change_rules(lambda _: rules, restart=True)
    return web.json_response(_rules_json(request))


async def get_rule(request: web.Request) -> web.Response:
    """One rule in force, as written."""
    name = request.match_info["name"]
    for rule in request.app[FAULTS].rules:
        if rule.name == name:
            return web.json_response(rule.spec)
    raise ApiError(404, "no_such_rule", f"no rule named {name!r} is in force")


async def delete_rule(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def change(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        kept = tuple(r for r in rules if r.name != name)
        if len(kept) == len(rules):
            raise ApiError(404, "no_such_rule", f"no rule named {name!r} is in force")
        return kept

    await request.app[STATE].change_rules(change, restart=False)
    return web.json_response(_rules_json(request))


async def delete_rules(request: web.Request) -> web.Response:
    await request.app[STATE].change_rules(lambda _: (), restart=True)
    return web.json_response(_rules_json(request))


async def reset(request: web.Request) -> web.Response:
    """Back to the configured state: the config's rules, an empty journal."""
    engine = request.app[FAULTS]
    state = request.app[STATE]
    configured = engine.settings.rules
    await state.change_rules(lambda _: configured, restart=True)
    await state.clear_journal()
    request.app[STORE].invalidate()
    return web.json_response({"reset": True, **_rules_json(request)})


async def reload(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if settings.source is None:
        raise ApiError(409, "no_config_file", "the server was started without a config file")
    error = await reload_config(request.app, settings.source)
    if error is not None:
        raise ApiError(400, "invalid_config", error)
    return web.json_response({"reloaded": True, **_rules_json(request)})


# --------------------------------------------------------------------------- journal


def _limit(request: web.Request) -> int | None:
    raw = request.query.get("limit")
    if raw is None:
        return None
    limit = ascii_int(raw)
    if limit is None or limit < 1:
        raise ApiError(400, "invalid_query", f"limit: expected a positive integer (digits 0-9), got {raw!r}")
    return limit


async def list_requests(request: web.Request) -> web.Response:
    """Newest first; ``?contentId=`` to filter, ``?limit=`` to cut. With workers: all of theirs."""
    limit = _limit(request)
    entries = await request.app[STATE].journal_entries(request.query.get("contentId"), limit)
    return web.json_response({"requests": entries})


async def count_requests(request: web.Request) -> web.Response:
    content_id = request.query.get("contentId")
    count = await request.app[STATE].journal_count(content_id)
    return web.json_response({"contentId": content_id, "count": count})


async def clear_requests(request: web.Request) -> web.Response:
    await request.app[STATE].clear_journal()
    return web.json_response({"requests": []})


# --------------------------------------------------------------------------- fixtures


def _inventory(request: web.Request, problems: list[dict[str, str]]) -> dict[str, Any]:
    """Blocking (it lists folders): runs in a thread, so it reads nothing the event loop changes."""
    store = request.app[STORE]
    return {
        "root": str(store.root),
        "users": [{"name": user.name, "images": list(user.images)} for user in owners.users(store)],
        "organisations": [
            {"name": org.name, "images": list(org.images), "members": list(org.members), "patterns": list(org.patterns)}
            for org in owners.organisations(store)
        ],
        "default": list(owners.default(store).images),
        "problems": problems,
        "writable": unwritable(store.root) is None,
    }


async def fixtures(request: web.Request) -> web.Response:
    """Users, organisations and the default, with the images each has."""
    # the event loop updates store.problems while serving: copy it here, not in the thread
    problems = [{"path": str(p), "reason": r} for p, r in sorted(request.app[STORE].problems.items())]
    return web.json_response(await asyncio.to_thread(_inventory, request, problems))


async def resolve(request: web.Request) -> web.Response:
    """``?contentId=``: which images would answer it, each step of the resolution order, and near misses."""
    raw = request.query.get("contentId")
    if raw is None:
        raise ApiError(400, "invalid_query", "contentId: required")
    try:
        raw = looked_up(raw, request.app[SETTINGS])
    except ValueError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from None
    content_id = parse_content_id(raw, request.app[SETTINGS].bare_ids)
    if content_id is None:
        message = BARE_IDS_OFF
        misses = await asyncio.to_thread(request.app[EXPLAINER].with_prefix, raw)
        why = {"answeredBy": None, "steps": [], "nearMisses": [miss.as_json() for miss in misses]}
        return web.json_response(error_body("unknown_content_id", message, explanation=why), status=404)
    store = request.app[STORE]
    explanation = await asyncio.to_thread(request.app[EXPLAINER].explain, content_id)
    resolution = explanation.resolution
    if resolution is None:
        message = f"no {content_id.use_case.name.lower()} image resolves"
        body = error_body("unknown_content_id", message, explanation=explanation.as_json())
        return web.json_response(body, status=404)
    return web.json_response(
        {
            "contentId": raw,
            "useCase": content_id.use_case.value,
            "subject": content_id.subject,
            "level": resolution.level,
            "owner": resolution.owner,
            "files": {key: str(store.relative(path)) for key, path in resolution.files},
            "explanation": explanation.as_json(),
        }
    )


def _image(request: web.Request) -> FixtureImage:
    """The fixture image an upload or delete names, checked field by field."""
    info = request.match_info
    try:
        return FixtureImage.of(info["kind"], info.get("name"), info["side"])
    except BadFixturePath as exc:
        raise ApiError(400, "invalid_fixture", str(exc)) from None


async def _writable(root: Path, image: FixtureImage) -> None:
    """A 409 before anything is shared when this process cannot write the image's folder."""
    reason = await asyncio.to_thread(unwritable, root, image)
    if reason is not None:
        raise ApiError(409, "fixtures_read_only", f"{reason}: serve a folder it may write (--fixtures DIR)")


@contextlib.contextmanager
def _write_errors() -> Iterator[None]:
    """The file system refusing a write that looked possible: said, not a 500."""
    try:
        yield
    except BadFixturePath as exc:  # the image's folder is a symlink out of the fixture folder
        raise ApiError(400, "invalid_fixture", str(exc)) from None
    except PermissionError as exc:
        raise ApiError(409, "fixtures_read_only", f"the fixture folder refused the write: {exc.strerror}") from None
    except OSError as exc:
        if exc.errno == errno.EROFS:
            raise ApiError(409, "fixtures_read_only", "the fixture folder is on a read-only file system") from None
        raise ApiError(503, "fixtures_write_failed", f"the image could not be written: {exc.strerror}") from None


async def upload(request: web.Request) -> web.Response:
    """PUT the JPEG bytes as the body. Checked as at start-up, shared (with Redis), then written atomically."""
    image = _image(request)
    state = request.app[STATE]
    if not state.reachable:  # before anything is read or written: it must not be here only
        raise unavailable()
    data = await request.read()
    if len(data) > MAX_IMAGE_BYTES:
        raise ApiError(413, "body_too_large", f"an image may be {MAX_IMAGE_BYTES} bytes at most")
    tolerance = request.app[SETTINGS].aspect_tolerance
    reason = await asyncio.to_thread(image_problem, image, data, tolerance)
    if reason is not None:  # before it is shared: other replicas would refuse it too
        raise ApiError(400, "invalid_image", f"body: {reason}")
    store = request.app[STORE]
    await _writable(store.root, image)
    with _write_errors():
        written = await state.change_image(image, data, lambda: put_image(store, image, data, tolerance))
    return web.json_response(
        {"path": written.path.as_posix(), "bytes": len(data)}, status=200 if written.replaced else 201
    )


async def get_image(request: web.Request) -> web.Response:
    """GET the side's image as the folder has it: the JPEG, or a recorded ``back.jws`` (``application/jose``)."""
    image = _image(request)
    found = await asyncio.to_thread(read_image, request.app[STORE].folder, image)
    if found is None:
        raise ApiError(404, "no_such_image", f"{image.path} does not exist")
    path, data = found
    return web.Response(body=data, content_type=JWS_TYPE if is_recorded_back(path) else JPEG_TYPE)


async def delete_image(request: web.Request) -> web.Response:
    """DELETE the side's image: every file it has (a ``.jpeg`` twin, a recorded ``back.jws``); the answer names them."""
    image = _image(request)
    state = request.app[STATE]
    if not state.reachable:
        raise unavailable()
    store = request.app[STORE]
    if not await asyncio.to_thread(present, store.root, image):  # nothing is shared for an image not there
        raise ApiError(404, "no_such_image", f"{image.path} does not exist")
    await _writable(store.root, image)
    with _write_errors():
        removed = await state.change_image(image, None, lambda: remove_image(store, image))
    if not removed:  # deleted meanwhile by another call
        raise ApiError(404, "no_such_image", f"{image.path} does not exist")
    return web.json_response({"deleted": removed[0].as_posix(), "removed": [path.as_posix() for path in removed]})


def add_admin_routes(app: web.Application, base_path: str) -> None:
    base = base_path + PREFIX
    routes = [
        web.get(f"{base}/", admin_index),
        web.get(f"{base}/rules", list_rules),
        web.post(f"{base}/rules", add_rule),
        web.put(f"{base}/rules", replace_rules),
        web.delete(f"{base}/rules", delete_rules),
        web.get(f"{base}/rules/{{name}}", get_rule),
        web.delete(f"{base}/rules/{{name}}", delete_rule),
        web.post(f"{base}/reset", reset),
        web.post(f"{base}/reload", reload),
        web.get(f"{base}/requests", list_requests),
        web.get(f"{base}/requests/count", count_requests),
        web.delete(f"{base}/requests", clear_requests),
        web.get(f"{base}/fixtures", fixtures),
        web.get(f"{base}/fixtures/resolve", resolve),
        web.get(f"{base}/preview", preview),
        web.get(f"{base}/report", report),
        web.get(f"{base}/fixtures/{{kind}}/{{name}}/{{side}}", get_image),
        web.put(f"{base}/fixtures/{{kind}}/{{name}}/{{side}}", upload),
        web.delete(f"{base}/fixtures/{{kind}}/{{name}}/{{side}}", delete_image),
        web.get(f"{base}/fixtures/{{kind:default}}/{{side}}", get_image),
        web.put(f"{base}/fixtures/{{kind:default}}/{{side}}", upload),
        web.delete(f"{base}/fixtures/{{kind:default}}/{{side}}", delete_image),
    ]
    app.router.add_routes([web.route(r.method, r.path, json_errors(guarded(r.handler)), **r.kwargs) for r in routes])
