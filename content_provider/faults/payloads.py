"""Broken payloads: each a named way a content provider's answer can be wrong.

Every mode takes the normal answer's elements and returns the bytes to send and the
``Content-Type`` to send them with. Image modes change the first element (``front``
or ``auth_image``); JWS modes change the ``back`` element, adding one made from the
front when the answer has none, so the fault is always visible.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from content_provider.core.b64 import b64url_decode, b64url_encode
from content_provider.core.contract import JSON_TYPE, JWS_TYPE

Elements = list[dict[str, str]]


@dataclass(frozen=True)
class PayloadContext:
    elements: Elements
    sign: Callable[[bytes], str]  # the server's own signer
    sign_as: Callable[[str, bytes], str]  # sign with a stand-in key: "untrusted" or "expired"
    header: dict[str, Any]  # the server's own protected header


@dataclass(frozen=True)
class PayloadMode:
    description: str
    hermod_sees: str
    make: Callable[[PayloadContext], tuple[bytes, str]]


def _json(elements: Elements, **top: Any) -> bytes:
    return json.dumps({"data": elements, **top}, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _first_image(ctx: PayloadContext) -> bytes:
    return base64.b64decode(ctx.elements[0]["data"])


def _with_first(ctx: PayloadContext, data: str) -> bytes:
    elements = [dict(e) for e in ctx.elements]
    elements[0]["data"] = data
    return _json(elements)


def _jpeg(image: Image.Image, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def _image_mode(transform: Callable[[bytes], bytes]) -> Callable[[PayloadContext], tuple[bytes, str]]:
    return lambda ctx: (_with_first(ctx, _b64(transform(_first_image(ctx)))), JSON_TYPE)


@functools.lru_cache(maxsize=16)
def damaged_jpeg(jpeg: bytes) -> bytes:
    """Overwrite the Huffman table's counts: it still opens as a JPEG but cannot be decoded."""
    marker = jpeg.find(b"\xff\xc4")
    damaged = bytearray(jpeg)
    if marker < 0:
        marker = len(jpeg) // 3
    damaged[marker + 5 : marker + 21] = b"\xff" * 16
    return bytes(damaged)


