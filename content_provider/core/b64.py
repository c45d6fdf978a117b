"""Base64 as the contract uses it: base64url without padding (JWS, RFC 7515 section 2) and
the HTTP basic credentials Hermod sends, each written once."""

from __future__ import annotations

import base64


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without its ``=`` padding (the JWS form has none).

    Like :func:`base64.urlsafe_b64decode`: ``ValueError`` for text that is not ASCII or
    not decodable; characters outside the alphabet are skipped.
    """
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def basic_authorization(user: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP basic authentication (RFC 7617, UTF-8)."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
