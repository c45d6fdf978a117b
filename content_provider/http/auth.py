"""Optional HTTP basic authentication, as Hermod sends it when configured; and the admin API's
access rule (a bearer token, else loopback only), which ``/metrics`` follows too when
``admin.protect_metrics`` says so."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from aiohttp import hdrs, web

from content_provider.config.settings import SETTINGS
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


def _is_loopback(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return False
    try:
        return ipaddress.ip_address(str(peer[0]).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_admin_access(request: web.Request, what: str = "the admin API") -> None:
    """With ``admin.token`` set, ``Authorization: Bearer <token>`` (401 without it); without one, a
    loopback peer (403 for any other). Hermod's basic-auth credentials never pass."""
    token = request.app[SETTINGS].admin_token
    if token is not None:
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        # surrogateescape: a header that is not UTF-8 is a wrong token (401), not an error (500)
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode("utf-8", "surrogateescape"), token.encode()
        ):
            raise ApiError(
                401,
                "unauthorized",
                f"{what} needs Authorization: Bearer <admin.token>",
                {"WWW-Authenticate": 'Bearer realm="content-provider admin"'},
            )
    elif not _is_loopback(request):
        raise ApiError(403, "forbidden", f"without admin.token {what} answers only on loopback")
