"""Settings: read ``config.yaml`` and the environment once, validate, freeze.

Everything downstream takes a :class:`Settings` that is already checked, so a
mistake in the file is reported at start-up naming the key and what was wrong,
never as a traceback in the middle of a request.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from aiohttp import web

from content_provider.config.upstream import UpstreamSettings, parse_upstream
from content_provider.core.layout import SIDES
from content_provider.core.reader import ConfigError, Reader, ascii_int, bounded
from content_provider.faults.rules import FaultSettings, parse_fault_settings

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
# Organisation and user names that may appear as folder names. Content ids are
# opaque, so anything else is simply not a folder (it may still be mapped in
# config, match an organisation pattern, or fall back to the default).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,199}$")

ENV_PREFIX = "CONTENT_PROVIDER_"
STATE_DIR_ENV = ENV_PREFIX + "STATE_DIR"


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
    event_loop: str = "asyncio"
    idle_timeout: float = 30.0
    body_timeout: float = 10.0
    max_connections: int = 1000
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
    username: str | None = None
    password: str | None = None
    algorithm: str = "RS256"
    key_file: Path = field(default_factory=lambda: _default_signing_dir() / "rsa-key.pem")
    cert_file: Path = field(default_factory=lambda: _default_signing_dir() / "rsa-cert.pem")
    state_dir: Path | None = None  # set when the key lives in the state folder (see state_dir())
    access_log: bool = True
    log_level: str = "INFO"
    faults: FaultSettings = field(default_factory=FaultSettings)
    admin_enabled: bool = True
    admin_token: str | None = None
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


def _fixture_path(key: str, value: str | None, root: Path) -> Path | None:
    """A path from config that must stay inside the fixture root."""
    if value is None:
        return None
    candidate = (root / value).resolve()
    if not candidate.is_relative_to(root.resolve()):
        raise ConfigError(f"{key}: {value!r} is outside the fixture folder {root}")
    return candidate


def _images(reader: Reader, root: Path) -> UserImages:
    return UserImages(**{name: _fixture_path(reader.key(name), reader.string(name, None), root) for name in SIDES})


def _env(environ: Mapping[str, str], name: str, fallback: str | None) -> str | None:
    """An environment variable wins over the file; an empty one counts as unset."""
    return environ.get(ENV_PREFIX + name) or fallback


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    value = ascii_int(text.removeprefix("-"))  # a sign is read, so the range check can name the range
    if value is None:
        raise ConfigError(f"{ENV_PREFIX}{name}: expected a whole number (digits 0-9), got {raw!r}")
    return -value if text.startswith("-") else value


def _env_bool(environ: Mapping[str, str], name: str, fallback: bool) -> bool:
    raw = (environ.get(ENV_PREFIX + name) or "").strip().lower()
    if not raw:
        return fallback
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}: expected true or false, got {raw!r}")


# --------------------------------------------------------------------------- parsing

MAX_WORKERS = 64
STATE_BACKENDS = ("memory", "redis")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
NAMESPACE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def find_config(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The config file to use: ``--config``, then ``$CONTENT_PROVIDER_CONFIG``, then ``./config.yaml``."""
    chosen = explicit or environ.get(ENV_PREFIX + "CONFIG") or None
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigError(f"config file {chosen!r} does not exist")
        return path
    local = cwd / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


REDIS_EXTRA = ("redis", "orjson")  # what the redis extra (pip install 'content-provider[redis]') brings


def redis_extra_missing() -> str | None:
    """The first module of the redis extra that is not installed, or ``None``."""
    return next((name for name in REDIS_EXTRA if importlib.util.find_spec(name) is None), None)


