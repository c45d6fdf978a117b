"""/metrics: requests are counted in plain counts on the request path and folded into
prometheus-client's metrics at each scrape; what a scrape shows is what direct observation
would have shown, bucket by bucket (docs/performance.md)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from content_provider.core.records import Entry
from content_provider.http.metrics import LATENCY_BUCKETS, Metrics

from .helpers import DOC_CARD, MakeClient


def _entry(seconds: float, status: int = 200) -> Entry:
    entry = Entry(time.time())
    entry.contentId, entry.status, entry.resolved, entry.seconds = DOC_CARD, status, "user x", seconds
    return entry


def _lines(exposition: bytes, name: str) -> list[str]:
    return [line for line in exposition.decode().splitlines() if line.startswith(name)]


def test_folded_latencies_are_the_histogram_of_direct_observations() -> None:
    seconds = [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.003, 0.25, 29.9, 30.0, 31.0, 1e6]
    metrics = Metrics()
    for value in seconds:
        metrics.observe(_entry(value))
    metrics.fold()
    direct = CollectorRegistry()
    histogram = Histogram("content_provider_request_duration_seconds", "x", buckets=LATENCY_BUCKETS, registry=direct)
    for value in seconds:
        histogram.observe(value)
    name = "content_provider_request_duration_seconds_"
    assert _lines(generate_latest(metrics.registry), name + "bucket") == _lines(
        generate_latest(direct), name + "bucket"
    )
    assert _lines(generate_latest(metrics.registry), name + "sum") == _lines(generate_latest(direct), name + "sum")


async def test_a_scrape_counts_every_request_answered_before_it(make_client: MakeClient) -> None:
    client = await make_client()
    for _ in range(7):
        assert (await client.post("/getcontent", json={"contentId": DOC_CARD})).status == 200
    assert (await client.post("/getcontent", json={"contentId": ""})).status == 400
    scraped = (await (await client.get("/metrics")).read()).decode()
    assert 'content_provider_requests_total{fault="",level="user",status="200",use_case="PROV"} 7.0' in scraped
    assert 'content_provider_requests_total{fault="",level="none",status="400",use_case="none"} 1.0' in scraped
    assert "content_provider_request_duration_seconds_count 8.0" in scraped


def test_requests_that_differ_only_below_the_labels_are_counted_under_one() -> None:
    """observe() counts by the facts (the owner in the resolution, every fault rule); the labels are
    made when folding, and requests that only differ in what no label shows add up under one."""
    metrics = Metrics()
    for content_id, resolved, fault in [
        ("AUTH:alice", "user alice", None),
        ("AUTH:bob", "user bob", None),
        ("PROV:carol", "organisation acme", "slow;flaky"),
        ("PROV:dave", "organisation acme", "slow"),
        (None, None, None),
    ]:
        entry = _entry(0.001)
        entry.contentId, entry.resolved, entry.fault = content_id, resolved, fault
        metrics.observe(entry)
    metrics.fold()
    counted = _lines(generate_latest(metrics.registry), "content_provider_requests_total")
    assert sorted(counted) == [
        'content_provider_requests_total{fault="",level="none",status="200",use_case="none"} 1.0',
        'content_provider_requests_total{fault="",level="user",status="200",use_case="AUTH"} 2.0',
        'content_provider_requests_total{fault="slow",level="organisation",status="200",use_case="PROV"} 2.0',
    ]
