"""Carrying out a fault plan on the wire: delays, dribbled bodies, errors, broken connections.

Delays are measured from when the handler started, against the event loop's clock, so
a delay is the delay asked for and never a multiple of it; bodies are written in
chunks on a fixed schedule (no compression, no buffering in the way).
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web

from .contract import error_body
from .faultpayloads import PAYLOAD_MODES, PayloadContext
from .faults import Outcome, Plan
from .journal import EXCHANGE
from .keys import SIGNER
from .store import Answer

TICK = 0.05  # a dribbled body is written every 50 ms
HANG_POLL = 0.25


async def sleep_until(deadline: float) -> None:
    loop = asyncio.get_running_loop()
    remaining = deadline - loop.time()
    if remaining > 0:
        await asyncio.sleep(remaining)


def _mark(request: web.Request, plan: Plan, applied: float) -> str:
    """Record the fault for the log; ``applied`` is the delay as it really happened."""
    text = plan.describe()
    if plan.delay:
        text += f"; applied={applied * 1000:.1f}ms"
    request[EXCHANGE].fault = text
    return text


def _status_response(outcome: Outcome, rule: str) -> web.Response:
    status = outcome.status
    reason = web.Response(status=status).reason
    message = outcome.message or f"fault rule {rule!r} answered {status}"
    headers: dict[str, str] = {}
    if outcome.retry_after is not None:
        headers["Retry-After"] = f"{max(0, round(outcome.retry_after))}"
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="content-provider", charset="UTF-8"'
    if outcome.body == "empty" or status in (204, 304) or status < 200:
        return web.Response(status=status, headers=headers)
    if outcome.body == "html":
        title = f"{status} {escape(reason)}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>"
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)
    return web.json_response(error_body("injected_fault", message), status=status, headers=headers)


def _abort(request: web.Request, mode: str) -> web.Response:
    request[EXCHANGE].broken = mode
    transport = request.transport
    if transport is not None:
        if mode == "reset":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
    return web.Response()  # never reaches the client: the connection is gone


async def _hang(request: web.Request, cap: float) -> web.Response:
    """Answer nothing until the client gives up (or ``cap`` seconds pass), then close."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await asyncio.sleep(min(HANG_POLL, max(0.0, deadline - loop.time())))
    return _abort(request, "hang")


async def _write_body(
    request: web.Request,
    response: web.StreamResponse,
    body: bytes,
    bandwidth: int | None,
    mid_delay: float,
) -> None:
    """Write ``body`` at ``bandwidth`` bytes/s (or at once), pausing ``mid_delay`` s half-way."""
    loop = asyncio.get_running_loop()
    response.content_length = len(body)
    await response.prepare(request)
    half = len(body) // 2
    segments = [(0, half), (half, len(body))] if mid_delay else [(0, len(body))]
    chunk = max(1, int(bandwidth * TICK)) if bandwidth else len(body)
    start = loop.time()
    paused = 0.0
    for index, (position, stop) in enumerate(segments):
        if index == 1:
            before = loop.time()
            await asyncio.sleep(mid_delay)
            paused += loop.time() - before
        while position < stop:
            end = min(stop, position + chunk)
            await response.write(body[position:end])
            position = end
            if bandwidth:
                await sleep_until(start + paused + position / bandwidth)
    await response.write_eof()


async def _partial(request: web.Request, body: bytes, content_type: str, headers: dict[str, str]) -> web.Response:
    response = web.StreamResponse(headers=headers)
    response.content_type = content_type
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    return _abort(request, "partial")


def _garbage(request: web.Request, seed: int) -> web.Response:
    rng = random.Random(f"{seed}:garbage")
    if request.transport is not None:
        request.transport.write(bytes(rng.getrandbits(8) for _ in range(512)))
    return _abort(request, "garbage")


async def deliver(
    request: web.Request,
    plan: Plan,
    started: float,
    answer: Callable[[], Awaitable[Answer | None]],
    not_found: Callable[[], web.Response],
    *,
    header: bool,
    seed: int,
    max_delay: float,
) -> web.StreamResponse:
    """Send what ``plan`` says, where the normal path would send ``answer()``.

    Everything that can be made before the delay is made first (the answer, a broken
    payload, an error response), so the delay is the time until the answer starts,
    not that plus the time to make it.
    """
    loop = asyncio.get_running_loop()
    outcome = plan.outcome
    kind = outcome.kind if outcome is not None else "ok"
    mode = outcome.mode if outcome is not None else ""
    ready: web.Response | None = None
    found: Answer | None = None
    body, content_type = b"", "application/json"
    if outcome is not None and kind == "status":
        ready = _status_response(outcome, plan.rules[0])
    elif kind in ("ok", "payload") or mode == "partial":
        found = await answer()
        if found is None:
            ready = not_found()
        else:
            body = found.body
            if kind == "payload":
                signer = request.app[SIGNER]
                context = PayloadContext(json.loads(body)["data"], signer.sign, signer.sign_as, signer.header())
                body, content_type = await asyncio.to_thread(PAYLOAD_MODES[mode].make, context)
    mid_delay = plan.delay if plan.delay_at == "body" else 0.0
    if ready is None and found is not None and mode != "partial" and not plan.bandwidth and not mid_delay:
        ready = web.Response(body=body, headers={"Content-Type": content_type})

    applied = 0.0
    if plan.delay and plan.delay_at == "headers":
        await sleep_until(started + plan.delay)
        applied = loop.time() - started  # from the request to the answer, preparation included
    text = _mark(request, plan, applied)
    headers = {"X-Content-Provider-Fault": text} if header else {}
    if found is not None:
        headers["X-Content-Provider-Resolved"] = found.resolution.label

    if kind == "hang":
        return await _hang(request, max_delay)
    if mode in ("reset", "close"):
        return _abort(request, mode)
    if mode == "garbage":
        return _garbage(request, seed)
    if ready is not None:
        ready.headers.update(headers)
        return ready
    if mode == "partial":
        return await _partial(request, body, content_type, headers)
    stream = web.StreamResponse(headers={**headers, "Content-Type": content_type})
    before = loop.time()
    await _write_body(request, stream, body, plan.bandwidth, mid_delay)
    if mid_delay:
        _mark(request, plan, loop.time() - before)
    return stream
