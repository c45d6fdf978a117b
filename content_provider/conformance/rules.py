"""Does a content provider honour the contract? A numbered list of rules, run as Hermod would call.

``await check(url)`` returns a :class:`Report`; ``content-provider check URL`` prints it
for people (a table) or for CI (JSON, JUnit XML). Each rule says whether the vendor's
text requires it or it is a recommendation of ours; only a failed *required* rule makes
the report fail.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography import x509
from joserfc.errors import JoseError

from content_provider.conformance.jpeg import Decoded, Undecodable, aspect_problem, decode_image
from content_provider.conformance.result import Result
from content_provider.conformance.seen import Seen, Side, Signature, Timing
from content_provider.core.b64 import b64url_decode, basic_authorization
from content_provider.core.contract import CARD_ASPECT, JSON_TYPE, JWS_TYPE
from content_provider.signing.jws import verify_back

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_PIXELS = 25_000_000


@dataclass(frozen=True)
class RuleInfo:
    id: str
    title: str
    required: bool  # by the vendor's text; otherwise a recommendation of ours


RULES = {
    rule.id: rule
    for rule in (
        RuleInfo("CP01", "POST /getcontent answers 200", True),
        RuleInfo("CP02", "the body is a JSON object with a data array", True),
        RuleInfo("CP03", "Content-Type is application/json", False),
        RuleInfo("CP04", "data has 1-2 elements for a card layout, 1 for an authentication image", True),
        RuleInfo("CP05", "every element has the four string members", True),
        RuleInfo("CP06", "keys are front (+ back) for a card, auth_image for an authentication image", True),
        RuleInfo("CP07", "images are base64 image/jpeg", True),
        RuleInfo("CP08", "images decode as JPEG", True),
        RuleInfo("CP09", "card sides have the aspect ratio 1200:757", True),
        RuleInfo("CP10", "images stay under the size limits", False),
        RuleInfo("CP11", "images are plain JPEG (baseline, RGB or grey, no EXIF rotation)", False),
        RuleInfo("CP12", "the back is a signed compact JWS whose payload is a JPEG", True),
        RuleInfo("CP13", "the back's signature verifies against the trusted keys", True),
        RuleInfo("CP14", "the back's x5c certificate is within its validity", False),
        RuleInfo("CP15", "basic authentication: 401 with WWW-Authenticate without credentials, 200 with", True),
        RuleInfo("CP16", "an unknown content id does not answer 200", False),
        RuleInfo("CP17", "a malformed body gets a 4xx, not 200 or 5xx", False),
        RuleInfo("CP18", "answers arrive within the timeout", True),
    )
}


@dataclass
class Report:
    """Every result of a run and the one verdict every output format gives (text, JSON, JUnit, the
    exit status): a required rule failed; with ``strict``, also a required rule left unverified or
    skipped (CP13 without --trust, CP15 without --user) and a recommendation not met."""

    url: str  # the provider's, or the fixture folder's path (``source``)
    results: list[Result] = field(default_factory=list)
    strict: bool = False
    unreachable: str | None = None  # why no connection could be made: then CP01 is the only result
    source: str = "provider"  # provider (content-provider check URL) | fixtures (the mock's own, in-process)
    # What the HTML report draws (seen.py): per content id in the order checked, and each request's timing.
    seen: dict[str, Seen] = field(default_factory=dict, repr=False)
    requests: list[Timing] = field(default_factory=list, repr=False)
    notes: list[str] = field(default_factory=list)  # said once, above the results (e.g. what was not run)

    @property
    def ok(self) -> bool:
        return not self.failing()

    @property
    def exit_status(self) -> int:
        return 0 if self.ok else 1

    def failed(self, content_id: str | None = None) -> set[str]:
        return {r.rule for r in self.results if r.failed and (content_id is None or r.content_id == content_id)}

    def failed_required(self) -> list[str]:
        return sorted({r.rule for r in self.results if r.failed and r.required})

    def failed_recommended(self) -> list[str]:
        return sorted({r.rule for r in self.results if r.failed and not r.required})

    def not_verified(self) -> dict[str, str]:
        """Required rules that were skipped or could not be verified, each with why (the first reason)."""
        reasons: dict[str, str] = {}
        for result in self.results:
            if result.required and result.status in ("skip", "unverified"):
                reasons.setdefault(result.rule, result.checked)
        return dict(sorted(reasons.items()))

    def failing(self) -> list[str]:
        """The rules that make this run fail."""
        if not self.strict:
            return self.failed_required()
        return sorted({*self.failed_required(), *self.not_verified(), *self.failed_recommended()})

    def counts_as_failure(self, result: Result) -> bool:
        """Whether ``result`` is a failure in this run's verdict (JUnit marks exactly these)."""
        if result.failed:
            return result.required or self.strict
        return self.strict and result.required and result.status in ("skip", "unverified")

    def sort(self) -> None:
        """The results by content id, in the order checked (the provider's last), then by rule."""
        order = {content_id: index for index, content_id in enumerate(self.seen)}
        self.results.sort(key=lambda r: (order.get(r.content_id or "", len(order)), r.rule))

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "ok": self.ok,
            "exit_status": self.exit_status,
            "strict": self.strict,
            "failed_required": self.failed_required(),
            "failed_recommended": self.failed_recommended(),
            "not_verified": self.not_verified(),
            "unreachable": self.unreachable,
            "results": [asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class Options:
    user: str | None = None
    password: str | None = None
    trust: dict[str, Any] | None = None  # a JWKS
    timeout: float = 10.0
    max_image_bytes: int = MAX_IMAGE_BYTES
    aspect_tolerance: float = 0.01
    trust_name: str = "--trust"  # where ``trust`` came from, as CP13 says it

    def auth_headers(self, password_suffix: str = "") -> dict[str, str]:
        """Basic authentication as Hermod sends it, or nothing when no credentials are given."""
        if self.user is None or self.password is None:
            return {}
        return basic(self.user, self.password + password_suffix)


class _Ids:
    """Collects the results for one content id (into a report's list, or any list).

    Into a report, it also keeps what the HTML report draws (:class:`Seen`); into a bare list
    (upstream validation) nothing: the element in hand (``side``) is dropped with it."""

    def __init__(self, report: Report | list[Result], content_id: str | None) -> None:
        self.results = report.results if isinstance(report, Report) else report
        self.content_id = content_id
        self.seen: Seen | None = None
        if isinstance(report, Report) and content_id is not None:
            self.seen = report.seen.setdefault(content_id, Seen(content_id))
        self.side: Side | None = None  # the element being checked: its results are noted on it

    def add(self, rule: str, ok: bool | None, checked: str, evidence: str = "", unverified: bool = False) -> bool:
        info = RULES[rule]
        status = "skip" if ok is None else "unverified" if unverified else "pass" if ok else "fail"
        result = Result(rule, info.title, info.required, status, self.content_id, checked, "" if ok else evidence)
        self.results.append(result)
        if self.side is not None:
            self.side.results.append(result)
        return bool(ok)

    def element(self, element: dict[str, str]) -> Side:
        """Start checking one element (its four members are strings: CP05 passed)."""
        self.side = Side(element["key"], element["content_type"], element["content_encoding"])
        if self.seen is not None:
            self.seen.sides.append(self.side)
        return self.side


def snippet(data: bytes | str, length: int = 120) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return text if len(text) <= length else text[:length] + f"... ({len(text)} chars)"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": basic_authorization(user, password)}


def _check_image(ids: _Ids, side: Side, raw: bytes, card: bool, options: Options) -> None:
    key = side.key
    side.data = raw
    try:
        image = side.decoded = decode_image(raw)
        why = "" if image.format == "JPEG" else f"decodes as {image.format}, not JPEG"
    except Undecodable as exc:
        why = f"not decodable: {exc}"
    if not ids.add("CP08", not why, f"{key} decodes as JPEG", f"{key}: {why} ({len(raw)} bytes)"):
        return
    width, height = image.width, image.height
    if card:
        _check_aspect(ids, key, image, options)
    ids.add(
        "CP10",
        len(raw) <= options.max_image_bytes and width * height <= MAX_PIXELS,
        f"{key} is at most {options.max_image_bytes} bytes and {MAX_PIXELS} pixels",
        f"{key} is {len(raw)} bytes, {width}x{height} = {width * height} pixels",
    )
    oddities = []
    if image.progressive:
        oddities.append("progressive")
    if image.mode not in ("RGB", "L"):
        oddities.append(f"mode {image.mode}")
    if image.orientation not in (0, 1):
        oddities.append(f"EXIF orientation {image.orientation}")
    ids.add("CP11", not oddities, f"{key} is baseline RGB/grey without rotation", f"{key}: {', '.join(oddities)}")


def _check_aspect(ids: _Ids, key: str, image: Decoded, options: Options) -> None:
    """CP09 on one card side: the front's JPEG, or the JPEG a back's JWS carries."""
    width, height = image.width, image.height
    ratio = width / height if height else 0.0
    ids.add(
        "CP09",
        aspect_problem(width, height, options.aspect_tolerance) is None,
        f"{key} is 1200:757 within {options.aspect_tolerance:.0%}",
        f"{key} is {width}x{height} = {ratio:.4f}, want {CARD_ASPECT:.4f}",
    )


def _payload_image(side: Side, payload: bytes) -> Decoded | None:
    """The back's payload decoded, kept on ``side``; ``None`` when it is not a JPEG."""
    side.data = payload
    try:
        side.decoded = decode_image(payload)
    except Undecodable:
        return None
    return side.decoded if side.decoded.format == "JPEG" else None


def _trusted_key(trust: dict[str, Any], header: dict[str, Any]) -> str:
    """Which of the trusted keys a verified back names (by its ``kid``), for the report."""
    keys = [k for k in trust.get("keys", []) if isinstance(k, dict)]
    named = [k for k in keys if "kid" in header and k.get("kid") == header["kid"]]
    key = named[0] if named else keys[0] if len(keys) == 1 else None
    if key is None:
        return f"one of the {len(keys)} keys"
    kind = " ".join(str(key[m]) for m in ("kty", "crv") if m in key)
    return f"key {str(key.get('kid', '(no kid)'))!r} ({kind})"


def _check_back(ids: _Ids, side: Side, element: dict[str, Any], options: Options) -> None:
    compact = element["data"]
    parts = compact.split(".")
    problems = []
    header: dict[str, Any] = {}
    payload = b""
    if element.get("content_encoding") != "text/plain":
        problems.append(f"content_encoding {element.get('content_encoding')!r}, want 'text/plain'")
    if element.get("content_type") != JWS_TYPE:
        problems.append(f"content_type {element.get('content_type')!r}, want {JWS_TYPE!r} (assumed)")
    if len(parts) != 3:
        problems.append(f"not HEADER.PAYLOAD.SIGNATURE: {len(parts)} part(s)")
    else:
        try:
            decoded = json.loads(b64url_decode(parts[0]))
            payload = b64url_decode(parts[1])
            if not isinstance(decoded, dict):
                raise ValueError(f"the header is JSON {type(decoded).__name__}, not an object")
            header = decoded
        except (ValueError, binascii.Error, RecursionError) as exc:
            problems.append(f"header or payload not base64url JSON: {exc}")
        if str(header.get("alg", "none")).lower() == "none" or not parts[2]:
            problems.append(f"unsigned: alg {header.get('alg')!r}, signature {len(parts[2])} chars")
        if payload and _payload_image(side, payload) is None:
            problems.append(f"payload is not a decodable JPEG ({len(payload)} bytes)")
    signature = side.signature = Signature(header, "skip", "")
    if not ids.add("CP12", not problems, "back is a signed compact JWS of a JPEG", "; ".join(problems)):
        signature.detail = "not checked: the JWS is malformed"
        ids.add("CP13", None, "signature not checked: the JWS is malformed")
        ids.add("CP14", None, "certificate not checked: the JWS is malformed")
        return
    if side.decoded is not None:
        _check_aspect(ids, side.key, side.decoded, options)
    against = f"signature verifies against {options.trust_name}"
    if options.trust is None:
        signature.status, signature.detail = "unverified", f"not verified: no {options.trust_name} given"
        ids.add("CP13", True, f"no {options.trust_name} given: signature NOT verified", unverified=True)
    else:
        try:
            verify_back(compact, options.trust)
            signature.status = "pass"
            key = _trusted_key(options.trust, header)
            signature.detail = f"verified: {header.get('alg')} with {key} of {options.trust_name}"
            ids.add("CP13", True, against)
        except (JoseError, ValueError) as exc:
            signature.status = "fail"
            signature.detail = f"does not verify against {options.trust_name}: {type(exc).__name__}: {exc}"
            ids.add("CP13", False, against, f"{type(exc).__name__}: {exc} (kid {header.get('kid')!r})")
    chain = header.get("x5c")
    if not chain:
        ids.add("CP14", None, "no x5c certificate in the header")
        return
    if not isinstance(chain, list) or not isinstance(chain[0], str):
        ids.add("CP14", False, "x5c certificate within its validity", "x5c is not a list of base64 certificates")
        return
    try:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
    except (ValueError, binascii.Error) as exc:
        ids.add("CP14", False, "x5c certificate within its validity", f"x5c[0] is not a certificate: {exc}")
        return
    now = datetime.datetime.now(datetime.UTC)
    ids.add(
        "CP14",
        certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc,
        "x5c certificate within its validity",
        f"valid {certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}",
    )


def _check_answer(ids: _Ids, content_id: str, headers: Mapping[str, str], body: bytes, options: Options) -> None:
    card = not content_id.upper().startswith("AUTH:")
    content_type = headers.get("Content-Type", "")
    ids.add(
        "CP03",
        content_type.split(";")[0].strip() == JSON_TYPE,
        "Content-Type",
        f"Content-Type: {content_type!r}",
    )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        ids.add("CP02", False, "JSON object with data array", f"not JSON ({exc}): {snippet(body)}")
        return
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        ids.add("CP02", False, "JSON object with data array", f"got {snippet(json.dumps(document))}")
        return
    ids.add("CP02", True, "JSON object with data array")
    elements = document["data"]
    allowed = (1, 2) if card else (1,)
    counted = ids.add(
        "CP04",
        len(elements) in allowed,
        f"{'1-2' if card else '1'} element(s)",
        f"{len(elements)} element(s)",
    )
    if not counted and not elements:
        return
    members = ("content_encoding", "content_type", "key", "data")
    bad = [
        f"element {i}: {sorted(set(e) if isinstance(e, dict) else [])}"
        for i, e in enumerate(elements)
        if not isinstance(e, dict) or any(not isinstance(e.get(m), str) for m in members)
    ]
    if not ids.add("CP05", not bad, "four string members", "; ".join(bad) + f"; want {list(members)}"):
        return
    keys = [e["key"] for e in elements]
    want = (["front"], ["front", "back"]) if card else (["auth_image"],)
    ids.add("CP06", keys in [list(w) for w in want], f"keys {' or '.join(str(w) for w in want)}", f"keys {keys}")
    for element in elements:
        side = ids.element(element)
        if element["key"] == "back":
            _check_back(ids, side, element, options)
            continue
        key = element["key"]
        problems = []
        if element["content_encoding"] != "base64":
            problems.append(f"content_encoding {element['content_encoding']!r}")
        if element["content_type"] != "image/jpeg":
            problems.append(f"content_type {element['content_type']!r}")
        try:
            raw = base64.b64decode(element["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            problems.append(f"data is not strict base64: {exc} ({snippet(element['data'], 40)})")
            raw = b""
        if ids.add("CP07", not problems, f"{key} is base64 image/jpeg", f"{key}: " + "; ".join(problems)):
            _check_image(ids, side, raw, card, options)
        else:
            side.data = raw  # a wrong label on real bytes: still drawn (the report decodes it)
    ids.side = None


def answer_rules(
    ids: _Ids, content_id: str, status: int, headers: Mapping[str, str], body: bytes, options: Options
) -> None:
    """CP01-CP14 on one answer: what ``check`` runs on each id, and what the mock runs on every live
    upstream answer (content_provider/upstream/validate.py). Blocking: decodes images, verifies the JWS."""
    if ids.seen is not None:
        ids.seen.status = status
    if not ids.add("CP01", status == 200, "200", f"status {status}: {snippet(body)}"):
        return
    _check_answer(ids, content_id, headers, body, options)


def check_answer(
    content_id: str, status: int, headers: Mapping[str, str], body: bytes, options: Options
) -> list[Result]:
    """The results of :func:`answer_rules` for an answer already in hand; blocking, run it in a thread."""
    results: list[Result] = []
    answer_rules(_Ids(results, content_id), content_id, status, headers, body, options)
    return results


def check_answer_into(
    report: Report,
    content_id: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    options: Options,
    caption: str = "",
) -> None:
    """:func:`answer_rules` on an answer in hand, into ``report`` (with what the HTML report draws,
    ``caption`` saying what answered); blocking, run it in a thread."""
    ids = _Ids(report, content_id)
    if ids.seen is not None:
        ids.seen.caption = caption
    answer_rules(ids, content_id, status, headers, body, options)
