"""Carrying out a fault plan on the wire: delays, dribbled bodies, errors, broken connections.

Delays are measured from when the handler started, against the event loop's clock, so
a delay is the delay asked for and never a multiple of it; bodies are written in
chunks on a fixed schedule (no compression, no buffering in the way).

Every answer that has a body is shaped the same way, whatever its status: ``delay_at:
body`` sends the headers and half the body, pauses, then sends the rest (for ``partial``,
the rest is the broken connection), and ``bandwidth`` dribbles it. An answer without a
body (``body: empty``, 204, 304) has nowhere to pause, so its delay comes before the headers.

Every injected wait goes through :class:`InjectedWaits`, so a shutdown can end the waits
that would outlast it and close those connections (see :meth:`InjectedWaits.stop`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape

from aiohttp import web

from content_provider.core.contract import JSON_TYPE, error_body
from content_provider.core.records import EXCHANGE, Entry
from content_provider.faults.engine import Plan
from content_provider.faults.payloads import PAYLOAD_MODES, PayloadContext
from content_provider.faults.rules import Outcome
from content_provider.fixtures.answers import Answer, UpstreamAnswer
from content_provider.signing.jws import SIGNER

TICK = 0.05  # a dribbled body is written every 50 ms
HANG_POLL = 0.25


class ShuttingDown(Exception):
    """The server is stopping and this answer's injected wait would outlast the grace it has."""


class InjectedWaits:
    """The pauses that fault rules put into answers, so a shutdown can end them at once.

    Each wait says when the whole answer's injected waiting ends (``inf`` for a hang). At
    shutdown, :meth:`stop` wakes every wait whose answer would end after the grace, with
    :class:`ShuttingDown`; a short delay still in flight finishes as usual.
    """

    def __init__(self) -> None:
        self._pending: dict[asyncio.Future[None], float] = {}  # a sleeper's wake-up -> when its answer ends
        self.deadline: float | None = None  # loop time by which injected waits must end, once stopping

    async def sleep_until(self, until: float, answer_ends: float) -> None:
        """Sleep until loop time ``until``; raise :class:`ShuttingDown` when the server stops first."""
        if self.deadline is not None and answer_ends > self.deadline:
            raise ShuttingDown
        loop = asyncio.get_running_loop()
        if until <= loop.time():
            return
        wake: asyncio.Future[None] = loop.create_future()
        timer = loop.call_at(until, _set_done, wake)
        self._pending[wake] = answer_ends
        try:
            await wake
        finally:
            timer.cancel()
            del self._pending[wake]

    def stop(self, grace: float) -> int:
        """From now on, injected waits must end within ``grace`` seconds; wake those that would not."""
        self.deadline = asyncio.get_running_loop().time() + grace
        woken = 0
        for wake, answer_ends in list(self._pending.items()):
            if answer_ends > self.deadline and not wake.done():
                wake.set_exception(ShuttingDown())
                woken += 1
        return woken


INJECTED_WAITS: web.AppKey[InjectedWaits] = web.AppKey("injected_waits")


def _set_done(wake: asyncio.Future[None]) -> None:
    if not wake.done():
        wake.set_result(None)


def _applied(entry: Entry, plan: Plan, seconds: float, note: str = "") -> None:
    """Record in the journal and the access log the delay as it really happened."""
    entry.fault = f"{plan.describe()}; applied={seconds * 1000:.1f}ms{note}"


@dataclass
class _Parts:
    """An HTTP answer not sent yet: everything a delay or a dribble needs to know about it."""

    status: int
    body: bytes
    content_type: str | None
    headers: dict[str, str]


def _status_parts(outcome: Outcome, rule: str) -> _Parts:
    status = outcome.status
    reason = web.Response(status=status).reason
    message = outcome.message or f"fault rule {rule!r} answered {status}"
    headers: dict[str, str] = {}
    if outcome.retry_after is not None:
        headers["Retry-After"] = f"{max(0, round(outcome.retry_after))}"
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="content-provider", charset="UTF-8"'
    if outcome.body == "empty" or status in (204, 304) or status < 200:
        return _Parts(status, b"", None, headers)
    if outcome.body == "html":
        title = f"{status} {escape(reason)}"
        page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1><p>{escape(message)}</p></body></html>"
        return _Parts(status, page.encode(), "text/html; charset=utf-8", headers)
    return _Parts(status, json.dumps(error_body("injected_fault", message)).encode(), JSON_TYPE, headers)


def _upstream_headers(found: UpstreamAnswer) -> dict[str, str]:
    """The upstream answer's headers but its Content-Type (which _Parts carries); one value a name."""
    return {name: value for name, value in found.headers.items() if name.lower() != "content-type"}


def _elements(found: UpstreamAnswer) -> list[dict[str, str]] | None:
    """The upstream answer's ``data`` elements, when a payload fault can be made of them."""
    if found.status != 200:
        return None
    try:
        document = json.loads(found.body)
    except (ValueError, RecursionError):
        return None
    elements = document.get("data") if isinstance(document, dict) else None
    if not isinstance(elements, list) or not elements:
        return None
    if not all(isinstance(e, dict) and isinstance(e.get("data"), str) for e in elements):
        return None
    return elements


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


