"""``content-provider check --format html``, ``--output``, ``check --fixtures DIR`` and ``GET /__admin/report``:
the HTML conformance report as a file and as a page, read as text (the browser tests are in
test_report_browser.py). The verdict is the one every other format gives; nothing in it is fetched
or run; whatever the provider sent is escaped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from content_provider.cli import build_parser, main
from content_provider.conformance.checker import check
from content_provider.conformance.formats import command_line
from content_provider.conformance.html import CSP, Produced, format_html
from content_provider.core.b64 import b64url_encode
from content_provider.fixtures.generate import card_jpeg

from .helpers import DOC_AUTH, DOC_CARD, MakeClient, faults
from .report_samples import HOSTILE_IDS, SCRIPT, hostile_app, inert, serving

ADMIN_TOKEN = "report-test-admin-token-0123"


async def mock_url(make_client: MakeClient, tmp_path: Path, **changes: Any) -> tuple[str, Path]:
    """A running mock (``changes`` to its settings) and its JWKS saved as a --trust file."""
    client = await make_client(**changes)
    url = str(client.make_url("")).rstrip("/")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(await (await client.get("/.well-known/jwks.json")).json()))
    return url, jwks


def run(*args: str) -> int:
    return main(list(args), {})


def answer_ids(page: str) -> list[str]:
    return re.findall(r'<article class="answer answer-\w+" id="id-\d+" data-content-id="([^"]*)"', page)


# --------------------------------------------------------------------------- the file


async def test_html_says_the_verdict_every_format_gives(
    make_client: MakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Required CP09 failed, CP13 and CP15 not verified, CP16 not met: the html says what JSON, JUnit and
    the exit status say, with and without --strict."""
    rules = [{"match": {"id": DOC_CARD}, "outcome": "wrong_aspect"}]
    url, _ = await mock_url(make_client, tmp_path, faults=faults(rules=rules))
    for flags in ([], ["--strict"]):
        out = {}
        for fmt in ("json", "junit", "html"):
            status = await asyncio.to_thread(run, "check", url, "--format", fmt, *flags)
            out[fmt] = (status, capsys.readouterr().out)
        assert {status for status, _ in out.values()} == {1}
        document = json.loads(out["json"][1])
        page = out["html"][1]
        inert(page)
        assert "<strong>FAIL</strong>: NOT CONFORMANT" in page
        assert f"exit status {document['exit_status']}" in page
        assert (
            f"{len(document['failed_required'])} required rule(s) failed {document['failed_required']}".replace(
                "'", "&#x27;"
            )
            in page
        )
        suite = ElementTree.fromstring(out["junit"][1])
        assert {p.get("name"): p.get("value") for p in suite.iter("property")}["exit_status"] == "1"
        assert answer_ids(page) == [DOC_CARD, DOC_AUTH]
        assert 'data-rule="CP09"' in page  # the mark on the card
        assert ("fails under --strict" in page) == bool(flags)


