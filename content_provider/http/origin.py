"""Safe from the developer's own browser: which ``Host`` and ``Origin`` the admin API, the web
page and ``/metrics`` accept.

A web page on any site can make the browser send "simple" requests (a form or ``text/plain``
body, no preflight) to ``http://127.0.0.1:8080``, and with DNS rebinding a name of its own can
point at this address, making its reads same-origin. The answers: a ``Host`` that names
something other than this machine is refused (rebinding always carries the attacker's name),
and a state-changing admin request whose ``Origin`` is another site is refused (a cross-site
write). Requests without ``Origin`` (curl, scripts, the admin clients) are not from a page and
pass; the socket check and the token in ``admin_guard`` still apply to them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import hdrs, web

from content_provider.config.settings import SETTINGS, Settings
from content_provider.core.errors import ApiError
from content_provider.http.errors import Handler

STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
DEFAULT_PORTS = {"http": 80, "https": 443}
PREFLIGHT_MAX_AGE = "600"


def normal_name(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, no IPv6 brackets or zone."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.split("%", 1)[0] if ":" in name else name


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` (``name``, ``name:port``, ``[v6]:port``) as a normal name and a port, if any.

    A port that is not digits leaves a name that matches nothing, so the request is refused."""
    value = value.strip()
    if value.startswith("["):
        inside, _, rest = value[1:].partition("]")
        name, port_text = inside, rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    else:  # no port, or a bare IPv6 address (not valid in Host, but unambiguous)
        name, port_text = value, ""
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        return "", None
    return normal_name(name), int(port_text) if port_text else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(name: str, settings: Settings) -> bool:
    """Whether a page whose address is ``name`` may be this mock's own.

    localhost and ``*.localhost`` (RFC 6761: always this machine), every IP address (a page
    at an address literal is that address's own origin: DNS rebinding needs a name, which
    is why webpack-dev-server and Vite let addresses through too), the listen address, and
    ``server.allowed_hosts`` (``.example.com`` also allows its subdomains; ``*`` allows all).
    """
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or _is_ip(name):
        return True
    if name == normal_name(settings.host):
        return True
    for allowed in settings.allowed_hosts:
        if allowed == "*" or name == allowed:
            return True
        if allowed.startswith(".") and (name.endswith(allowed) or name == allowed[1:]):
            return True
    return False


def check_host(request: web.Request) -> None:
    """403 ``host_not_allowed`` for a ``Host`` that names another machine (DNS rebinding)."""
    host = request.headers.get(hdrs.HOST)
    if host is None:  # HTTP/1.0 without Host: not a browser
        return
    if not host_allowed(split_host(host)[0], request.app[SETTINGS]):
        raise ApiError(
            403,
            "host_not_allowed",
            f"Host {host!r} is not this machine's name: the admin API, the web page and /metrics answer "
            "localhost, IP addresses, the listen address and the names in server.allowed_hosts "
            "(CONTENT_PROVIDER_ALLOWED_HOSTS, serve --allowed-host NAME)",
        )


def host_checked(handler: Handler) -> Handler:
    """``handler`` behind :func:`check_host` (the web page and ``/metrics``)."""

    async def checked(request: web.Request) -> web.StreamResponse:
        check_host(request)
        return await handler(request)

    return checked


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``scheme://host[:port]`` as (scheme, normal name, port); ``None`` for ``null`` or anything else."""
    scheme, sep, rest = value.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS or not rest or "/" in rest or "@" in rest:
        return None
    name, port = split_host(rest)
    if not name:
        return None
    return scheme, name, DEFAULT_PORTS[scheme] if port is None else port


def own_origin(request: web.Request) -> tuple[str, str, int]:
    """The origin a page served by this mock at the request's ``Host`` has."""
    name, port = split_host(request.host)
    return request.scheme, name, DEFAULT_PORTS.get(request.scheme, 80) if port is None else port


def _listed(origin: tuple[str, str, int], allowed: Iterable[str]) -> bool:
    return any(parse_origin(entry) == origin for entry in allowed)


def origin_refusal(request: web.Request) -> ApiError:
    origin = request.headers.get(hdrs.ORIGIN, "")
    return ApiError(
        403,
        "origin_not_allowed",
        f"Origin {origin!r} is another site: the admin API takes changes only from its own web page, from "
        "callers that send no Origin (curl, scripts), and from the origins in server.allowed_origins "
        "(CONTENT_PROVIDER_ALLOWED_ORIGINS, serve --allowed-origin URL)",
    )


def listed_origin(request: web.Request) -> str | None:
    """The request's ``Origin`` when it is another one that ``server.allowed_origins`` lists
    (it gets a CORS grant), else ``None``."""
    value = request.headers.get(hdrs.ORIGIN)
    if value is None:
        return None
    origin = parse_origin(value)
    if origin is None or origin == own_origin(request):
        return None
    return value.strip() if _listed(origin, request.app[SETTINGS].allowed_origins) else None


def origin_allowed(request: web.Request) -> bool:
    """No ``Origin``, the mock's own, or a listed one (``Origin: null`` is foreign)."""
    value = request.headers.get(hdrs.ORIGIN)
    if value is None:
        return True
    origin = parse_origin(value)
    if origin is None:
        return False
    return origin == own_origin(request) or _listed(origin, request.app[SETTINGS].allowed_origins)


def check_origin(request: web.Request) -> None:
    """403 ``origin_not_allowed`` for a state-changing request from another site's page (CSRF)."""
    if request.method in STATE_CHANGING and not origin_allowed(request):
        raise origin_refusal(request)


def cors_grant(origin: str) -> dict[str, str]:
    return {hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin, hdrs.VARY: "Origin"}


async def preflight(request: web.Request) -> web.StreamResponse:
    """``OPTIONS`` on an admin path: a CORS grant only for a listed origin; another site gets 403."""
    if not request.app[SETTINGS].admin_enabled:
        raise ApiError(404, "not_found", "the admin API is off (admin.enabled: false)")
    check_host(request)
    path = request.match_info.route.resource.canonical if request.match_info.route.resource else ""
    # the methods of every resource with this path (aiohttp makes one per run of routes)
    methods = sorted(
        {
            route.method
            for resource in request.app.router.resources()
            if resource.canonical == path
            for route in resource
        }
        - {"HEAD"}
    )
    value = request.headers.get(hdrs.ORIGIN)
    if value is None:  # not a browser's preflight: say what the path takes
        return web.Response(status=204, headers={hdrs.ALLOW: ", ".join(methods)})
    if not origin_allowed(request):
        raise origin_refusal(request)
    listed = listed_origin(request)
    if listed is None:  # its own page: same-origin requests need no grant
        return web.Response(status=204, headers={hdrs.ALLOW: ", ".join(methods)})
    return web.Response(
        status=204,
        headers={
            **cors_grant(listed),
            hdrs.ACCESS_CONTROL_ALLOW_METHODS: ", ".join(methods),
            hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "Authorization, Content-Type",
            hdrs.ACCESS_CONTROL_MAX_AGE: PREFLIGHT_MAX_AGE,
        },
    )
