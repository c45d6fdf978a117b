"""The command line, run as a user runs it: a real process on a real port."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from content_provider.cli import build_parser, main
from content_provider.conformance.jpeg import image_size
from content_provider.fixtures.generate import card_jpeg

from .helpers import DOC_CARD

SERVING = re.compile(r"serving POST (https?://\S+)/getcontent")


def write_config(tmp_path: Path, fixture_root: Path, signing_dir: Path, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"fixtures:\n  root: {fixture_root}\nsigning:\n  directory: {signing_dir}\n{extra}", encoding="utf-8"
    )
    return path


REPOSITORY = Path(__file__).resolve().parent.parent


class Server:
    """A running ``serve`` process. Its log is read all the time (into ``log``): a full pipe
    would block the server on its next log line."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log: list[str]) -> None:
        self.process = process
        self.url = url
        self.log = log
        assert process.stderr is not None
        self._drain = asyncio.ensure_future(self._read(process.stderr))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.log.append(line.decode())

    async def full_log(self) -> str:
        """Everything the process wrote, once it has exited."""
        await self.process.wait()
        await self._drain
        return "".join(self.log)


async def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Server:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", *args,
        cwd=cwd, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert process.stderr is not None
    log: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        if not line:
            raise AssertionError("server exited before serving:\n" + "".join(log))
        log.append(line)
        match = SERVING.search(line)
        if match:
            return Server(process, match.group(1), log)


@contextlib.asynccontextmanager
async def serving(config: Path, cwd: Path, *flags: str, env: dict[str, str] | None = None) -> AsyncIterator[Server]:
    """``content-provider serve`` as its own process on a free port; killed if still running."""
    running = await start(["serve", "--config", str(config), "--port", "0", *flags], cwd, env)
    try:
        yield running
    finally:
        if running.process.returncode is None:
            running.process.terminate()  # as a user would: a supervisor then stops its workers too
            try:
                await asyncio.wait_for(running.process.wait(), 20)
            except TimeoutError:
                running.process.kill()
        await running.full_log()


