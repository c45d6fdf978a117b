"""Fault rules over real HTTP: what a client actually sees for each mode and scope."""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import io
import json
import logging
import time
import warnings
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.errors import BadSignatureError, JoseError
from PIL import Image, ImageOps

from content_provider.core.contract import UseCase, parse_content_id
from content_provider.core.reader import ConfigError
from content_provider.faults.directives import split_directives
from content_provider.faults.engine import FaultEngine, draw
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import Delay
from content_provider.signing.jws import verify_back

from .helpers import DOC_CARD, MakeClient, faults, get_content


async def statuses(client: Any, content_id: str, times: int) -> list[int]:
    return [(await get_content(client, content_id)).status for _ in range(times)]


# --------------------------------------------------------------------------- latency


async def test_fixed_delay_before_the_status_line(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"name": "slow", "delay": "300ms"}]))
    start = time.monotonic()
    response = await get_content(client, DOC_CARD)
    elapsed = time.monotonic() - start
    assert response.status == 200
    assert elapsed >= 0.3
    header = response.headers["X-Content-Provider-Fault"]
    assert header.startswith("slow; delay=300ms@headers; applied=")
    assert float(header.rsplit("applied=", 1)[1].removesuffix("ms")) >= 299.0


async def test_delay_mid_body_sends_headers_first(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"delay": 0.6, "delay_at": "body"}]))
    start = time.monotonic()
    response = await get_content(client, DOC_CARD)
    headers_at = time.monotonic() - start
    body = await response.read()
    done_at = time.monotonic() - start
    assert response.status == 200
    assert headers_at < 0.5 <= 0.6 <= done_at
    assert json.loads(body)["data"][0]["key"] == "front"


async def test_bandwidth_dribbles_the_body_in_timed_chunks(make_client: MakeClient) -> None:
    rate = 40_000
    client = await make_client(faults=faults(rules=[{"bandwidth": rate}]))
    start = time.monotonic()
    response = await get_content(client, "PROV:nobody")
    arrivals = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        arrivals.append(time.monotonic() - start)
    assert response.status == 200
    assert size == int(response.headers["Content-Length"])
    assert "Content-Encoding" not in response.headers
    assert len(arrivals) >= 5  # many pieces, not one buffered blob
    assert arrivals[-1] >= size / rate * 0.9
    assert arrivals[-1] - arrivals[0] >= size / rate * 0.5


async def test_hang_never_answers_until_the_client_gives_up(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"outcome": "hang"}]))
    with pytest.raises(asyncio.TimeoutError):
        await get_content(client, DOC_CARD, timeout=aiohttp.ClientTimeout(total=0.5))


def test_random_delays_are_seeded_and_bounded() -> None:
    def sample(seed: int, delay: Any) -> list[float]:
        engine = FaultEngine(faults(seed=seed, rules=[{"name": "r", "delay": delay}]))
        content_id = parse_content_id("PROV:x", "card")
        assert content_id is not None
        return [engine.plan(content_id, "c").delay for _ in range(2000)]

    uniform = sample(7, {"uniform": ["100ms", "300ms"]})
    assert uniform == sample(7, {"uniform": ["100ms", "300ms"]})
    assert uniform != sample(8, {"uniform": ["100ms", "300ms"]})
    assert min(uniform) >= 0.1
    assert max(uniform) <= 0.3
    tail = sorted(sample(7, {"lognormal": {"median": 0.1, "p99": 2.0}}))
    assert tail[1000] == pytest.approx(0.1, rel=0.15)
    assert tail[1980] == pytest.approx(2.0, rel=0.35)


# --------------------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize(
    ("outcome", "content_type", "check"),
    [
        ({"status": 500}, "application/json", lambda b: json.loads(b)["error"] == "injected_fault"),
        ({"status": 502, "body": "empty"}, None, lambda b: b == b""),
        ({"status": 504, "body": "html"}, "text/html", lambda b: b"<h1>504 Gateway Timeout</h1>" in b),
        (
            {"status": 418, "message": "teapot"},
            "application/json",
            lambda b: json.loads(b)["message"] == "teapot",
        ),
    ],
)
async def test_any_status_with_json_empty_or_html_body(
    make_client: MakeClient, outcome: dict[str, Any], content_type: str | None, check: Any
) -> None:
    client = await make_client(faults=faults(rules=[{"outcome": outcome}]))
    response = await get_content(client, DOC_CARD)
    assert response.status == outcome["status"]
    if content_type is not None:
        assert response.content_type == content_type
    assert check(await response.read())


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after(make_client: MakeClient, status: int) -> None:
    client = await make_client(faults=faults(rules=[{"outcome": {"status": status, "retry_after": "2s"}}]))
    response = await get_content(client, DOC_CARD)
    assert response.status == status
    assert response.headers["Retry-After"] == "2"


