"""The persistent cache (cache.directory): a restarted server neither signs nor checks again what it
did before, a fixture file that changed is checked and signed afresh, and a corrupt or hostile
cache file is ignored (one warning), never a crash or a wrong answer. Nothing here is timed:
bench/cold.py measures the speed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from content_provider.cli import main
from content_provider.core.diskmap import MAGIC, DiskMap
from content_provider.fixtures.generate import card_jpeg
from content_provider.fixtures.persist import CHECKS_FILE, SIGNATURES_FILE, PersistentCache
from content_provider.fixtures.store import STORE
from content_provider.signing.jws import SIGNER, verify_back

from .helpers import DOC_CARD, MakeClient, get_content
from .test_cli import serving, write_config

SUMMARY = re.compile(
    r"persistent cache \S+: (\d+) signature\(s\) made, (\d+) taken from it; (\d+) image check\(s\) made, (\d+) taken"
)
BACK = Path("users") / DOC_CARD.removeprefix("PROV:") / "back.jpg"


async def served_once(config: Path, cwd: Path) -> tuple[bytes, dict[str, Any], tuple[int, ...]]:
    """One ``serve`` process: the card's back payload, the JWKS, and what its log says it made and took."""
    async with serving(config, cwd) as server, aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response:
            assert response.status == 200
            back = (await response.json())["data"][1]["data"]
        async with session.get(f"{server.url}/.well-known/jwks.json") as response:
            jwks = await response.json()
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 20) == 0
        log = await server.full_log()
    assert "Traceback" not in log
    [counts] = SUMMARY.findall(log)
    _, payload = verify_back(back, jwks)
    return payload, jwks, tuple(int(n) for n in counts)


async def test_a_restarted_server_takes_what_it_made_before_and_not_for_a_changed_file(
    tmp_path: Path, fixture_root: Path, signing_dir: Path
) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, f"cache:\n  directory: {tmp_path / 'cache'}\n")
    first, _, (signed, _, checked, _) = await served_once(config, tmp_path)
    assert signed == 1  # the back
    assert checked > 1  # every image, at start-up
    kept = await asyncio.to_thread(lambda: sorted(p.name for p in (tmp_path / "cache").iterdir()))
    assert kept == sorted([CHECKS_FILE, SIGNATURES_FILE])
    inside = await asyncio.to_thread(lambda: [p for p in fixture_root.rglob("*") if p.suffix == ".bin"])
    assert inside == []  # beside the fixtures, not in them

    again, _, counts = await served_once(config, tmp_path)
    assert again == first
    assert counts == (0, 1, 0, checked)  # nothing signed or decoded: all taken from the cache

    changed = card_jpeg("a new back")
    (fixture_root / BACK).write_bytes(changed)
    payload, _, (signed, taken, checked_now, checks_taken) = await served_once(config, tmp_path)
    assert payload == changed  # never the old file's signature
    assert (signed, taken, checked_now) == (1, 0, 1)  # the changed file checked and signed afresh
    assert checks_taken == checked - 1  # and every other image still taken from the cache


def rewrite_in_place(path: Path, data: bytes, before: os.stat_result) -> None:
    """``data`` over the file's bytes (the same inode), its times put back as they were."""
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


async def test_a_file_changed_behind_the_same_size_time_and_inode_is_not_answered_from_the_cache(
    tmp_path: Path, fixture_root: Path, signing_dir: Path
) -> None:
    """Over real restarts: the back rewritten in place with other bytes of the same length, its
    modification time put back, so path, size, time and inode all match what the cache saw: the
    entries are keyed by the bytes, so the restarted server signs and checks it afresh, and the
    client gets the new image, signed."""
    config = write_config(tmp_path, fixture_root, signing_dir, f"cache:\n  directory: {tmp_path / 'cache'}\n")
    first, _, _ = await served_once(config, tmp_path)
    path = fixture_root / BACK
    before = path.stat()
    changed = first[:-3] + bytes(b ^ 0x01 for b in first[-3:-2]) + first[-2:]  # one byte before the EOI marker
    assert changed != first
    assert len(changed) == len(first)
    await asyncio.to_thread(rewrite_in_place, path, changed, before)
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    payload, _, (signed, taken, checked, _) = await served_once(config, tmp_path)
    assert payload == changed
    assert (signed, taken, checked) == (1, 0, 1)


async def test_warm_fills_the_cache_so_the_first_serve_makes_nothing(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, f"cache:\n  directory: {tmp_path / 'cache'}\n")
    assert main(["warm", "--config", str(config)], {}) == 0
    out, err = capsys.readouterr()
    images = await asyncio.to_thread(lambda: len(list(fixture_root.rglob("*.jpg"))))
    assert f"warm: {images}/{images} images (100%)" in err  # plain lines: not a terminal
    assert "\r" not in err
    assert f"{images} fixture image(s) in {fixture_root} warmed" in out
    _, _, counts = await served_once(config, tmp_path)
    assert counts[:3] == (0, 1, 0)  # nothing signed or decoded: warm did it


def test_warm_without_a_persistent_cache_says_so(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, "cache:\n  persistent: false\n")
    assert main(["warm", "--config", str(config)], {}) == 2
    assert "cache.persistent is false" in capsys.readouterr().err


