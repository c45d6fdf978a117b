"""``GET /__admin/preview``: one owner's images as the provider serves them, for the web page.

The answer is the prepared one a ``POST /getcontent`` gets (no faults, no journal entry),
decoded again; the back side's JWS is verified against the published JWKS, so the page
can say "signed and verified" from the bytes Hermod would receive, not from a promise. A
back recorded from an upstream (``back.jws``) is not the mock's to verify: it is shown as
"recorded", with the subject of the certificate that signed it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web
from cryptography import x509
from joserfc.errors import JoseError

from content_provider.config.settings import SETTINGS
from content_provider.core.b64 import b64url_decode
from content_provider.core.contract import BARE_IDS_OFF, UseCase, parse_content_id
from content_provider.core.errors import ApiError
from content_provider.core.layout import is_recorded_back
from content_provider.fixtures.answers import FixtureError, Resolution
from content_provider.fixtures.explain import looked_up
from content_provider.fixtures.store import STORE
from content_provider.signing.jws import SIGNER, verify_back

LEVELS = {"user": "user", "org": "organisation", "default": "default"}


def _data_uri(content_type: str, data: bytes) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"


def _unverified_payload(compact: str) -> bytes | None:
    """The JWS payload without checking it, so a back that fails to verify is still shown."""
    parts = compact.split(".")
    if len(parts) != 3:
        return None
    try:
        return b64url_decode(parts[1])
    except ValueError:
        return None


def _signer(compact: str) -> tuple[str | None, str | None]:
    """The algorithm and the subject of the ``x5c`` certificate of a JWS, read without verifying."""
    try:
        header = json.loads(b64url_decode(compact.split(".")[0]))
        certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        return str(header.get("alg")), certificate.subject.rfc4514_string()
    except (ValueError, KeyError, IndexError, TypeError):
        return None, None


def _element(element: dict[str, Any], jwks: dict[str, Any], recorded: bool = False) -> dict[str, Any]:
    key = str(element.get("key"))
    data = str(element.get("data", ""))
    shown: dict[str, Any] = {"key": key, "contentType": element.get("content_type")}
    if key != "back":
        jpeg = base64.b64decode(data)
        return {**shown, "bytes": len(jpeg), "dataUri": _data_uri("image/jpeg", jpeg)}
    if recorded:  # a back.jws recorded from an upstream: served as it is, signed by its own key, not ours
        alg, subject = _signer(data)
        payload = _unverified_payload(data) or b""
        jws = {"recorded": True, "verified": False, "alg": alg, "signer": subject}
        return {**shown, "bytes": len(payload), "dataUri": _data_uri("image/jpeg", payload), "jws": jws}
    try:
        header, payload = verify_back(data, jwks)
        jws = {"verified": True, "alg": header.get("alg"), "kid": header.get("kid"), "x5c": "x5c" in header}
    except (JoseError, ValueError) as exc:
        payload = _unverified_payload(data) or b""
        jws = {"verified": False, "error": f"{type(exc).__name__}: {exc}"}
    return {**shown, "bytes": len(payload), "dataUri": _data_uri("image/jpeg", payload), "jws": jws}


def _raw_images(resolution: Resolution) -> list[dict[str, Any]]:
    """The files themselves, when the store refuses to serve them (``fixtures.strict``)."""
    shown = []
    for key, path in resolution.files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        element: dict[str, Any] = {"key": key, "bytes": len(data), "dataUri": _data_uri("image/jpeg", data)}
        if key == "back":
            element["jws"] = {"verified": False, "error": "not served, so not signed"}
        shown.append(element)
    return shown


TARGETS = ("contentId", *LEVELS)
USE_CASE = "useCase"


def _target(request: web.Request) -> tuple[UseCase, str | None, str, str]:
    """(use case, content id or None, level, owner) from the query, checked as the OpenAPI document
    describes it: exactly one of contentId, user, org, default, each once; useCase (PROV or AUTH)
    only with user, org or default; nothing else."""
    query = request.query
    for name in query:
        if name not in (*TARGETS, USE_CASE):
            raise ApiError(400, "invalid_query", f"{name}: unknown (known: {', '.join(TARGETS)}, {USE_CASE})")
        if len(query.getall(name)) > 1:
            raise ApiError(400, "invalid_query", f"{name}: given more than once")
    given = [name for name in TARGETS if name in query]
    if len(given) != 1:
        raise ApiError(400, "invalid_query", "give exactly one of contentId, user, org, default")
    name = given[0]
    use_case_text = query.get(USE_CASE)
    if name == "contentId":
        if use_case_text is not None:
            raise ApiError(400, "invalid_query", "useCase: only with user, org or default (a content id says its own)")
        settings = request.app[SETTINGS]
        try:
            raw = looked_up(query["contentId"], settings)
        except ValueError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        content_id = parse_content_id(raw, settings.bare_ids)
        if content_id is None:
            raise ApiError(404, "unknown_content_id", BARE_IDS_OFF)
        return content_id.use_case, content_id.subject, "", ""
    if use_case_text is None:
        use_case_text = UseCase.CARD.value
    if use_case_text not in (UseCase.CARD.value, UseCase.AUTH.value):
        raise ApiError(400, "invalid_query", f"useCase: expected PROV or AUTH, got {use_case_text!r}")
    owner = query[name] if name != "default" else "default"
    if not owner:
        raise ApiError(400, "invalid_query", f"{name}: may not be empty")
    return UseCase(use_case_text), None, LEVELS[name], owner


async def preview(request: web.Request) -> web.Response:
    """``?contentId=`` or ``?user=``/``?org=``/``?default`` (``&useCase=AUTH``): the images, decoded."""
    use_case, subject, level, owner = _target(request)
    store = request.app[STORE]
    if subject is not None:
        resolution = await asyncio.to_thread(store.resolve, use_case, subject)
    else:
        resolution = await asyncio.to_thread(store.resolve_owner, use_case, level, owner)
    if resolution is None:
        raise ApiError(404, "unknown_content_id", f"no {use_case.name.lower()} image resolves")
    shown: dict[str, Any] = {
        "useCase": use_case.value,
        "level": resolution.level,
        "owner": resolution.owner,
        "files": {key: str(store.relative(path)) for key, path in resolution.files},
    }
    try:
        prepared = await store.prepared(use_case, resolution)
    except FixtureError as exc:
        images = await asyncio.to_thread(_raw_images, resolution)
        problems = [{"path": str(p.path), "reason": p.reason} for p in exc.problems]
        return web.json_response({**shown, "served": False, "error": str(exc), "images": images, "problems": problems})
    jwks = request.app[SIGNER].jwks()
    elements = json.loads(prepared.body)["data"]
    recorded = any(key == "back" and is_recorded_back(path) for key, path in resolution.files)
    images = await asyncio.to_thread(lambda: [_element(e, jwks, recorded) for e in elements])
    # checked in the background when served; checked here if that has not run yet
    problems = [{"path": str(p.path), "reason": p.reason} for p in await store.check(resolution)]
    return web.json_response({**shown, "served": True, "images": images, "problems": problems})