def truncated_jpeg(jpeg: bytes) -> bytes:
    return jpeg[: len(jpeg) // 2]


@functools.lru_cache(maxsize=16)
def png_of(jpeg: bytes) -> bytes:
    out = io.BytesIO()
    with Image.open(io.BytesIO(jpeg)) as image:
        image.save(out, "PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=16)
def wrong_aspect(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return _jpeg(image.convert("RGB").resize((900, 900)), quality=80)


OVERSIZED = (12000, 7570)  # about 91 megapixels: over Pillow's 89.5 MP bomb warning


@functools.lru_cache(maxsize=4)
def oversized(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return _jpeg(image.convert("RGB").resize(OVERSIZED, Image.Resampling.NEAREST), quality=95)


@functools.lru_cache(maxsize=16)
def progressive(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return _jpeg(image.convert("RGB"), quality=85, progressive=True)


@functools.lru_cache(maxsize=16)
def cmyk(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return _jpeg(image.convert("CMYK"), quality=85)


@functools.lru_cache(maxsize=16)
def exif_rotated(jpeg: bytes) -> bytes:
    """Pixels stored turned a quarter; EXIF Orientation 6 says to turn them back."""
    with Image.open(io.BytesIO(jpeg)) as image:
        stored = image.convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(stored, quality=85, exif=exif.tobytes())


def _back_index(ctx: PayloadContext) -> tuple[Elements, int, bytes]:
    """Elements with a back element (made from the front if missing), its index and JPEG."""
    elements = [dict(e) for e in ctx.elements]
    for index, element in enumerate(elements):
        if element["key"] == "back":
            _, payload, _ = element["data"].split(".")
            return elements, index, b64url_decode(payload)
    jpeg = _first_image(ctx)
    elements.append({"content_encoding": "text/plain", "content_type": JWS_TYPE, "key": "back", "data": ""})
    return elements, len(elements) - 1, jpeg


def _back_mode(
    make_jws: Callable[[PayloadContext, bytes], str],
) -> Callable[[PayloadContext], tuple[bytes, str]]:
    def mode(ctx: PayloadContext) -> tuple[bytes, str]:
        elements, index, jpeg = _back_index(ctx)
        elements[index]["data"] = make_jws(ctx, jpeg)
        return _json(elements), JSON_TYPE

    return mode


def _bad_signature(ctx: PayloadContext, jpeg: bytes) -> str:
    header, payload, signature = ctx.sign(jpeg).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x5A
    return f"{header}.{payload}.{b64url_encode(bytes(raw))}"


def _alg_none(ctx: PayloadContext, jpeg: bytes) -> str:
    header = {k: v for k, v in ctx.header.items() if k not in ("x5c", "x5t#S256")}
    header["alg"] = "none"
    return f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(jpeg)}."


def _wrong_kid(ctx: PayloadContext, jpeg: bytes) -> str:
    return ctx.sign_as("wrong-kid", jpeg)


def _make_modes() -> dict[str, PayloadMode]:
    def elements_of(ctx: PayloadContext) -> Elements:
        return [dict(e) for e in ctx.elements]

    def misspelt(ctx: PayloadContext) -> bytes:
        renamed = [{"contentEncoding" if k == "content_encoding" else k: v for k, v in e.items()} for e in ctx.elements]
        return _json(renamed)

    def missing(ctx: PayloadContext) -> bytes:
        return _json([{k: v for k, v in e.items() if k != "content_type"} for e in ctx.elements])

    def extra(ctx: PayloadContext) -> bytes:
        more = dict(ctx.elements[0], key="unexpected")
        return _json([*elements_of(ctx), more])

    def broken_padding(ctx: PayloadContext) -> bytes:
        # A missing "=" alone is no fault for Java, whose decoders never need the padding. So: a "="
        # where no padding can be (at a 4-character boundary mid-string), which Java's basic and MIME
        # decoders refuse, and 4k+1 data characters, which no decoder can take (Python's lax one skips
        # a stray "=" but not a length like that). The padding at the end goes.
        data = ctx.elements[0]["data"].rstrip("=")
        data = data[: len(data) - (len(data) - 1) % 4]
        middle = len(data) // 8 * 4
        return _with_first(ctx, data[:middle] + "=" + data[middle:])

    body = _json
    modes = {
        "malformed_json": PayloadMode(
            "a body that is not JSON at all",
            "a JSON parse error",
            lambda ctx: (body(ctx.elements)[:40] + b",,}{", JSON_TYPE),
        ),
        "truncated_json": PayloadMode(
            "the JSON cut off half-way (Content-Length matches the cut body)",
            "a JSON parse error (unexpected end)",
            lambda ctx: (body(ctx.elements)[: len(body(ctx.elements)) // 2], JSON_TYPE),
        ),
        "wrong_content_type": PayloadMode(
            "the normal answer labelled text/html",
            "a correct body with the wrong media type",
            lambda ctx: (body(ctx.elements), "text/html; charset=utf-8"),
        ),
        "empty_data": PayloadMode('`{"data": []}`', "no images", lambda ctx: (body([]), JSON_TYPE)),
        "missing_member": PayloadMode(
            "every element without `content_type`",
            "elements it cannot classify",
            lambda ctx: (missing(ctx), JSON_TYPE),
        ),
        "misspelt_member": PayloadMode(
            "`contentEncoding` instead of `content_encoding`",
            "elements with a member it does not know and one missing",
            lambda ctx: (misspelt(ctx), JSON_TYPE),
        ),
        "extra_elements": PayloadMode(
            "one more element with key `unexpected`",
            "more elements than the contract allows",
            lambda ctx: (extra(ctx), JSON_TYPE),
        ),
        "invalid_base64": PayloadMode(
            "the image's `data` is not base64",
            "a base64 decode error",
            lambda ctx: (_with_first(ctx, "!!not*base64!!" + ctx.elements[0]["data"][14:]), JSON_TYPE),
        ),
        "base64url": PayloadMode(
            "the image in the URL-safe alphabet (`-_` for `+/`)",
            "a base64 decode error (strict decoders)",
            lambda ctx: (_with_first(ctx, ctx.elements[0]["data"].replace("+", "-").replace("/", "_")), JSON_TYPE),
        ),
        "broken_padding": PayloadMode(
            "the image's base64 with a `=` mid-string and a length no decoder takes",
            "a base64 padding error",
            lambda ctx: (broken_padding(ctx), JSON_TYPE),
        ),
        "damaged_jpeg": PayloadMode(
            "a JPEG whose Huffman table is overwritten: opens, cannot be decoded",
            "an image decode error",
            _image_mode(damaged_jpeg),
        ),
        "truncated_jpeg": PayloadMode(
            "the JPEG cut in half (no end marker)", "a truncated image", _image_mode(truncated_jpeg)
        ),
        "png_as_jpeg": PayloadMode("a PNG labelled image/jpeg", "a PNG where a JPEG is due", _image_mode(png_of)),
        "wrong_aspect": PayloadMode("a 900x900 JPEG", "a card that is not 1200:757", _image_mode(wrong_aspect)),
        "oversized_image": PayloadMode(
            f"a {OVERSIZED[0]}x{OVERSIZED[1]} JPEG (about 91 megapixels)",
            "an image over decoders' pixel limits",
            _image_mode(oversized),
        ),
        "progressive_jpeg": PayloadMode(
            "a valid progressive JPEG", "a valid image some decoders mishandle", _image_mode(progressive)
        ),
        "cmyk_jpeg": PayloadMode(
            "a valid CMYK JPEG", "a valid image some decoders show in wrong colours", _image_mode(cmyk)
        ),
        "exif_rotated": PayloadMode(
            "pixels stored 757x1200 with EXIF Orientation 6",
            "a valid image that is the right shape only if EXIF is honoured",
            _image_mode(exif_rotated),
        ),
        "jws_bad_signature": PayloadMode(
            "the back's signature with flipped bits", "a JWS that does not verify", _back_mode(_bad_signature)
        ),
        "jws_alg_none": PayloadMode(
            "an unsigned back, `alg: none`, empty signature",
            "a JWS that must be refused",
            _back_mode(_alg_none),
        ),
        "jws_wrong_kid": PayloadMode(
            "a back signed by our key but naming `kid: wrong-kid`",
            "a JWS whose key cannot be found",
            _back_mode(_wrong_kid),
        ),
        "jws_untrusted_cert": PayloadMode(
            "a back signed by another self-signed key and certificate (in `x5c`)",
            "a JWS that verifies only against a certificate nobody trusts",
            _back_mode(lambda ctx, jpeg: ctx.sign_as("untrusted", jpeg)),
        ),
        "jws_expired_cert": PayloadMode(
            "a back signed by a key whose certificate (in `x5c`) expired",
            "a JWS from an expired certificate",
            _back_mode(lambda ctx, jpeg: ctx.sign_as("expired", jpeg)),
        ),
    }
    return modes


PAYLOAD_MODES: dict[str, PayloadMode] = _make_modes()
