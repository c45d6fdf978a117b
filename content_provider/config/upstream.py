"""The ``upstream:`` section of the configuration, validated like every other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from content_provider.config.environment import ENV_PREFIX, check_credentials, env
from content_provider.core.reader import ConfigError, Reader

MODES = ("proxy", "spy", "record")


@dataclass(frozen=True)
class UpstreamSettings:
    """A real content provider the mock stands in front of."""

    url: str  # without a trailing slash; POST {url}/getcontent
    mode: str = "proxy"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never shown, logged or journaled
    ca_file: Path | None = None
    timeout: float = 10.0
    trust: Path | None = None  # a JWKS or PEM file the back side must verify against (CP13)
    validate: bool = True
    keep_earlier: int = 3  # record mode: earlier answers kept per content id, besides the one served

    @property
    def address(self) -> str:
        """``host:port`` of the upstream, for headers, the journal and the log (no path, no credentials)."""
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


UPSTREAM_CREDENTIALS = (
    f"upstream.username and upstream.password ({ENV_PREFIX}UPSTREAM_USERNAME, {ENV_PREFIX}UPSTREAM_PASSWORD)"
)


def check_url(key: str, url: str, credentials: str = UPSTREAM_CREDENTIALS) -> str:
    """An ``http(s)://host[:port][/path]`` URL without credentials (they go in ``credentials``);
    the trailing slash dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{key}: not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}: expected an http:// or https:// URL with a host, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{key}: put the credentials in {credentials}, not in the URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{key}: the URL may not have a query or fragment; give the content-provider-url")
    if port == 0:
        raise ConfigError(f"{key}: port 0 is not a port to call")
    return url.rstrip("/")


def _file(key: str, text: str | None, base_dir: Path) -> Path | None:
    if text is None:
        return None
    path = (base_dir / text).resolve()
    if not path.is_file():
        raise ConfigError(f"{key}: {str(path)!r} is not a file")
    return path


def parse_upstream(reader: Reader, base_dir: Path, environ: Mapping[str, str]) -> UpstreamSettings | None:
    """The ``upstream:`` section and its environment variables; ``None`` without a URL."""

    url = env(environ, "UPSTREAM_URL", reader.string("url", None))
    mode = env(environ, "UPSTREAM_MODE", reader.choice("mode", "proxy", MODES)) or "proxy"
    username = env(environ, "UPSTREAM_USERNAME", reader.string("username", None))
    password = env(environ, "UPSTREAM_PASSWORD", reader.string("password", None))
    ca_text = reader.string("ca_file", None)
    timeout = reader.number("timeout", 10.0, 0.1, 3600.0)
    trust_text = env(environ, "UPSTREAM_TRUST", reader.string("trust", None))
    validate = reader.boolean("validate", True)
    keep_earlier = reader.integer("keep_earlier", 3, 0, 1000)
    reader.finish()
    if mode not in MODES:
        raise ConfigError(
            f"{ENV_PREFIX}UPSTREAM_MODE (--upstream-mode): expected one of {', '.join(MODES)}, got {mode!r}"
        )
    check_credentials("upstream", "UPSTREAM_", username, password)
    if url is None:
        mode_given = reader.raw("mode") is not None or bool(environ.get("CONTENT_PROVIDER_UPSTREAM_MODE"))
        if mode_given or any(value is not None for value in (username, ca_text, trust_text)):
            raise ConfigError("upstream.url: required when other upstream settings are given (or --upstream URL)")
        return None
    url = check_url("upstream.url", url)
    ca_file = _file("upstream.ca_file", ca_text, base_dir)
    if ca_file is not None and not url.startswith("https://"):
        raise ConfigError("upstream.ca_file: only for an https:// upstream.url")
    trust = _file("upstream.trust", trust_text, base_dir)
    return UpstreamSettings(url, mode, username, password, ca_file, timeout, trust, validate, keep_earlier)