async def test_401_and_403_regardless_of_credentials(make_client: MakeClient) -> None:
    rules = [{"match": {"id": "PROV:a"}, "outcome": 401}, {"match": {"id": "PROV:b"}, "outcome": 403}]
    client = await make_client(username="hermod", password="pw", faults=faults(rules=rules))
    good = {"Authorization": "Basic " + base64.b64encode(b"hermod:pw").decode()}
    response = await get_content(client, "PROV:a", headers=good)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert (await get_content(client, "PROV:b", headers=good)).status == 403
    assert (await get_content(client, "PROV:c", headers=good)).status == 200


async def test_rate_limit_per_basic_auth_user(make_client: MakeClient) -> None:
    rules = [{"name": "limit", "rate_limit": {"requests": 2, "window": "60s"}}]
    client = await make_client(username="hermod", password="pw", faults=faults(rules=rules))
    # Credentials are checked first: only "hermod" can get through, so count per user via two clients' ids
    auth = {"Authorization": "Basic " + base64.b64encode(b"hermod:pw").decode()}
    codes = [(await get_content(client, f"PROV:u{i}", headers=auth)).status for i in range(3)]
    assert codes == [200, 200, 429]
    response = await get_content(client, DOC_CARD, headers=auth)
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_rate_limit_counts_each_client_apart(make_client: MakeClient) -> None:
    engine = FaultEngine(faults(rules=[{"rate_limit": {"requests": 1, "window": 60}}]))
    content_id = parse_content_id("PROV:x", "card")
    assert content_id is not None
    assert engine.plan(content_id, "alice").outcome is None
    assert engine.plan(content_id, "bob").outcome is None
    limited = engine.plan(content_id, "alice").outcome
    assert limited is not None
    assert limited.status == 429


# --------------------------------------------------------------------------- broken payloads


def elements_of(body: bytes) -> list[dict[str, str]]:
    return list(json.loads(body)["data"])


def first_image(body: bytes) -> bytes:
    return base64.b64decode(elements_of(body)[0]["data"])


def back_of(body: bytes) -> str:
    return next(e["data"] for e in elements_of(body) if e["key"] == "back")


def jws_header(compact: str) -> dict[str, Any]:
    part = compact.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def fails(function: Any, *args: Any, error: type[BaseException] | tuple[type[BaseException], ...] = Exception) -> bool:
    try:
        function(*args)
    except error:
        return True
    return False


