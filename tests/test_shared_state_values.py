"""``state.backend: redis`` when Redis loses its state or holds values nobody should have written:
restarted or emptied, and every key written by hand with values of the wrong kind. Two ``serve``
processes and a real ``redis-server``, as in test_shared_state.py; the hostile values are written
with the redis client, as anyone who can reach Redis could."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from content_provider.client import AdminError, AsyncAdminClient
from content_provider.core.records import Entry, UpstreamNote, shown
from content_provider.fixtures.generate import card_jpeg
from content_provider.state.redis import COMMAND_TIMEOUT
from content_provider.state.redis_values import BadValue, journal_entry

from .helpers import DOC_CARD
from .redis_server import RedisServer
from .test_cli import Server, serving
from .test_shared_state import admin_health, alternating, pair, post, redis, replica_config  # noqa: F401 (fixtures)

T = TypeVar("T")
NS = "test-pair:"


@pytest.fixture
async def hand(redis: RedisServer) -> AsyncIterator[Any]:  # noqa: F811
    """A redis client of the test's own: what anyone who can reach Redis can write."""
    client = aioredis.from_url(redis.url)
    yield client
    await client.aclose()


Clients = tuple[aiohttp.ClientSession, AsyncAdminClient, AsyncAdminClient]


@contextlib.asynccontextmanager
async def clients(a: Server, b: Server) -> AsyncIterator[Clients]:
    """A session for the content provider's routes and an admin client for each replica."""
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as one, AsyncAdminClient(b.url) as other:
        yield session, one, other