async def test_a_passing_run_says_pass_and_exit_status_0(
    make_client: MakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, jwks = await mock_url(make_client, tmp_path, default_enabled=False)
    assert await asyncio.to_thread(run, "check", url, "--trust", str(jwks), "--format", "html") == 0
    page = capsys.readouterr().out
    inert(page)
    assert '<p class="verdict verdict-pass" id="verdict"><strong>PASS</strong>: OK: 0 required rule(s) failed' in page
    assert "exit status 0" in page
    assert "Signature: verified</strong>" in page
    assert page.count("<img ") == 3  # the card's front and back, the authentication image


async def test_the_file_is_self_contained_and_its_style_is_the_one_the_policy_allows(
    make_client: MakeClient, tmp_path: Path
) -> None:
    url, jwks = await mock_url(make_client, tmp_path)
    out = tmp_path / "report.html"
    status = await asyncio.to_thread(run, "check", url, "--trust", str(jwks), "--format", "html", "--output", str(out))
    assert status == 0
    page = out.read_text(encoding="utf-8")
    tags = inert(page)
    [meta] = [attrs for tag, attrs in tags.tags if tag == "meta" and attrs.get("http-equiv")]
    assert meta["content"] == CSP
    assert "script-src" not in CSP
    assert "default-src 'none'" in CSP
    [style] = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP
    assert not re.search(r"(?:src|href)=\"(?:https?:|//)", page)  # no URL is loaded or linked
    images = [attrs["src"] for tag, attrs in tags.tags if tag == "img"]
    assert len(images) == 3
    assert all(src and src.startswith("data:image/jpeg;base64,") for src in images)
    assert all(attrs.get("alt") for tag, attrs in tags.tags if tag == "img")  # every image says what it is
    # The summary: the matrix, a timing per request, the command line and the versions.
    assert '<table class="matrix">' in page
    assert page.count("<td>POST /getcontent</td>") == 2
    assert f"content-provider check {url} --trust {jwks} --format html --output {out}" in page
    assert "Python 3." in page
    assert "pillow " in page


async def test_output_writes_every_format_to_the_file(
    make_client: MakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = await mock_url(make_client, tmp_path)
    for fmt in ("text", "json", "junit", "html"):
        out = tmp_path / f"report.{fmt}"
        assert await asyncio.to_thread(run, "check", url, "--format", fmt, "--output", str(out)) == 0
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == f"content-provider check: report written to {out}\n"
        written = out.read_text(encoding="utf-8")
        if fmt == "json":
            assert json.loads(written)["exit_status"] == 0
        elif fmt == "junit":
            assert ElementTree.fromstring(written).get("failures") == "0"
        elif fmt == "text":
            assert written.endswith("exit status 0\n")
            assert "\033[" not in written  # no colour in a file
        else:
            assert written.startswith("<!doctype html>")


def test_a_provider_not_reached_is_said_at_the_top(unused_tcp_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("check", f"http://127.0.0.1:{unused_tcp_port}", "--format", "html") == 1
    page = capsys.readouterr().out
    inert(page)
    assert f"NOT REACHED: the provider could not be reached at 127.0.0.1:{unused_tcp_port}" in page
    assert "<strong>FAIL</strong>: NOT CONFORMANT: 1 required rule(s) failed" in page
    assert answer_ids(page) == []


def test_output_into_a_missing_folder_is_a_usage_error_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "no-such-folder" / "report.html"
    assert run("check", "http://127.0.0.1:9", "--format", "html", "--output", str(out)) == 2
    assert capsys.readouterr().err == f"content-provider: --output {out}: no such folder\n"


def test_the_password_never_reaches_the_report() -> None:
    shown = command_line(["check", "http://h", "--user", "u", "--password", "s3cret", "--pass=x", "--passw", "y"])
    assert "s3cret" not in shown
    assert "=x" not in shown
    assert " y" not in shown
    assert shown == "content-provider check http://h --user u --password '***' '--pass=***' --passw '***'"


def test_the_html_format_is_in_the_help() -> None:
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    text = " ".join(commands.choices["check"].format_help().split()).replace("- ", "-")  # argparse's line breaks
    assert "{text,json,junit,html}" in text
    assert "html (one self-contained page" in text
    assert "--output FILE" in text
    assert "--fixtures DIR" in text


# --------------------------------------------------------------------------- a hostile provider


async def test_markup_from_the_provider_is_text_in_the_report(tmp_path: Path) -> None:
    """Markup in every string the provider sends (keys, labels, the JWS header and its keys, bodies, headers,
    the content ids) comes out escaped: no tag, no attribute, no URL of its making."""
    trust = {"keys": [{"kty": "oct", "k": b64url_encode(b"0123456789abcdef0123456789abcdef"), "kid": SCRIPT}]}
    async with serving(hostile_app()) as url:
        report = await check(url, HOSTILE_IDS, trust=trust, timeout=10)
    page = format_html(report, Produced(f"content-provider check {SCRIPT}"))
    tags = inert(page)
    assert SCRIPT in "".join(tags.text)  # shown, as text
    assert "<script" not in page.lower()
    assert page.count("<img ") == 6  # the real JPEGs of fronts and backs; the rest is no image
    assert {"CP01", "CP02", "CP05", "CP07", "CP12", "CP13", "CP14", "CP16", "CP17"} <= report.failed()


async def test_a_jws_header_that_is_no_object_is_reported_not_a_crash() -> None:
    """A back whose header is a JSON array, or whose x5c is not a list, fails CP12 or CP14 with evidence."""

    async def getcontent(request: web.Request) -> web.Response:
        asked = (await request.json())["contentId"]
        header = [1, 2] if asked == "PROV:array" else {"alg": "RS256", "x5c": {"not": "a list"}}
        jws = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(card_jpeg('x', 'back'))}.c2ln"
        front = base64.b64encode(card_jpeg("x", "front")).decode()
        elements = [
            {"key": "front", "content_type": "image/jpeg", "content_encoding": "base64", "data": front},
            {"key": "back", "content_type": "application/jose", "content_encoding": "text/plain", "data": jws},
        ]
        return web.json_response({"data": elements})

    app = web.Application()
    app.router.add_post("/getcontent", getcontent)
    server = TestServer(app)
    await server.start_server()
    try:
        report = await check(str(server.make_url("")).rstrip("/"), ["PROV:array", "PROV:x5c"])
    finally:
        await server.close()
    assert "CP12" in report.failed("PROV:array")
    assert any("not an object" in r.evidence for r in report.results if r.rule == "CP12")
    assert "CP14" in report.failed("PROV:x5c")
    format_html(report, Produced("test"))  # and the report draws them


# --------------------------------------------------------------------------- the mock's own fixtures


def test_fixtures_are_checked_without_a_server(
    fixture_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every owner's card and authentication image, as the phone would get them; nothing listens."""
    out = tmp_path / "fixtures.html"
    config = tmp_path / "config.yaml"
    config.write_text(f"signing:\n  key_file: {tmp_path / 'key.pem'}\n  cert_file: {tmp_path / 'cert.pem'}\n")
    argv = ["check", "--fixtures", str(fixture_root), "--config", str(config), "--format", "html", "--output", str(out)]
    assert run(*argv) == 0
    page = out.read_text(encoding="utf-8")
    inert(page)
    assert answer_ids(page) == [
        "PROV:default",
        "AUTH:default",
        "PROV:organisation acme",
        "AUTH:organisation acme",
        "PROV:organisation globex",
        "AUTH:organisation globex",
        f"AUTH:user {DOC_AUTH.removeprefix('AUTH:')}",
        f"PROV:user {DOC_CARD.removeprefix('PROV:')}",
        "PROV:user alice",
    ]
    assert "organisation acme: the card its members get (alice, bob, acme-*)" in page
    assert "verified: RS256 with key" in page
    assert "of the mock&#x27;s JWKS" in page
    assert "CP15-CP18 are about a server on a network and are not run here" in page
    assert "answer built in-process" in page
    assert "<strong>PASS</strong>" in page


def test_a_broken_fixture_fails_its_rule_and_is_marked(
    fixture_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixture_root / "users" / "alice" / "front.jpg").write_bytes(card_jpeg("square", size=(600, 600)))
    config = tmp_path / "config.yaml"
    config.write_text(f"signing:\n  key_file: {tmp_path / 'key.pem'}\n  cert_file: {tmp_path / 'cert.pem'}\n")
    common = ["check", "--fixtures", str(fixture_root), "--config", str(config)]
    assert run(*common, "--content-id", "PROV:alice", "--content-id", "PROV:bob", "--format", "json") == 1
    document = json.loads(capsys.readouterr().out)
    assert document["failed_required"] == ["CP09"]
    assert {r["content_id"] for r in document["results"] if r["status"] == "fail"} == {"PROV:alice"}
    assert run(*common, "--content-id", "PROV:alice", "--format", "html") == 1
    page = capsys.readouterr().out
    assert 'data-content-id="PROV:alice"' in page
    assert "user alice · status 200" in page
    assert '<li class="mark mark-fail" data-rule="CP09">CP09 FAIL: front is 600x600' in page
    assert 'class="mark-shape mark-frame"' in page  # the 1200:757 frame drawn over the square image


def test_fixtures_under_strict_show_the_500_the_mock_would_send(
    fixture_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fixture_root / "users" / "alice" / "front.jpg").write_bytes(b"not a jpeg")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"fixtures:\n  strict: true\nsigning:\n  key_file: {tmp_path / 'key.pem'}\n  cert_file: {tmp_path / 'c.pem'}\n"
    )
    argv = ["check", "--fixtures", str(fixture_root), "--config", str(config), "--content-id", "PROV:alice"]
    assert run(*argv, "--format", "json") == 1
    [cp01] = [r for r in json.loads(capsys.readouterr().out)["results"] if r["rule"] == "CP01"]
    assert cp01["evidence"].startswith('status 500: {"error": "fixture_invalid"')


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["http://127.0.0.1:9", "--fixtures", "."], "give the provider's URL, or --fixtures DIR"),
        ([], "give the provider's URL, or --fixtures DIR to check the mock's own fixtures (not both)"),
        (["--fixtures", ".", "--trust", "x.json"], "--trust is for checking a provider's URL"),
        (["--fixtures", ".", "--timeout", "3"], "--timeout is for checking a provider's URL"),
        (["http://127.0.0.1:9", "--config", "c.yaml"], "--config is for --fixtures"),
        (["--fixtures", "no-such-folder"], "--fixtures no-such-folder: not a folder"),
    ],
)
def test_check_flags_that_do_not_go_together_are_a_usage_error(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("check", *args) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"content-provider: {says}")


