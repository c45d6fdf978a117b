"""Faults over time: a rule in force only in a window counted from when the rules were put in force."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from content_provider.faults.rules import Window

from .helpers import DOC_CARD, MakeClient, faults, get_content


async def timeline(client: Any, seconds: float, step: float = 0.05) -> list[tuple[float, int]]:
    """(seconds since the rules were reset, status) of requests made every ``step`` s.

    The time is the middle of the request; a request that took long (a busy machine) is left
    out, since the server may have looked at the clock anywhere in it.
    """
    for _ in range(20):  # a reset that took long leaves the windows' start unclear: do it again
        before = time.monotonic()
        assert (await client.post("/__admin/reset")).status == 200
        if time.monotonic() - before < 0.02:
            break
    start = (before + time.monotonic()) / 2  # the rules' windows started in there
    seen = []
    while (sent := time.monotonic() - start) < seconds:
        status = (await get_content(client, DOC_CARD)).status
        answered = time.monotonic() - start
        if answered - sent < 0.02:
            seen.append(((sent + answered) / 2, status))
        await asyncio.sleep(step)
    assert len(seen) >= seconds / step / 3, f"too few quick requests to judge ({len(seen)}): is the machine swamped?"
    return seen


async def test_a_rule_for_a_while_then_never_again(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"name": "outage", "outcome": 503, "for": "0.6s"}]))
    seen = await timeline(client, 1.2)
    assert all(status == 503 for at, status in seen if at < 0.5), seen
    assert all(status == 200 for at, status in seen if at > 0.7), seen
    listed = await (await client.get("/__admin/rules")).json()
    assert listed["windows"]["outage"] == {"active": False, "changesInSeconds": None, "window": "for 0.6s"}


async def test_after_then_for_and_the_time_left_is_listed(make_client: MakeClient) -> None:
    rule = {"name": "later", "outcome": 503, "after": "0.4s", "for": "0.4s"}
    client = await make_client(faults=faults(rules=[rule]))
    assert (await client.post("/__admin/reset")).status == 200
    window = (await (await client.get("/__admin/rules")).json())["windows"]["later"]
    assert window["active"] is False
    assert 0.2 < window["changesInSeconds"] <= 0.4
    seen = await timeline(client, 1.1)
    assert all(status == 200 for at, status in seen if at < 0.35), seen
    assert all(status == 503 for at, status in seen if 0.45 < at < 0.75), seen
    assert all(status == 200 for at, status in seen if at > 0.85), seen


async def test_a_periodic_rule_switches_on_and_off_on_time(make_client: MakeClient) -> None:
    rule = {"name": "flap", "outcome": 503, "every_period": {"period": "0.5s", "active": "0.2s"}}
    client = await make_client(faults=faults(rules=[rule]))
    seen = await timeline(client, 1.6, step=0.02)
    tolerance = 0.04
    for at, status in seen:
        phase = at % 0.5
        if tolerance < phase < 0.2 - tolerance:
            assert status == 503, (at, seen)
        elif 0.2 + tolerance < phase < 0.5 - tolerance:
            assert status == 200, (at, seen)
    assert {status for _, status in seen} == {200, 503}


async def test_outside_its_window_a_rule_does_not_count(make_client: MakeClient) -> None:
    rules = [{"name": "first-two-later", "outcome": 503, "first": 2, "after": "1s"}]
    client = await make_client(faults=faults(rules=rules))
    assert [(await get_content(client, DOC_CARD)).status for _ in range(3)] == [200, 200, 200]
    await asyncio.sleep(1.05)
    assert [(await get_content(client, DOC_CARD)).status for _ in range(3)] == [503, 503, 200]


async def test_a_rule_added_later_counts_its_window_from_when_it_was_added(make_client: MakeClient) -> None:
    client = await make_client()
    await asyncio.sleep(0.3)
    response = await client.post("/__admin/rules", json={"name": "soon", "outcome": 503, "after": "0.2s"})
    assert response.status == 201
    assert (await get_content(client, DOC_CARD)).status == 200
    await asyncio.sleep(0.25)
    assert (await get_content(client, DOC_CARD)).status == 503


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"every_period": {"period": "1s", "active": "0s"}}, "rule.every_period.active: must be more than zero"),
        ({"every_period": {"period": "1s"}}, "rule.every_period.active: required"),
        ({"every_period": {"period": 0, "active": 0}}, "rule.every_period.period: must be more than zero"),
        ({"for": 0}, "rule.for: must be more than zero"),
        ({"after": "soon"}, "rule.after: expected a duration"),
        ({"every_period": {"period": "1s", "active": "1s", "phase": 1}}, "rule.every_period.phase: unknown key"),
    ],
)
async def test_bad_windows_name_the_key(make_client: MakeClient, window: dict[str, Any], message: str) -> None:
    client = await make_client()
    response = await client.post("/__admin/rules", json={"outcome": 503, **window})
    assert response.status == 400
    assert message in (await response.json())["message"]


@pytest.mark.parametrize(
    ("window", "elapsed", "expected"),
    [
        (Window(after=10), 4, (False, 6)),
        (Window(after=10, lasting=5), 12, (True, 3)),
        (Window(after=10, lasting=5), 15, (False, None)),
        (Window(period=300, active=60), 30, (True, 30)),
        (Window(period=300, active=60), 100, (False, 200)),
        (Window(period=300, active=60, lasting=400), 320, (True, 40)),
        (Window(period=300, active=60, lasting=330), 320, (True, 10)),
        (Window(period=300, active=60, lasting=330), 200, (False, 100)),
        (Window(period=300, active=60, lasting=330), 100, (False, 200)),
        (Window(period=300, active=60, lasting=250), 100, (False, None)),
    ],
)
def test_window_arithmetic(window: Window, elapsed: float, expected: tuple[bool, float | None]) -> None:
    assert window.state(elapsed) == expected
