"""What a run of the rules saw, kept for the HTML report: each element's bytes and what decoding
them told, the back's JWS header and how its signature fared, and how long each request took.

Only a :class:`~content_provider.conformance.rules.Report` keeps these (``content-provider check``,
the fixture review); upstream validation, which checks every live answer, keeps nothing. What is
kept is what the run had in hand anyway: references to the bytes it decoded, never a copy or a
re-encoding, so the text, JSON and JUnit formats pay nothing for it. Everything here came from
the provider and is untrusted: the HTML report escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from content_provider.conformance.jpeg import Decoded

if TYPE_CHECKING:
    from content_provider.conformance.result import Result


@dataclass
class Signature:
    """The back's JWS as the rules read it: the protected header as sent, and whether it verified."""

    header: dict[str, Any]  # untrusted: whatever the provider put there
    status: str  # pass | fail | unverified | skip (CP13's status)
    detail: str  # which key verified it, or why it did not


@dataclass
class Side:
    """One element of an answer: its key and labels as sent, the image bytes, what decoding told."""

    key: str
    content_type: str
    content_encoding: str
    data: bytes = b""  # the image (for the back: the JWS payload); empty when there is none
    decoded: Decoded | None = None  # None: not decoded (not base64, not an image, ...)
    signature: Signature | None = None  # the back's
    results: list[Result] = field(default_factory=list)  # the rules run on this element


@dataclass
class Timing:
    """One request of the run: what it asked, the status it got, how long it took."""

    what: str
    content_id: str | None
    status: int | None  # None: no answer (timeout, connection failed)
    seconds: float | None
    note: str = ""


@dataclass
class Seen:
    """Everything kept for one content id."""

    content_id: str
    caption: str = ""  # what answered it, when known (the fixture review: "organisation acme")
    status: int | None = None
    sides: list[Side] = field(default_factory=list)