def cache_of(make_client: MakeClient, directory: Path) -> Any:
    return make_client(cache_dir=directory, revalidate_seconds=1.0)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a cache at all",
        MAGIC,
        MAGIC + b"\xff" * 100,
        MAGIC + b"\x00\x00\x00\x0asignatures 1\x7f\xff\xff\xff" + b"\x00" * 32,  # 2 billion entries claimed
    ],
    ids=["empty", "text", "magic-only", "garbage", "huge-count"],
)
async def test_a_corrupt_cache_file_is_ignored_with_one_warning(
    make_client: MakeClient, tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / SIGNATURES_FILE).write_bytes(content)
    (cache / CHECKS_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, "content_provider.cache"):
        client = await cache_of(make_client, cache)
        response = await get_content(client, DOC_CARD)
        assert response.status == 200
        back = (await response.json())["data"][1]["data"]
        jwks = await (await client.get("/.well-known/jwks.json")).json()
        verify_back(back, jwks)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if content:  # an empty file is no cache: nothing to warn of
        assert len(warnings) == 2, warnings
        assert all("not used" in w for w in warnings), warnings


async def test_a_truncated_snapshot_is_not_trusted(tmp_path: Path) -> None:
    disk = DiskMap(tmp_path / "map.bin", "scope", 10, 64, 64)
    disk.put(b"key", b"value")
    assert disk.save()
    whole = (tmp_path / "map.bin").read_bytes()
    (tmp_path / "map.bin").write_bytes(whole[:-5])
    reread = DiskMap(tmp_path / "map.bin", "scope", 10, 64, 64)
    reread.load()
    assert len(reread) == 0
    (tmp_path / "map.bin").write_bytes(whole)
    reread.load()
    assert reread.peek(b"key") == b"value"
    other = DiskMap(tmp_path / "map.bin", "another scope", 10, 64, 64)
    other.load()
    assert len(other) == 0


async def test_a_hostile_signature_is_verified_and_not_served(
    make_client: MakeClient, tmp_path: Path, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A well-formed file (its checksum right) whose signatures are wrong: each is verified, refused
    (one warning) and made afresh; the client gets a back that verifies."""
    cache = tmp_path / "cache"
    client = await cache_of(make_client, cache)
    signer = client.server.app[SIGNER]
    payload = (fixture_root / BACK).read_bytes()
    forged = PersistentCache(cache).signatures
    forged.put(signer._disk_prefix + hashlib.sha256(payload).digest(), b"\x00" * 256)
    forged.save()
    await client.close()
    with caplog.at_level(logging.WARNING, "content_provider.cache"):
        client = await cache_of(make_client, cache)
        back = (await (await get_content(client, DOC_CARD)).json())["data"][1]["data"]
        verify_back(back, await (await client.get("/.well-known/jwks.json")).json())
        store = client.server.app[STORE]
        assert store.persistent is not None
        assert store.persistent.signatures.rejected == 1
        assert store.persistent.signatures.added == 1
    assert [r.getMessage() for r in caplog.records if "failed its check" in r.getMessage()]


@pytest.mark.parametrize("stored", [b"ok", b"!", b"!\x1b[2Jcleared", b"!" + b"x" * 600, b"!\xff\xfe", b"!stale"])
async def test_a_check_result_of_the_wrong_shape_is_checked_again(
    make_client: MakeClient, tmp_path: Path, fixture_root: Path, stored: bytes
) -> None:
    """A hostile check result (not one the mock writes) is not reported: the image is decoded again."""
    cache = tmp_path / "cache"
    client = await cache_of(make_client, cache)
    checks = client.server.app[STORE].checks
    data = (fixture_root / BACK).read_bytes()
    key = checks._disk_key((hashlib.sha256(data).digest(), True, False))
    await client.close()
    forged = PersistentCache(cache).checks
    forged.put(key, stored)
    forged.save()
    client = await cache_of(make_client, cache)
    response = await client.get("/healthz")
    assert (await response.json())["fixture_problems"] == []  # nothing of the forged reason shown
    store = client.server.app[STORE]
    assert store.persistent is not None
    assert store.persistent.checks.rejected == 1


async def test_a_file_that_changed_in_place_is_checked_afresh(
    make_client: MakeClient, tmp_path: Path, fixture_root: Path
) -> None:
    """Same path, same size even: the result is keyed by the bytes, so the new bytes are decoded."""
    cache = tmp_path / "cache"
    client = await cache_of(make_client, cache)
    assert (await client.get("/healthz")).status == 200
    await client.close()
    path = fixture_root / BACK
    broken = path.read_bytes()[:-200] + b"\x00" * 200  # the same length, an image cut short
    path.write_bytes(broken)
    client = await cache_of(make_client, cache)
    problems = (await (await client.get("/healthz")).json())["fixture_problems"]
    assert any(BACK.as_posix() in str(problem) for problem in problems), problems


def test_the_cache_is_never_inside_the_fixture_folder(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, f"cache:\n  directory: {fixture_root / 'cache'}\n")
    assert main(["check-fixtures", "--config", str(config)], {}) == 2


async def test_an_unwritable_cache_folder_is_served_without(
    make_client: MakeClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a folder")
    with caplog.at_level(logging.WARNING, "content_provider.cache"):
        client = await cache_of(make_client, tmp_path / "file" / "cache")
        assert (await get_content(client, DOC_CARD)).status == 200
    assert any("serving without it" in r.getMessage() for r in caplog.records)