async def until(call: Callable[[], Awaitable[T]], seconds: float = 10.0) -> T:
    """``call``'s answer once it stops failing with an AdminError (a replica still reconnecting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await call()
        except AdminError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def beating(hand: Any, replicas: int) -> None:
    """Until ``replicas`` replicas beat their hearts in this Redis (after a restart: reconnected)."""
    for _ in range(200):
        with contextlib.suppress(RedisError):  # the client's own connection, lost with the restart
            if await hand.hlen(NS + "heartbeats") == replicas:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{replicas} replicas did not beat their hearts within 10 s")


async def written(hand: Any, key: str, value: Any) -> None:
    """``value`` at ``key`` in place of what was there, in one step (a replica may write between two),
    then ``version`` moved on, so the replicas look again."""
    async with hand.pipeline(transaction=True) as pipe:
        pipe.delete(NS + key)
        if isinstance(value, dict):
            pipe.hset(NS + key, mapping=value)
        else:
            pipe.set(NS + key, value)
        if key != "version":
            pipe.incr(NS + "version")
        with contextlib.suppress(ResponseError):  # version is not a count: the replicas see it anyway
            await pipe.execute()


async def bad_times(session: aiohttp.ClientSession, server: Server, key: str) -> int:
    """How often ``server`` met a bad value at ``key``, as its /healthz says."""
    health = await admin_health(session, server.url)
    assert health["state"]["reachable"] is True, health
    return int(health["state"]["bad_values"].get(key, {}).get("times", 0))


async def found_bad(session: aiohttp.ClientSession, server: Server, key: str, before: int) -> None:
    for _ in range(100):
        if await bad_times(session, server, key) > before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{server.url} did not find the bad value at {key} within 5 s")


def front(tmp_path: Path, replica: str, user: str) -> bytes | None:
    path = tmp_path / replica / "images/users" / user / "front.jpg"
    return path.read_bytes() if path.exists() else None


def bad_lines(server: Server, text: str) -> list[str]:
    return [line for line in "".join(server.log).splitlines() if text in line]


def calm(server: Server) -> None:
    """Nothing was taken for a lost Redis, nothing escaped as a traceback."""
    log = "".join(server.log)
    assert "Traceback" not in log
    assert "lost the shared state" not in log
    assert "unexpected" not in log


# --------------------------------------------------------------------------- Redis restarted or emptied


async def test_an_upload_after_redis_restarted_empty_reaches_every_replica(
    pair: tuple[Server, Server],  # noqa: F811
    redis: RedisServer,  # noqa: F811
    hand: Any,
    tmp_path: Path,
    fixture_root: Path,
    signing_dir: Path,
) -> None:
    a, b = pair
    before, after, kept = card_jpeg("zed before"), card_jpeg("zed after"), card_jpeg("yan")
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as admin_a:
        await admin_a.put_image("front", before, user="zed")  # the first change of its Redis
        await admin_a.put_image("front", kept, user="yan")
        assert front(tmp_path, "b", "zed") == before
        redis.stop()
        redis.start()  # empty: its change numbers start again
        await beating(hand, 2)
        await until(lambda: admin_a.put_image("front", after, user="zed"))
        assert front(tmp_path, "b", "zed") == after  # in force on B when the upload has answered
        async with AsyncAdminClient(b.url) as admin_b:
            await admin_b.put_image("front", card_jpeg("ann"), user="ann")
        assert front(tmp_path, "a", "ann") == card_jpeg("ann")
        # the replicas keep the files they had; Redis holds only what was uploaded since
        assert front(tmp_path, "a", "yan") == front(tmp_path, "b", "yan") == kept
        config_c = replica_config(tmp_path, "c", fixture_root, signing_dir, redis.url)
        async with serving(config_c, config_c.parent) as c:
            assert (await post(session, c.url, "PROV:zed"))[1] == "user zed"
            assert front(tmp_path, "c", "zed") == after
            assert front(tmp_path, "c", "yan") is None  # uploaded before the restart: not in Redis now
            calm_c = "".join(c.log)
    assert "Traceback" not in calm_c
    for server in (a, b):
        assert "Traceback" not in "".join(server.log)


async def test_an_emptied_redis_gets_the_rules_back_and_takes_new_uploads_to_all(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
    tmp_path: Path,
) -> None:
    """FLUSHDB, with no reconnect to notice: the replicas see a new generation."""
    a, b = pair
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as admin_a:
        await admin_a.add_rule(name="down", match={"id": "PROV:down"}, outcome=503)
        await admin_a.put_image("front", card_jpeg("zed before"), user="zed")
        await hand.flushdb()
        for _ in range(100):
            if await hand.get(NS + "rules") is not None:
                break
            await asyncio.sleep(0.02)
        rules = json.loads(await hand.get(NS + "rules"))["rules"]
        assert [rule["spec"]["name"] for rule in rules] == ["down"]  # given back by the replicas
        async with AsyncAdminClient(b.url) as admin_b:
            assert [r["name"] for r in await admin_b.rules()] == ["down"]
        assert (await post(session, b.url, "PROV:down"))[0] == 503
        await admin_a.put_image("front", card_jpeg("zed after"), user="zed")
        # B applies it at once, or (when A's upload came before B saw the new generation) when it
        # re-applies everything on seeing it: within a few polls either way
        wanted = card_jpeg("zed after")
        for _ in range(200):
            if front(tmp_path, "b", "zed") == wanted:
                break
            await asyncio.sleep(0.05)
        assert front(tmp_path, "b", "zed") == wanted
    for server in (a, b):
        calm(server)


async def test_a_stalled_redis_costs_one_counted_request_the_command_timeout(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
) -> None:
    """Redis takes commands and answers none (CLIENT PAUSE): as if it were gone, after one timeout."""
    a, b = pair
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as admin_a:
        await admin_a.add_rule(name="twice", match={"id": "PROV:bob"}, first=2, outcome=503)
        await hand.client_pause(3500, all=True)
        await asyncio.sleep(0.1)
        timed = []
        for content_id in (DOC_CARD, "PROV:bob", "PROV:bob", "PROV:bob", DOC_CARD):
            started = time.monotonic()
            timed.append(((await post(session, b.url, content_id))[0], time.monotonic() - started))
        assert [status for status, _ in timed] == [200, 503, 503, 200, 200]  # counted on B alone meanwhile
        assert timed[0][1] < 0.5  # a request no rule matches asks Redis nothing
        assert 1.5 < timed[1][1] < COMMAND_TIMEOUT + 1.0  # the first to count waits for the timeout
        assert all(seconds < 0.5 for _, seconds in timed[2:])  # then B counts alone, at once
        health = await admin_health(session, b.url)
        assert (health["status"], health["state"]["reachable"]) == ("degraded", False)
        async with AsyncAdminClient(b.url) as admin_b:
            with pytest.raises(AdminError) as refused:
                await admin_b.add_rule(name="more", outcome=500)
        assert refused.value.status == 503
        await asyncio.sleep(1.5)  # the pause is over
        await until(lambda: admin_a.add_rule(name="more", match={"id": "PROV:more"}, outcome=500))
        assert (await post(session, b.url, "PROV:more"))[0] == 500
    for server in (a, b):
        assert "Traceback" not in "".join(server.log)


# --------------------------------------------------------------------------- counters


async def tokens(hand: Any) -> dict[str, str]:
    return {r["spec"]["name"]: r["token"] for r in json.loads(await hand.get(NS + "rules"))["rules"]}


async def test_a_counter_that_is_not_a_count_starts_again_once_for_all_replicas(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
) -> None:
    a, b = pair
    async with AsyncAdminClient(a.url) as admin_a, AsyncAdminClient(b.url) as admin_b:
        await admin_a.add_rule(name="twice", match={"id": DOC_CARD}, first=2, outcome=503)
        await admin_a.add_rule(name="retry", match={"id": "PROV:bob"}, sequence=[503, 502, "ok"])
        await admin_a.add_rule(name="limit", match={"id": "PROV:carol"}, rate_limit={"requests": 1, "window": "60s"})
        assert await alternating(a, b, DOC_CARD, 1) == [503]
        assert await alternating(a, b, "PROV:bob", 1) == [503]
        assert await alternating(a, b, "PROV:carol", 2) == [200, 429]
        token = await tokens(hand)
        await hand.set(f"{NS}c:{token['twice']}", "lots")  # a string where a count should be
        await hand.set(f"{NS}seq:{token['retry']}", "not a hash")
        window = f"{NS}rl:{token['limit']}:127.0.0.1"
        await hand.delete(window)
        await hand.zadd(window, {"from the future": time.time() * 1000 + 1e12})  # would limit for 30 years
        # each starts again at its first step, counted once across both replicas, never here alone
        assert await alternating(a, b, DOC_CARD, 6) == [503, 503, 200, 200, 200, 200]
        assert await alternating(a, b, "PROV:bob", 4) == [503, 502, 200, 200]
        assert await alternating(a, b, "PROV:carol", 2) == [200, 429]
        await admin_b.add_rule(name="more", match={"id": "PROV:more"}, outcome=500)  # the admin API answers
        async with aiohttp.ClientSession() as session:
            assert (await post(session, a.url, "PROV:more"))[0] == 500
            seen: dict[str, Any] = {}
            for server in (a, b):
                seen |= (await admin_health(session, server.url))["state"]["bad_values"]
    assert {f"c:{token['twice']}", f"seq:{token['retry']}"} <= set(seen), seen
    for server in (a, b):
        calm(server)
    # logged once, by whichever replica found it
    assert len(bad_lines(a, f"bad value at {NS}c:") + bad_lines(b, f"bad value at {NS}c:")) == 1


# --------------------------------------------------------------------------- rules


def hostile_rules() -> list[bytes | dict[str, str]]:
    good = {"name": "fine", "match": {"id": "PROV:fine"}, "outcome": 500}
    return [
        b"{not json",
        b"[]",
        b'{"rules": 3}',
        json.dumps({"rules": [{"token": "a1b2c3d4e5f6", "spec": {"name": "x", "outcome": "explode"}}]}).encode(),
        json.dumps({"rules": [{"token": "../../../x", "spec": good}]}).encode(),
        json.dumps(
            {"rules": [{"token": "a1b2c3d4e5f6", "spec": good}, {"token": "b1b2c3d4e5f6", "spec": good}]}
        ).encode(),
        json.dumps({"rules": [{"spec": good}]}).encode(),
        b"[" * 100_000,
        b"\xff\xfe",
        {"a": "hash, not a string"},
    ]


async def test_bad_rules_in_redis_keep_the_last_good_ones_and_the_admin_api_replaces_them(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
) -> None:
    a, b = pair
    async with clients(a, b) as (session, admin_a, admin_b):
        await admin_a.add_rule(name="down", match={"id": "PROV:down"}, outcome=503)
        for n, value in enumerate(hostile_rules()):
            before = [await bad_times(session, server, "rules") for server in (a, b)]
            await written(hand, "rules", value)
            for server, times in zip((a, b), before, strict=True):  # each replica finds it, within a poll or so
                await found_bad(session, server, "rules", times)
                assert (await post(session, server.url, "PROV:down"))[0] == 503, value  # the last good rules stay
            assert [r["name"] for r in await admin_b.rules()] == ["down"]
            # a change through the admin API builds on the rules in force and replaces the bad value
            await admin_b.add_rule(name=f"fix-{n}", match={"id": "PROV:fix"}, outcome=502)
            assert (await post(session, a.url, "PROV:fix"))[0] == 502
            assert [r["name"] for r in await admin_a.rules()] == ["down", f"fix-{n}"]
            await admin_a.delete_rule(f"fix-{n}")
        await hand.set(NS + "rules", b"{not json")
        await admin_a.replace_rules([{"name": "only", "match": {"id": "PROV:only"}, "outcome": 504}])
        assert (await post(session, b.url, "PROV:only"))[0] == 504
        assert (await post(session, b.url, "PROV:down"))[0] == 200
        await hand.set(NS + "rules", b"{not json")
        await admin_b.reset()
        assert await admin_a.rules() == []
    for server in (a, b):
        calm(server)
        assert len(bad_lines(server, f"bad value at {NS}rules")) <= 2, server.log  # not once per value


# --------------------------------------------------------------------------- the journal


def hostile_entries() -> list[dict[str, bytes]]:
    good = [time.time(), "PROV:x", None, 200, None, "default", 0.01, None]
    return [
        {"e": b"not json"},
        {"e": b"[1]"},
        {"e": b'{"contentId": "PROV:x"}'},
        {"other": b"[]"},
        {"e": json.dumps([1e300, *good[1:]]).encode()},
        {"e": json.dumps(good).replace("200", "NaN").encode()},
        {"e": json.dumps([*good[:3], True, *good[4:]]).encode()},
        {"e": json.dumps([*good[:7], "upstream?"]).encode()},
        {"e": json.dumps([*good, True]).encode()},
        {"e": b'[1.0, "PROV:x", null, 200, null, "default", 0.01, {"latencyMs": NaN}]'},  # Python reads NaN
        {"e": b"\xff\xfe"},
        {"e": b"[" * 100_000},
    ]


async def test_a_bad_journal_entry_is_skipped_and_delete_clears_a_bad_journal(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
) -> None:
    a, b = pair
    async with clients(a, b) as (session, admin_a, admin_b):
        await admin_a.clear_requests()
        assert (await post(session, a.url, DOC_CARD))[0] == 200
        for fields in hostile_entries():
            await hand.xadd(NS + "requests", fields)
        assert (await post(session, b.url, DOC_CARD))[0] == 200
        for admin in (admin_a, admin_b):
            assert [e["contentId"] for e in await admin.requests()] == [DOC_CARD, DOC_CARD]
            assert await admin.request_count() == 2
            assert await admin.request_count(DOC_CARD) == 2
        health = await admin_health(session, a.url)
        assert "requests" in health["state"]["bad_values"], health
        await admin_b.clear_requests()
        assert await admin_a.requests() == []
        # a journal that is no stream at all: read as empty, then replaced by the next entries
        await hand.set(NS + "requests", "a string")
        assert await admin_a.requests() == []
        assert (await post(session, a.url, DOC_CARD))[0] == 200
        assert [e["contentId"] for e in await admin_b.requests()] == [DOC_CARD]
        # a stream that takes no more entries (its last id is the largest there is): replaced too
        await hand.delete(NS + "requests")
        await hand.xadd(NS + "requests", {"e": b"[]"}, id="18446744073709551615-18446744073709551615")
        assert (await post(session, b.url, "PROV:last"))[0] == 200
        assert [e["contentId"] for e in await admin_a.requests()] == ["PROV:last"]
    for server in (a, b):
        calm(server)
        assert len(bad_lines(server, f"bad value at {NS}requests")) <= 2, server.log


# --------------------------------------------------------------------------- the bookkeeping keys


async def test_bad_counters_and_hashes_of_the_bookkeeping_stop_nothing(
    pair: tuple[Server, Server],  # noqa: F811
    hand: Any,
    tmp_path: Path,
) -> None:
    a, b = pair
    hostile: list[tuple[str, Any]] = [
        ("version", "not a number"),
        ("version", {"a": "hash"}),
        ("imagever", "not a hash"),
        ("images", "not a hash"),
        ("imageseq", "not a number"),
        ("flush", "not a number"),
        ("generation", "../../not an id"),
        ("generation", {"a": "hash"}),
        ("heartbeats", "not a hash"),
    ]
    async with clients(a, b) as (session, admin_a, admin_b):
        for n, (key, value) in enumerate(hostile):
            await written(hand, key, value)
            await asyncio.sleep(0.2)  # the replicas' polls meet it first
            await beating(hand, 2)  # after a lost heartbeats hash: until both are known again
            await admin_a.add_rule(name=f"r{n}", match={"id": f"PROV:r{n}"}, outcome=503)
            assert (await post(session, b.url, f"PROV:r{n}"))[0] == 503, key  # in force on B: it took it
            await admin_b.put_image("front", card_jpeg(f"u{n}"), user=f"u{n}")
            assert front(tmp_path, "a", f"u{n}") == card_jpeg(f"u{n}"), key
            assert await admin_a.request_count(f"PROV:r{n}") == 1, key
        # a heartbeat nobody could have written, alive forever: not waited for
        await hand.hset(NS + "heartbeats", "intruder", "no version here")
        await hand.set(NS + "alive:intruder", "1")
        await hand.hset(NS + "heartbeats", "ghost", "abc 99 99")
        await hand.set(NS + "alive:ghost", "1")
        started = time.monotonic()
        await admin_a.add_rule(name="quick", match={"id": "PROV:quick"}, outcome=503)
        assert time.monotonic() - started < 1.0  # the wait for replicas is 2 s: nobody fake was waited for
        # a bad value that stays (read, never written by the replicas): logged once, heartbeats go on
        await written(hand, "imagever", "not a hash")
        lines = [len(server.log) for server in (a, b)]
        await asyncio.sleep(1.0)
        for server, count in zip((a, b), lines, strict=True):
            assert len(server.log) - count <= 2, server.log[count:]
        real = [r.decode() for r in await hand.hkeys(NS + "heartbeats") if r not in (b"intruder", b"ghost")]
        assert len(real) == 2
        assert [await hand.pttl(NS + "alive:" + replica) > 0 for replica in real] == [True, True]  # still beating
        health = await admin_health(session, b.url)
        assert health["state"]["reachable"] is True
        assert health["state"]["bad_values"], health
    for server in (a, b):
        calm(server)


# --------------------------------------------------------------------------- what the replicas write passes


class _Verdict:
    header = "CP03 CP07"

    def as_json(self) -> dict[str, Any]:
        return {"verdict": "fail", "failed": ["CP03", "CP07"]}


def test_every_entry_a_replica_writes_is_one_the_journal_reads() -> None:
    """What the checks let through must include everything ``Entry.packed()`` makes."""
    plain = Entry(time.time())
    full = Entry(time.time())
    full.contentId, full.user, full.status, full.fault = "PROV:\ud800", "hermod", "reset", "down; slow"
    full.resolved, full.seconds, full.client_closed, full.bytes_sent = "user bob", 1.25, True, None
    full.upstream = UpstreamNote(502, 0.5, "upstream_timeout", _Verdict())
    closed = Entry(0.0)
    closed.client_closed, closed.bytes_sent = True, 4096
    for entry in (plain, full, closed):
        read = journal_entry({b"e": json.dumps(entry.packed()).encode()})
        assert shown(read) == entry.as_json()
    with pytest.raises(BadValue, match="not JSON"):
        journal_entry({b"e": b"[0, null, null, 200, null, null, Infinity, null]"})
