"""``content-provider check``: the rules run against a live provider over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from content_provider.conformance.rules import MAX_IMAGE_BYTES, Options, Report, _Ids, answer_rules, snippet
from content_provider.conformance.seen import Timing
from content_provider.core.contract import JSON_TYPE

DEMO_IDS = ("PROV:67d21afb-e830-4fee-a691-00a997ffbe1a", "AUTH:4018e11f-1209-45f5-ade7-e59004e10745")
UNKNOWN_ID = "PROV:00000000-0000-4000-8000-000000000000-conformance-probe"


async def _post(
    session: aiohttp.ClientSession,
    report: Report,
    what: tuple[str, str | None],
    body: bytes,
    headers: dict[str, str],
    seconds: float,
) -> tuple[int, CIMultiDict[str], bytes, float]:
    """One request, its timing noted in ``report`` (``what``: what it asks, and for which id)."""
    start = time.monotonic()
    try:
        async with session.post(
            f"{report.url}/getcontent",
            data=body,
            headers={"Content-Type": JSON_TYPE, **headers},
            timeout=aiohttp.ClientTimeout(total=seconds),
        ) as response:
            data = await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        note = f"no answer after {seconds:g} s" if isinstance(exc, TimeoutError) else type(exc).__name__
        report.requests.append(Timing(*what, None, time.monotonic() - start, note))
        raise
    elapsed = time.monotonic() - start
    report.requests.append(Timing(*what, response.status, elapsed))
    return response.status, CIMultiDict(response.headers), data, elapsed  # header names: any case


async def _check_id(session: aiohttp.ClientSession, content_id: str, options: Options, report: Report) -> None:
    ids = _Ids(report, content_id)
    auth = options.auth_headers()
    body = json.dumps({"contentId": content_id}).encode()
    try:
        status, headers, data, elapsed = await _post(
            session, report, ("POST /getcontent", content_id), body, auth, options.timeout
        )
    except TimeoutError:
        ids.add("CP18", False, f"answer within {options.timeout:g} s", f"no answer after {options.timeout:g} s")
        ids.add("CP01", False, "200", "no answer (timeout)")
        return
    except (aiohttp.ClientError, OSError) as exc:
        ids.add("CP18", None, "no timing: the connection failed")
        ids.add("CP01", False, "200", f"{type(exc).__name__}: {exc}")
        return
    ids.add("CP18", elapsed <= options.timeout, f"answer within {options.timeout:g} s", f"{elapsed:.2f} s")
    answer_rules(ids, content_id, status, headers, data, options)


async def _check_provider(session: aiohttp.ClientSession, content_id: str, options: Options, report: Report) -> None:
    """Rules about the provider as a whole; ``content_id`` is one it should answer."""
    ids = _Ids(report, None)
    auth = options.auth_headers()
    if auth:
        body = json.dumps({"contentId": content_id}).encode()
        try:
            bare = await _post(session, report, ("CP15 without credentials", content_id), body, {}, options.timeout)
            wrong_auth = options.auth_headers(password_suffix="-wrong")
            wrong = await _post(session, report, ("CP15 wrong password", content_id), body, wrong_auth, options.timeout)
            good = await _post(session, report, ("CP15 right credentials", content_id), body, auth, options.timeout)
            challenge = bare[1].get("WWW-Authenticate", "")
            ok = bare[0] == 401 and wrong[0] == 401 and good[0] == 200 and challenge.lower().startswith("basic")
            ids.add(
                "CP15",
                ok,
                "401 + WWW-Authenticate: Basic without and with wrong credentials, 200 with",
                f"without: {bare[0]} {challenge!r}; wrong: {wrong[0]}; right: {good[0]}",
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ids.add("CP15", False, "basic authentication", f"{type(exc).__name__}: {exc}")
    else:
        ids.add("CP15", None, "no --user/--password given")
    probes: list[tuple[str, str | None, bytes, Callable[[int], bool], str]] = [
        (
            "CP16",
            UNKNOWN_ID,
            json.dumps({"contentId": UNKNOWN_ID}).encode(),
            lambda s: s != 200,
            "an unknown id is not 200",
        ),
        ("CP17", None, b'{"contentId": ', lambda s: 400 <= s < 500, "a malformed body gets a 4xx"),
    ]
    for rule, asked, body, good_status, checked in probes:
        try:
            status, _, data, _ = await _post(session, report, (f"{rule} {checked}", asked), body, auth, options.timeout)
            ids.add(rule, good_status(status), checked, f"status {status}: {snippet(data)}")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            ids.add(rule, False, checked, f"{type(exc).__name__}: {exc}")


async def _unreachable(url: str, seconds: float) -> str | None:
    """Why nothing can connect to the provider at ``url`` (host and port), or ``None``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        async with asyncio.timeout(seconds):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return f"the provider could not be reached at {address}: no connection within {seconds:g} s"
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
        return f"the provider could not be reached at {address}: {why}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def check(
    url: str,
    content_ids: Sequence[str] = DEMO_IDS,
    *,
    user: str | None = None,
    password: str | None = None,
    trust: dict[str, Any] | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - per request, passed to aiohttp; not a deadline for the run
    max_image_bytes: int = MAX_IMAGE_BYTES,
    aspect_tolerance: float = 0.01,
    progress: Callable[[str], None] | None = None,
    strict: bool = False,
) -> Report:
    """Run every rule against the provider at ``url`` (its content-provider-url); ``strict``: see :class:`Report`."""
    options = Options(user, password, trust, timeout, max_image_bytes, aspect_tolerance)
    report = Report(url.rstrip("/"), strict=strict)
    report.unreachable = await _unreachable(report.url, timeout)
    if report.unreachable is not None:  # said once, as CP01, rather than as every rule's failure
        _Ids(report, None).add("CP01", False, "the provider answers at all", report.unreachable)
        return report
    async with aiohttp.ClientSession() as session:
        for content_id in content_ids:
            if progress:
                progress(f"checking {content_id}")
            await _check_id(session, content_id, options, report)
        if progress:
            progress("checking authentication and bad requests")
        await _check_provider(session, content_ids[0] if content_ids else DEMO_IDS[0], options, report)
    report.sort()
    return report
