"""Is this fixture an image the app can show? Readable JPEG, and a card's shape."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from content_provider.core.contract import CARD_ASPECT


@dataclass(frozen=True)
class FixtureProblem:
    """A fixture that is not what the contract asks for: where and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def jpeg_problem(data: bytes, *, card: bool, tolerance: float) -> str | None:
    """Why ``data`` is not a good fixture, or ``None`` when it is.

    Decodes the whole image, so a JPEG cut short or with damaged bytes is caught; at an
    eighth of the size (libjpeg's DCT scaling), which still reads every byte of the scan
    but is about four times faster than a full decode. Card sides (front, back) must also
    be 1200:757 within ``tolerance`` (relative).
    """
    if not data:
        return "empty file"
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            size = image.size
            if kind == "JPEG":
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
    except Exception as exc:  # Pillow raises many types for broken input
        return f"not a readable image: {exc}"
    if kind != "JPEG":
        return f"not a JPEG (Pillow reads it as {kind})"
    width, height = size
    if card and height:
        ratio = width / height
        if abs(ratio / CARD_ASPECT - 1) > tolerance:
            return (
                f"aspect ratio {width}x{height} = {ratio:.4f} is off 1200:757 = {CARD_ASPECT:.4f} "
                f"by more than {tolerance:.1%}"
            )
    return None


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def jws_payload(data: bytes) -> tuple[str, bytes] | str:
    """A recorded back side (``back.jws``): its compact JWS and payload, or why it is not one.

    The signature is not checked here: the mock does not hold the signer's keys, and the
    back is served as recorded whatever it says.
    """
    try:
        compact = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return "not a compact JWS: not ASCII"
    parts = compact.split(".")
    if len(parts) != 3:
        return f"not a compact JWS: {len(parts)} part(s), want HEADER.PAYLOAD.SIGNATURE"
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except ValueError as exc:
        return f"not a compact JWS: the payload is not base64url ({exc})"
    return compact, payload