def opens_as_bomb(data: bytes) -> tuple[int, int]:
    """The size of an image that makes Pillow warn of a decompression bomb."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        size = Image.open(io.BytesIO(data)).size
    assert any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught)
    return size


def strict_b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def decodes(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def x5c_cert(compact: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(jws_header(compact)["x5c"][0]))


def verifies_with_x5c(compact: str) -> bool:
    from joserfc.jwk import import_key

    cert = x5c_cert(compact)
    pem = cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    key = import_key(pem, "RSA")
    jwks = {"keys": [{**key.as_dict(private=False), "kid": jws_header(compact)["kid"]}]}
    verify_back(compact, jwks)
    return True


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


PAYLOAD_CHECKS: dict[str, Any] = {
    "malformed_json": lambda b, ct, jwks: fails(json.loads, b),
    "truncated_json": lambda b, ct, jwks: fails(json.loads, b) and b.startswith(b'{"data":[{'),
    "wrong_content_type": lambda b, ct, jwks: ct == "text/html" and elements_of(b)[0]["key"] == "front",
    "empty_data": lambda b, ct, jwks: json.loads(b) == {"data": []},
    "missing_member": lambda b, ct, jwks: all("content_type" not in e for e in elements_of(b)),
    "misspelt_member": lambda b, ct, jwks: all(
        "contentEncoding" in e and "content_encoding" not in e for e in elements_of(b)
    ),
    "extra_elements": lambda b, ct, jwks: [e["key"] for e in elements_of(b)] == ["front", "back", "unexpected"],
    "invalid_base64": lambda b, ct, jwks: fails(strict_b64, elements_of(b)[0]["data"], error=binascii.Error),
    "base64url": lambda b, ct, jwks: (
        fails(strict_b64, elements_of(b)[0]["data"], error=binascii.Error)
        and decodes(base64.urlsafe_b64decode(elements_of(b)[0]["data"])).format == "JPEG"
    ),
    "broken_padding": lambda b, ct, jwks: fails(base64.b64decode, elements_of(b)[0]["data"], error=binascii.Error),
    "damaged_jpeg": lambda b, ct, jwks: (
        Image.open(io.BytesIO(first_image(b))).format == "JPEG" and fails(decodes, first_image(b))
    ),
    "truncated_jpeg": lambda b, ct, jwks: not first_image(b).endswith(b"\xff\xd9") and fails(decodes, first_image(b)),
    "png_as_jpeg": lambda b, ct, jwks: (
        elements_of(b)[0]["content_type"] == "image/jpeg" and decodes(first_image(b)).format == "PNG"
    ),
    "wrong_aspect": lambda b, ct, jwks: decodes(first_image(b)).size == (900, 900),
    "oversized_image": lambda b, ct, jwks: opens_as_bomb(first_image(b)) == (12000, 7570),
    "progressive_jpeg": lambda b, ct, jwks: decodes(first_image(b)).info.get("progressive") == 1,
    "cmyk_jpeg": lambda b, ct, jwks: decodes(first_image(b)).mode == "CMYK",
    "exif_rotated": lambda b, ct, jwks: (
        decodes(first_image(b)).size == (757, 1200)
        and ImageOps.exif_transpose(decodes(first_image(b))).size == (1200, 757)
    ),
    "jws_bad_signature": lambda b, ct, jwks: fails(verify_back, back_of(b), jwks, error=BadSignatureError),
    "jws_alg_none": lambda b, ct, jwks: (
        jws_header(back_of(b))["alg"] == "none"
        and back_of(b).endswith(".")
        and fails(verify_back, back_of(b), jwks, error=JoseError)
    ),
    "jws_wrong_kid": lambda b, ct, jwks: (
        jws_header(back_of(b))["kid"] == "wrong-kid" and fails(verify_back, back_of(b), jwks, error=JoseError)
    ),
    "jws_untrusted_cert": lambda b, ct, jwks: (
        fails(verify_back, back_of(b), jwks, error=JoseError)
        and verifies_with_x5c(back_of(b))
        and x5c_cert(back_of(b)).not_valid_after_utc > now()
    ),
    "jws_expired_cert": lambda b, ct, jwks: (
        fails(verify_back, back_of(b), jwks, error=JoseError)
        and verifies_with_x5c(back_of(b))
        and x5c_cert(back_of(b)).not_valid_after_utc < now()
    ),
}


def test_every_payload_mode_has_a_check() -> None:
    assert set(PAYLOAD_CHECKS) == set(PAYLOAD_MODES)


@pytest.mark.parametrize("mode", sorted(PAYLOAD_MODES))
async def test_payload_mode_is_what_the_client_sees(make_client: MakeClient, mode: str) -> None:
    client = await make_client(faults=faults(rules=[{"name": mode, "match": {"id": "PROV:bob"}, "outcome": mode}]))
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    response = await get_content(client, "PROV:bob")
    assert response.status == 200
    assert response.headers["X-Content-Provider-Fault"] == f"{mode}; outcome={mode}"
    body = await response.read()
    checked = await asyncio.to_thread(PAYLOAD_CHECKS[mode], body, response.content_type, jwks)
    assert checked
    normal = await get_content(client, "PROV:carol")  # not matched: untouched
    assert "X-Content-Provider-Fault" not in normal.headers


async def test_jws_modes_add_a_back_when_the_answer_has_none(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"outcome": "jws_bad_signature"}]))
    body = await (await get_content(client, "AUTH:bob")).read()
    assert [e["key"] for e in elements_of(body)] == ["auth_image", "back"]


# --------------------------------------------------------------------------- connection faults


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("reset", aiohttp.ClientOSError),
        ("close", aiohttp.ServerDisconnectedError),
        ("partial", aiohttp.ClientPayloadError),
        ("garbage", aiohttp.ClientResponseError),
    ],
)
async def test_connection_faults(make_client: MakeClient, mode: str, error: type[Exception]) -> None:
    client = await make_client(faults=faults(rules=[{"match": {"id": "PROV:bob"}, "outcome": mode}]))

    async def fetch() -> bytes:
        response = await get_content(client, "PROV:bob")
        return bytes(await response.read())

    with pytest.raises(error) as caught:
        await fetch()
    if mode == "reset":
        assert "reset" in str(caught.value).lower()
    assert (await get_content(client, "PROV:carol")).status == 200  # the server is fine


# --------------------------------------------------------------------------- scope and triggers


async def test_match_by_use_case_id_and_pattern(make_client: MakeClient) -> None:
    rules = [
        {"match": {"use_case": "AUTH"}, "outcome": 500},
        {"match": {"id": "PROV:bob"}, "outcome": 501},
        {"match": {"patterns": ["PROV:acme-*", "re:PROV:[0-9]{3}"]}, "outcome": 502},
    ]
    client = await make_client(faults=faults(rules=rules))
    assert (await get_content(client, "AUTH:anyone")).status == 500
    assert (await get_content(client, "PROV:bob")).status == 501
    assert (await get_content(client, "PROV:acme-1")).status == 502
    assert (await get_content(client, "PROV:123")).status == 502
    assert (await get_content(client, "PROV:1234")).status == 200
    assert (await get_content(client, "PROV:carol")).status == 200


async def test_first_n(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"first": 2, "outcome": 503}]))
    assert await statuses(client, DOC_CARD, 5) == [503, 503, 200, 200, 200]


async def test_every_nth(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(rules=[{"every": 3, "outcome": 503}]))
    assert await statuses(client, DOC_CARD, 9) == [200, 200, 503] * 3


async def test_probability_is_seeded_and_replayable(make_client: MakeClient) -> None:
    settings = faults(seed=1234, rules=[{"name": "flaky", "probability": 0.3, "outcome": 503}])
    # the n-th request's draw is a pure function of the seed, the rule's name and n (faults.draw)
    expected = [503 if draw(1234, "flaky", n) < 0.3 else 200 for n in range(1, 41)]
    first = await statuses(await make_client(faults=settings), DOC_CARD, 40)
    replay = await statuses(await make_client(faults=settings), DOC_CARD, 40)
    assert first == expected == replay
    assert 5 < first.count(503) < 20


async def test_sequence_per_id_for_retry_tests(make_client: MakeClient) -> None:
    rules = [{"match": {"patterns": ["PROV:*"]}, "sequence": [503, {"status": 503, "retry_after": 1}, "ok"]}]
    client = await make_client(faults=faults(rules=rules))
    seen = {"PROV:bob": [], "PROV:carol": []}  # type: dict[str, list[int]]
    for _ in range(4):
        for content_id, codes in seen.items():
            codes.append((await get_content(client, content_id)).status)
    assert seen == {"PROV:bob": [503, 503, 200, 200], "PROV:carol": [503, 503, 200, 200]}


async def test_rules_combine_in_order(make_client: MakeClient) -> None:
    rules = [
        {"name": "everyone-slow", "delay": "100ms"},
        {"name": "bob-down", "match": {"id": "PROV:bob"}, "outcome": 503},
        {"name": "bob-teapot", "match": {"id": "PROV:bob"}, "outcome": 418, "delay": "100ms"},
    ]
    client = await make_client(faults=faults(rules=rules))
    start = time.monotonic()
    response = await get_content(client, "PROV:bob")
    assert time.monotonic() - start >= 0.2  # delays of all firing rules add up
    assert response.status == 503  # the first outcome wins
    assert response.headers["X-Content-Provider-Fault"].startswith(
        "everyone-slow,bob-down,bob-teapot; outcome=status 503; delay=200ms@headers"
    )


async def test_fault_header_can_be_switched_off(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(header=False, rules=[{"outcome": 503}]))
    response = await get_content(client, DOC_CARD)
    assert response.status == 503
    assert "X-Content-Provider-Fault" not in response.headers


async def test_the_log_line_names_the_rule_and_the_delay(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(access_log=True, faults=faults(rules=[{"name": "slow", "delay": "50ms"}]))
    with caplog.at_level(logging.INFO):
        await get_content(client, DOC_CARD)
        await asyncio.sleep(0.05)
    assert any("fault='slow; delay=50ms@headers; applied=" in r.getMessage() for r in caplog.records), caplog.text


# --------------------------------------------------------------------------- directives in the content id


async def test_directives_are_off_by_default(make_client: MakeClient) -> None:
    client = await make_client()
    response = await get_content(client, "PROV:bob;fault=503")
    assert response.status == 200
    assert response.headers["X-Content-Provider-Resolved"] == "default"  # just an unknown id


async def test_directives_pick_the_fault_per_id(make_client: MakeClient) -> None:
    client = await make_client(faults=faults(content_id_directives=True))
    response = await get_content(client, "PROV:bob;fault=503")
    assert response.status == 503
    assert response.headers["X-Content-Provider-Fault"] == "directive; outcome=status 503"
    ok = await get_content(client, "PROV:bob;delay=100ms")
    assert ok.status == 200
    assert ok.headers["X-Content-Provider-Resolved"] == "organisation acme"  # the id without directives
    assert await statuses(client, "PROV:bob;seq=503,429,ok", 4) == [503, 429, 200, 200]
    assert await statuses(client, "AUTH:bob;seq=500,ok", 2) == [500, 200]
    with pytest.raises(aiohttp.ClientOSError):
        await get_content(client, "PROV:bob;fault=reset")


@pytest.mark.parametrize("bad", ["PROV:bob;fault=nope", "PROV:bob;colour=red", "PROV:bob;delay=soon", "PROV:b;x"])
async def test_bad_directive_is_a_400(make_client: MakeClient, bad: str) -> None:
    client = await make_client(faults=faults(content_id_directives=True))
    response = await get_content(client, bad)
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_directive"


def test_split_directives() -> None:
    assert split_directives("PROV:x", 60) == ("PROV:x", None)
    base, rule = split_directives("PROV:x;fault=wrong_aspect;delay=2s;bandwidth=100", 60)
    assert base == "PROV:x"
    assert rule is not None
    assert rule.outcome is not None
    assert (rule.outcome.mode, rule.bandwidth) == ("wrong_aspect", 100)
    assert rule.delay is not None
    assert rule.delay.a == 2.0


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{}]}, "faults.rules[0]: the rule does nothing"),
        ({"rules": [{"outcome": "explode"}]}, "faults.rules[0].outcome: unknown outcome 'explode'"),
        ({"rules": [{"outcome": 999}]}, "faults.rules[0].outcome: HTTP status must be 100-599"),
        ({"rules": [{"delay": "fast"}]}, "faults.rules[0].delay: expected a duration"),
        ({"rules": [{"delay": {"uniform": [2, "2h"]}}]}, "faults.rules[0].delay.uniform[1]: 7200s is over"),
        ({"rules": [{"delay": {"lognormal": {"median": 0, "p99": 1}}}]}, "lognormal.median: must be more than zero"),
        ({"rules": [{"delay": {"lognormal": {"p99": 1}}}]}, "faults.rules[0].delay.lognormal.median: required"),
        ({"rules": [{"delay": 7200}]}, "over faults.max_delay_seconds"),
        ({"rules": [{"delay": "2s\n"}]}, "faults.rules[0].delay: expected a duration"),
        ({"rules": [{"delay": " 2s"}]}, "faults.rules[0].delay: expected a duration"),
        ({"rules": [{"after": "9000h"}]}, "faults.rules[0].after: '9000h' is more than a year"),
        ({"rules": [{"outcome": None, "delay": 1}]}, "faults.rules[0].outcome: no value (null)"),
        ({"rules": [{"sequence": [None, None]}]}, "faults.rules[0].sequence[0]: no value (null)"),
        ({"rules": [{"outcome": " 503"}]}, "faults.rules[0].outcome: unknown outcome ' 503'"),
        ({"rules": [{"outcome": "0503"}]}, "faults.rules[0].outcome: unknown outcome '0503'"),
        ({"rules": [{"outcome": {"status": 503, "message": 5}}]}, "outcome.message: expected a string, got int"),
        ({"rules": [{"name": "slow start", "delay": 1}]}, "faults.rules[0].name: 'slow start' is not a rule name"),
        ({"rules": [{"name": "a\nb", "delay": 1}]}, "faults.rules[0].name: 'a\\nb' is not a rule name"),
        ({"rules": [{"name": 5, "delay": 1}]}, "faults.rules[0].name: expected a string, got int"),
        ({"rules": [{"match": {"id": ""}, "delay": 1}]}, "faults.rules[0].match.id: expected a non-empty string"),
        ({"rules": [{"match": {"pattern": "re:("}, "delay": 1}]}, "faults.rules[0].match.pattern: bad regular"),
        ({"rules": [{"rate_limit": {}}]}, "faults.rules[0].rate_limit.requests: required"),
        ({"rules": [{"rate_limit": {"requests": 1, "window": 0}}]}, "rate_limit.window: must be more than zero"),
        ({"rules": [{"delay": 1, "every_period": {}}]}, "faults.rules[0].every_period.period: required"),
        (
            {"rules": [{"outcome": 503, "probability": 2}]},
            "faults.rules[0].probability: must be between 0.0 and 1.0",
        ),
        ({"rules": [{"outcome": 503, "sequence": [503]}]}, "give outcome or sequence, not both"),
        ({"rules": [{"outcome": 503, "match": {"use_case": "X"}}]}, "faults.rules[0].match.use_case"),
        (
            {"rules": [{"name": "a", "outcome": 503}, {"name": "a", "outcome": 500}]},
            "two rules are named 'a'",
        ),
        ({"rules": [{"outcome": 503, "wen": 1}]}, "faults.rules[0].wen: unknown key"),
    ],
)
def test_bad_fault_config_names_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        faults(**data)
    assert message in str(caught.value)


def test_use_case_match_is_typed() -> None:
    settings = faults(rules=[{"match": {"use_case": "PROV"}, "outcome": 503}])
    assert settings.rules[0].match.use_case is UseCase.CARD


def test_delays_whose_bounds_need_no_order() -> None:
    """What the OpenAPI document's schema cannot forbid is taken: uniform bounds in either order,
    a lognormal p99 at or below its median (no spread), an active span as long as its period."""
    uniform, lognormal, periodic = faults(
        rules=[
            {"delay": {"uniform": [2, "1s"]}},
            {"delay": {"lognormal": {"median": "2s", "p99": 1}}},
            {"delay": 1, "every_period": {"period": "1m", "active": "2m"}},
        ]
    ).rules
    assert (uniform.delay, lognormal.delay) == (Delay("uniform", 1.0, 2.0), Delay("lognormal", 2.0, 2.0))
    assert lognormal.delay is not None
    assert lognormal.delay.sample(0.999, 3600) == pytest.approx(2.0)
    assert periodic.window is None


def test_long_delays_are_allowed_up_to_the_cap() -> None:
    settings = faults(max_delay_seconds=600, rules=[{"delay": "5m"}])
    assert settings.rules[0].delay is not None
    assert settings.rules[0].delay.a == 300.0


async def test_per_id_sequences_and_rate_windows_are_bounded(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One entry per content id or client, forever, was a leak: the least recently seen go first."""
    import content_provider.faults.engine as faults_module
    from content_provider.faults.engine import FAULTS

    monkeypatch.setattr(faults_module, "KEYED_STATES", 20)
    rules = [
        {"name": "seq", "match": {"use_case": "PROV"}, "sequence": [503, "ok"]},
        {"name": "limit", "match": {"use_case": "AUTH"}, "rate_limit": {"requests": 1000, "window": "1m"}},
    ]
    client = await make_client(faults=faults(rules=rules))
    assert await statuses(client, "PROV:id-0", 2) == [503, 200]
    for index in range(1, 40):
        assert (await get_content(client, f"PROV:id-{index}")).status == 503
    state = client.app[FAULTS]._states["seq"]
    assert len(state.per_id) == 20
    assert (await get_content(client, "PROV:id-39")).status == 200  # recent: its sequence goes on
    assert (await get_content(client, "PROV:id-0")).status == 503  # forgotten: it starts again
    engine = client.app[FAULTS]  # windows are per client address: many clients, as the handler would count them
    auth = parse_content_id("AUTH:x", "card")
    assert auth is not None
    for index in range(30):
        engine.plan(auth, f"10.0.0.{index}")
    assert list(engine._states["limit"].windows) == [f"10.0.0.{index}" for index in range(10, 30)]