async def _hang(request: web.Request, waits: InjectedWaits, cap: float) -> web.Response:
    """Answer nothing until the client gives up (or ``cap`` seconds pass), then close."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cap
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            break
        await waits.sleep_until(min(deadline, loop.time() + HANG_POLL), math.inf)
    return _abort(request, "hang")


async def _write_body(
    request: web.Request,
    response: web.StreamResponse,
    body: bytes,
    plan: Plan,
    mid_delay: float,
    answer_ends: float,
    stop_at_half: bool = False,
) -> None:
    """Write ``body`` at ``plan.bandwidth`` bytes/s (or at once), pausing ``mid_delay`` s half-way.

    With ``stop_at_half`` only the first half is written (and the pause made). A client that
    hangs up is not a server error: the journal says how many bytes it was sent.
    """
    loop = asyncio.get_running_loop()
    waits = request.app[INJECTED_WAITS]
    entry = request[EXCHANGE]
    bandwidth = plan.bandwidth
    response.content_length = len(body)
    try:
        await response.prepare(request)
    except ConnectionError:  # gone already, during a delay before the headers: nothing was sent
        entry.client_closed = True
        return
    entry.sent_status = response.status
    entry.bytes_sent = 0
    half = len(body) // 2
    segments = [(0, half)] if stop_at_half else [(0, half), (half, len(body))] if mid_delay else [(0, len(body))]
    chunk = max(1, int(bandwidth * TICK)) if bandwidth else len(body)
    start = loop.time()
    paused = 0.0
    try:
        for position, stop in segments:
            if position == half and mid_delay:
                before = loop.time()
                await waits.sleep_until(before + mid_delay, answer_ends)
                paused = loop.time() - before
            while position < stop:
                end = min(stop, position + chunk)
                await response.write(body[position:end])
                entry.bytes_sent = position = end
                if bandwidth:
                    await waits.sleep_until(start + paused + position / bandwidth, answer_ends)
        if stop_at_half and mid_delay:
            before = loop.time()
            await waits.sleep_until(before + mid_delay, answer_ends)
            paused = loop.time() - before
        if not stop_at_half:
            await response.write_eof()
    except ConnectionError:  # aiohttp's ClientConnectionResetError is one: the client went away
        entry.client_closed = True
    if mid_delay:
        _applied(entry, plan, paused, " mid-body")


async def deliver(
    request: web.Request,
    plan: Plan,
    started: float,
    answer: Callable[[], Awaitable[Answer | None]],
    not_found: Callable[[], Awaitable[web.Response]],
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
    try:
        loop = asyncio.get_running_loop()
        waits = request.app[INJECTED_WAITS]
        entry = request[EXCHANGE]
        outcome = plan.outcome
        kind = outcome.kind if outcome is not None else "ok"
        mode = outcome.mode if outcome is not None else ""
        parts: _Parts | None = None
        found: Answer | None = None
        if outcome is not None and kind == "status":
            parts = _status_parts(outcome, plan.rules[0])
        elif kind in ("ok", "payload") or mode == "partial":
            found = await answer()
            if found is None:
                missing = await not_found()
                parts = _Parts(missing.status, missing.body if isinstance(missing.body, bytes) else b"", JSON_TYPE, {})
            elif isinstance(found, UpstreamAnswer):  # a real provider's answer: shaped the same way
                parts = _Parts(found.status, found.body, found.content_type, _upstream_headers(found))
                if kind == "payload":
                    elements = _elements(found)
                    if elements is None:
                        plan.note = "; payload mode not applied: the upstream's answer is not a 200 with a data array"
                    else:
                        signer = request.app[SIGNER]
                        context = PayloadContext(elements, signer.sign, signer.sign_as, signer.header())
                        parts.body, parts.content_type = await asyncio.to_thread(PAYLOAD_MODES[mode].make, context)
            else:
                body, content_type = found.body, JSON_TYPE
                if kind == "payload":
                    signer = request.app[SIGNER]
                    context = PayloadContext(json.loads(body)["data"], signer.sign, signer.sign_as, signer.header())
                    body, content_type = await asyncio.to_thread(PAYLOAD_MODES[mode].make, context)
                parts = _Parts(200, body, content_type, {"X-Content-Provider-Resolved": found.resolution.label})

        has_body = parts is not None and bool(parts.body)
        mid_delay = plan.delay if plan.delay_at == "body" and has_body else 0.0
        head_delay = plan.delay - mid_delay  # a body delay without a body to pause in comes before the headers
        dribble = len(parts.body) / plan.bandwidth if parts is not None and plan.bandwidth else 0.0
        answer_ends = math.inf if kind == "hang" else started + plan.delay + dribble

        entry.fault = plan.describe()  # as asked; what was applied is added when it is known
        if head_delay:
            await waits.sleep_until(started + head_delay, answer_ends)
            # from the request to the answer, preparation included; known before the headers, so the header says it
            note = " before the headers (no body to pause in)" if plan.delay_at == "body" else ""
            _applied(entry, plan, loop.time() - started, note)
        fault_header = {"X-Content-Provider-Fault": entry.fault} if header else {}

        if kind == "hang":
            return await _hang(request, waits, max_delay)
        if mode in ("reset", "close"):
            return _abort(request, mode)
        if mode == "garbage":
            rng = random.Random(f"{seed}:garbage")
            if request.transport is not None:
                request.transport.write(bytes(rng.getrandbits(8) for _ in range(512)))
            return _abort(request, "garbage")
        assert parts is not None
        headers = {**parts.headers, **fault_header}
        if parts.content_type is not None:
            headers["Content-Type"] = parts.content_type
        if mode != "partial" and not mid_delay and not (plan.bandwidth and has_body):
            return web.Response(status=parts.status, body=parts.body, headers=headers)
        stream = web.StreamResponse(status=parts.status, headers=headers)
        await _write_body(request, stream, parts.body, plan, mid_delay, answer_ends, stop_at_half=mode == "partial")
        if mode == "partial" and not entry.client_closed:
            return _abort(request, "partial")
        return stream
    except ShuttingDown:
        entry = request[EXCHANGE]
        entry.fault = f"{plan.describe()}; ended by shutdown"
        return _abort(request, "shutdown")
