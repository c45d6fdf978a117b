"""Optional HTTP basic authentication, as Hermod sends it when configured."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import hdrs, web

from content_provider.core.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Basic realm="content-provider", charset="UTF-8"'}


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The (user, password) of a well-formed ``Authorization: Basic`` header, else ``None``."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def require_basic_auth(request: web.Request, username: str, password: str) -> str:
    """Check credentials in constant time; the user name on success, else a 401."""
    credentials = basic_credentials(request)
    if credentials is None:
        raise ApiError(401, "unauthorized", "basic authentication is required", CHALLENGE)
    given_user, given_password = credentials
    # Evaluate both comparisons every time so timing does not tell which part was wrong.
    user_ok = hmac.compare_digest(given_user.encode(), username.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok & password_ok):
        raise ApiError(401, "unauthorized", "wrong user name or password", CHALLENGE)
    return given_user
