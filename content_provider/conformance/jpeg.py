"""Is this fixture an image the app can show? Readable JPEG, and a card's shape."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from content_provider.core.b64 import b64url_decode
from content_provider.core.contract import CARD_ASPECT, COMPACT_JWS


@dataclass(frozen=True)
class FixtureProblem:
    """A fixture that is not what the contract asks for: where and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Decoded:
    """What decoding an image told: its format and, for a JPEG, what the phone would make of it."""

    format: str | None
    width: int
    height: int
    mode: str
    progressive: bool
    orientation: int  # EXIF 0x0112; 1 (or 0) is upright


# Pillow names the stream it read: "cannot identify image file <_io.BytesIO object at 0x7f0b...>"
_OBJECT_REPR = re.compile(r" ?<[\w.]+ object at 0x[0-9a-fA-F]+>")


class Undecodable(Exception):
    """Pillow could not read the bytes as any image."""


def decode_image(data: bytes, *, draft: bool = False) -> Decoded:
    """Decode the whole of ``data`` (so a JPEG cut short or damaged is caught), or raise
    :class:`Undecodable`; the one decode the store, the admin API, the checker and upstream
    validation share.

    ``draft``: a JPEG is decoded at an eighth of its size (libjpeg's DCT scaling), which still
    reads every byte of the scan but is about four times faster; the size reported is the
    full one. A full decode does not warn of a decompression bomb (the checker judges size
    itself, CP10); a draft one warns as Pillow does, as fixtures always have.
    """
    try:
        with contextlib.nullcontext() if draft else warnings.catch_warnings():
            if not draft:
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
                if draft and kind == "JPEG":
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()
                progressive = bool(image.info.get("progressive") or image.info.get("progression"))
                orientation = image.getexif().get(0x0112, 1)
                return Decoded(kind, width, height, image.mode, progressive, orientation)
    except Exception as exc:  # Pillow raises many types for broken input
        raise Undecodable(_OBJECT_REPR.sub("", str(exc))) from None


def aspect_problem(width: int, height: int, tolerance: float) -> str | None:
    """Why a card side of ``width`` x ``height`` is not 1200:757 within ``tolerance`` (relative)."""
    ratio = width / height if height else 0.0
    if abs(ratio / CARD_ASPECT - 1) <= tolerance:
        return None
    return f"{width}x{height} = {ratio:.4f} is off 1200:757 = {CARD_ASPECT:.4f} by more than {tolerance:.1%}"


def jpeg_problem(data: bytes, *, card: bool, tolerance: float) -> str | None:
    """Why ``data`` is not a good fixture, or ``None`` when it is: a readable JPEG and, for
    card sides (front, back), 1200:757 within ``tolerance``."""
    if not data:
        return "empty file"
    try:
        decoded = decode_image(data, draft=True)
    except Undecodable as exc:
        return f"not a readable image: {exc}"
    if decoded.format != "JPEG":
        return f"not a JPEG (Pillow reads it as {decoded.format})"
    if card and decoded.height:
        problem = aspect_problem(decoded.width, decoded.height, tolerance)
        if problem is not None:
            return f"aspect ratio {problem}"
    return None


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def jws_payload(data: bytes) -> tuple[str, bytes] | str:
    """A recorded back side (``back.jws``): its compact JWS and payload, or why it is not one.

    The signature is not checked here: the mock does not hold the signer's keys, and the
    back is served as recorded whatever it says; but only when it is base64url and two dots
    (white space around it aside), which is copied into the answer as it is.
    """
    try:
        compact = data.decode("ascii").strip(" \t\r\n")
    except UnicodeDecodeError:
        return "not a compact JWS: not ASCII"
    parts = compact.split(".")
    if len(parts) != 3:
        return f"not a compact JWS: {len(parts)} part(s), want HEADER.PAYLOAD.SIGNATURE"
    if not COMPACT_JWS.fullmatch(compact):
        return "not a compact JWS: only base64url (A-Z a-z 0-9 - _) may be between its two dots"
    try:
        payload = b64url_decode(parts[1])
    except ValueError as exc:
        return f"not a compact JWS: the payload is not base64url ({exc})"
    return compact, payload
