"""The conformance checker: the mock passes it, and each broken mode fails the rule it breaks."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from content_provider.cli import main
from content_provider.conformance.checker import check
from content_provider.conformance.rules import RULES
from content_provider.core.b64 import b64url_encode
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import CONNECTION_MODES

from .helpers import DOC_AUTH, DOC_CARD, MakeClient, faults

BREAKS: dict[str, str] = {
    "malformed_json": "CP02",
    "truncated_json": "CP02",
    "wrong_content_type": "CP03",
    "empty_data": "CP04",
    "missing_member": "CP05",
    "misspelt_member": "CP05",
    "extra_elements": "CP04",
    "invalid_base64": "CP07",
    "base64url": "CP07",
    "broken_padding": "CP07",
    "damaged_jpeg": "CP08",
    "truncated_jpeg": "CP08",
    "png_as_jpeg": "CP08",
    "wrong_aspect": "CP09",
    "oversized_image": "CP10",
    "progressive_jpeg": "CP11",
    "cmyk_jpeg": "CP11",
    "exif_rotated": "CP11",
    "jws_bad_signature": "CP13",
    "jws_alg_none": "CP12",
    "jws_wrong_kid": "CP13",
    "jws_untrusted_cert": "CP13",
    "jws_expired_cert": "CP14",
    "reset": "CP01",
    "close": "CP01",
    "partial": "CP01",
    "garbage": "CP01",
    "hang": "CP18",
    "503": "CP01",
}


def test_every_mode_is_in_the_table() -> None:
    assert set(PAYLOAD_MODES) | set(CONNECTION_MODES) | {"hang"} <= set(BREAKS)


async def test_the_mock_passes_on_its_demo_ids(make_client: MakeClient) -> None:
    client = await make_client(default_enabled=False)
    url = str(client.make_url("")).rstrip("/")
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    report = await check(url, trust=jwks)
    assert report.ok
    assert report.failed() == set()
    statuses = {(r.content_id, r.rule): r.status for r in report.results}
    assert statuses[(DOC_CARD, "CP13")] == "pass"
    assert statuses[(None, "CP15")] == "skip"
    assert (DOC_AUTH, "CP09") not in statuses  # the aspect ratio is a card rule


async def test_without_trust_the_back_is_reported_unverified(make_client: MakeClient) -> None:
    client = await make_client()
    report = await check(str(client.make_url("")).rstrip("/"), [DOC_CARD])
    [signature] = [r for r in report.results if r.rule == "CP13"]
    assert signature.status == "unverified"
    assert "NOT verified" in signature.checked
    assert report.failed() == {"CP16"}  # the mock serves a default image to unknown ids: a recommendation
    assert report.ok


async def test_basic_auth_is_checked_when_credentials_are_given(make_client: MakeClient) -> None:
    client = await make_client(username="hermod", password="s3cret")
    url = str(client.make_url("")).rstrip("/")
    good = await check(url, [DOC_CARD], user="hermod", password="s3cret")
    assert "CP15" not in good.failed()
    wrong = await check(url, [DOC_CARD], user="hermod", password="nope")
    assert {"CP01", "CP15"} <= wrong.failed()
    assert not wrong.ok


@pytest.mark.parametrize("mode", sorted(BREAKS))
async def test_each_broken_mode_fails_the_rule_it_breaks(make_client: MakeClient, mode: str) -> None:
    outcome: Any = int(mode) if mode.isdigit() else mode
    client = await make_client(faults=faults(rules=[{"name": mode, "match": {"id": DOC_CARD}, "outcome": outcome}]))
    url = str(client.make_url("")).rstrip("/")
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    report = await check(url, [DOC_CARD], trust=jwks, timeout=1.0 if mode == "hang" else 60.0)
    failed = report.failed(DOC_CARD)
    assert BREAKS[mode] in failed, (mode, failed, [r.evidence for r in report.results if r.failed])
    if RULES[BREAKS[mode]].required:
        assert not report.ok
    evidence = [r.evidence for r in report.results if r.rule == BREAKS[mode] and r.failed]
    assert evidence
    assert all(evidence)


# --------------------------------------------------------------------------- a provider that is not the mock


def jpeg(size: tuple[int, int] = (1200, 757), fmt: str = "JPEG") -> str:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, fmt)
    return base64.b64encode(out.getvalue()).decode()


def element(key: str, data: str) -> dict[str, str]:
    return {"content_encoding": "base64", "content_type": "image/jpeg", "key": key, "data": data}


JOSE = {"content_encoding": "text/plain", "content_type": "application/jose"}


def unverified_back(size: tuple[int, int]) -> str:
    """A compact JWS of a JPEG of ``size`` that is signed in form only (CP13 stays unverified without --trust)."""
    header = b64url_encode(json.dumps({"alg": "RS256"}).encode())
    return f"{header}.{b64url_encode(base64.b64decode(jpeg(size)))}.c2lnbmF0dXJl"


async def other_provider(answer: Any, status: int = 200, auth: bool = False) -> TestServer:
    """A deliberately different content provider, written from scratch for the checker to judge."""

    async def getcontent(request: web.Request) -> web.Response:
        if auth and request.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            return web.json_response({"error": "denied"}, status=401)  # no WWW-Authenticate: a mistake
        await request.read()
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_post("/cp/getcontent", getcontent)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.mark.parametrize(
    ("answer", "rule", "evidence"),
    [
        ({"result": {"data": [element("front", jpeg())]}}, "CP02", 'got {"result":'),
        ({"data": [element("front", jpeg(fmt="PNG"))]}, "CP08", "decodes as PNG, not JPEG"),
        ({"data": [element("front", jpeg((1000, 1000)))]}, "CP09", "front is 1000x1000"),
        (
            {"data": [element("front", jpeg()), {**element("back", unverified_back((1000, 1000))), **JOSE}]},
            "CP09",
            "back is 1000x1000",
        ),
        ({"data": [element("card", jpeg())]}, "CP06", "keys ['card']"),
        ({"data": [{**element("front", jpeg()), "content_type": "image/png"}]}, "CP07", "content_type 'image/png'"),
    ],
)
async def test_a_different_provider_is_reported_precisely(answer: Any, rule: str, evidence: str) -> None:
    server = await other_provider(answer)
    try:
        report = await check(str(server.make_url("/cp")), ["PROV:anyone"])
    finally:
        await server.close()
    assert rule in report.failed("PROV:anyone")
    assert any(evidence in r.evidence for r in report.results if r.rule == rule), report.results


async def test_a_provider_forgetting_the_challenge_fails_cp15() -> None:
    server = await other_provider({"data": [element("front", jpeg())]}, auth=True)
    try:
        report = await check(str(server.make_url("/cp")), ["PROV:x"], user="u", password="p")
    finally:
        await server.close()
    [result] = [r for r in report.results if r.rule == "CP15"]
    assert result.failed
    assert "without: 401 ''" in result.evidence


# --------------------------------------------------------------------------- command line


async def test_cli_formats_and_exit_status(
    make_client: MakeClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client(default_enabled=False)
    url = str(client.make_url("")).rstrip("/")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(await (await client.get("/.well-known/jwks.json")).json()))
    assert await asyncio.to_thread(main, ["check", url, "--trust", str(jwks), "--format", "json"], {}) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert await asyncio.to_thread(main, ["check", url, "--format", "junit"], {}) == 0
    suite = ElementTree.fromstring(capsys.readouterr().out)
    assert suite.get("failures") == "0"
    assert int(suite.get("tests", "0")) > 20
    assert await asyncio.to_thread(main, ["check", url], {}) == 0
    assert "OK: 0 required rule(s) failed" in capsys.readouterr().out
    cert = tmp_path / "cert.pem"
    cert.write_bytes(await (await client.get("/signing-cert.pem")).read())
    assert await asyncio.to_thread(main, ["check", url, "--trust", str(cert), "--content-id", DOC_CARD], {}) == 0


async def test_cli_fails_on_a_required_rule(make_client: MakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client = await make_client(faults=faults(rules=[{"match": {"id": DOC_CARD}, "outcome": "wrong_aspect"}]))
    url = str(client.make_url("")).rstrip("/")
    assert await asyncio.to_thread(main, ["check", url, "--content-id", DOC_CARD], {}) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "CP09" in out
    assert "NOT CONFORMANT" in out


def test_cli_needs_both_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "http://127.0.0.1:9", "--user", "u"], {}) == 2
    assert "both --user and --password" in capsys.readouterr().err


async def test_authentication_is_checked_with_the_ids_given(make_client: MakeClient, fixture_root: Path) -> None:
    """CP15 asks for an id the provider has, not the demo id a real provider may lack."""
    shutil.rmtree(fixture_root / "users" / DOC_CARD.removeprefix("PROV:"))
    client = await make_client(username="hermod", password="s3cret", default_enabled=False)
    url = str(client.make_url("")).rstrip("/")
    report = await check(url, ["PROV:bob"], user="hermod", password="s3cret")
    assert "CP15" not in report.failed()
    assert report.ok


async def test_every_format_gives_the_same_verdict(make_client: MakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --trust and --user, CP13 and CP15 are not verified: the summary says so, and text,
    JSON, JUnit and the exit status agree; --strict fails them (#28 item 7). The mock's defaults
    answer unknown ids, so CP16, a recommendation, is not met: a warning, not a JUnit failure."""
    client = await make_client()
    url = str(client.make_url("")).rstrip("/")
    for strict in (False, True):
        flags = ["--strict"] if strict else []
        outputs = {}
        for fmt in ("text", "json", "junit"):
            status = await asyncio.to_thread(main, ["check", url, "--format", fmt, *flags], {})
            outputs[fmt] = (status, capsys.readouterr().out)
        expected = 1 if strict else 0
        assert {status for status, _ in outputs.values()} == {expected}
        text = outputs["text"][1]
        assert "2 required rule(s) not verified: CP13 (no --trust given" in text
        assert "CP15 (no --user/--password given)" in text
        assert text.rstrip().endswith(f"exit status {expected}")
        assert text.splitlines()[-4].startswith("NOT CONFORMANT (--strict)" if strict else "OK: 0 required")
        document = json.loads(outputs["json"][1])
        assert document["exit_status"] == expected
        assert document["ok"] is not strict
        assert set(document["not_verified"]) == {"CP13", "CP15"}
        assert document["failed_required"] == []
        assert "CP16" in document["failed_recommended"]
        suite = ElementTree.fromstring(outputs["junit"][1])
        failures = suite.findall("testcase/failure")
        assert int(suite.get("failures", "-1")) == len(failures)
        assert {p.get("name"): p.get("value") for p in suite.iter("property")}["exit_status"] == str(expected)
        if strict:
            kinds = {f.get("type") for f in failures}
            assert kinds == {"not verified", "recommendation"}
        else:
            assert failures == []
            warnings = [o.text or "" for o in suite.iter("system-out")]
            assert any("recommendation not met" in w for w in warnings)
