"""``GET /metrics``: Prometheus text format, from prometheus-client.

One process: the metrics live in a registry of the application's own (tests make many
applications in one process). ``serve --workers N``: the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` for its workers, each writes its values to files there
(prometheus-client's multiprocess mode) and a scrape through any worker sums every
worker's values once (see docs/several-instances.md).

Requests are counted as they end (by :func:`~content_provider.http.journaled.journaled`), in
plain counts folded into the metrics every ``SYNC_SECONDS`` and at each scrape, with the
counters kept elsewhere (the answer cache's, the state backend's). Under ``serve --workers N``
each request is folded at once, so a scrape through any worker sees every worker's requests.
"""

from __future__ import annotations

import asyncio
import math
import os
from bisect import bisect_left
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from content_provider.config.settings import SETTINGS
from content_provider.core.records import Entry
from content_provider.fixtures.store import STORE
from content_provider.http.auth import check_admin_access
from content_provider.state.base import STATE

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SYNC_SECONDS = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BOUNDS = (*LATENCY_BUCKETS, math.inf)  # as the histogram keeps them: an observation counts in the first >=
_Labels = tuple[str, str, str, str]


# what observe() counts by: whether the content id is an AUTH one (None: no id), the status, the
# resolution label (Entry.resolved, which names the owner) and the fault rules; between two
# folds one count per different value, so at most as many as the requests of SYNC_SECONDS
_Facts = tuple[bool | None, int | str, str | None, str | None]


def _labels(auth: bool | None, status: int | str, resolved: str | None, fault: str | None) -> _Labels:
    """The use_case, status, level and fault labels of the requests with these facts: a bounded set."""
    use_case = "none" if auth is None else "AUTH" if auth else "PROV"
    level = "none" if resolved is None else resolved.split(" ", 1)[0]
    return use_case, str(status), level, fault.split(";", 1)[0] if fault else ""


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "content_provider_requests",
            "POST /getcontent requests, by use case, status (or connection outcome), resolution level and fault rule",
            ("use_case", "status", "level", "fault"),
            registry=registry,
        )
        self.latency = Histogram(
            "content_provider_request_duration_seconds",
            "Time from the handler's start to its answer, POST /getcontent",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "content_provider_answer_cache_hits", "Answers served from the prepared-answer cache", registry=registry
        )
        self.cache_misses = Counter(
            "content_provider_answer_cache_misses", "Answers built (files read and encoded)", registry=registry
        )
        self.journal_dropped = Counter(
            "content_provider_journal_writes_dropped",
            "Journal entries that could not be written to the state backend",
            registry=registry,
        )
        self.state_errors = Counter(
            "content_provider_state_backend_errors", "Calls to the shared state backend that failed", registry=registry
        )
        self.upstream = Counter(
            "content_provider_upstream_answers",
            "Answers from upstream.url, by conformance verdict (pass, or the failed rule ids) or upstream error",
            ("verdict",),
            registry=registry,
        )
        self._children: dict[_Labels, Counter] = {}
        self._requests_pending: dict[_Facts, int] = {}
        self._latency_pending = [0] * len(LATENCY_BOUNDS)
        self._latency_sum_pending = 0.0
        self._upstream_pending: dict[str, int] = {}
        self._carried = {"hits": 0, "builds": 0, "dropped": 0, "errors": 0}

    def observe(self, entry: Entry) -> None:
        """One request that ended. The hot path: plain counts, folded into the prometheus-client
        metrics by :meth:`fold` (every ``SYNC_SECONDS`` and at each scrape), because a labelled
        increment and a histogram observation there cost ~3 us a request against ~0.5 us here."""
        raw = entry.contentId
        # the facts as they are, made labels by fold(): making them here cost ~1 µs a request
        facts = (None if raw is None else raw.startswith("AUTH:"), entry.status, entry.resolved, entry.fault)
        counts = self._requests_pending
        counts[facts] = counts.get(facts, 0) + 1
        seconds = entry.seconds
        self._latency_pending[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self._latency_sum_pending += seconds
        upstream = entry.upstream
        if upstream is not None:  # rule ids only, never the evidence: a bounded set of label values
            verdict = upstream.error or (upstream.verdict.header.replace(" ", ",") if upstream.verdict else "unchecked")
            self._upstream_pending[verdict] = self._upstream_pending.get(verdict, 0) + 1
        if self.multiprocess:  # a scrape through another worker reads this one's files: write them now
            self.fold()

    def fold(self) -> None:
        """Move the counts :meth:`observe` made into the prometheus-client metrics (and, under
        ``serve --workers N``, into this worker's files), so a scrape sees every request up to now."""
        requests, self._requests_pending = self._requests_pending, {}
        for facts, count in requests.items():
            labels = _labels(*facts)
            child = self._children.get(labels)
            if child is None:
                child = self._children[labels] = self.requests.labels(*labels)
            child.inc(count)
        if any(self._latency_pending):
            # prometheus-client's Histogram has no public call for many observations at once;
            # its buckets (one per bound, +Inf last) and sum are the values observe() increments.
            for bucket, count in zip(self.latency._buckets, self._latency_pending, strict=True):
                if count:
                    bucket.inc(count)
            self.latency._sum.inc(self._latency_sum_pending)
            self._latency_pending = [0] * len(LATENCY_BOUNDS)
            self._latency_sum_pending = 0.0
        upstream, self._upstream_pending = self._upstream_pending, {}
        for verdict, count in upstream.items():
            self.upstream.labels(verdict).inc(count)

    def carry(self, app: web.Application) -> None:
        """Bring the metrics up to date: this process's counts and the counters kept elsewhere."""
        self.fold()
        carried = self._carried
        stats = app[STORE].stats if STORE in app else None
        state = app.get(STATE)
        now = {
            "hits": stats.hits if stats else 0,
            "builds": stats.builds if stats else 0,
            "dropped": state.journal_dropped if state else 0,
            "errors": state.errors if state else 0,
        }
        for name, metric in (
            ("hits", self.cache_hits),
            ("builds", self.cache_misses),
            ("dropped", self.journal_dropped),
            ("errors", self.state_errors),
        ):
            if now[name] > carried[name]:
                metric.inc(now[name] - carried[name])
            carried[name] = now[name]

    def exposition(self) -> bytes:
        if self.multiprocess:  # every worker's values, from their files, summed once
            gathered = CollectorRegistry()
            MultiProcessCollector(gathered)  # type: ignore[no-untyped-call]
            return generate_latest(gathered)
        return generate_latest(self.registry)


METRICS: web.AppKey[Metrics] = web.AppKey("metrics")


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Carry the counters kept elsewhere over every SYNC_SECONDS."""

    async def carry() -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            app[METRICS].carry(app)

    task = asyncio.create_task(carry())
    try:
        yield
    finally:
        task.cancel()
        app[METRICS].carry(app)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``, Prometheus text format; with ``admin.protect_metrics``, for who may use the admin API."""
    if request.app[SETTINGS].protect_metrics:
        check_admin_access(request, "/metrics (admin.protect_metrics)")
    collected = request.app[METRICS]
    collected.carry(request.app)
    body = await asyncio.to_thread(collected.exposition) if collected.multiprocess else collected.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
