"""Settings: read ``config.yaml`` and the environment once, validate, freeze.

Everything downstream takes a :class:`Settings` that is already checked, so a
mistake in the file is reported at start-up naming the key and what was wrong,
never as a traceback in the middle of a request.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from content_provider.config.environment import ENV_PREFIX
from content_provider.config.upstream import UpstreamSettings
from content_provider.core.reader import ConfigError
from content_provider.faults.rules import FaultSettings

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # content_provider/
DEFAULT_CONFIG_NAME = "config.yaml"


def _demo_fixtures() -> Path:
    """The demo set: ``fixtures/images`` of the repository when this runs from a checkout
    (``./dev``, ``pip install -e``), else the copy a wheel carries inside the package."""
    checkout = PACKAGE_DIR.parent
    try:
        ours = 'name = "content-provider"' in (checkout / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        ours = False
    if ours and (checkout / "fixtures" / "images").is_dir():
        return checkout / "fixtures" / "images"
    bundled = resources.files("content_provider").joinpath("demo_fixtures")
    return bundled if isinstance(bundled, Path) else PACKAGE_DIR / "demo_fixtures"


DEMO_FIXTURES = _demo_fixtures()


def in_package(path: Path) -> bool:
    """Whether ``path`` is inside the installed package, which is never written to."""
    return path.resolve().is_relative_to(PACKAGE_DIR)


BARE_ID_MODES = ("card", "auth", "off")
EVENT_LOOPS = ("auto", "asyncio", "uvloop")
# Each JWS algorithm the back side can be signed with, and the key type it needs. EdDSA (RFC 8037)
# and Ed25519 (RFC 9864) sign alike with an Ed25519 key; verifiers written before RFC 9864 (PyJWT,
# many Java JOSE libraries) know only EdDSA, newer ones may prefer Ed25519.
KEY_TYPES = {
    **{name: "RSA" for name in ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")},
    "ES256": "P-256",
    "ES384": "P-384",
    "EdDSA": "Ed25519",
    "Ed25519": "Ed25519",
}
ALGORITHMS = tuple(KEY_TYPES)
# Default key files are named by key type, so switching algorithm never reuses a wrong key.
KEY_FILE_STEMS = {"RSA": "rsa", "P-256": "ec-p256", "P-384": "ec-p384", "Ed25519": "ed25519"}

STATE_DIR_ENV = ENV_PREFIX + "STATE_DIR"
SIGNING_KEY_ENV = ENV_PREFIX + "SIGNING_KEY"  # PEM text of the signing key (with SIGNING_CERT)
SIGNING_CERT_ENV = ENV_PREFIX + "SIGNING_CERT"  # PEM text of its certificate


def state_dir(environ: Mapping[str, str]) -> Path:
    """The per-user folder for what the mock makes itself when no config names a place (the
    development signing key): ``$CONTENT_PROVIDER_STATE_DIR``, else
    ``${XDG_STATE_HOME:-~/.local/state}/content-provider``. Only named here; made on first use."""
    explicit = environ.get(STATE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser().resolve()
    xdg = environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore a relative one
        return Path(xdg) / "content-provider"
    try:
        home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    except (KeyError, RuntimeError):
        raise ConfigError(f"no home folder to keep the development signing key in; set {STATE_DIR_ENV}") from None
    return home / ".local" / "state" / "content-provider"


CACHE_DIR_NAME = "cache"  # the persistent cache's folder in the state folder, when cache.directory is not set


def _default_signing_dir() -> Path:
    return state_dir(os.environ) / "signing"


def key_file_stem(algorithm: str) -> str:
    return KEY_FILE_STEMS[KEY_TYPES[algorithm]]


@dataclass(frozen=True)
class UserImages:
    """Images mapped in config for one content id subject (paths inside the fixture root)."""

    front: Path | None = None
    back: Path | None = None
    auth: Path | None = None


@dataclass(frozen=True)
class Organisation:
    """An organisation declared in config: who belongs, and optional explicit images."""

    name: str
    members: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    images: UserImages = UserImages()


@dataclass(frozen=True)
class Settings:
    """Validated, immutable settings for one server instance."""

    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = ""
    max_body_bytes: int = 16 * 1024
    max_content_id_length: int = 256
    event_loop: str = "auto"  # uvloop when installed (the fast extra): it measured faster, docs/performance.md
    idle_timeout: float = 30.0
    body_timeout: float = 10.0
    max_connections: int = 1000
    # Besides localhost, IP addresses and the listen address: names the admin API, the web page and
    # /metrics answer to ("*": any), and other origins that may change things (http/origin.py).
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    workers: int = 1  # processes serving the port (serve --workers); see workers.py
    tls_cert: Path | None = None
    tls_key: Path | None = None
    fixture_root: Path = DEMO_FIXTURES
    strict: bool = False
    check_at_startup: bool | Literal["auto"] = "auto"  # auto: only when there are few fixture folders
    aspect_tolerance: float = 0.01
    bare_ids: str = "card"
    default_enabled: bool = True
    default_generated: bool = False  # fixtures.default: generated: a card of its own for every subject
    users: Mapping[str, UserImages] = field(default_factory=dict)
    organisations: tuple[Organisation, ...] = ()
    cache_max_bytes: int = 64 * 1024 * 1024
    revalidate_seconds: float = 1.0
    # the persistent cache of signatures and image checks (cache.directory; fixtures/persist.py); None: off
    cache_dir: Path | None = None
    username: str | None = None
    password: str | None = None
    algorithm: str = "RS256"
    key_file: Path = field(default_factory=lambda: _default_signing_dir() / "rsa-key.pem")
    cert_file: Path = field(default_factory=lambda: _default_signing_dir() / "rsa-cert.pem")
    state_dir: Path | None = None  # set when the key lives in the state folder (see state_dir())
    # The key and certificate as PEM text from the environment (a Kubernetes Secret), used instead of
    # the files: every replica given them signs alike. Never shown (repr=False).
    key_pem: str | None = field(default=None, repr=False)
    cert_pem: str | None = field(default=None, repr=False)
    access_log: bool = True
    log_level: str = "INFO"
    faults: FaultSettings = field(default_factory=FaultSettings)
    admin_enabled: bool = True
    admin_token: str | None = None
    protect_metrics: bool = False  # /metrics behind the admin API's access rule (token, else loopback)
    journal_size: int = 1000
    state_backend: str = "memory"  # memory | redis (see content_provider/state/)
    redis_url: str | None = None
    redis_password: str | None = None  # from the environment only; else the URL's
    state_namespace: str = "content-provider"
    upstream: UpstreamSettings | None = None  # a real content provider to stand in front of (upstream/)
    source: Path | None = None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTINGS: web.AppKey[Settings] = web.AppKey("settings")


CONFIG_ENV: web.AppKey[dict[str, str]] = web.AppKey("config_env")  # the environment, for config reloads


MAX_WORKERS = 64
STATE_BACKENDS = ("memory", "redis")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
NAMESPACE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # state.namespace
