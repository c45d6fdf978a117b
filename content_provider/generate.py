"""Make fixture images with Pillow: ID-1 shaped card sides and authentication images.

The bundled demo fixtures come from :func:`write_demo`; ``content-provider generate``
makes more. Images are drawn flat so they compress to a few tens of kilobytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .contract import CARD_SIZE
from .fsutil import atomic_write
from .layout import DEFAULT_DIR, MEMBERS_FILE, ORGS_DIR, USERS_DIR

AUTH_SIZE = (640, 640)
JPEG_QUALITY = 70

DOC_CARD_ID = "67d21afb-e830-4fee-a691-00a997ffbe1a"
DOC_AUTH_ID = "4018e11f-1209-45f5-ade7-e59004e10745"


def _accent(label: str) -> tuple[int, int, int]:
    """A stable colour per label, so the same user always looks the same."""
    digest = hashlib.sha256(label.encode()).digest()
    return (40 + digest[0] % 150, 40 + digest[1] % 150, 60 + digest[2] % 150)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _jpeg(image: Image.Image, optimize: bool = True) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=optimize)
    return out.getvalue()


def card_jpeg(label: str, side: str = "front", size: tuple[int, int] = CARD_SIZE, *, optimize: bool = True) -> bytes:
    """One card side, 1200x757 by default, with ``label`` written on it; the same bytes for the same
    label (and Pillow). ``optimize=False`` saves a Huffman pass: about half the time, a few % bigger."""
    width, height = size
    accent = _accent(label)
    image = Image.new("RGB", size, accent)
    draw = ImageDraw.Draw(image)
    scale = width / CARD_SIZE[0]
    band = int(height * 0.22)
    draw.rectangle((0, height - band, width, height), fill=tuple(c // 2 for c in accent))
    if side == "front":
        # A chip, a photo placeholder and the label; the app prints name, issuer and date on top.
        draw.rounded_rectangle(
            (int(80 * scale), int(220 * scale), int(230 * scale), int(330 * scale)),
            radius=int(18 * scale),
            fill=(212, 175, 55),
        )
        draw.ellipse(
            (width - int(380 * scale), int(120 * scale), width - int(120 * scale), int(380 * scale)),
            fill=(235, 235, 235),
        )
        draw.text((int(80 * scale), int(70 * scale)), label, fill="white", font=_font(int(56 * scale)))
    else:
        draw.rectangle((0, int(90 * scale), width, int(200 * scale)), fill=(20, 20, 20))
        draw.text((int(80 * scale), int(260 * scale)), f"{label} - back", fill="white", font=_font(int(48 * scale)))
    draw.text(
        (int(80 * scale), height - band + int(40 * scale)),
        "content-provider mock - not a real card",
        fill="white",
        font=_font(int(34 * scale)),
    )
    return _jpeg(image, optimize)


def auth_jpeg(label: str, *, optimize: bool = True) -> bytes:
    """An authentication image: a square with a ring and ``label``."""
    accent = _accent(label)
    image = Image.new("RGB", AUTH_SIZE, (245, 245, 245))
    draw = ImageDraw.Draw(image)
    draw.ellipse((120, 80, 520, 480), outline=accent, width=40)
    draw.text((60, 540), label, fill=accent, font=_font(44))
    return _jpeg(image, optimize)


def write_images(folder: Path, label: str, *, front: bool, back: bool, auth: bool) -> list[Path]:
    """Write the chosen images into ``folder`` (atomically); the paths written."""
    written = []
    if front:
        written.append(folder / "front.jpg")
        atomic_write(written[-1], card_jpeg(label, "front"))
    if back:
        written.append(folder / "back.jpg")
        atomic_write(written[-1], card_jpeg(label, "back"))
    if auth:
        written.append(folder / "auth.jpg")
        atomic_write(written[-1], auth_jpeg(label))
    return written


def write_members(folder: Path, entries: Iterable[str]) -> Path:
    path = folder / MEMBERS_FILE
    lines = ["# one content id subject or pattern (glob, or re:<regex>) a line", *entries]
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path


def write_demo(root: Path) -> list[Path]:
    """The bundled demo set (see the table of demo ids in docs/fixtures.md)."""
    written: list[Path] = []
    users = root / USERS_DIR
    orgs = root / ORGS_DIR
    written += write_images(users / DOC_CARD_ID, "Anna Andersson", front=True, back=True, auth=False)
    written += write_images(users / DOC_AUTH_ID, "Sign in?", front=False, back=False, auth=True)
    written += write_images(orgs / "acme", "ACME Corporation", front=True, back=True, auth=True)
    written.append(write_members(orgs / "acme", ["alice", "bob", "acme-*"]))
    written += write_images(orgs / "globex", "Globex", front=True, back=False, auth=True)
    written.append(write_members(orgs / "globex", ["carol", "re:globex-[0-9]+"]))
    written += write_images(users / "alice", "Alice (own card)", front=True, back=False, auth=False)
    written += write_images(root / DEFAULT_DIR, "Default card", front=True, back=False, auth=True)
    return written