# --------------------------------------------------------------------------- delay_at: body, for every answer with one


@pytest.mark.parametrize(
    ("outcome", "status", "content_type"),
    [
        (503, 503, "application/json"),
        ({"status": 429, "retry_after": 2}, 429, "application/json"),
        ({"status": 503, "body": "html"}, 503, "text/html"),
        ("ok", 200, "application/json"),
    ],
)
async def test_delay_at_body_pauses_half_way_through_any_body(
    make_client: MakeClient, outcome: Any, status: int, content_type: str
) -> None:
    rule = {"name": "slow", "match": {"id": "PROV:bob"}, "delay": "400ms", "delay_at": "body", "sequence": [outcome]}
    client = await make_client(faults=faults(rules=[rule]))
    start = time.monotonic()
    response = await get_content(client, "PROV:bob")
    headers_at = time.monotonic() - start
    body = await response.read()
    done_at = time.monotonic() - start
    assert response.status == status
    assert response.headers["Content-Type"].startswith(content_type)
    assert len(body) == int(response.headers["Content-Length"]) > 0
    assert headers_at < 0.3, headers_at
    assert done_at >= 0.4, done_at
    # the header goes out before the pause, so it says what was asked; the journal says what happened
    assert response.headers["X-Content-Provider-Fault"].endswith("delay=400ms@body")
    [entry] = (await (await client.get("/__admin/requests")).json())["requests"]
    assert entry["status"] == status
    applied = float(entry["fault"].split("applied=", 1)[1].split("ms", 1)[0])
    assert 399.0 <= applied < 1000.0, entry


