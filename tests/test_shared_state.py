"""``state.backend: redis``: two ``serve`` processes on two ports, as two machines, with one real
Redis and no shared fixture folder (each has its own copy), see one state."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from content_provider.client import AdminError, AsyncAdminClient
from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError
from content_provider.faults.engine import draw
from content_provider.fixtures.generate import card_jpeg
from content_provider.signing.jws import verify_back

from .helpers import DOC_CARD, MakeClient, png_bytes
from .redis_server import RedisServer, redis_server
from .test_cli import Server, serving, write_config

SEED = 1234


def replica_config(tmp_path: Path, name: str, fixture_root: Path, signing_dir: Path, url: str) -> Path:
    """A replica's own folder: its config and its own copy of the fixtures."""
    folder = tmp_path / name
    folder.mkdir()
    images = folder / "images"
    shutil.copytree(fixture_root, images)
    extra = f"state:\n  backend: redis\n  redis_url: {url}\n  namespace: test-{name}-pair\nfaults:\n  seed: {SEED}\n"
    return write_config(folder, images, signing_dir, extra.replace(f"test-{name}-pair", "test-pair"))


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    with redis_server(folder) as server:
        yield server


@pytest.fixture
async def pair(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, redis: RedisServer
) -> AsyncIterator[tuple[Server, Server]]:
    config_a = replica_config(tmp_path, "a", fixture_root, signing_dir, redis.url)
    config_b = replica_config(tmp_path, "b", fixture_root, signing_dir, redis.url)
    async with serving(config_a, config_a.parent) as a, serving(config_b, config_b.parent) as b:
        yield a, b


async def post(session: aiohttp.ClientSession, url: str, content_id: str) -> tuple[int, str]:
    async with session.post(f"{url}/getcontent", json={"contentId": content_id}) as response:
        await response.read()
        return response.status, response.headers.get("X-Content-Provider-Resolved", "")