# --------------------------------------------------------------------------- GET /__admin/report


async def test_the_running_mock_serves_the_report_of_its_fixtures(make_client: MakeClient) -> None:
    client = await make_client(admin_token=ADMIN_TOKEN)
    denied = await client.get("/__admin/report")
    assert denied.status == 401
    assert (await denied.json())["error"] == "unauthorized"
    response = await client.get("/__admin/report", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP + "; frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await response.text()
    inert(page)
    assert "<code>GET /__admin/report</code>" in page
    assert "PROV:organisation acme" in answer_ids(page)
    assert "<strong>PASS</strong>" in page
    # The web page links to it.
    ui = await (await client.get("/ui/")).text()
    assert 'id="report-link" href="/__admin/report"' in ui


async def test_the_report_of_the_running_mock_shows_an_upload(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    square = card_jpeg("square", size=(700, 700))
    # not through the admin API, which refuses it: as a file someone put in the folder
    shutil.rmtree(fixture_root / "users" / "alice")
    (fixture_root / "users" / "zed").mkdir()
    (fixture_root / "users" / "zed" / "front.jpg").write_bytes(square)
    page = await (await client.get("/__admin/report")).text()
    assert "PROV:user zed" in answer_ids(page)
    assert "PROV:user alice" not in answer_ids(page)
    assert "<strong>FAIL</strong>: NOT CONFORMANT: 1 required rule(s) failed [&#x27;CP09&#x27;]" in page


async def test_a_fixture_folder_that_cannot_be_listed_is_a_json_error(
    make_client: MakeClient, fixture_root: Path
) -> None:
    client = await make_client()
    shutil.rmtree(fixture_root / "users")
    (fixture_root / "users").write_text("a file where the users' folder should be")
    response = await client.get("/__admin/report")
    assert response.status == 500
    body = await response.json()
    assert body["error"] == "fixture_unreadable"
    assert body["message"].startswith("cannot read the fixture folder: ")
