"""The conformance report as one self-contained HTML file: the cards as the phone shows them,
the failures marked on them, a summary on top.

One file, nothing fetched: the images are inline ``data:`` URIs, the style sheet is inline
and there is no script at all. A Content-Security-Policy in the file says so to the browser
(the one style sheet is allowed by its hash), so the page stays inert even if a provider's
string got past the escaping; every string that came from the provider (keys, labels, the
JWS header, evidence) is escaped, and shown as Python writes a string (``repr``) where it
stands inside a sentence, so control and bidirectional characters show as escapes.

The verdict is the :class:`~content_provider.conformance.rules.Report`'s own (``ok``,
``exit_status``, :func:`summary_lines`, ``counts_as_failure``), the same as the text, JSON
and JUnit formats give.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import html
import io
import json
import platform
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from cryptography import x509
from PIL import Image

from content_provider.conformance.jpeg import Decoded, Undecodable, decode_image
from content_provider.conformance.report import summary_lines
from content_provider.conformance.result import Result
from content_provider.conformance.rules import RULES, Report
from content_provider.conformance.seen import Seen, Side, Signature
from content_provider.core.contract import CARD_ASPECT
from content_provider.core.version import __version__

# The card on the phone: ID-1, 85.60 x 53.98 mm with 3.18 mm corners, drawn PHONE_WIDTH CSS px wide
# (a phone screen is 360-430 px wide), in the 1200:757 frame that the card's images must fill.
FRAME = (1200, 757)
PHONE_WIDTH = 340
# An image above these is shown downscaled (the report says so): the report stays small enough to attach.
SHOWN_BYTES = 1024 * 1024
SHOWN_PIXELS = 6_000_000
SHOWN_SIZE = (1200, 1200)
BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
HEADER_STRING = 60  # characters of a string in the JWS header shown (x5c certificates are long)
HEADER_TEXT = 4000  # characters of the whole header shown
EVIDENCE_ON_IMAGE = 110  # characters of evidence in a mark on the image (the whole is in the table)

# Where EXIF orientation N says the picture's top is, in the pixels as stored (EXIF 2.32, tag 0x0112).
EXIF_TOP = {2: "up", 3: "down", 4: "down", 5: "left", 6: "left", 7: "right", 8: "right"}
EXIF_TURN = {
    2: "mirror it",
    3: "turn it 180°",
    4: "mirror it top to bottom",
    5: "mirror it and turn it 90° counter-clockwise",
    6: "turn it 90° clockwise",
    7: "mirror it and turn it 90° clockwise",
    8: "turn it 90° counter-clockwise",
}
STATUS_TEXT = {"pass": "pass", "fail": "FAIL", "unverified": "unverified", "skip": "skipped"}
DASH = "\u2013"  # not run, no number
STATUS_SIGN = {"pass": "✓", "fail": "✗", "unverified": "?", "skip": DASH}
WORST_FIRST = ("fail", "unverified", "skip", "pass")

STYLE = """
:root { color: #1d2330; background: #fff; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
body { margin: 0 auto; max-width: 1200px; padding: 0 12px 40px; overflow-wrap: anywhere; }
h1 { font-size: 1.4rem; margin: 16px 0 4px; }
h2 { font-size: 1.15rem; border-bottom: 2px solid #d0d5dd; padding-bottom: 3px; margin-top: 28px; }
h3 { font-size: 1.05rem; margin: 14px 0 4px; overflow-wrap: anywhere; }
.answer h3 { margin-top: 0; }
code, pre, .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; background: #f6f7f9; border: 1px solid #e4e7ec; padding: 6px; margin: 4px 0; }
.verdict { font-size: 1.1rem; padding: 8px 12px; border: 3px solid; border-radius: 6px; }
.verdict-pass { border-color: #1a7f37; background: #edf7ee; }
.verdict-fail { border-color: #b42318; background: #fdeceb; }
.lines { margin: 6px 0; padding-left: 20px; }
.note { border-left: 4px solid #b54708; padding: 2px 10px; background: #fffaeb; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; }
th, td { border: 1px solid #d0d5dd; padding: 3px 6px; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
.matrix { font-size: .78rem; }
.matrix td, .matrix th { text-align: center; white-space: nowrap; padding: 2px 4px; }
.matrix th[scope=row] { text-align: left; white-space: normal; min-width: 11rem; max-width: 22rem; }
.matrix th[scope=row] small { display: block; font-weight: 400; }
.matrix a { color: inherit; text-decoration: none; display: block; }
.s-fail { background: #fdeceb; color: #8a1c12; font-weight: 700; }
.s-pass { color: #1a6b30; }
.s-unverified { background: #fff6e0; color: #7a3e00; }
.s-skip, .s-none { color: #555; }
.number { text-align: right; font-variant-numeric: tabular-nums; }
dl.produced { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dl.produced dt { font-weight: 600; }
dl.produced dd { margin: 0; overflow-wrap: anywhere; }
.answer { border: 1px solid #d0d5dd; border-radius: 8px; padding: 10px; margin: 16px 0; }
.answer-fail { border: 3px solid #b42318; }
.answer > p { margin: 2px 0 8px; }
.tag { display: inline-block; border: 1px solid currentColor; border-radius: 4px; padding: 0 5px; font-size: .8rem;
  font-weight: 700; vertical-align: middle; }
.sides { display: flex; flex-direction: column; gap: 14px; }
.side { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; max-width: 100%; }
figure { margin: 0; width: 340px; max-width: 100%; }
figcaption { font-size: .8rem; color: #444; margin-top: 3px; overflow-wrap: anywhere; }
.frame { position: relative; width: 100%; overflow: hidden; background: repeating-linear-gradient(45deg,
  #dfe3e8 0 6px, #f3f4f6 6px 12px); outline: 1px solid #98a2b3; }
.card-frame { aspect-ratio: 1200 / 757; border-radius: 3.715% / 5.89%; }
.auth-frame { border-radius: 6px; min-height: 120px; }
.frame img { display: block; width: 100%; height: 100%; object-fit: contain; image-orientation: none; }
.auth-frame img { height: auto; }
.frame svg { position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none; }
.no-image { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  padding: 12px; text-align: center; font-weight: 600; color: #8a1c12; }
.auth-frame .no-image { position: static; min-height: 120px; }
.marks { position: absolute; left: 6px; top: 6px; right: 6px; display: flex; flex-direction: column;
  align-items: flex-start; gap: 3px; list-style: none; padding: 0; margin: 0; }
.auth-frame .marks { position: absolute; }
.mark { background: #b42318; color: #fff; font-size: 11px; line-height: 1.3; padding: 1px 5px; border-radius: 3px;
  max-width: 100%; overflow-wrap: anywhere; box-shadow: 0 0 0 1px #fff; }
.mark-unverified { background: #7a3e00; }
.mark-shape { fill: none; stroke: #b42318; stroke-width: 6; }
.mark-frame { stroke-dasharray: 24 14; }
.mark-outline { stroke: #fff; stroke-width: 14; fill: none; opacity: .8; }
.mark-arrow { fill: #b42318; stroke: #fff; stroke-width: 3; }
.mark-text { fill: #b42318; stroke: #fff; stroke-width: 6; paint-order: stroke; font: 700 44px sans-serif; }
.jws { flex: 1 1 280px; min-width: 0; max-width: 100%; font-size: .85rem; }
.jws p { margin: 0 0 4px; }
.sig { border-left: 5px solid; padding-left: 6px; }
.sig-pass { border-color: #1a7f37; }
.sig-fail { border-color: #b42318; }
.sig-unverified, .sig-skip { border-color: #b54708; }
.rules { margin-top: 10px; width: 100%; }
.rules td:nth-child(-n+3) { white-space: nowrap; overflow-wrap: normal; }
.passed { margin: 8px 0 0; font-size: .8rem; color: #1a4d2a; }
.answer-marks { list-style: none; padding: 0; margin: 0 0 8px; display: flex; flex-wrap: wrap; gap: 4px; }
.answer-marks .mark { font-size: 12px; }
footer { margin-top: 32px; font-size: .8rem; color: #555; }
@media print {
  :root { font-size: 10pt; }
  body { max-width: none; padding: 0; }
  .scroll { overflow: visible; }
  .answer { break-inside: avoid-page; }
  .rules tr, figure { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
  .frame, .mark, .s-fail, .verdict { print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
""".strip()
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode("ascii")
# Nothing but the inline images and this one style sheet: no script, no fetch, no form, no frame.
CSP = f"default-src 'none'; img-src data:; style-src '{STYLE_HASH}'; base-uri 'none'; form-action 'none'"
CSP_HEADER = CSP + "; frame-ancestors 'none'"  # when served over HTTP: not settable from a meta tag


@dataclass(frozen=True)
class Produced:
    """What made the report, said at its top."""

    command: str  # the command line (password hidden), or the request
    generated: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
    seconds: float | None = None  # how long the run took


PACKAGES = ("aiohttp", "pillow", "joserfc", "cryptography")


def versions() -> dict[str, str]:
    """This package's version and those of what it checked with."""
    found = {"content-provider": __version__, "Python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _e(value: object) -> str:
    """Text for HTML (content and attribute values alike); a lone surrogate (from JSON) becomes ``?``."""
    return html.escape(str(value).encode("utf-8", "replace").decode("utf-8"), quote=True)


def _q(value: object) -> str:
    """A provider's string inside a sentence: quoted as Python writes it, so nothing in it can pass for text."""
    return _e(repr(value))


def _ms(seconds: float | None) -> str:
    return DASH if seconds is None else f"{seconds * 1000:.0f}"


def _shorten(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def _worst(results: Iterable[Result]) -> str | None:
    statuses = {r.status for r in results}
    return next((status for status in WORST_FIRST if status in statuses), None)


def _status_cell(status: str | None, href: str) -> str:
    """A matrix cell: a pass is its sign alone (the legend says it), anything else says itself in words."""
    if status is None:
        return f'<td class="s-none" title="not run">{DASH}</td>'
    sign = STATUS_SIGN[status]
    said = STATUS_TEXT[status]
    text = sign if status in ("pass", "skip") else f"{sign} {said}"
    return f'<td class="s-{status}" title="{said}"><a href="{href}" aria-label="{said}">{text}</a></td>'


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class _Shown:
    """What an ``<img>`` shows for a side: the data URI, and the image as the checker decoded it."""

    uri: str
    decoded: Decoded  # of the bytes received (not of a downscaled copy)
    note: str  # "shown downscaled from ...", or ""


def _decoded(side: Side) -> Decoded | None:
    if side.decoded is not None or not side.data:
        return side.decoded
    try:  # bytes the checker did not decode (a wrong content_type on good base64)
        return decode_image(side.data)
    except Undecodable:
        return None


def _shown(side: Side) -> _Shown | None:
    """The image to draw, or ``None`` when there is none a browser would show as the checker read it."""
    decoded = _decoded(side)
    if decoded is None or decoded.format not in BROWSER_FORMATS:
        return None
    data, mime, note = side.data, BROWSER_FORMATS[decoded.format], ""
    if len(data) > SHOWN_BYTES or decoded.width * decoded.height > SHOWN_PIXELS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # CP10 judges the size
                with Image.open(io.BytesIO(data)) as image:
                    image.draft("RGB", SHOWN_SIZE)  # a JPEG decoded at a fraction of its size: fast
                    copy = image.convert("RGB")
            copy.thumbnail(SHOWN_SIZE)
            out = io.BytesIO()
            copy.save(out, "JPEG", quality=80)  # no EXIF: the pixels as stored, as before
        except Exception:  # Pillow raises many types for odd input
            return None
        data, mime = out.getvalue(), "image/jpeg"
        note = f"shown downscaled to {copy.width}x{copy.height} from {decoded.width}x{decoded.height}"
    return _Shown(f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", decoded, note)


def _placed(width: int, height: int) -> tuple[float, float, float, float]:
    """Where an image of ``width`` x ``height`` lies in the card frame when fitted whole (letterboxed)."""
    frame_w, frame_h = FRAME
    scale = min(frame_w / width, frame_h / height)
    shown_w, shown_h = width * scale, height * scale
    return (frame_w - shown_w) / 2, (frame_h - shown_h) / 2, shown_w, shown_h


def _aspect_marks(decoded: Decoded) -> str:
    """CP09 on the image: its own outline in the frame, and the 1200:757 frame it should fill drawn over
    it (the part a phone that crops to fill would keep)."""
    x, y, w, h = _placed(decoded.width, decoded.height)
    if w / h > CARD_ASPECT:
        crop_w, crop_h = h * CARD_ASPECT, h
    else:
        crop_w, crop_h = w, w / CARD_ASPECT
    crop_x, crop_y = x + (w - crop_w) / 2, y + (h - crop_h) / 2
    return (
        f'<rect class="mark-outline" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
        f'<rect class="mark-shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}"/>'
        f'<rect class="mark-outline" x="{crop_x:.1f}" y="{crop_y:.1f}" width="{crop_w:.1f}" height="{crop_h:.1f}"/>'
        f'<rect class="mark-shape mark-frame" x="{crop_x:.1f}" y="{crop_y:.1f}" '
        f'width="{crop_w:.1f}" height="{crop_h:.1f}"/>'
        f'<text class="mark-text" x="{crop_x + 12:.1f}" y="{crop_y + crop_h - 14:.1f}">1200:757</text>'
    )


def _view(decoded: Decoded, card: bool) -> tuple[int, int]:
    """The marks' drawing space: the card frame, or an authentication image's own shape, 1200 wide."""
    return FRAME if card else (FRAME[0], max(1, round(FRAME[0] * decoded.height / max(1, decoded.width))))


def _orientation_marks(decoded: Decoded, card: bool) -> str:
    """CP11's EXIF rotation on the image: an arrow to where EXIF says the picture's top is."""
    direction = EXIF_TOP.get(decoded.orientation)
    if direction is None:
        return ""
    x, y, w, h = _placed(decoded.width, decoded.height) if card else (0.0, 0.0, *map(float, _view(decoded, card)))
    cx, cy, reach = x + w / 2, y + h / 2, min(w, h) * 0.38
    dx, dy = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}[direction]
    tip_x, tip_y = cx + dx * reach, cy + dy * reach
    side_x, side_y = -dy * 40, dx * 40  # half the arrowhead's width, across the arrow
    base_x, base_y = tip_x - dx * 70, tip_y - dy * 70
    corners = ((tip_x, tip_y), (base_x + side_x, base_y + side_y), (base_x - side_x, base_y - side_y))
    head = " ".join(f"{px:.1f},{py:.1f}" for px, py in corners)
    # the label beside the tip: right of an arrow up or down, above one to the left or right
    label_x, label_y = (tip_x + 170, tip_y + 15) if dx == 0 else (tip_x - dx * 60, tip_y - 55)
    return (
        f'<line class="mark-outline" x1="{cx:.1f}" y1="{cy:.1f}" x2="{base_x:.1f}" y2="{base_y:.1f}"/>'
        f'<line class="mark-shape" x1="{cx:.1f}" y1="{cy:.1f}" x2="{base_x:.1f}" y2="{base_y:.1f}"/>'
        f'<polygon class="mark-arrow" points="{head}"/>'
        f'<text class="mark-text" text-anchor="middle" x="{label_x:.1f}" y="{label_y:.1f}">'
        f"top (EXIF {decoded.orientation})</text>"
    )


def _mark_text(result: Result) -> str:
    said = result.evidence or result.checked
    return f"{result.rule} {STATUS_TEXT[result.status]}: {_shorten(said, EVIDENCE_ON_IMAGE)}"


def _figure(side: Side, seen: Seen, card: bool) -> str:
    """One element drawn as the phone shows it, with the rules that failed on it marked."""
    shown = _shown(side)
    failing = [r for r in side.results if r.status in ("fail", "unverified")]
    shapes = ""
    if shown is not None and card and any(r.rule == "CP09" and r.failed for r in failing):
        shapes += _aspect_marks(shown.decoded)
    if shown is not None and any(r.rule == "CP11" and r.failed for r in failing):
        shapes += _orientation_marks(shown.decoded, card)
    labels = "".join(
        f'<li class="mark mark-{r.status}" data-rule="{_e(r.rule)}">{_e(_mark_text(r))}</li>' for r in failing
    )
    what = "card side" if card else "authentication image"
    if shown is None:
        said = "no image the phone could show"
        picture = f'<div class="no-image" role="img" aria-label="{said}">{said}</div>'
        size = f"{len(side.data)} bytes that do not decode" if side.data else "no image data"
    else:
        decoded = shown.decoded
        alt = f"the {side.key} of {seen.content_id} as received: {decoded.width}x{decoded.height} {decoded.format}"
        picture = f'<img src="{shown.uri}" alt="{_e(alt)}" width="{decoded.width}" height="{decoded.height}">'
        size = f"{decoded.width}x{decoded.height} {decoded.format}, {len(side.data) / 1024:.1f} kB"
        if decoded.orientation not in (0, 1):
            turn = EXIF_TURN.get(decoded.orientation, "turn it")
            size += f"; shown as stored: EXIF orientation {decoded.orientation} asks a viewer to {turn}"
        if shown.note:
            size += f"; {shown.note}"
    view = FRAME if shown is None else _view(shown.decoded, card)
    svg = (
        f'<svg viewBox="0 0 {view[0]} {view[1]}" preserveAspectRatio="none" aria-hidden="true">{shapes}</svg>'
        if shapes
        else ""
    )
    marks = f'<ul class="marks">{labels}</ul>' if labels else ""
    frame = "card-frame" if card else "auth-frame"
    caption = (
        f"<strong>{_e(side.key)}</strong> ({what}) · {_e(size)} · content_type {_q(side.content_type)}, "
        f"content_encoding {_q(side.content_encoding)}"
    )
    return (
        f'<figure data-key="{_e(side.key)}"><div class="frame {frame}">{picture}{svg}{marks}</div>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _header_text(header: dict[str, Any]) -> str:
    def cut(value: Any) -> Any:
        if isinstance(value, str):
            return value if len(value) <= HEADER_STRING else f"{value[:HEADER_STRING]}... ({len(value)} chars)"
        if isinstance(value, list):
            return [cut(v) for v in value[:10]] + ([f"... ({len(value)} items)"] if len(value) > 10 else [])
        if isinstance(value, dict):
            return {str(k): cut(v) for k, v in list(value.items())[:40]}
        return value

    try:
        text = json.dumps(cut(header), indent=2)  # ASCII: anything odd shows as \\u escapes
    except (ValueError, RecursionError):
        text = repr(header)
    return _shorten(text, HEADER_TEXT)


def _certificate(header: dict[str, Any]) -> str:
    """The x5c certificate's subject, issuer and validity, read (not trusted) from the header."""
    chain = header.get("x5c")
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        return "no x5c certificate in the header"
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        return (
            f"x5c[0]: subject {cert.subject.rfc4514_string()!r}, issuer {cert.issuer.rfc4514_string()!r}, "
            f"valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"
        )
    except (ValueError, TypeError, binascii.Error):
        return "x5c[0] is not a certificate"


def _signature(signature: Signature) -> str:
    header = signature.header
    verdict = {"pass": "verified", "fail": "NOT verified", "unverified": "not checked", "skip": "not checked"}
    return (
        f'<div class="jws"><p class="sig sig-{_e(signature.status)}"><strong>Signature: '
        f"{verdict.get(signature.status, signature.status)}</strong> — {_e(signature.detail)}</p>"
        f"<p>algorithm {_q(header.get('alg'))}, key id (kid) {_q(header.get('kid'))}</p>"
        f"<p>{_e(_certificate(header))}</p>"
        f"<p>The JWS protected header as sent:</p><pre>{_e(_header_text(header))}</pre></div>"
    )


# --------------------------------------------------------------------------- sections


def _order(report: Report, result: Result) -> tuple[int, str]:
    """Failures first (those that fail the run before recommendations), then unverified, skipped, passed."""
    rank = 0 if report.counts_as_failure(result) else 1 + WORST_FIRST.index(result.status)
    return rank, result.rule


def _rules_table(report: Report, results: list[Result], anchor: str) -> str:
    """Every result: those not passed in a table, failures first, with their evidence; the passes
    after it, each rule with what it checked."""
    rows, passes = [], []
    placed: set[str] = set()
    for result in sorted(results, key=lambda r: _order(report, r)):
        row_id = ""
        if result.rule not in placed:
            placed.add(result.rule)
            row_id = f' id="{anchor}-{_e(result.rule)}"'
        sign = STATUS_SIGN[result.status]
        if result.status == "pass":
            said = f"<strong>{_e(result.rule)}</strong> {_e(result.checked)}"
            passes.append(f'<span{row_id} title="{_e(result.title)}">{said}</span>')
            continue
        verdict = STATUS_TEXT[result.status]
        if report.counts_as_failure(result) and not result.failed:
            verdict += " (fails under --strict)"
        rows.append(
            f'<tr{row_id}><td class="s-{result.status}">{sign} {_e(verdict)}</td>'
            f"<td>{_e(result.rule)}</td><td>{'required' if result.required else 'recommended'}</td>"
            f"<td>{_e(result.title)}<br><small>{_e(result.checked)}</small></td>"
            f'<td class="mono">{_e(result.evidence)}</td></tr>'
        )
    table = (
        '<div class="scroll"><table class="rules"><thead><tr><th>result</th><th>rule</th><th>kind</th>'
        f"<th>what is checked</th><th>evidence</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        if rows
        else ""
    )
    listed = f'<p class="passed">{STATUS_SIGN["pass"]} passed: {" · ".join(passes)}</p>' if passes else ""
    return table + listed


def _id_verdict(report: Report, results: list[Result]) -> tuple[str, str]:
    """(class, words) for one id, from the report's own verdict on each of its results."""
    if any(report.counts_as_failure(r) for r in results):
        return "fail", "FAIL"
    if any(r.failed for r in results):
        return "pass", "pass, recommendation not met"
    return "pass", "pass"


def _answer(report: Report, index: int, seen: Seen, results: list[Result]) -> str:
    anchor = f"id-{index}"
    card = not seen.content_id.upper().startswith("AUTH:")
    kind, verdict = _id_verdict(report, results)
    status = "no answer" if seen.status is None else f"status {seen.status}"
    timings = [t for t in report.requests if t.content_id == seen.content_id]
    took = f" · {_ms(timings[0].seconds)} ms" if timings and timings[0].seconds is not None else ""
    caption = f"{_e(seen.caption)} · " if seen.caption else ""
    on_sides = {id(r) for side in seen.sides for r in side.results}
    whole = [r for r in sorted(results, key=lambda r: _order(report, r)) if r.failed and id(r) not in on_sides]
    marks = "".join(
        f'<li class="mark" data-rule="{_e(r.rule)}">{_e(_mark_text(r))}</li>' for r in whole
    )  # about the answer as a whole: status, body, elements, keys, timing
    sides = []
    for side in seen.sides:
        figure = _figure(side, seen, card)
        signature = _signature(side.signature) if side.signature is not None else ""
        sides.append(f'<div class="side">{figure}{signature}</div>')
    if not sides:  # nothing to draw: the failures go where the card would be
        frame = "card-frame" if card else "auth-frame"
        sides.append(
            f'<div class="side"><figure><div class="frame {frame}"><div class="no-image" role="img" '
            f'aria-label="no card">no card</div><ul class="marks">{marks}</ul></div>'
            "<figcaption>nothing the phone could show</figcaption></figure></div>"
        )
        marks = ""
    listed = f'<ul class="answer-marks">{marks}</ul>' if marks else ""
    return (
        f'<article class="answer answer-{kind}" id="{anchor}" data-content-id="{_e(seen.content_id)}">'
        f'<h3>{_e(seen.content_id)} <span class="tag s-{kind}">{_e(verdict)}</span></h3>'
        f"<p>{caption}{_e(status)}{took}</p>{listed}"
        f'<div class="sides">{"".join(sides)}</div>{_rules_table(report, results, anchor)}</article>'
    )


def _matrix(report: Report, rows: list[tuple[str, str, list[Result]]]) -> str:
    used = [rule for rule in RULES if any(r.rule == rule for r in report.results)]
    head = "".join(f'<th scope="col" title="{_e(RULES[rule].title)}">{_e(rule)}</th>' for rule in used)
    body = []
    for anchor, label, results in rows:
        kind, verdict = _id_verdict(report, results)
        cells = "".join(
            _status_cell(_worst(r for r in results if r.rule == rule), f"#{anchor}-{rule}") for rule in used
        )
        body.append(
            f'<tr><th scope="row" class="s-{kind}"><a href="#{anchor}">{_e(label)}</a>'
            f"<small>{_e(verdict)}</small></th>{cells}</tr>"
        )
    kinds = "".join(f"<td>{'req.' if RULES[rule].required else 'rec.'}</td>" for rule in used)
    return (
        '<div class="scroll"><table class="matrix"><thead><tr><th scope="col">content id: verdict</th>'
        f'{head}</tr><tr><th scope="row">required or recommended</th>{kinds}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        f"<p><small>✓ pass · ✗ FAIL · ? unverified (a required rule that could not be checked) · {DASH} skipped "
        "or not run (for an authentication image, the card rules) · req. required by the vendor's text, rec. "
        "recommended. Each cell links to its rule's result below.</small></p>"
    )


def _timings(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{_e(t.what)}</td><td>{_e(t.content_id or '')}</td>"
        f"<td>{_e('no answer' if t.status is None else t.status)}</td>"
        f'<td class="number">{_ms(t.seconds)}</td><td>{_e(t.note)}</td></tr>'
        for t in report.requests
    )
    return (
        '<div class="scroll"><table><thead><tr><th>request</th><th>content id</th><th>status</th>'
        f"<th>ms</th><th>note</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _produced(report: Report, produced: Produced) -> str:
    took = "" if produced.seconds is None else f"<dt>took</dt><dd>{produced.seconds:.2f} s</dd>"
    shown = ", ".join(f"{name} {version}" for name, version in versions().items())
    strict = "on" if report.strict else "off"
    return (
        f'<dl class="produced"><dt>command</dt><dd><code>{_e(produced.command)}</code></dd>'
        f"<dt>generated</dt><dd>{produced.generated:%Y-%m-%d %H:%M:%S} UTC</dd>{took}"
        f"<dt>--strict</dt><dd>{strict}</dd><dt>versions</dt><dd>{_e(shown)}</dd></dl>"
    )


def format_html(report: Report, produced: Produced) -> str:
    """The whole report, one HTML document."""
    where = "fixture folder" if report.source == "fixtures" else "content provider"
    verdict = "PASS" if report.ok else "FAIL"
    lines = summary_lines(report)
    by_id: dict[str | None, list[Result]] = {}
    for result in report.results:
        by_id.setdefault(result.content_id, []).append(result)
    rows: list[tuple[str, str, list[Result]]] = []
    articles = []
    for index, (content_id, seen) in enumerate(report.seen.items()):
        results = by_id.get(content_id, [])
        rows.append((f"id-{index}", content_id, results))
        articles.append(_answer(report, index, seen, results))
    provider = by_id.get(None, [])
    if provider:
        rows.append(("provider", "(the provider as a whole)", provider))
        articles.append(
            '<article class="answer" id="provider"><h3>The provider as a whole</h3>'
            f"{_rules_table(report, provider, 'provider')}</article>"
        )
    notes = "".join(f'<p class="note">{_e(note)}</p>' for note in report.notes)
    reached = (
        ""
        if report.unreachable is None
        else f'<p class="note" id="unreachable">NOT REACHED: {_e(report.unreachable)}</p>'
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{verdict}: conformance report for {_e(report.url)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<h1>Conformance report</h1>
<p>{where}: <code>{_e(report.url)}</code></p>
{reached}
<p class="verdict verdict-{verdict.lower()}" id="verdict"><strong>{verdict}</strong>: {_e(lines[0])}</p>
<ul class="lines">{"".join(f"<li>{_e(line)}</li>" for line in lines[1:])}</ul>
<p>A CI job running this gets <strong>exit status {report.exit_status}</strong>.</p>
</header>
<main>
<section id="summary">
<h2>Summary</h2>
{notes}
{_matrix(report, rows)}
<h3>Requests</h3>
{_timings(report)}
<h3>Produced by</h3>
{_produced(report, produced)}
</section>
<section id="answers">
<h2>What the phone gets</h2>
<p>Each card side is drawn {PHONE_WIDTH} px wide in the card's outline (1200:757, rounded corners), fitted
whole: a hatched band is space the image does not fill. A failed rule is marked on the image it is about;
every rule's result, failures first, is listed below its card.</p>
{"".join(articles)}
</section>
</main>
<footer>content-provider {_e(__version__)} · the contract: docs/contract.md · the rules: docs/conformance.md</footer>
</body>
</html>
"""
