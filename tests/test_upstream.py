"""Standing in front of a real content provider (docs/upstream.md), over real processes on loopback.

The upstream is a second mock (``serve`` with its own fixtures, signing key and basic auth),
or a hand-made broken provider (a small aiohttp app in this process); the mock under test
is always ``content-provider serve`` as its own process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from PIL import Image

from content_provider.config.parse import parse_settings
from content_provider.config.settings import DEMO_FIXTURES
from content_provider.conformance.checker import check
from content_provider.conformance.rules import Options, basic, check_answer
from content_provider.conformance.trust import load_trust
from content_provider.core.reader import ConfigError
from content_provider.signing.devtls import make_dev_tls, server_context
from content_provider.signing.jws import verify_back
from content_provider.upstream.manifest import MANIFEST
from content_provider.upstream.record import FRAGMENT
from content_provider.upstream.validate import Validator, verdict_of

from .helpers import DOC_AUTH, DOC_CARD, recorded_manifest
from .test_cli import Server, serving, write_config

UP_USER, UP_PASSWORD = "upstream-user", "upstream-s3cret"
HERMOD_USER, HERMOD_PASSWORD = "hermod", "hermod-pw"
CONFORMANCE = "X-Content-Provider-Conformance"
RESOLVED = "X-Content-Provider-Resolved"


def up_auth() -> dict[str, str]:
    return basic(UP_USER, UP_PASSWORD)


async def post(url: str, content_id: str, auth: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/getcontent", json={"contentId": content_id}, headers=auth) as response,
    ):
        return response.status, response.headers, await response.read()


async def journal(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/__admin/requests") as response:
        requests: list[dict[str, Any]] = (await response.json())["requests"]
        return requests


def folder(tmp_path: Path, name: str, images: Path | None) -> tuple[Path, Path]:
    """A folder for one process, with its own copy of ``images`` (or an empty fixture folder)."""
    where = tmp_path / name
    where.mkdir()
    root = where / "images"
    if images is None:
        root.mkdir()
    else:
        shutil.copytree(images, root)
    return where, root


@contextlib.asynccontextmanager
async def upstream_mock(tmp_path: Path, extra: str = "", *flags: str) -> AsyncIterator[tuple[Server, Path]]:
    """The second mock: its own fixtures, its own signing key, its own basic auth; and its JWKS, saved."""
    where = tmp_path / "upstream"
    if not where.exists():
        folder(tmp_path, "upstream", DEMO_FIXTURES)
    auth = f"auth:\n  username: {UP_USER}\n  password: {UP_PASSWORD}\n"
    config = write_config(where, where / "images", where / "signing", auth + extra)
    async with serving(config, where, *flags) as server:
        jwks = where / "jwks.json"
        async with aiohttp.ClientSession() as session, session.get(f"{server.url}/.well-known/jwks.json") as response:
            jwks.write_bytes(await response.read())
        yield server, jwks


def front_config(
    tmp_path: Path, signing_dir: Path, root: Path, url: str, mode: str, trust: Path | None, extra: str = ""
) -> Path:
    where = tmp_path / "front"
    where.mkdir(exist_ok=True)
    upstream = f"upstream:\n  url: {url}\n  mode: {mode}\n  username: {UP_USER}\n  password: {UP_PASSWORD}\n"
    if trust is not None:
        upstream += f"  trust: {trust}\n"
    return write_config(where, root, signing_dir, upstream + extra)


# --------------------------------------------------------------------------- proxy


async def test_proxy_passes_answers_on_byte_for_byte_with_their_verdict(tmp_path: Path, signing_dir: Path) -> None:
    async with upstream_mock(tmp_path) as (up, jwks):
        _, root = folder(tmp_path, "front-images", None)
        ours = f"auth:\n  username: {HERMOD_USER}\n  password: {HERMOD_PASSWORD}\n"
        config = front_config(tmp_path, signing_dir, root, up.url, "proxy", jwks, ours)
        async with serving(config, tmp_path / "front") as front:
            hermod = basic(HERMOD_USER, HERMOD_PASSWORD)
            for content_id in (DOC_CARD, DOC_AUTH, "PROV:bob", "PROV:nobody"):
                status, headers, body = await post(front.url, content_id, hermod)
                direct_status, direct_headers, direct = await post(up.url, content_id, up_auth())
                assert (status, body) == (direct_status, direct) == (200, direct), content_id
                assert headers["Content-Type"] == direct_headers["Content-Type"]
                assert headers[CONFORMANCE] == "pass", content_id
                assert headers[RESOLVED] == f"upstream {up.url.removeprefix('http://')}"
            # Hermod's credentials are ours; the upstream got its own
            assert (await post(front.url, DOC_CARD))[0] == 401
            upstream_users = {entry["user"] for entry in await journal(up.url)}
            assert upstream_users == {UP_USER}
            entries = await journal(front.url)
            assert entries[-1]["upstream"]["conformance"] == {
                "verdict": "pass",
                "failed": [],
                "evidence": {},
                "unverified": [],
            }
            assert {entry["user"] for entry in entries} == {HERMOD_USER, None}
            journal_text = json.dumps(entries)
            async with aiohttp.ClientSession() as session, session.get(f"{front.url}/metrics") as response:
                metrics = await response.text()
            assert 'content_provider_upstream_answers_total{verdict="pass"} 4.0' in metrics
        log = await front.full_log()
    assert UP_PASSWORD not in log
    assert UP_PASSWORD not in journal_text
    assert "conformance=pass" in log
    assert "upstream=200/" in log
    assert "Traceback" not in log


async def test_live_verdicts_are_what_check_says_of_the_same_answers(tmp_path: Path, signing_dir: Path) -> None:
    # The upstream breaks some answers itself, with its own fault rules: each id always gets the same answer.
    rules = {
        "PROV:bob": "wrong_aspect",
        "AUTH:alice": "invalid_base64",
        "PROV:carol": "jws_bad_signature",
        "PROV:erin": "missing_member",
        "PROV:frank": "progressive_jpeg",
        "PROV:grace": 503,
    }
    extra = "faults:\n  header: false\n  rules:\n" + "".join(
        f"    - name: r{n}\n      match: {{id: '{content_id}'}}\n      outcome: {outcome}\n"
        for n, (content_id, outcome) in enumerate(rules.items())
    )
    ids = [DOC_CARD, DOC_AUTH, *rules]
    async with upstream_mock(tmp_path, extra) as (up, jwks):
        _, root = folder(tmp_path, "front-images", None)
        config = front_config(tmp_path, signing_dir, root, up.url, "proxy", jwks)
        async with serving(config, tmp_path / "front") as front:
            headers_seen = {content_id: (await post(front.url, content_id))[1][CONFORMANCE] for content_id in ids}
            live = {entry["contentId"]: entry["upstream"]["conformance"] for entry in await journal(front.url)}
            report = await check(up.url, ids, user=UP_USER, password=UP_PASSWORD, trust=load_trust(jwks))
    for content_id in ids:
        expected = sorted(report.failed(content_id) - {"CP18"})  # timing is check's alone
        assert live[content_id]["failed"] == expected, content_id
        assert headers_seen[content_id] == (" ".join(expected) or "pass"), content_id
        for rule in expected:  # with the evidence check gives
            evidence = [
                r.evidence for r in report.results if r.content_id == content_id and r.rule == rule and r.failed
            ]
            assert live[content_id]["evidence"][rule] == "; ".join(evidence)
    assert live["PROV:bob"]["failed"] == ["CP09"]
    assert live["PROV:grace"]["failed"] == ["CP01"]  # an upstream error is passed on, with its verdict
    assert live[DOC_CARD]["failed"] == []


async def test_fault_rules_shape_proxied_answers(tmp_path: Path, signing_dir: Path) -> None:
    rules = (
        "faults:\n  rules:\n"
        "    - {name: squash, match: {id: 'PROV:bob'}, outcome: wrong_aspect}\n"
        "    - {name: slow, match: {id: 'AUTH:alice'}, delay: 400ms}\n"
        "    - {name: down, match: {id: 'PROV:carol'}, outcome: 503}\n"
    )
    async with upstream_mock(tmp_path) as (up, jwks):
        _, root = folder(tmp_path, "front-images", None)
        config = front_config(tmp_path, signing_dir, root, up.url, "proxy", jwks, rules)
        async with serving(config, tmp_path / "front") as front:
            status, headers, body = await post(front.url, "PROV:bob")
            assert status == 200
            front_image = base64.b64decode(json.loads(body)["data"][0]["data"])
            width, height = Image.open(io.BytesIO(front_image)).size
            assert abs(width / height - 1200 / 757) > 0.1  # the real answer's front, squashed
            assert "squash" in headers["X-Content-Provider-Fault"]
            assert headers[CONFORMANCE] == "pass"  # the verdict is the upstream's answer's, not the fault's
            started = time.monotonic()
            status, headers, body = await post(front.url, "AUTH:alice")
            assert time.monotonic() - started >= 0.4
            assert (status, body) == (200, (await post(up.url, "AUTH:alice", up_auth()))[2])
            assert (await post(front.url, "PROV:carol"))[0] == 503
            entries = {entry["contentId"]: entry for entry in await journal(front.url)}
    assert entries["PROV:bob"]["fault"].startswith("squash")
    assert entries["PROV:bob"]["upstream"]["status"] == 200
    assert "upstream" not in entries["PROV:carol"]  # a status fault answers without asking the upstream


# --------------------------------------------------------------------------- spy


async def test_spy_answers_user_and_organisation_ids_from_our_fixtures_and_the_rest_from_upstream(
    tmp_path: Path, signing_dir: Path
) -> None:
    async with upstream_mock(tmp_path) as (up, jwks):
        _, root = folder(tmp_path, "front-images", DEMO_FIXTURES)
        shutil.rmtree(root / "users" / DOC_CARD.split(":")[1])  # ours has no such user: upstream answers
        config = front_config(tmp_path, signing_dir, root, up.url, "spy", jwks)
        async with serving(config, tmp_path / "front") as front:
            expected = {
                "PROV:alice": "user alice",
                "PROV:bob": "organisation acme",
                DOC_AUTH: f"user {DOC_AUTH.split(':')[1]}",
                DOC_CARD: f"upstream {up.url.removeprefix('http://')}",  # our default level is not used
                "PROV:nobody": f"upstream {up.url.removeprefix('http://')}",
            }
            for content_id, resolved in expected.items():
                status, headers, body = await post(front.url, content_id)
                assert (status, headers[RESOLVED]) == (200, resolved), content_id
                if resolved.startswith("upstream"):
                    assert body == (await post(up.url, content_id, up_auth()))[2]
                    assert headers[CONFORMANCE] == "pass"
                else:
                    assert CONFORMANCE not in headers
            asked = [entry["contentId"] for entry in await journal(up.url)]
    assert sorted(set(asked)) == sorted([DOC_CARD, "PROV:nobody"])


# --------------------------------------------------------------------------- record and replay


async def test_record_then_replay_offline_gives_the_same_bytes_and_vendor_signatures(
    tmp_path: Path, signing_dir: Path
) -> None:
    ids = [DOC_CARD, DOC_AUTH, "PROV:bob", "PROV:employee/0001"]
    recorded: dict[str, bytes] = {}
    async with upstream_mock(tmp_path) as (up, jwks):
        _, root = folder(tmp_path, "recording", None)
        config = front_config(tmp_path, signing_dir, root, up.url, "record", jwks)
        async with serving(config, tmp_path / "front") as front:
            for content_id in ids:
                status, _, body = await post(front.url, content_id)
                assert status == 200
                recorded[content_id] = body
            assert (await post(front.url, DOC_CARD))[2] == recorded[DOC_CARD]  # seen again: nothing new
            # the upstream's answer for bob changes: both answers are kept, and the manifest says so
            async with (
                aiohttp.ClientSession() as session,
                session.put(
                    f"{up.url}/__admin/fixtures/users/bob/front",
                    data=(tmp_path / "upstream/images/default/front.jpg").read_bytes(),
                ) as response,
            ):
                assert response.status == 201
            status, _, changed = await post(front.url, "PROV:bob")
            assert status == 200
            assert changed != recorded["PROV:bob"]
            recorded["PROV:bob"] = changed
    upstream_root = tmp_path / "upstream" / "images"
    subject = DOC_CARD.split(":")[1]
    assert (root / "users" / subject / "front.jpg").read_bytes() == (
        upstream_root / f"users/{subject}/front.jpg"
    ).read_bytes()
    back = (root / "users" / subject / "back.jws").read_text()
    assert back == json.loads(recorded[DOC_CARD])["data"][1]["data"]  # verbatim
    manifest = recorded_manifest(root)
    assert UP_PASSWORD not in (root / MANIFEST).read_text()
    bob = manifest["PROV:bob"]
    assert len(bob["variants"]) == 2  # both answers kept
    [earlier] = [variant for digest, variant in bob["variants"].items() if digest != bob["current"]]
    assert all((root / name).is_file() for name in earlier["files"])
    assert (root / earlier["files"][0]).read_bytes() == (upstream_root / "orgs/acme/front.jpg").read_bytes()
    [card] = manifest[DOC_CARD]["variants"].values()
    assert card["verdict"]["verdict"] == "pass"
    assert card["from"] == up.url
    assert "employee/0001" in (root / FRAGMENT).read_text()  # not a folder name: mapped in the config made

    # the upstream is gone: replay the recording offline
    state = {"CONTENT_PROVIDER_STATE_DIR": str(tmp_path / "replay-state")}
    async with serving(root / FRAGMENT, root, env=state) as replay:
        for content_id in ids:
            status, headers, body = await post(replay.url, content_id)
            assert (status, body) == (200, recorded[content_id]), content_id
            assert headers[RESOLVED].startswith("user ")
        status, _, body = await post(replay.url, DOC_CARD)
        header, payload = verify_back(json.loads(body)["data"][1]["data"], json.loads(jwks.read_text()))
        assert payload == (upstream_root / f"users/{subject}/back.jpg").read_bytes()
        assert (await post(replay.url, "PROV:never-recorded"))[0] == 404
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{replay.url}/__admin/preview", params={"contentId": DOC_CARD}) as response,
        ):
            back_shown = (await response.json())["images"][1]
        upstream_cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert back_shown["jws"]["recorded"] is True  # the web page: "recorded", and who signed it
    assert back_shown["jws"]["signer"] == upstream_cert.subject.rfc4514_string()
    assert (root / ".dev-signing").is_dir()  # the replay's own key, beside the recording (recorded.yaml says so)
    assert not (tmp_path / "replay-state").exists()
    assert (root / ".gitignore").read_text() == ".dev-signing/\n"  # and never committed with it


# --------------------------------------------------------------------------- upstream trouble


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_upstream_down_is_a_502_and_the_mock_recovers_when_it_is_back(tmp_path: Path, signing_dir: Path) -> None:
    port = free_port()
    async with upstream_mock(tmp_path, "", "--port", str(port)) as (up, jwks):
        _, root = folder(tmp_path, "front-images", None)
        config = front_config(tmp_path, signing_dir, root, up.url, "proxy", jwks)
        async with serving(config, tmp_path / "front") as front:
            assert (await post(front.url, DOC_CARD))[0] == 200
            up.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(up.process.wait(), 15)
            status, _, body = await post(front.url, DOC_CARD)
            assert status == 502
            error = json.loads(body)
            assert error["error"] == "upstream_unreachable"
            assert f"127.0.0.1:{port}" in error["message"]
            async with upstream_mock(tmp_path, "", "--port", str(port)):
                status, headers, _ = await post(front.url, DOC_CARD)
                assert (status, headers[CONFORMANCE]) == (200, "pass")
            entries = await journal(front.url)
    assert [e["status"] for e in reversed(entries)] == [200, 502, 200]
    assert entries[1]["upstream"]["error"] == "upstream_unreachable"
    assert "Traceback" not in await front.full_log()


@contextlib.asynccontextmanager
async def broken_provider(ssl_context: Any = None) -> AsyncIterator[str]:
    """A hand-made provider that misbehaves as its content id says."""

    async def getcontent(request: web.Request) -> web.StreamResponse:
        content_id = (await request.json())["contentId"]
        if content_id == "PROV:slow":
            await asyncio.sleep(3)
        if content_id == "PROV:cut":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if content_id == "PROV:html":
            return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
        if content_id == "PROV:500":
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"data": []})

    app = web.Application()
    app.router.add_post("/cp/getcontent", getcontent)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}/cp"
    finally:
        await runner.cleanup()


async def test_a_broken_upstream_gets_clear_errors_and_its_answers_passed_on(tmp_path: Path, signing_dir: Path) -> None:
    async with broken_provider() as url:
        _, root = folder(tmp_path, "front-images", None)
        config = front_config(tmp_path, signing_dir, root, url, "proxy", None, "")
        config.write_text(config.read_text().replace("  mode: proxy\n", "  mode: proxy\n  timeout: 0.5\n"))
        async with serving(config, tmp_path / "front") as front:
            status, _, body = await post(front.url, "PROV:slow")
            assert (status, json.loads(body)["error"]) == (504, "upstream_timeout")
            status, _, body = await post(front.url, "PROV:cut")
            assert (status, json.loads(body)["error"]) == (502, "upstream_bad_answer")
            status, headers, body = await post(front.url, "PROV:html")
            assert (status, body, headers["Content-Type"]) == (200, b"<html>oops</html>", "text/html; charset=utf-8")
            assert headers[CONFORMANCE] == "CP02 CP03"
            status, headers, body = await post(front.url, "PROV:500")
            assert (status, json.loads(body), headers[CONFORMANCE]) == (500, {"error": "boom"}, "CP01")
            entries = {entry["contentId"]: entry for entry in await journal(front.url)}
    assert entries["PROV:slow"]["status"] == 504
    assert entries["PROV:slow"]["upstream"]["error"] == "upstream_timeout"
    assert "status 500" in entries["PROV:500"]["upstream"]["conformance"]["evidence"]["CP01"]
    assert "Traceback" not in await front.full_log()


async def test_an_https_upstream_needs_its_ca(tmp_path: Path, signing_dir: Path) -> None:
    tls = make_dev_tls(tmp_path / "tls", ["127.0.0.1"])
    async with broken_provider(server_context(tls.server_cert, tls.server_key)) as url:
        _, root = folder(tmp_path, "front-images", None)
        config = front_config(tmp_path, signing_dir, root, url, "proxy", None)
        async with serving(config, tmp_path / "front") as front:
            status, _, body = await post(front.url, "PROV:x")
            assert (status, json.loads(body)["error"]) == (502, "upstream_tls_error")
            assert "upstream.ca_file" in json.loads(body)["message"]
        config.write_text(config.read_text().replace("  mode: proxy\n", f"  mode: proxy\n  ca_file: {tls.ca_cert}\n"))
        async with serving(config, tmp_path / "front") as front:
            status, headers, body = await post(front.url, "PROV:x")
            assert (status, body, headers[CONFORMANCE]) == (200, b'{"data": []}', "CP04")


# --------------------------------------------------------------------------- settings and the verdict cache


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ({"url": "ftp://x"}, "upstream.url: expected an http:// or https:// URL"),
        ({"url": "http://u:p@127.0.0.1:1"}, "not in the URL"),
        ({"url": "http://127.0.0.1:1", "mode": "mirror"}, "upstream.mode: expected one of proxy, spy, record"),
        ({"url": "http://127.0.0.1:1", "username": "u"}, "upstream: set both username and password"),
        ({"url": "http://127.0.0.1:1", "ca_file": "nope.pem"}, "upstream.ca_file:"),
        ({"url": "http://127.0.0.1:1", "trust": "nope.json"}, "upstream.trust:"),
        ({"url": "http://127.0.0.1:1", "timeout": 0}, "upstream.timeout: must be between"),
        ({"url": "http://127.0.0.1:1", "proxy": True}, "upstream.proxy: unknown key"),
        ({"mode": "spy"}, "upstream.url: required"),
        ({"url": "http://127.0.0.1:1", "mode": "record"}, "the demo set is not written to"),
    ],
)
def test_upstream_settings_are_checked_naming_the_key(tmp_path: Path, upstream: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_settings({"upstream": upstream}, tmp_path, {})


def test_upstream_settings_from_the_environment(tmp_path: Path) -> None:
    settings = parse_settings(
        {},
        tmp_path,
        {
            "CONTENT_PROVIDER_UPSTREAM_URL": "https://provider.example/cp/",
            "CONTENT_PROVIDER_UPSTREAM_MODE": "spy",
            "CONTENT_PROVIDER_UPSTREAM_USERNAME": "u",
            "CONTENT_PROVIDER_UPSTREAM_PASSWORD": "secret",
        },
    )
    assert settings.upstream is not None
    assert (settings.upstream.url, settings.upstream.mode, settings.upstream.address) == (
        "https://provider.example/cp",
        "spy",
        "provider.example:443",
    )
    assert "secret" not in repr(settings)
    with pytest.raises(ConfigError, match=r"upstream\.url: required"):  # --upstream-mode without --upstream
        parse_settings({}, tmp_path, {"CONTENT_PROVIDER_UPSTREAM_MODE": "spy"})


async def test_a_hot_answer_is_checked_once() -> None:
    body = (DEMO_FIXTURES / "users" / "alice" / "front.jpg").read_bytes()
    answer = json.dumps(
        {
            "data": [
                {
                    "content_encoding": "base64",
                    "content_type": "image/jpeg",
                    "key": "front",
                    "data": base64.b64encode(body).decode(),
                }
            ]
        }
    ).encode()
    validator = Validator(Options())
    headers = {"Content-Type": "application/json"}
    verdicts = await asyncio.gather(*(validator.verdict("PROV:alice", 200, headers, answer) for _ in range(20)))
    assert {v.header for v in verdicts} == {"pass"}
    assert (validator.stats.checked, validator.stats.remembered) == (1, 19)
    await validator.verdict("PROV:someone-else", 200, headers, answer)  # same answer, same verdict
    assert validator.stats.checked == 1
    auth = await validator.verdict("AUTH:alice", 200, headers, answer)  # an auth answer is checked as one
    assert validator.stats.checked == 2
    assert auth.failed == ("CP06",)
    assert auth.header == "CP06"
    assert auth == verdict_of(check_answer("AUTH:alice", 200, headers, answer, Options()))