def parse_settings(data: Any, base_dir: Path, environ: Mapping[str, str], source: Path | None = None) -> Settings:
    """Build settings from parsed YAML and the environment (environment wins)."""
    top = Reader(data, "")
    server = top.section("server")
    host = _env(environ, "HOST", server.string("host", "127.0.0.1"))
    port = server.integer("port", 8080, 0, 65535)
    env_port = _env_int(environ, "PORT")
    if env_port is not None:
        port = bounded(ENV_PREFIX + "PORT", env_port, 0, 65535)
    base_path = (server.string("base_path", "") or "").rstrip("/")
    if base_path and not base_path.startswith("/"):
        raise ConfigError(f"server.base_path: must start with '/', got {base_path!r}")
    max_body = server.integer("max_body_bytes", 16 * 1024, 64, 16 * 1024 * 1024)
    max_id = server.integer("max_content_id_length", 256, 8, 8192)
    event_loop = _env(environ, "EVENT_LOOP", server.choice("event_loop", "asyncio", EVENT_LOOPS)) or "asyncio"
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"{ENV_PREFIX}EVENT_LOOP: expected one of {', '.join(EVENT_LOOPS)}, got {event_loop!r}")
    idle_timeout = server.number("idle_timeout", 30.0, 0.5, 3600.0)
    body_timeout = server.number("body_timeout", 10.0, 0.1, 3600.0)
    max_connections = server.integer("max_connections", 1000, 1, 1_000_000)
    workers = server.integer("workers", 1, 1, MAX_WORKERS)
    env_workers = _env_int(environ, "WORKERS")
    if env_workers is not None:
        workers = bounded(ENV_PREFIX + "WORKERS", env_workers, 1, MAX_WORKERS)
    tls_cert_text = _env(environ, "TLS_CERT", server.string("tls_cert", None))
    tls_key_text = _env(environ, "TLS_KEY", server.string("tls_key", None))
    if (tls_cert_text is None) != (tls_key_text is None):
        raise ConfigError("server.tls_cert and server.tls_key: set both (or --tls-cert and --tls-key), or neither")
    server.finish()

    fixtures = top.section("fixtures")
    root_text = _env(environ, "FIXTURES", fixtures.string("root", None))
    root = (base_dir / root_text).resolve() if root_text else DEMO_FIXTURES
    if not root.is_dir():
        raise ConfigError(f"fixtures.root: {str(root)!r} is not a folder")
    strict = _env_bool(environ, "STRICT", fixtures.boolean("strict", False))
    check_value = fixtures.raw("check_at_startup")
    if check_value is not None and not isinstance(check_value, bool) and check_value != "auto":
        raise ConfigError(f"fixtures.check_at_startup: expected true, false or auto, got {check_value!r}")
    check: bool | Literal["auto"] = "auto" if check_value is None else check_value
    tolerance = fixtures.number("aspect_tolerance", 0.01, 0.0, 0.5)
    bare = fixtures.choice("bare_ids", "card", BARE_ID_MODES)
    default_value = fixtures.raw("default")
    if default_value is not None and not isinstance(default_value, bool) and default_value != "generated":
        raise ConfigError(f"fixtures.default: expected true, false or generated, got {default_value!r}")
    default_enabled = default_value is not False
    default_generated = default_value == "generated"

    users_reader = fixtures.section("users")
    users: dict[str, UserImages] = {}
    for user_id in list(users_reader.data):
        entry = users_reader.section(str(user_id))
        users[str(user_id)] = _images(entry, root)
        entry.finish()
    users_reader.finish()

    orgs_raw = fixtures.section("organisations")
    organisations = []
    for name in list(orgs_raw.data):
        entry = orgs_raw.section(str(name))
        if not SAFE_NAME.match(str(name)):
            raise ConfigError(f"{entry.where}: organisation names are folder names: letters, digits, . _ @ + = -")
        organisations.append(
            Organisation(
                name=str(name),
                members=entry.string_list("members"),
                patterns=entry.patterns("patterns"),
                images=_images(entry, root),
            )
        )
        entry.finish()
    orgs_raw.finish()
    fixtures.finish()

    cache = top.section("cache")
    cache_max = cache.integer("max_bytes", 64 * 1024 * 1024, 0, 1 << 40)
    revalidate = cache.number("revalidate_seconds", 1.0, 0.0, 86400.0)
    cache.finish()

    auth = top.section("auth")
    username = _env(environ, "USERNAME", auth.string("username", None))
    password = _env(environ, "PASSWORD", auth.string("password", None))
    auth.finish()
    if (username is None) != (password is None):
        raise ConfigError(
            "auth: set both username and password (or CONTENT_PROVIDER_USERNAME and "
            "CONTENT_PROVIDER_PASSWORD), or neither"
        )
    if username is not None and ":" in username:
        raise ConfigError("auth.username: may not contain ':' (basic authentication splits on it)")

    signing = top.section("signing")
    algorithm = _env(environ, "JWS_ALG", signing.choice("algorithm", "RS256", ALGORITHMS)) or "RS256"
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"{ENV_PREFIX}JWS_ALG: expected one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    signing_dir_text = signing.string("directory", None)
    key_text = signing.string("key_file", None)
    cert_text = signing.string("cert_file", None)
    signing.finish()
    stem = key_file_stem(algorithm)
    # No place named in a config file: the per-user state folder, never the installed package.
    state = None if signing_dir_text or (key_text and cert_text) else state_dir(environ)
    signing_dir = (base_dir / signing_dir_text).resolve() if signing_dir_text else (state or base_dir) / "signing"

    faults = parse_fault_settings(top.section("faults"))

    admin = top.section("admin")
    admin_enabled = admin.boolean("enabled", True)
    admin_token = _env(environ, "ADMIN_TOKEN", admin.string("token", None))
    journal_size = admin.integer("journal_size", 1000, 1, 1_000_000)
    admin.finish()
    if admin_token is not None and len(admin_token) < 16:
        raise ConfigError("admin.token: use at least 16 characters (e.g. `openssl rand -hex 16`)")

    state_section = top.section("state")
    redis_url = _env(environ, "REDIS_URL", state_section.string("redis_url", None))
    backend_default = "redis" if redis_url else "memory"
    backend = _env(environ, "STATE_BACKEND", state_section.choice("backend", backend_default, STATE_BACKENDS))
    if backend not in STATE_BACKENDS:
        raise ConfigError(f"{ENV_PREFIX}STATE_BACKEND: expected one of {', '.join(STATE_BACKENDS)}, got {backend!r}")
    namespace = _env(environ, "STATE_NAMESPACE", state_section.string("namespace", "content-provider"))
    state_section.finish()
    if not namespace or not NAMESPACE.match(namespace):
        raise ConfigError(f"state.namespace: letters, digits and . _ - : only (1-64), got {namespace!r}")
    if redis_url is not None and not redis_url.startswith(REDIS_SCHEMES):
        raise ConfigError(f"state.redis_url: expected redis://, rediss:// or unix://, got {redis_url.split('@')[-1]!r}")
    missing = redis_extra_missing() if backend == "redis" else None
    if missing is not None:
        raise ConfigError(
            f"state.backend: redis needs redis-py and orjson, and {missing} is not installed: "
            "pip install 'content-provider[redis]'"
        )
    upstream = parse_upstream(top.section("upstream"), base_dir, environ)
    if upstream is not None and upstream.mode == "record" and workers > 1:
        raise ConfigError(
            "upstream.mode: record keeps one manifest, written by one process; use server.workers: 1 to record"
        )
    if upstream is not None and upstream.mode == "record" and root == DEMO_FIXTURES:
        raise ConfigError(
            "upstream.mode: record writes into the fixture folder, and the demo set is not written to; "
            "choose a folder with --fixtures DIR (or fixtures.root)"
        )

    logging_ = top.section("logging")
    access_log = logging_.boolean("access_log", True)
    level = logging_.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
    logging_.finish()
    top.finish()

    return Settings(
        host=host or "127.0.0.1",
        port=port,
        base_path=base_path,
        max_body_bytes=max_body,
        max_content_id_length=max_id,
        event_loop=event_loop,
        idle_timeout=idle_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
        workers=workers,
        tls_cert=(base_dir / tls_cert_text).resolve() if tls_cert_text else None,
        tls_key=(base_dir / tls_key_text).resolve() if tls_key_text else None,
        fixture_root=root,
        strict=strict,
        check_at_startup=check,
        aspect_tolerance=tolerance,
        bare_ids=bare,
        default_enabled=default_enabled,
        default_generated=default_generated,
        users=users,
        organisations=tuple(organisations),
        cache_max_bytes=cache_max,
        revalidate_seconds=revalidate,
        username=username,
        password=password,
        algorithm=algorithm,
        key_file=(base_dir / key_text).resolve() if key_text else signing_dir / f"{stem}-key.pem",
        cert_file=(base_dir / cert_text).resolve() if cert_text else signing_dir / f"{stem}-cert.pem",
        state_dir=state,
        access_log=access_log,
        log_level=level,
        faults=faults,
        admin_enabled=admin_enabled,
        admin_token=admin_token,
        journal_size=journal_size,
        state_backend=backend or "memory",
        redis_url=redis_url,
        redis_password=environ.get(ENV_PREFIX + "REDIS_PASSWORD") or None,
        state_namespace=namespace,
        upstream=upstream,
        source=source,
    )


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (or nothing) and the environment into settings."""
    env = os.environ if environ is None else environ
    if path is None:
        return parse_settings({}, Path.cwd(), env)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_settings(data, path.resolve().parent, env, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
