"""The content provider contract in one place: ids, use cases, answer shape, errors.

See ``docs/contract.md``. Points the vendor's text leaves open are marked
*assumed* here and "We assume" there.
"""

from __future__ import annotations

import base64
import enum
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

CARD_ASPECT = 1200 / 757
CARD_SIZE = (1200, 757)
JPEG_TYPE = "image/jpeg"
JSON_TYPE = "application/json"  # the answer's and every error's
# assumed: the public excerpt is cut off where the back side's content_type is named.
JWS_TYPE = "application/jose"
# A JWS in compact serialisation: HEADER.PAYLOAD.SIGNATURE, each base64url without padding (the
# signature empty for alg none). Nothing in it is escaped in JSON, so it is copied into an answer as is.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class UseCase(enum.Enum):
    """What a content id asks for."""

    CARD = "PROV"  # card layout: front and optionally back
    AUTH = "AUTH"  # authentication image


_PREFIXES = {use_case.value: use_case for use_case in UseCase}


@dataclass(frozen=True)
class ContentId:
    """A parsed content id: ``PROV:<subject>``, ``AUTH:<subject>`` or a bare subject."""

    raw: str
    use_case: UseCase
    subject: str
    prefixed: bool
    # (use case, subject): what the fixture store remembers an id by; made once per parsed id
    key: tuple[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.use_case.value, self.subject))


# What makes a content id "empty": the same set as the OpenAPI pattern, which JSON Schema tools agree on
# (str.strip() alone would also take the \x1c-\x1f separators and Unicode spaces).
ASCII_SPACE = " \t\n\r\x0b\x0c"


def content_id_problem(value: str, max_length: int) -> str | None:
    """What is wrong with a ``contentId`` string, as "is ...", or ``None``: the one check that
    ``POST /getcontent``, the admin API's resolve and ``content-provider explain`` all make."""
    if not value.strip(ASCII_SPACE):
        return "is empty"
    if len(value) > max_length:
        return f"is {len(value)} characters; the limit is {max_length}"
    return None


BARE_IDS_OFF = "bare content ids are off (fixtures.bare_ids: off); use PROV: or AUTH:"


@functools.lru_cache(maxsize=4096)  # a pure function; a hot id is parsed once
def parse_content_id(raw: str, bare_ids: str) -> ContentId | None:
    """Split the use-case prefix off; ``None`` when a bare id is not served (``bare_ids: off``).

    The prefix is matched case-insensitively. A bare id is served as a card layout
    or an authentication image, as ``fixtures.bare_ids`` says.
    """
    head, sep, rest = raw.partition(":")
    if sep:
        use_case = _PREFIXES.get(head.upper())
        if use_case is not None:
            return ContentId(raw, use_case, rest, True)
    if bare_ids == "off":
        return None
    return ContentId(raw, UseCase.AUTH if bare_ids == "auth" else UseCase.CARD, raw, False)


def element(key: str, content_type: str, encoding: str, data: str) -> dict[str, str]:
    """One member of the answer's ``data`` array."""
    return {"content_encoding": encoding, "content_type": content_type, "key": key, "data": data}


def image_element(key: str, jpeg: bytes) -> dict[str, str]:
    return element(key, JPEG_TYPE, "base64", base64.b64encode(jpeg).decode("ascii"))


def jws_element(key: str, compact_jws: str) -> dict[str, str]:
    return element(key, JWS_TYPE, "text/plain", compact_jws)


def answer_body(elements: list[dict[str, str]]) -> bytes:
    """The 200 answer, encoded once so it can be cached and sent as is."""
    return json.dumps({"data": elements}, separators=(",", ":")).encode("ascii")


# The same bytes as answer_body, made without scanning the images: a card's base64 is tens of kB,
# which json.dumps reads character by character for escapes it cannot hold.


@functools.lru_cache(maxsize=64)
def _element_head(key: str, content_type: str, encoding: str) -> bytes:
    text = json.dumps(element(key, content_type, encoding, ""), separators=(",", ":"))
    return text.removesuffix('""}').encode("ascii")  # up to the data's opening quote


def image_part(key: str, jpeg: bytes) -> bytes:
    """:func:`image_element`, encoded: base64 has nothing JSON escapes, so it is copied as is."""
    return _element_head(key, JPEG_TYPE, "base64") + b'"' + base64.b64encode(jpeg) + b'"}'


def jws_part(key: str, compact_jws: str) -> bytes:
    """:func:`jws_element`, encoded: a compact JWS is base64url and dots, nothing JSON escapes, so it
    is copied as is; any other text goes through the JSON encoder, so the answer is always JSON."""
    if COMPACT_JWS.fullmatch(compact_jws):
        return signed_part(key, compact_jws.encode("ascii"))
    return signed_part(key, json.dumps(compact_jws)[1:-1].encode("ascii"))


def signed_part(key: str, compact_jws: bytes) -> bytes:
    """:func:`jws_element`, encoded, of a JWS this process signed (``Signer.sign_compact``: base64url
    and dots by construction) or one :func:`jws_part` escaped: copied as it is, not scanned again."""
    return _element_head(key, JWS_TYPE, "text/plain") + b'"' + compact_jws + b'"}'


def answer_of_parts(parts: list[bytes]) -> bytes:
    """The 200 answer from encoded elements; the same bytes as :func:`answer_body` of them."""
    return b'{"data":[' + b",".join(parts) + b"]}"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Errors are a small JSON object: a stable ``error`` code and a human ``message``."""
    body: dict[str, Any] = {"error": code, "message": message}
    body.update(extra)
    return body
