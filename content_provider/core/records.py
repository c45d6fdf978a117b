"""What one ``POST /getcontent`` leaves behind: its journal entry and, when it went upstream, a note.

Small records shared by the handler, fault delivery, the access log, metrics, the journal
and the state backends, so they sit at the bottom and name nothing above them.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

CLIENT_CLOSED = "client closed"  # the status of a request whose client went away before any answer


class Entry:
    """One ``POST /getcontent``: filled in while it is handled, then kept in the journal.

    Made once per request by :func:`journaled` and carried on the request under
    :data:`EXCHANGE`, so the handler, fault delivery, the access log and the journal share
    one object instead of looking up a request key per field. A plain slotted class: it is
    made on the hot path, and nothing is formatted until someone reads the journal.
    """

    __slots__ = (
        "broken",
        "bytes_sent",
        "client_closed",
        "contentId",
        "fault",
        "resolved",
        "seconds",
        "sent_status",
        "started",
        "status",
        "time",
        "upstream",
        "user",
    )

    def __init__(self, time: float, started: float = 0.0) -> None:
        self.time = time  # seconds since the epoch; shown as ISO 8601 UTC
        self.started = started  # when the handler started, on the event loop's clock (delays are timed from it)
        self.contentId: str | None = None
        self.user: str | None = None  # the basic-auth user name, never the password
        self.status: int | str = 500  # an HTTP status, or reset / close / partial / garbage / hang / shutdown
        self.fault: str | None = None  # the rules that shaped the answer, as in the log line
        self.resolved: str | None = None  # user ..., organisation ..., default
        self.seconds = 0.0  # from the handler's start to its answer
        self.broken: str | None = None  # the connection fault, when no whole HTTP answer was sent
        self.client_closed = False  # the client hung up while the body was being sent (not our error)
        self.bytes_sent: int | None = None  # of the body, when the client hung up
        self.sent_status: int | None = None  # the status line already sent, when the body is streamed
        self.upstream: UpstreamNote | None = None  # when the answer came from upstream.url: status, verdict

    def as_json(self) -> dict[str, Any]:
        return shown(self.packed())

    def packed(self) -> list[Any]:
        """The entry as a short JSON array: what a journal kept elsewhere (state/redis.py) writes per
        request, leaving the formatting (:func:`shown`) to whoever reads it."""
        upstream = None if self.upstream is None else self.upstream.as_json()
        closed = [True, self.bytes_sent] if self.client_closed else []
        return [
            self.time,
            self.contentId,
            self.user,
            self.status,
            self.fault,
            self.resolved,
            self.seconds,
            upstream,
            *closed,
        ]


EXCHANGE: web.RequestKey[Entry] = web.RequestKey("exchange")


LATEST_TIME = 253_402_300_799  # 9999-12-31T23:59:59Z, the last moment ``datetime`` shows


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def packed_problem(packed: Any) -> str | None:
    """Why ``packed`` (read from elsewhere: anyone may have written it) is not what
    :meth:`Entry.packed` makes, or None when :func:`shown` may take it."""
    if not isinstance(packed, list) or len(packed) not in (8, 10):
        return "not a list of 8 or 10 items"
    moment, content_id, user, status, fault, resolved, seconds, upstream, *closed = packed
    if not _number(moment) or not 0 <= moment <= LATEST_TIME:
        return "the time is not seconds since the epoch"
    if not all(_text(value) for value in (content_id, user, fault, resolved)):
        return "the content id, user, fault and resolution are not strings"
    if isinstance(status, bool) or not isinstance(status, int | str):
        return "the status is neither a number nor a word"
    if not _number(seconds):
        return "the latency is not a number"
    if upstream is not None and not isinstance(upstream, dict):
        return "the upstream note is not an object"
    if closed and (closed[0] is not True or isinstance(closed[1], bool) or not isinstance(closed[1], int | None)):
        return "the client-closed part is not [true, bytes sent]"
    return None


def shown(packed: list[Any]) -> dict[str, Any]:
    """A journal entry as the admin API shows it, from :meth:`Entry.packed` (or what
    :func:`packed_problem` passed)."""
    moment = datetime.datetime.fromtimestamp(packed[0], datetime.UTC)
    entry: dict[str, Any] = {
        "time": moment.isoformat(timespec="milliseconds"),
        "contentId": packed[1],
        "user": packed[2],
        "status": packed[3],
        "fault": packed[4],
        "resolved": packed[5],
        "latencyMs": round(packed[6] * 1000, 2),
    }
    if len(packed) > 8:
        entry["clientClosed"] = True
        entry["bytesSent"] = packed[9]
    if packed[7] is not None:
        entry["upstream"] = packed[7]
    return entry


class Verdict(Protocol):
    """What the journal needs of a conformance verdict (``upstream.validate.Verdict`` is one)."""

    @property
    def header(self) -> str:
        """``pass``, or the failed rule ids."""
        ...

    def as_json(self) -> dict[str, Any]: ...


@dataclass
class UpstreamNote:
    """What the journal and the access log say of a request that went upstream."""

    status: int | None = None  # the upstream's status; None when it gave no answer
    seconds: float = 0.0
    error: str | None = None  # upstream_unreachable, upstream_timeout, ...
    verdict: Verdict | None = None

    def as_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"status": self.status, "latencyMs": round(self.seconds * 1000, 2)}
        if self.error is not None:
            shown["error"] = self.error
        if self.verdict is not None:
            shown["conformance"] = self.verdict.as_json()
        return shown

    def describe(self) -> str:
        """For the access log: ``upstream=200/12.3ms conformance=pass`` (rule ids only)."""
        if self.error is not None:
            return f"upstream={self.error}"
        text = f"upstream={self.status}/{self.seconds * 1000:.1f}ms"
        return text if self.verdict is None else f"{text} conformance={self.verdict.header.replace(' ', ',')}"
