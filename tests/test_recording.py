"""Recording an upstream (docs/upstream.md, "Recording"): nothing lost, nothing mixed, nothing outside the folder.

The mock under test is always ``content-provider serve`` as its own process; the upstream is
a small aiohttp provider on loopback in this process, whose answers say which request they
answered (a JPEG comment), so a replayed answer can be traced to the recording it came from.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from content_provider.config.parse import parse_settings
from content_provider.config.settings import DEMO_FIXTURES
from content_provider.core.b64 import b64url_decode, b64url_encode
from content_provider.core.contract import answer_of_parts, image_part, jws_part
from content_provider.core.reader import ConfigError
from content_provider.fixtures.generate import auth_jpeg, card_jpeg
from content_provider.upstream.manifest import MANIFEST
from content_provider.upstream.record import FRAGMENT

from .docs import ROOT, blocks
from .helpers import recorded_manifest
from .test_cli import Server, serving, start, write_config
from .test_doc_examples import commands
from .test_upstream import folder, front_config

FRONT = card_jpeg("recorded", "front", optimize=False)
BACK = card_jpeg("recorded", "back", optimize=False)
AUTH = auth_jpeg("recorded", optimize=False)
MARK = re.compile(rb"\xff\xfe..mark:(.*?);", re.DOTALL)


def marked(jpeg: bytes, mark: str) -> bytes:
    """``jpeg`` with a comment segment saying ``mark`` (still a good JPEG)."""
    text = f"mark:{mark};".encode("ascii", "backslashreplace")
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


def mark_of(jpeg: bytes) -> str:
    found = MARK.search(jpeg)
    assert found is not None, "no mark in the image"
    return found.group(1).decode("ascii")


def card_answer(mark: str, back: bool = True) -> bytes:
    """A card answer, encoded as the mock encodes its own (so a replay is byte for byte the same)."""
    parts = [image_part("front", marked(FRONT, mark))]
    if back:
        header = b64url_encode(json.dumps({"alg": "RS256", "cty": "image/jpeg"}).encode())
        payload = b64url_encode(marked(BACK, mark))
        parts.append(jws_part("back", f"{header}.{payload}.{b64url_encode(f'sig {mark}'.encode())}"))
    return answer_of_parts(parts)


def auth_answer(mark: str) -> bytes:
    return answer_of_parts([image_part("auth_image", marked(AUTH, mark))])


def marks(body: bytes) -> dict[str, str]:
    """The mark of each side of an answer: ``front``, ``back`` (the JWS payload's), ``auth_image``."""
    found = {}
    for element in json.loads(body)["data"]:
        data = element["data"]
        jpeg = b64url_decode(data.split(".")[1]) if element["key"] == "back" else base64.b64decode(data)
        found[element["key"]] = mark_of(jpeg)
    return found


Handler = Callable[[str, web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def provider(handler: Handler) -> AsyncIterator[str]:
    """An upstream on loopback answering ``POST /cp/getcontent`` with ``handler(contentId, request)``."""

    async def getcontent(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return await handler(json.loads(body)["contentId"] if body else "", request)

    app = web.Application()
    app.router.add_route("*", "/cp/getcontent", getcontent)  # any method: a GET is seen, not turned away
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/cp"
    finally:
        await runner.cleanup()


def answering(make: Callable[[str], bytes | None]) -> Handler:
    """A handler that answers 200 with ``make(contentId)``."""

    async def handler(content_id: str, request: web.Request) -> web.StreamResponse:
        body = make(content_id)
        return web.Response(body=body, content_type="application/json")

    return handler


def by_use_case(content_id: str, mark: str) -> bytes:
    return auth_answer(mark) if content_id.upper().startswith("AUTH:") else card_answer(mark)


async def post(url: str, content_id: str) -> tuple[int, Any, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/getcontent", json={"contentId": content_id}, allow_redirects=False) as response,
    ):
        return response.status, response.headers, await response.read()


def digest(status: int, body: bytes) -> str:
    return "sha256:" + hashlib.sha256(f"{status}\0".encode() + body).hexdigest()


def temporaries(root: Path) -> list[str]:
    """Anything under ``root`` a write left behind half done."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*") if ".tmp" in path.name or path.name.startswith(".tmp")
    )


def record_config(tmp_path: Path, signing_dir: Path, root: Path, url: str, extra: str = "") -> Path:
    upstream_extra = "  validate: false\n" if "validate" not in extra else ""
    config = front_config(tmp_path, signing_dir, root, url, "record", None, "logging:\n  access_log: false\n")
    text = config.read_text().replace("  mode: record\n", "  mode: record\n" + upstream_extra + extra)
    config.write_text(text)
    return config


def replay_config(tmp_path: Path, root: Path, signing_dir: Path) -> Path:
    """The recording's own recorded.yaml, but looking at the disk on every request and with the test's key."""
    data = yaml.safe_load((root / FRAGMENT).read_text(encoding="utf-8"))
    data["fixtures"]["root"] = str(root)
    for images in data["fixtures"].get("users", {}).values():
        for side in images:
            images[side] = str(root / images[side])
    data["fixtures"]["users"] = {
        subject: {side: os.path.relpath(path, root) for side, path in images.items()}
        for subject, images in data["fixtures"].get("users", {}).items()
    }
    data["cache"] = {"revalidate_seconds": 0}
    data["signing"] = {"directory": str(signing_dir)}
    data["logging"] = {"access_log": False}
    path = tmp_path / "replay.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- redirects (#23 item 10)


async def test_an_upstream_redirect_is_passed_on_never_followed_nor_recorded(tmp_path: Path, signing_dir: Path) -> None:
    elsewhere: list[str] = []

    async def other_host(content_id: str, request: web.Request) -> web.StreamResponse:
        elsewhere.append(f"{request.method} {content_id}")
        return web.Response(body=card_answer("elsewhere"), content_type="application/json")

    async with provider(other_host) as other:

        async def redirecting(content_id: str, request: web.Request) -> web.StreamResponse:
            status = {"PROV:found": 302, "PROV:temporary": 307, "PROV:permanent": 308}[content_id]
            return web.Response(status=status, headers={"Location": f"{other}/getcontent"})

        async with provider(redirecting) as url:
            _, root = folder(tmp_path, "recording", None)
            async with serving(record_config(tmp_path, signing_dir, root, url), tmp_path / "front") as front:
                for content_id, status in (("PROV:found", 302), ("PROV:temporary", 307), ("PROV:permanent", 308)):
                    got, headers, _ = await post(front.url, content_id)
                    assert (got, headers.get("Location")) == (status, f"{other}/getcontent"), content_id
            log = await front.full_log()
    assert elsewhere == []  # the other host was never asked, with GET or with the body re-posted
    assert not (root / "users").exists() or not any((root / "users").iterdir())
    recorded = recorded_manifest(root)
    for content_id in ("PROV:found", "PROV:temporary", "PROV:permanent"):
        [variant] = recorded[content_id]["variants"].values()
        assert variant["files"] == [], variant
        assert "redirect" in variant["not_written"], variant
        assert recorded[content_id]["current"] is None
    assert "Traceback" not in log


# --------------------------------------------------------------------------- a lone surrogate (#23 item 6)


async def test_a_lone_surrogate_in_an_id_is_recorded_and_poisons_nothing(tmp_path: Path, signing_dir: Path) -> None:
    ids = ["PROV:\ud800", "AUTH:x\udfff", "PROV:after", "PROV:émile"]
    async with provider(answering(lambda content_id: by_use_case(content_id, repr(content_id)))) as url:
        _, root = folder(tmp_path, "recording", None)
        config = record_config(tmp_path, signing_dir, root, url)
        recorded: dict[str, bytes] = {}
        async with serving(config, tmp_path / "front") as front:
            for content_id in ids:
                status, _, body = await post(front.url, content_id)
                assert status == 200, (content_id, body)
                recorded[content_id] = body
        assert "Traceback" not in await front.full_log()
        async with serving(config, tmp_path / "front") as front:  # the manifest reads back
            assert (await post(front.url, "PROV:later"))[0] == 200
        assert "Traceback" not in await front.full_log()
    entries = recorded_manifest(root)
    assert set(entries) == {*ids, "PROV:later"}
    for content_id in ids:
        assert entries[content_id]["current"] == digest(200, recorded[content_id]), content_id
    async with serving(replay_config(tmp_path, root, signing_dir), tmp_path) as replay:
        for content_id in ids:
            status, _, body = await post(replay.url, content_id)
            assert (status, body) == (200, recorded[content_id]), content_id
    assert "Traceback" not in await replay.full_log()


# --------------------------------------------------------------------------- back.jws on replay (#23 item 7)


@pytest.mark.parametrize(
    "back",
    [
        b'eyJhbGciOiJSUzI1NiJ9"},{"key":"injected","data":"x.YQ.c2ln',
        b"eyJhbGciOiJSUzI1NiJ9\\.YQ.c2ln",
        "éyJhbGciOiJSUzI1NiJ9.YQ.c2ln".encode(),
        b"\xff\xfe.YQ.c2ln",
        b"eyJhbGciOiJSUzI1NiJ9.YQ.c2ln.more",
        b"eyJhbGciOiJSUzI1NiJ9.Y Q.c2ln",
    ],
    ids=["quote", "backslash", "non-ascii", "not-utf8", "four-parts", "space"],
)
async def test_a_recorded_back_that_is_not_a_compact_jws_is_refused_as_valid_json(
    tmp_path: Path, signing_dir: Path, back: bytes
) -> None:
    root = tmp_path / "images"
    (root / "users" / "hostile").mkdir(parents=True)
    (root / "users" / "hostile" / "front.jpg").write_bytes(FRONT)
    (root / "users" / "hostile" / "back.jws").write_bytes(back)
    (root / "users" / "fine").mkdir()
    good = card_answer("fine")
    (root / "users" / "fine" / "front.jpg").write_bytes(base64.b64decode(json.loads(good)["data"][0]["data"]))
    (root / "users" / "fine" / "back.jws").write_text(json.loads(good)["data"][1]["data"] + "\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"fixtures:\n  root: {root}\n  default: false\nsigning:\n  directory: {signing_dir}\n")
    async with serving(config, tmp_path) as server:
        status, _, body = await post(server.url, "PROV:hostile")
        error = json.loads(body)  # whatever the file holds, the answer is JSON
        assert (status, error["error"]) == (500, "fixture_invalid"), body
        assert "users/hostile/back.jws" in error["message"]
        assert "compact JWS" in error["message"]
        status, _, body = await post(server.url, "PROV:fine")  # a recorded back with a newline after it
        assert (status, body) == (200, good)
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/healthz") as response:
            problems = (await response.json())["fixture_problems"]
    assert "users/hostile/back.jws" in {problem["path"] for problem in problems}
    assert "Traceback" not in await server.full_log()


async def test_an_upstream_back_with_a_quote_is_recorded_as_it_came_and_refused_on_replay(
    tmp_path: Path, signing_dir: Path
) -> None:
    hostile = (
        b'{"data":[{"content_encoding":"base64","content_type":"image/jpeg","key":"front","data":"%s"},'
        % (base64.b64encode(FRONT))
        + b'{"content_encoding":"text/plain","content_type":"application/jose","key":"back","data":"a\\".b.c"}]}'
    )
    async with provider(answering(lambda content_id: hostile)) as url:
        _, root = folder(tmp_path, "recording", None)
        async with serving(record_config(tmp_path, signing_dir, root, url), tmp_path / "front") as front:
            assert (await post(front.url, "PROV:quoted"))[2] == hostile  # passed on as it came
    assert (root / "users" / "quoted" / "back.jws").read_bytes() == b'a".b.c'  # recorded as it came
    async with serving(replay_config(tmp_path, root, signing_dir), tmp_path) as replay:
        status, _, body = await post(replay.url, "PROV:quoted")
    assert (status, json.loads(body)["error"]) == (500, "fixture_invalid")


# --------------------------------------------------------------------------- ids that would share a folder (#23 item 9)


async def test_ids_that_would_share_a_folder_never_overwrite_each_other(tmp_path: Path, signing_dir: Path) -> None:
    version = {"n": 0}
    ids = ["PROV:Variant", "prov:variant", "variant", "PROV:variant", "AUTH:variant"]
    async with provider(answering(lambda content_id: by_use_case(content_id, f"{content_id} v{version['n']}"))) as url:
        _, root = folder(tmp_path, "recording", None)
        async with serving(record_config(tmp_path, signing_dir, root, url), tmp_path / "front") as front:
            first = {content_id: (await post(front.url, content_id))[2] for content_id in ids}
            version["n"] = 1  # PROV:Variant's answer changes: its earlier one is kept, under its own digest
            changed = (await post(front.url, "PROV:Variant"))[2]
        log = await front.full_log()
    assert "Traceback" not in log
    folders = [path.name for path in (root / "users").iterdir()]
    assert len({name.casefold() for name in folders}) == len(folders), folders  # distinct on any file system
    entries = recorded_manifest(root)
    variant = entries["PROV:Variant"]
    assert variant["folder"] == "users/Variant"
    assert variant["current"] == digest(200, changed)
    [earlier] = [v for d, v in variant["variants"].items() if d != variant["current"]]
    assert earlier["digest"] == digest(200, first["PROV:Variant"])
    kept = {Path(name).name: (root / name).read_bytes() for name in earlier["files"]}
    assert mark_of(kept["front.jpg"]) == "PROV:Variant v0"  # the copy is the answer its digest names
    lower = entries["prov:variant"]
    assert lower["folder"].startswith("users/rec-")  # "variant" differs from "Variant" in case only: its own folder
    assert lower["current"] == digest(200, first["prov:variant"])
    for same_slot in ("variant", "PROV:variant"):  # a replay cannot tell these from prov:variant: refused, said
        [refused] = entries[same_slot]["variants"].values()
        assert refused["files"] == [], refused
        assert "prov:variant" in refused["not_written"], refused
        assert entries[same_slot]["current"] is None
    assert entries["AUTH:variant"]["current"] == digest(200, first["AUTH:variant"])
    async with serving(replay_config(tmp_path, root, signing_dir), tmp_path) as replay:
        replayed = {content_id: (await post(replay.url, content_id))[2] for content_id in ids}
    assert replayed["PROV:Variant"] == changed
    assert replayed["prov:variant"] == first["prov:variant"]
    assert replayed["PROV:variant"] == replayed["variant"] == first["prov:variant"]
    assert replayed["AUTH:variant"] == first["AUTH:variant"]


# --------------------------------------------------------------------------- bounded and appended (#23 item 11)


async def test_an_upstream_that_re_signs_every_answer_keeps_a_bounded_recording(
    tmp_path: Path, signing_dir: Path
) -> None:
    count = {"n": 0}

    def make(content_id: str) -> bytes:
        count["n"] += 1
        return by_use_case(content_id, f"{content_id} #{count['n']}")

    async with provider(answering(make)) as url:
        _, root = folder(tmp_path, "recording", None)
        config = record_config(tmp_path, signing_dir, root, url, "  keep_earlier: 2\n")
        async with serving(config, tmp_path / "front") as front:
            await post(front.url, "AUTH:resign")
            before = (root / MANIFEST).read_bytes()
            last = b""
            for _ in range(12):
                last = (await post(front.url, "PROV:resign"))[2]
                now = (root / MANIFEST).read_bytes()
                assert now.startswith(before)  # appended ...
                assert len(now) - len(before) < 8192  # ... a change at a time
                before = now
    fronts = [path for path in root.rglob("front.jpg") if path.is_file() and not path.is_symlink()]
    kept = {mark_of(path.read_bytes()) for path in fronts}
    assert kept == {f"PROV:resign #{n}" for n in (11, 12, 13)}, kept  # the current one and 2 earlier
    entries = recorded_manifest(root)
    resign = entries["PROV:resign"]
    assert resign["current"] == digest(200, last)
    assert len(resign["variants"]) == 3
    for variant in resign["variants"].values():
        assert all((root / name).is_file() for name in variant["files"])
    assert entries["AUTH:resign"]["current"] is not None  # the other use case in the folder is untouched
    auth = root / "users" / "resign" / "auth.jpg"
    assert mark_of(auth.read_bytes()) == "AUTH:resign #1"


@pytest.mark.parametrize("value", [-1, 1001, "three", True])
def test_keep_earlier_is_checked_naming_the_key(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"upstream\.keep_earlier"):
        parse_settings({"upstream": {"url": "http://127.0.0.1:1", "keep_earlier": value}}, tmp_path, {})


def test_keep_earlier_has_a_small_default(tmp_path: Path) -> None:
    settings = parse_settings({"upstream": {"url": "http://127.0.0.1:1"}}, tmp_path, {})
    assert settings.upstream is not None
    assert 1 <= settings.upstream.keep_earlier <= 5


# --------------------------------------------------------------------------- the manifest from outside

LINE = {
    "id": "PROV:x", "use": "PROV", "subject": "x", "folder": "users/x", "digest": "sha256:" + "0" * 64,
    "recorded": "t", "from": "u", "status": 200, "verdict": None,
    "files": ["answers/x/0123456789abcdef/front.jpg"], "version": "answers/x/0123456789abcdef",
}  # fmt: skip


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("not json", "not JSON"),
        (json.dumps({**LINE, "folder": "users/../../etc"}), "not a folder name"),
        (json.dumps({**LINE, "version": "answers/x/../../../etc"}), "version"),
        (json.dumps({**LINE, "files": ["/etc/passwd"]}), "files are some of"),
        (json.dumps({**LINE, "status": True}), "status"),
        (json.dumps({"id": "PROV:x", "dropped": "sha256:" + "1" * 64}), "not listed before"),
    ],
    ids=["not-json", "folder", "version", "files", "status", "drop"],
)
async def test_a_manifest_line_that_is_not_a_recordings_is_refused_naming_it(
    tmp_path: Path, signing_dir: Path, line: str, said: str
) -> None:
    _, root = folder(tmp_path, "recording", None)
    (root / MANIFEST).write_text(
        json.dumps({"recording": "content-provider upstream", "format": 2}) + "\n" + line + "\n"
    )
    config = record_config(tmp_path, signing_dir, root, "http://127.0.0.1:9")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0",
        cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err
    assert f"{MANIFEST}, line 2: " in err.decode(), err
    assert said in err.decode(), err
    assert b"Traceback" not in err
    assert sorted(path.name for path in root.iterdir()) == [MANIFEST]  # nothing written, nothing removed


async def test_a_torn_last_line_is_dropped_and_a_second_recorder_refused(tmp_path: Path, signing_dir: Path) -> None:
    async with provider(answering(lambda content_id: card_answer(content_id))) as url:
        _, root = folder(tmp_path, "recording", None)
        config = record_config(tmp_path, signing_dir, root, url)
        async with serving(config, tmp_path / "front") as front:
            assert (await post(front.url, "PROV:kept"))[0] == 200
        whole = (root / MANIFEST).read_bytes()
        with (root / MANIFEST).open("ab") as manifest_file:
            manifest_file.write(b'{"id": "PROV:torn", "use": "PR')  # a crash in the middle of an append
        async with serving(config, tmp_path / "front") as front:
            assert (root / MANIFEST).read_bytes() == whole
            second = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0",
                cwd=tmp_path / "front", stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(second.communicate(), 60)
            assert second.returncode == 2, err
            assert b"another content-provider is recording into" in err
            assert (await post(front.url, "PROV:after"))[0] == 200
    assert set(recorded_manifest(root)) == {"PROV:kept", "PROV:after"}


# --------------------------------------------------------------------------- SIGKILL while recording (#23 item 8)

CRASH_IDS = ("PROV:crash", "AUTH:crash", "PROV:crash/mapped")  # two use cases in one folder, and a mapped one
KILLS = 50
LOOPS = 2  # recordings killed side by side, each into its own folder: the starts take most of the time


async def test_sigkill_at_any_moment_of_recording_leaves_one_whole_answer(tmp_path: Path, signing_dir: Path) -> None:
    sent: dict[bytes, str] = {}  # every answer the upstream gave, and which id it was for
    count = {"n": 0}

    def make(content_id: str) -> bytes:
        count["n"] += 1
        body = by_use_case(content_id, f"{content_id} #{count['n']}")
        sent[body] = content_id
        return body

    started = time.monotonic()
    async with provider(answering(make)) as url:
        loops = [
            kill_loop(*folder(tmp_path, f"loop{n}", None), signing_dir, url, sent, random.Random(n))
            for n in range(LOOPS)
        ]
        during_startup = sum(await asyncio.gather(*loops))
    elapsed = time.monotonic() - started
    print(f"{KILLS} kills ({during_startup} while starting) in {elapsed:.1f} s; {count['n']} upstream answers")


async def kill_loop(
    where: Path, root: Path, signing_dir: Path, url: str, sent: dict[bytes, str], rng: random.Random
) -> int:
    """Record into ``root``, SIGKILL the recorder at a random moment, check the replay; again."""
    config = record_config(where, signing_dir, root, url, "  keep_earlier: 2\n")
    async with serving(config, where / "front") as first:  # each id once, so that the replay knows them
        for content_id in CRASH_IDS:
            assert (await post(first.url, content_id))[0] == 200
    async with serving(replay_config(where, root, signing_dir), where) as replay:

        async def whole(when: str) -> None:
            for content_id in CRASH_IDS:
                status, _, body = await post(replay.url, content_id)
                assert status == 200, (when, content_id, body)
                assert sent.get(body) == content_id, f"{when}: {content_id}: not an answer the upstream gave"
                assert len(set(marks(body).values())) == 1, (when, marks(body))  # front and back of one answer

        during_startup = 0
        for kill in range(KILLS // LOOPS):
            recorder = await start(["serve", "--config", str(config), "--port", "0"], where / "front")
            load: list[asyncio.Future[None]] = []
            try:
                left = temporaries(root)
                assert not left, f"kill {kill}: the start left temporaries: {left}"
                await whole(f"after start {kill}")
                load = [asyncio.ensure_future(hammer(recorder.url, rng.random())) for _ in range(3)]
                await asyncio.sleep(rng.uniform(0.0, 0.15))
            finally:
                recorder.process.send_signal(signal.SIGKILL)
                await recorder.process.wait()
                for task in load:
                    task.cancel()
                await asyncio.gather(*load, return_exceptions=True)
            await whole(f"right after kill {kill}, before anything is mended")
            if kill % 8 == 7:  # now and then killed while it starts (and mends)
                starting = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "content_provider", "serve", "--config", str(config), "--port", "0",
                    cwd=where / "front", stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    await asyncio.sleep(rng.uniform(0.3, 0.8))
                finally:
                    starting.send_signal(signal.SIGKILL)
                    await starting.wait()
                during_startup += 1
                await whole(f"after a kill while starting, {kill}")
        async with serving(config, where / "front") as last:  # mends, then records as ever
            assert not temporaries(root)
            assert (await post(last.url, "PROV:crash"))[0] == 200
        assert "Traceback" not in await last.full_log()
        entries = recorded_manifest(root)
        for content_id in CRASH_IDS:
            status, _, body = await post(replay.url, content_id)
            assert entries[content_id]["current"] == digest(status, body), content_id  # the disk and the manifest agree
            assert len(entries[content_id]["variants"]) <= 3
    return during_startup


async def hammer(url: str, seed: float) -> None:
    """Ask the recorder for the crash ids over and over, until cancelled."""
    order = list(CRASH_IDS)
    random.Random(seed).shuffle(order)
    async with aiohttp.ClientSession() as session:
        while True:
            for content_id in order:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(f"{url}/getcontent", json={"contentId": content_id}) as response:
                        await response.read()


# --------------------------------------------------------------------------- the worked example (#28 item 10)


async def test_the_worked_example_runs_cleanly_as_written(tmp_path: Path) -> None:
    """docs/upstream.md's record-then-replay commands, run from a folder with the repository's config.yaml."""
    [record_block] = [b for b in blocks("sh") if "--upstream-mode record" in b.text]
    [replay_block] = [b for b in blocks("sh") if "recorded/recorded.yaml" in b.text and "check" in b.text]
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(ROOT / "config.yaml", checkout / "config.yaml")
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "CONTENT_PROVIDER_STATE_DIR": "",  # as on a user's machine: not set
        "STAGING_PASSWORD": "upstream-s3cret",
    }
    async with staging(tmp_path) as (up, jwks):
        shutil.copy(jwks, checkout / "vendor-jwks.json")
        (checkout / "recorded").mkdir()  # "mkdir recorded first"
        [serve, *curls] = commands(record_block)
        recorder = await start_documented(serve, checkout, env, up.url)
        try:
            for curl in curls[:2]:
                [body] = [curl[i + 1] for i, word in enumerate(curl) if word == "-d"]
                async with (
                    aiohttp.ClientSession() as session,
                    session.post(f"{recorder.url}/getcontent", data=body) as response,
                ):
                    assert response.status == 200
        finally:
            recorder.process.terminate()
        record_log = await recorder.full_log()
    serve, check = commands(replay_block)
    replay = await start_documented(serve, checkout, env, None)
    try:
        assert check[:3] == ["./dev", "run", "content-provider"]
        args = [replay.url if word == "http://127.0.0.1:8080" else word for word in check[3:]]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "content_provider", *args, cwd=checkout,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **env},
        )  # fmt: skip
        report = (await process.communicate())[0].decode()
    finally:
        replay.process.terminate()
    replay_log = await replay.full_log()
    for log in (record_log, replay_log):
        assert "fixture problem" not in log, log
        assert "Traceback" not in log, log
    assert re.search(r"PASS +CP13 ", report), report  # the vendor's signature, recorded, still verifies
    assert process.returncode == 0, report
    made_at_home = [str(path) for path in home.rglob("*")]
    assert made_at_home == [], made_at_home  # nothing written under the user's home


@contextlib.asynccontextmanager
async def staging(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    """The "staging provider": a second mock with the demo set, its own key and the documented user ``mock``."""
    where, root = folder(tmp_path, "staging", DEMO_FIXTURES)
    auth = "auth:\n  username: mock\n  password: upstream-s3cret\n"
    async with serving(write_config(where, root, where / "signing", auth), where) as server:
        jwks = where / "jwks.json"
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/.well-known/jwks.json") as response:
            jwks.write_bytes(await response.read())
        yield server, jwks


async def start_documented(words: list[str], cwd: Path, env: dict[str, str], upstream: str | None) -> Server:
    """A documented ``./dev serve ...`` or ``./dev run content-provider serve ...`` command, on a free port."""
    while re.match(r"^[A-Z_]+=", words[0]):
        name, value = words[0].split("=", 1)
        env = {**env, name: env.get(value.lstrip("$"), value) if value.startswith("$") else value}
        words = words[1:]
    if words[:2] == ["./dev", "serve"]:
        args = words[2:]
    else:
        assert words[:4] == ["./dev", "run", "content-provider", "serve"], words
        args = words[4:]
    if upstream is not None:
        args = [upstream if word.startswith("https://staging") else word for word in args]
    return await start(["serve", *args, "--port", "0"], cwd, env)
