"""A hot id costs no disk read and no encoding; the cache is bounded in bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from content_provider.core.lru import ByteBoundedLRU
from content_provider.fixtures.generate import card_jpeg
from content_provider.fixtures.store import STORE

from .helpers import DOC_CARD, MakeClient, get_content


async def test_hot_id_is_read_once(make_client: MakeClient) -> None:
    client = await make_client(revalidate_seconds=3600)
    store = client.app[STORE]
    bodies = set()
    for _ in range(20):
        response = await get_content(client, DOC_CARD)
        bodies.add(await response.read())
    assert len(bodies) == 1
    assert store.stats.file_reads == 2  # front and back, once
    assert store.stats.builds == 1
    assert store.stats.revalidations == 1
    assert store.stats.hits == 19


async def test_members_of_one_organisation_share_one_prepared_answer(make_client: MakeClient) -> None:
    client = await make_client(revalidate_seconds=3600)
    store = client.app[STORE]
    for member in ("bob", "acme-1", "acme-2", "acme-3"):
        assert (await get_content(client, f"PROV:{member}")).status == 200
    assert store.stats.builds == 1
    assert len(store.answers) == 1


async def test_revalidation_sees_a_change_without_rereading_unchanged_files(
    make_client: MakeClient, fixture_root: Path
) -> None:
    client = await make_client(revalidate_seconds=0)
    store = client.app[STORE]
    first = await (await get_content(client, DOC_CARD)).read()
    await get_content(client, DOC_CARD)
    assert store.stats.file_reads == 2  # revalidated by stat, not re-read
    (fixture_root / "users" / DOC_CARD[5:] / "front.jpg").write_bytes(card_jpeg("changed"))
    second = await (await get_content(client, DOC_CARD)).read()
    assert first != second
    assert store.stats.file_reads == 4


async def test_cache_off_reads_every_time(make_client: MakeClient) -> None:
    client = await make_client(cache_max_bytes=0, revalidate_seconds=3600)
    store = client.app[STORE]
    for _ in range(3):
        assert (await get_content(client, DOC_CARD)).status == 200
    assert store.stats.builds == 3


def test_lru_is_bounded_in_bytes() -> None:
    cache: ByteBoundedLRU[str] = ByteBoundedLRU(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)
    assert cache.get("b") is None
    assert cache.get("a") == "A"
    assert cache.get("c") == "C"
    assert cache.bytes == 80
    cache.put("huge", "H", 101)
    assert cache.get("huge") is None
    assert cache.bytes == 80
    cache.put("a", "A2", 10)
    assert cache.bytes == 50
    assert cache.get("a") == "A2"


async def test_a_burst_for_a_cold_id_builds_once(make_client: MakeClient) -> None:
    client = await make_client(revalidate_seconds=3600)
    store = client.app[STORE]
    responses = await asyncio.gather(*(get_content(client, DOC_CARD) for _ in range(32)))
    assert {r.status for r in responses} == {200}
    assert store.stats.builds == 1
    assert store.stats.file_reads == 2
    assert store.stats.revalidations == 1


async def test_a_due_check_runs_in_the_background_and_the_change_follows(
    make_client: MakeClient, fixture_root: Path
) -> None:
    client = await make_client(revalidate_seconds=0.05)
    first = await (await get_content(client, DOC_CARD)).read()
    (fixture_root / "users" / DOC_CARD[5:] / "front.jpg").write_bytes(card_jpeg("changed in the background"))
    await asyncio.sleep(0.1)
    stale = await (await get_content(client, DOC_CARD)).read()
    assert stale == first  # served at once from memory; the check was started behind it
    for _ in range(100):
        await asyncio.sleep(0.02)
        if await (await get_content(client, DOC_CARD)).read() != first:
            break
    else:
        raise AssertionError("the changed image was never served")


async def test_with_revalidate_0_no_memo_is_kept(make_client: MakeClient) -> None:
    """Every request looks at the disk then, so remembering resolutions would only cost memory."""
    client = await make_client(revalidate_seconds=0.0)
    for index in range(50):
        assert (await get_content(client, f"PROV:someone-{index}")).status == 200
    assert len(client.app[STORE]._memo) == 0