async def test_delay_at_body_of_partial_pauses_before_the_break(make_client: MakeClient) -> None:
    rule = {"name": "cut", "delay": "400ms", "delay_at": "body", "outcome": "partial"}
    client = await make_client(faults=faults(rules=[rule]))
    start = time.monotonic()
    response = await get_content(client, DOC_CARD)
    headers_at = time.monotonic() - start
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert headers_at < 0.3 <= 0.4 <= time.monotonic() - start
    [entry] = (await (await client.get("/__admin/requests")).json())["requests"]
    assert entry["status"] == "partial"
    assert "applied=" in entry["fault"]


async def test_delay_at_body_without_a_body_comes_before_the_headers(make_client: MakeClient) -> None:
    rule = {"name": "slow", "delay": "300ms", "delay_at": "body", "outcome": {"status": 503, "body": "empty"}}
    client = await make_client(faults=faults(rules=[rule]))
    start = time.monotonic()
    response = await get_content(client, DOC_CARD)
    assert time.monotonic() - start >= 0.3
    assert response.status == 503
    assert await response.read() == b""
    header = response.headers["X-Content-Provider-Fault"]
    assert "delay=300ms@body; applied=" in header
    assert header.endswith("before the headers (no body to pause in)")


async def test_a_client_hanging_up_during_a_dribbled_body_is_not_a_server_error(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp's test server cancels the handler when its client goes; ``serve`` does not
    (tests/test_hostile.py has that case, with the access log line)."""
    client = await make_client(faults=faults(rules=[{"name": "dribble", "bandwidth": 20000}]))
    with caplog.at_level(logging.INFO):
        response = await get_content(client, DOC_CARD)
        assert response.status == 200
        total = int(response.headers["Content-Length"])
        first = await response.content.read(1000)
        assert first
        await asyncio.sleep(0.3)
        response.close()  # the client gives up, as curl -m would
        for _ in range(100):
            entries = (await (await client.get("/__admin/requests")).json())["requests"]
            if entries and entries[0].get("clientClosed"):
                break
            await asyncio.sleep(0.05)
    [entry] = entries
    assert entry["status"] == 200
    assert entry["clientClosed"] is True
    assert 0 < entry["bytesSent"] < total
    assert "internal error" not in caplog.text
    assert "Traceback" not in caplog.text