@pytest.fixture
async def server(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> AsyncIterator[Server]:
    async with serving(write_config(tmp_path, fixture_root, signing_dir), tmp_path) as running:
        yield running


async def test_serve_answers_logs_and_stops_cleanly_on_sigterm(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response:
            assert response.status == 200
            assert [e["key"] for e in (await response.json())["data"]] == ["front", "back"]
        async with session.get(f"{server.url}/healthz") as response:
            assert (await response.json())["status"] == "ok"
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(server.process.wait(), 15) == 0
    rest = await server.full_log()
    access = [line for line in rest.splitlines() if "content_provider.access" in line]
    assert any(f"POST /getcontent 200 id='{DOC_CARD}'" in line and "ms" in line for line in access), rest
    assert "shutting down" in rest
    assert "Traceback" not in rest


async def test_serve_runs_on_uvloop_when_asked(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    pytest.importorskip("uvloop", reason="the fast extra is not installed")
    config = write_config(tmp_path, fixture_root, signing_dir, "server:\n  event_loop: uvloop\n")
    async with serving(config, tmp_path) as server:
        assert any("event loop: uvloop" in line for line in server.log)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response,
        ):
            assert response.status == 200


async def test_serve_runs_on_uvloop_by_default_when_installed(server: Server) -> None:
    """server.event_loop: auto (uvloop measured 5-16 % cheaper per request, docs/performance.md#uvloop)."""
    installed = importlib.util.find_spec("uvloop") is not None
    assert any("event loop: uvloop" in line for line in server.log) == installed, server.log


async def test_serve_runs_on_asyncio_when_asked(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, "server:\n  event_loop: asyncio\n")
    async with serving(config, tmp_path) as server:
        assert any("event loop: asyncio" in line for line in server.log), server.log
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response,
        ):
            assert response.status == 200


async def test_sigint_stops_cleanly(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(server.process.wait(), 15) == 0


async def test_config_error_exits_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("server:\n  port: eighty\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "content_provider", "serve", cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    config = tmp_path / "config.yaml"
    expected = f"content-provider: config error: {config}: server.port: expected an integer, got 'eighty'"
    assert err.decode().strip() == expected


def test_strict_with_bad_fixture_exits_1(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixture_root / "default" / "front.jpg").write_bytes(b"not a jpeg")
    config = write_config(tmp_path, fixture_root, signing_dir)
    assert main(["serve", "--config", str(config), "--strict", "--port", "0"], {}) == 1
    assert "default/front.jpg: not a readable image" in capsys.readouterr().err


def test_port_in_use_is_a_clear_error(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, fixture_root, signing_dir)
        assert main(["serve", "--config", str(config), "--port", str(port)], {}) == 2
    err = capsys.readouterr().err
    assert "address already in use" in err.lower()
    assert "Traceback" not in err


def test_missing_config_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", "/nope/config.yaml"], {}) == 2
    assert "config file '/nope/config.yaml' does not exist" in capsys.readouterr().err


def test_generate_user_and_org_then_check(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, fixture_root, signing_dir))
    assert main(["generate", "user", "zed", "--back", "--auth", "--config", config], {}) == 0
    assert sorted(p.name for p in (fixture_root / "users" / "zed").iterdir()) == [
        "auth.jpg",
        "back.jpg",
        "front.jpg",
    ]
    assert main(["generate", "org", "initech", "--member", "peter", "--member", "ini-*", "--config", config], {}) == 0
    assert (fixture_root / "orgs" / "initech" / "members.txt").read_text().splitlines()[1:] == [
        "peter",
        "ini-*",
    ]
    capsys.readouterr()
    assert main(["check-fixtures", "--config", config], {}) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    (fixture_root / "users" / "zed" / "back.jpg").write_bytes(b"junk")
    assert main(["check-fixtures", "--config", config], {}) == 1
    assert "problem: users/zed/back.jpg: not a readable image" in capsys.readouterr().out


def test_generate_refuses_a_name_that_is_not_a_folder_name(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path, fixture_root, signing_dir))
    assert main(["generate", "user", "../escape", "--config", config], {}) == 2
    assert "is not a folder name" in capsys.readouterr().err
    assert not (fixture_root / "escape").exists()


def test_generate_over_a_recorded_back_replaces_it(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    config = str(write_config(tmp_path, fixture_root, signing_dir))
    folder = fixture_root / "users" / "rec"
    folder.mkdir()
    (folder / "back.jws").write_text("eyJhbGciOiJSUzI1NiJ9.cmVj.c2ln")  # recorded: it would win over a back.jpg
    assert main(["generate", "user", "rec", "--back", "--config", config], {}) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["back.jpg", "front.jpg"]
    assert main(["generate", "user", "rec\n", "--config", config], {}) == 2  # the whole name must be one


def test_generate_demo_is_reproducible(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> None:
    """The committed demo fixtures are exactly what ``generate demo`` makes."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    config = write_config(tmp_path, fresh, signing_dir)
    assert main(["generate", "demo", "--config", str(config)], {}) == 0
    made = {p.relative_to(fresh): p.read_bytes() for p in fresh.rglob("*") if p.is_file()}
    bundled = {p.relative_to(fixture_root): p.read_bytes() for p in fixture_root.rglob("*") if p.is_file()}
    assert made.keys() == bundled.keys()
    # Byte equality would tie the test to one Pillow release; the shapes must match.
    for name, data in made.items():
        if name.suffix == ".jpg":
            assert image_size(data) == image_size(bundled[name])
        else:
            assert data == bundled[name]


async def test_strict_flag_survives_a_reload_without_a_spurious_warning(
    tmp_path: Path, fixture_root: Path, signing_dir: Path
) -> None:
    config = write_config(tmp_path, fixture_root, signing_dir, "faults:\n  rules: []\n")
    async with serving(config, tmp_path, "--strict") as server:
        async with aiohttp.ClientSession() as session:
            for _ in range(2):
                async with session.post(f"{server.url}/__admin/reload") as response:
                    assert response.status == 200, await response.text()
            (fixture_root / "users" / "alice" / "front.jpg").write_bytes(b"not a jpeg")
            async with session.post(f"{server.url}/getcontent", json={"contentId": "PROV:alice"}) as response:
                assert response.status == 500  # still strict after the reloads
                assert (await response.json())["error"] == "fixture_invalid"
        server.process.send_signal(signal.SIGTERM)
        log = await server.full_log()
    assert "take effect after a restart" not in log


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8080", "has no scheme; write http://127.0.0.1:8080"),
        (
            "http://127.0.0.1:8080/getcontent",
            "without /getcontent (the checker adds it): content-provider check http://127.0.0.1:8080",
        ),
        ("ftp://127.0.0.1:8080", "expected an http:// or https:// URL"),
        ("http://u:p@127.0.0.1:8080", "put the credentials in --user and --password"),
    ],
)
def test_check_with_a_mistaken_url_is_a_usage_error(url: str, says: str) -> None:
    """One line saying what to write instead, exit 2, before anything is sent (#28)."""
    done = subprocess.run(
        [sys.executable, "-m", "content_provider", "check", url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("content-provider check: URL: ")
    assert says in line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{}", 'key 1: not a JWK (a JSON object with "kty")'),
        ('{"keys": []}', 'holds no key: a JWKS needs a non-empty "keys" list'),
        ("[]", 'a JWKS is a JSON object with a "keys" list'),
        ('{"keys": [{"kty": "RSA", "n": "x"}]}', "a key cannot be used"),
        ("hello", "neither a JWKS (JSON) nor a PEM certificate"),
    ],
)
def test_check_with_a_trust_file_that_holds_no_key_is_a_usage_error(tmp_path: Path, text: str, says: str) -> None:
    """Said at once, exit 2, not as a failed CP13 after every request (#28 item 8)."""
    trust = tmp_path / "trust.json"
    trust.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "content_provider", "check", "http://127.0.0.1:9", "--trust", str(trust)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    [line] = done.stderr.splitlines()
    assert line.startswith(f"content-provider: --trust {trust}: ")
    assert says in line


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    """``--help`` never shows an option without a line of text (#28 item 8)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    bare = [
        f"{name} {'/'.join(action.option_strings)}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if action.option_strings and not action.help and action.dest != "help"
    ]
    assert not bare


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--fixtures", "/nope"], "content-provider: --fixtures /nope: not a folder"),
        (["--upstream", "127.0.0.1:9"], "content-provider: --upstream: expected an http:// or https:// URL"),
        (["--tls-cert", "/nope.pem", "--tls-key", "/nope.pem"], "content-provider: --tls-cert /nope.pem: not a file"),
    ],
)
def test_a_bad_flag_is_blamed_on_the_flag_not_the_config_file(
    flags: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said ``config error: .../config.yaml: fixtures.root: '/nope' is not a folder`` (#28 item 4)."""
    config = str(Path(__file__).resolve().parent.parent / "config.yaml")
    assert main(["serve", "--config", config, *flags], {}) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(says)
    assert "config.yaml" not in line


async def test_serving_the_checkouts_demo_set_changes_no_tracked_file(tmp_path: Path) -> None:
    """``./dev serve`` (the repository's config.yaml) serves a copy: an upload and a delete do not
    touch fixtures/images (#28 item 5), and what the server answers does change."""
    root = REPOSITORY
    tracked = root / "fixtures" / "images" / "users" / "alice" / "front.jpg"
    before = tracked.read_bytes()
    env = {"CONTENT_PROVIDER_STATE_DIR": str(tmp_path / "state")}
    async with serving(root / "config.yaml", root, env=env) as running, aiohttp.ClientSession() as session:
        [copy] = re.findall(r"the demo set, copied to (\S+) for this run", "".join(running.log))
        upload = card_jpeg("changed")
        async with session.put(f"{running.url}/__admin/fixtures/users/alice/front", data=upload) as response:
            assert response.status == 200, await response.text()
        async with session.post(f"{running.url}/getcontent", json={"contentId": "PROV:alice"}) as response:
            served = (await response.json())["data"][0]["data"]
        assert base64.b64decode(served) == upload
        assert (Path(copy) / "users" / "alice" / "front.jpg").read_bytes() == upload
        async with session.delete(f"{running.url}/__admin/fixtures/orgs/acme/back") as response:
            assert response.status == 200
    assert tracked.read_bytes() == before
    assert await asyncio.to_thread((root / "fixtures" / "images" / "orgs" / "acme" / "back.jpg").is_file)
    assert not await asyncio.to_thread(Path(copy).exists)  # gone with the server


@pytest.mark.parametrize("fmt", ["text", "json", "junit"])
def test_check_of_a_provider_that_cannot_be_reached_says_so_once(fmt: str) -> None:
    """One line with the address tried, not the connection error under every rule (#28 item 3)."""
    with socket.socket() as held:  # a port nothing listens on
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-m", "content_provider", "check", f"http://127.0.0.1:{port}", "--format", fmt],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    said = f"the provider could not be reached at 127.0.0.1:{port}: Connection refused"
    if fmt == "json":
        document = json.loads(done.stdout)
        assert document["unreachable"] == said
        assert [r["rule"] for r in document["results"]] == ["CP01"]
    else:
        assert done.stdout.count("Connection refused") == (2 if fmt == "text" else 1)
        assert said in done.stdout