async def alternating(a: Server, b: Server, content_id: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        return [(await post(session, (a, b)[n % 2].url, content_id))[0] for n in range(count)]


async def test_two_replicas_share_rules_counts_sequences_journal_and_uploads(pair: tuple[Server, Server]) -> None:
    a, b = pair
    async with AsyncAdminClient(a.url) as admin_a, AsyncAdminClient(b.url) as admin_b:
        await admin_a.clear_requests()
        # a rule added through A is in force on B when the admin call has answered
        await admin_a.add_rule(name="down", match={"id": "PROV:down"}, outcome=503)
        async with aiohttp.ClientSession() as session:
            assert (await post(session, b.url, "PROV:down"))[0] == 503
        assert [r["name"] for r in await admin_b.rules()] == ["down"]
        # first: 2 fires exactly twice over 20 requests alternating A and B
        await admin_b.add_rule(name="twice", match={"id": DOC_CARD}, first=2, outcome=503)
        assert await alternating(a, b, DOC_CARD, 20) == [503, 503] + [200] * 18
        # a sequence per content id advances across A and B
        await admin_a.add_rule(name="retry", match={"id": "PROV:bob"}, sequence=[503, 502, "ok"])
        assert await alternating(a, b, "PROV:bob", 4) == [503, 502, 200, 200]
        # the journal read through either holds what both answered
        total = 1 + 20 + 4
        assert await admin_a.request_count() == total == await admin_b.request_count()
        assert len(await admin_b.requests(DOC_CARD)) == 20
        assert [e["status"] for e in await admin_a.requests("PROV:bob")] == [200, 200, 502, 503]
        await admin_b.clear_requests()
        assert await admin_a.request_count() == 0
        # an image uploaded through A is served by B, which has no shared folder
        async with aiohttp.ClientSession() as session:
            assert (await post(session, b.url, "PROV:zed"))[1] == "default"
            await admin_a.put_image("front", card_jpeg("zed"), user="zed")
            assert (await post(session, b.url, "PROV:zed"))[1] == "user zed"
            await admin_a.delete_image("front", user="zed")
            assert (await post(session, b.url, "PROV:zed"))[1] == "default"
        # a reset through B is a reset everywhere
        await admin_b.reset()
        assert await admin_a.rules() == []
        assert await alternating(a, b, DOC_CARD, 2) == [200, 200]


async def test_a_seeded_probability_gives_the_one_process_pattern(pair: tuple[Server, Server]) -> None:
    a, b = pair
    async with AsyncAdminClient(a.url) as admin:
        await admin.add_rule(name="flaky", match={"id": DOC_CARD}, probability=0.3, outcome=503)
    expected = [503 if draw(SEED, "flaky", n) < 0.3 else 200 for n in range(1, 41)]
    assert await alternating(a, b, DOC_CARD, 40) == expected  # tests/test_faults.py: the same in one process


async def test_losing_redis_keeps_content_served_and_admin_says_503_until_it_is_back(
    pair: tuple[Server, Server], redis: RedisServer
) -> None:
    a, b = pair
    async with AsyncAdminClient(a.url) as admin_a, AsyncAdminClient(b.url) as admin_b:
        await admin_a.add_rule(name="down", match={"id": "PROV:down"}, outcome=503)
        redis.stop()
        async with aiohttp.ClientSession() as session:
            for _ in range(50):  # noticed within a poll (50 ms) or at the next call
                async with session.get(f"{b.url}/healthz") as response:
                    health = await response.json()
                if not health["state"]["reachable"]:
                    break
                await asyncio.sleep(0.05)
            assert health["status"] == "degraded"
            assert health["state"]["reachable"] is False
            for server in (a, b):  # content still served, with the last known rules
                assert (await post(session, server.url, DOC_CARD))[0] == 200
                assert (await post(session, server.url, "PROV:down"))[0] == 503
            with pytest.raises(AdminError) as refused:
                await admin_b.add_rule(name="more", outcome=500)
            assert refused.value.status == 503
            assert refused.value.body["error"] == "state_unavailable"
            async with session.get(f"{a.url}/healthz") as response:
                assert (await response.json())["state"]["journal_dropped"] >= 2
            redis.start()  # an empty Redis: the replicas give it their rules again
            for _ in range(100):
                async with session.get(f"{a.url}/healthz") as response:
                    if (await response.json())["state"]["reachable"]:
                        break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("replica A did not reconnect within 5 s")
            for _ in range(100):
                try:
                    await admin_b.add_rule(name="twice", match={"id": DOC_CARD}, first=2, outcome=503)
                    break
                except AdminError:
                    await asyncio.sleep(0.05)
            assert [r["name"] for r in await admin_a.rules()] == ["down", "twice"]
            assert await alternating(a, b, DOC_CARD, 6) == [503, 503, 200, 200, 200, 200]
            async with session.get(f"{a.url}/metrics") as response:
                text = await response.text()
    assert "content_provider_state_backend_errors_total" in text
    for server in (a, b):
        assert "Traceback" not in "".join(server.log)


async def test_unreachable_redis_at_start_is_a_clear_error(
    tmp_path: Path, signing_dir: Path, fixture_root: Path
) -> None:
    from content_provider.serving.workers import free_port

    url = f"redis://127.0.0.1:{free_port('127.0.0.1')}/0"  # nobody listens there
    config = write_config(tmp_path, fixture_root, signing_dir, f"state:\n  redis_url: {url}\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0",
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err.decode()
    assert f"state.redis_url: cannot reach Redis at {url}" in err.decode()
    assert "Traceback" not in err.decode()


async def test_metrics_in_one_process(make_client: MakeClient) -> None:
    client = await make_client()
    for content_id in (DOC_CARD, DOC_CARD, "AUTH:nobody-at-all"):
        await (await client.post("/getcontent", json={"contentId": content_id})).read()
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    ok = [line for line in text.splitlines() if line.startswith("content_provider_requests_total{")]
    assert any('use_case="PROV"' in line and 'status="200"' in line and line.endswith(" 2.0") for line in ok), ok
    assert "content_provider_request_duration_seconds_bucket" in text
    assert "content_provider_answer_cache_hits_total 1.0" in text
    assert "content_provider_journal_writes_dropped_total 0.0" in text


async def test_memory_backend_health_says_so(make_client: MakeClient) -> None:
    health = await (await (await make_client()).get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["state"] == {"backend": "memory", "reachable": True, "journal_dropped": 0}


@pytest.mark.parametrize(
    ("data", "env", "message"),
    [
        ({"state": {"backend": "etcd"}}, {}, "state.backend"),
        ({}, {"CONTENT_PROVIDER_STATE_BACKEND": "etcd"}, "CONTENT_PROVIDER_STATE_BACKEND"),
        ({"state": {"redis_url": "http://x"}}, {}, "state.redis_url"),
        ({"state": {"namespace": "a b"}}, {}, "state.namespace"),
        ({"state": {"colour": "red"}}, {}, "state.colour"),
    ],
)
def test_bad_state_settings_name_the_key(data: dict[str, Any], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(data, Path.cwd(), env)


def test_a_redis_url_alone_means_the_redis_backend() -> None:
    settings = parse_settings({}, Path.cwd(), {"CONTENT_PROVIDER_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert (settings.state_backend, settings.redis_url) == ("redis", "redis://127.0.0.1:6379/0")
    assert parse_settings({}, Path.cwd(), {}).state_backend == "memory"


async def test_the_journal_takes_any_content_id_json_allows(pair: tuple[Server, Server]) -> None:
    """A lone surrogate is valid in JSON text (and served like any id): its journal entry is written
    like the others, and the writer keeps writing what comes after it."""
    a, b = pair
    odd = '{"contentId": "PROV:\\ud800"}'
    async with aiohttp.ClientSession() as session, AsyncAdminClient(b.url) as admin:
        await admin.clear_requests()
        headers = {"Content-Type": "application/json"}
        async with session.post(f"{a.url}/getcontent", data=odd, headers=headers) as response:
            assert response.status == 200
        await asyncio.sleep(0.2)  # past the batch timer: the writer has written (or died on) it
        assert (await post(session, a.url, DOC_CARD))[0] == 200
        entries = await admin.requests()
        assert [e["contentId"] for e in entries] == [DOC_CARD, "PROV:\ud800"]
        assert (await admin_health(session, a.url))["state"]["journal_dropped"] == 0


async def admin_health(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(f"{url}/healthz") as response:
        return await response.json()


# --------------------------------------------------------------------------- images shared through Redis

RECORDED_BACK = "eyJhbGciOiJSUzI1NiIsImtpZCI6InZlbmRvciJ9.cmVjb3JkZWQ.c2ln"  # a compact JWS, as a vendor signed it


def tree(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


async def content(session: aiohttp.ClientSession, url: str, content_id: str) -> dict[str, Any]:
    async with session.post(f"{url}/getcontent", json={"contentId": content_id}) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def test_an_upload_on_one_replica_replaces_a_recorded_back_on_the_other(
    pair: tuple[Server, Server], tmp_path: Path
) -> None:
    a, b = pair
    for name in ("a", "b"):  # recorded on both (each has its own folder): a front and the vendor's signed back
        folder = tmp_path / name / "images/users/rec"
        folder.mkdir()
        (folder / "front.jpg").write_bytes(card_jpeg("rec"))
        (folder / "back.jws").write_text(RECORDED_BACK)
    new_back = card_jpeg("uploaded back")
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as admin_a:
        assert (await content(session, b.url, "PROV:rec"))["data"][1]["data"] == RECORDED_BACK
        await admin_a.put_image("back", new_back, user="rec")
        back = (await content(session, b.url, "PROV:rec"))["data"][1]
        async with session.get(f"{b.url}/.well-known/jwks.json") as response:
            jwks = await response.json()
    assert back["data"] != RECORDED_BACK
    assert verify_back(back["data"], jwks)[1] == new_back  # signed by B, the new image
    for name in ("a", "b"):
        folder = tmp_path / name / "images/users/rec"
        assert sorted(p.name for p in folder.iterdir()) == ["back.jpg", "front.jpg"]
        assert (folder / "back.jpg").read_bytes() == new_back


async def test_hostile_images_in_redis_write_and_delete_nothing_and_the_replica_goes_on(
    pair: tuple[Server, Server], redis: RedisServer, tmp_path: Path
) -> None:
    a, b = pair
    victim = tmp_path / "victim.txt"  # outside both fixture folders (tmp_path/<a|b>/images)
    victim.write_text("keep me")
    (tmp_path / "b/images/users/alice").mkdir(exist_ok=True)
    hostile: dict[bytes, bytes] = {
        b"../../escaped.txt": b"written by anyone who can write Redis",
        b"../../../escaped.txt": b"further out",
        str(tmp_path / "absolute.txt").encode(): b"an absolute path",
        b"users/a/../../x/front.jpg": card_jpeg("dot dot"),
        b"users/alice/../../../escaped/front.jpg": card_jpeg("dot dot"),
        b"users/alice\n/front.jpg": card_jpeg("newline"),
        b"users/\xff\xfe/front.jpg": card_jpeg("not UTF-8"),
        b"users/alice/front.jpeg": card_jpeg("another extension"),
        b"users/mallory/front.jpg": b"not a JPEG at all",
        b"users/mallory/auth.jpg": png_bytes(),
        b"../../victim.txt": b"",  # a delete, outside
        str(victim).encode(): b"",
    }
    before = tree(tmp_path)
    client = aioredis.from_url(redis.url)
    try:
        for n, (path, data) in enumerate(hostile.items()):
            await client.hset("test-pair:images", path, data)
            await client.hset("test-pair:imagever", path, 1000 + n if n % 2 else b"not a number")
        await client.incr("test-pair:version")
        await asyncio.sleep(0.5)  # ten polls: both replicas have looked
    finally:
        await client.aclose()
    assert victim.read_text() == "keep me"
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert tree(tmp_path) == before  # nothing written, nothing deleted, anywhere
    async with aiohttp.ClientSession() as session, AsyncAdminClient(a.url) as admin_a:
        assert (await content(session, b.url, DOC_CARD))["data"][0]["key"] == "front"  # B still serves
        assert (await post(session, b.url, "PROV:mallory"))[1] == "default"
        await admin_a.put_image("front", card_jpeg("zed"), user="zed")  # and applies the next good upload
        assert (await post(session, b.url, "PROV:zed"))[1] == "user zed"
    assert (tmp_path / "b/images/users/zed/front.jpg").read_bytes() == card_jpeg("zed")
    for server in (a, b):
        log = "".join(server.log)
        assert "Traceback" not in log
        refused = [line for line in log.splitlines() if "not applying the shared image" in line]
        assert len(refused) == len(hostile), refused  # each once, though the version moved on since
        assert "written by anyone" not in log


async def test_an_upload_while_redis_fails_answers_503_and_changes_nothing(
    pair: tuple[Server, Server], redis: RedisServer, tmp_path: Path
) -> None:
    a, _ = pair
    subject = DOC_CARD.split(":")[1]
    front = tmp_path / "a/images/users" / subject / "front.jpg"
    before = front.read_bytes()
    control = aioredis.from_url(redis.url)
    try:
        # Redis stops taking writes while this replica still takes it for reachable (its poll hangs on
        # the heartbeat until its timeout): the upload must not be written here before Redis has it
        await control.client_pause(8000, all=False)  # writes only
        await asyncio.sleep(0.2)
        async with AsyncAdminClient(a.url) as admin_a:
            with pytest.raises(AdminError) as refused:
                await admin_a.put_image("front", card_jpeg("not shared"), user=subject)
            assert refused.value.status == 503
            assert front.read_bytes() == before
            assert not (tmp_path / "a/images/users/nobody").exists()
            await control.client_unpause()
            redis.stop()  # and Redis gone: refused at once, or at the first command
            for _ in range(2):  # before the replica noticed, and after
                with pytest.raises(AdminError) as refused:
                    await admin_a.put_image("front", card_jpeg("not shared"), user="nobody")
                assert refused.value.status == 503
                with pytest.raises(AdminError) as refused:
                    await admin_a.delete_image("front", user=subject)
                assert refused.value.status == 503
                await asyncio.sleep(0.2)
    finally:
        await control.aclose()
    assert front.read_bytes() == before
    assert not (tmp_path / "a/images/users/nobody").exists()


async def test_a_rule_that_does_the_same_to_every_request_is_not_counted_in_redis(
    pair: tuple[Server, Server], redis: RedisServer
) -> None:
    """A rule with no trigger that counts (no first, every, draw, sequence, rate limit or random
    delay) fires on every request it matches, on every replica, without a round trip to Redis; a
    counted rule matching the same request still counts there, and the first outcome still wins."""
    a, b = pair
    async with AsyncAdminClient(a.url) as admin:
        await admin.add_rule(name="down", match={"id": "PROV:down"}, outcome=503)
        await admin.add_rule(name="late", match={"id": "PROV:down"}, first=3, outcome=502)
    assert await alternating(a, b, "PROV:down", 6) == [503] * 6
    hand = aioredis.from_url(redis.url)
    try:
        counters = sorted(k.decode() if isinstance(k, bytes) else k for k in await hand.keys("test-pair:c:*"))
        # only "late" has a counter, and it counted all six requests
        assert len(counters) == 1, counters
        assert await hand.get(counters[0]) == b"6"
    finally:
        await hand.aclose()
    async with AsyncAdminClient(b.url) as admin:
        await admin.delete_rule("down")
    assert await alternating(a, b, "PROV:down", 2) == [200, 200]  # "late" has had its three


async def test_counts_stay_exact_when_many_requests_are_counted_in_one_call(pair: tuple[Server, Server]) -> None:
    """The requests that come while a count is under way are counted together in one round trip:
    60 at once, half through each replica, still make a first: 7 rule fire exactly 7 times and an
    every: 4 rule exactly 15, and a sequence hands out each step once."""
    a, b = pair
    async with AsyncAdminClient(a.url) as admin:
        await admin.add_rule(name="seven", match={"id": DOC_CARD}, first=7, outcome=503)
        await admin.add_rule(name="fourth", match={"id": "PROV:bob"}, every=4, outcome=502)
        await admin.add_rule(name="steps", match={"id": "PROV:carol"}, sequence=[503, 502, 504, "ok"])
    async with aiohttp.ClientSession() as session:

        async def burst(content_id: str) -> list[int]:
            asked = [post(session, (a, b)[n % 2].url, content_id) for n in range(60)]
            return [status for status, _ in await asyncio.gather(*asked)]

        seven, fourth, steps = await asyncio.gather(burst(DOC_CARD), burst("PROV:bob"), burst("PROV:carol"))
    assert seven.count(503) == 7
    assert seven.count(200) == 53
    assert fourth.count(502) == 15
    assert fourth.count(200) == 45
    assert sorted(s for s in steps if s != 200) == [502, 503, 504]
    assert steps.count(200) == 57
