"""From parsed YAML and the environment to :class:`~content_provider.config.settings.Settings`.

One small parser per section of ``config.yaml``, each reading its keys (the environment wins),
checking them and returning the :class:`Settings` fields it decides; :func:`parse_settings`
adds the checks that span sections. A mistake names the key (or variable) and what was wrong.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from content_provider.config.environment import ENV_PREFIX, check_credentials, env, env_bool, env_int
from content_provider.config.settings import (
    ALGORITHMS,
    BARE_ID_MODES,
    CACHE_DIR_NAME,
    DEFAULT_CONFIG_NAME,
    DEMO_FIXTURES,
    EVENT_LOOPS,
    MAX_WORKERS,
    NAMESPACE,
    REDIS_SCHEMES,
    SIGNING_CERT_ENV,
    SIGNING_KEY_ENV,
    STATE_BACKENDS,
    Organisation,
    Settings,
    UserImages,
    key_file_stem,
    state_dir,
)
from content_provider.config.upstream import parse_upstream
from content_provider.core.layout import SAFE_NAME, SIDES
from content_provider.core.reader import ConfigError, Reader, bounded
from content_provider.faults.rules import parse_fault_settings

Fields = dict[str, Any]  # Settings fields decided by one section

REDIS_EXTRA = ("redis", "orjson")  # what the redis extra (pip install 'content-provider[redis]') brings


def redis_extra_missing() -> str | None:
    """The first module of the redis extra that is not installed, or ``None``."""
    return next((name for name in REDIS_EXTRA if importlib.util.find_spec(name) is None), None)


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


def _fixture_path(key: str, value: str | None, root: Path) -> Path | None:
    """A path from config that must stay inside the fixture root. Links are followed to check that,
    but the path is kept as written (normalised): a link swapped later (a recording's
    ``users/<name>``) is followed anew each time, and checked again then (fixtures/folder.py)."""
    if value is None:
        return None
    if not (root / value).resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"{key}: {value!r} is outside the fixture folder {root}")
    return Path(os.path.normpath(root / value))


def _images(reader: Reader, root: Path) -> UserImages:
    return UserImages(**{name: _fixture_path(reader.key(name), reader.string(name, None), root) for name in SIDES})


ORIGIN = re.compile(r"^https?://(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:[0-9]{1,5})?$")  # server.allowed_origins


def _listed(server: Reader, environ: Mapping[str, str], key: str, env_name: str) -> tuple[tuple[str, ...], str]:
    """A list from the file, or from a comma-separated variable (which wins), and where it came from."""
    listed = server.string_list(key)
    raw = env(environ, env_name, None)
    if raw is not None:
        return tuple(item.strip() for item in raw.split(",") if item.strip()), ENV_PREFIX + env_name
    return listed, server.key(key)


def _allowed_hosts(server: Reader, environ: Mapping[str, str]) -> tuple[str, ...]:
    names, where = _listed(server, environ, "allowed_hosts", "ALLOWED_HOSTS")
    for name in names:
        if "/" in name or " " in name or (":" in name and not name.startswith("[")):
            raise ConfigError(f"{where}: expected host names without scheme or port (e.g. provider), got {name!r}")
    return tuple(name.lower().rstrip(".") for name in names)


def _allowed_origins(server: Reader, environ: Mapping[str, str]) -> tuple[str, ...]:
    origins, where = _listed(server, environ, "allowed_origins", "ALLOWED_ORIGINS")
    checked = tuple(origin.lower().removesuffix("/") for origin in origins)
    for origin, given in zip(checked, origins, strict=True):
        if not ORIGIN.match(origin):
            raise ConfigError(f"{where}: expected origins like https://mock.example:8443 (no path), got {given!r}")
    return checked


def _server(server: Reader, environ: Mapping[str, str], base_dir: Path) -> Fields:
    host = env(environ, "HOST", server.string("host", "127.0.0.1"))
    port = server.integer("port", 8080, 0, 65535)
    env_port = env_int(environ, "PORT")
    if env_port is not None:
        port = bounded(ENV_PREFIX + "PORT", env_port, 0, 65535)
    base_path = (server.string("base_path", "") or "").rstrip("/")
    if base_path and not base_path.startswith("/"):
        raise ConfigError(f"server.base_path: must start with '/', got {base_path!r}")
    event_loop = env(environ, "EVENT_LOOP", server.choice("event_loop", "auto", EVENT_LOOPS)) or "auto"
    if event_loop not in EVENT_LOOPS:
        raise ConfigError(f"{ENV_PREFIX}EVENT_LOOP: expected one of {', '.join(EVENT_LOOPS)}, got {event_loop!r}")
    fields: Fields = {
        "host": host or "127.0.0.1",
        "port": port,
        "base_path": base_path,
        "max_body_bytes": server.integer("max_body_bytes", 16 * 1024, 64, 16 * 1024 * 1024),
        "max_content_id_length": server.integer("max_content_id_length", 256, 8, 8192),
        "event_loop": event_loop,
        "idle_timeout": server.number("idle_timeout", 30.0, 0.5, 3600.0),
        "body_timeout": server.number("body_timeout", 10.0, 0.1, 3600.0),
        "max_connections": server.integer("max_connections", 1000, 1, 1_000_000),
        "allowed_hosts": _allowed_hosts(server, environ),
        "allowed_origins": _allowed_origins(server, environ),
    }
    workers = server.integer("workers", 1, 1, MAX_WORKERS)
    env_workers = env_int(environ, "WORKERS")
    if env_workers is not None:
        workers = bounded(ENV_PREFIX + "WORKERS", env_workers, 1, MAX_WORKERS)
    tls_cert_text = env(environ, "TLS_CERT", server.string("tls_cert", None))
    tls_key_text = env(environ, "TLS_KEY", server.string("tls_key", None))
    if (tls_cert_text is None) != (tls_key_text is None):
        raise ConfigError("server.tls_cert and server.tls_key: set both (or --tls-cert and --tls-key), or neither")
    server.finish()
    fields["workers"] = workers
    fields["tls_cert"] = (base_dir / tls_cert_text).resolve() if tls_cert_text else None
    fields["tls_key"] = (base_dir / tls_key_text).resolve() if tls_key_text else None
    return fields


def _users(reader: Reader, root: Path) -> dict[str, UserImages]:
    users: dict[str, UserImages] = {}
    for user_id in list(reader.data):
        entry = reader.section(str(user_id))
        users[str(user_id)] = _images(entry, root)
        entry.finish()
    reader.finish()
    return users


def _organisations(reader: Reader, root: Path) -> tuple[Organisation, ...]:
    organisations = []
    for name in list(reader.data):
        entry = reader.section(str(name))
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
    reader.finish()
    return tuple(organisations)


def _fixtures(fixtures: Reader, environ: Mapping[str, str], base_dir: Path) -> Fields:
    root_text = env(environ, "FIXTURES", fixtures.string("root", None))
    root = (base_dir / root_text).resolve() if root_text else DEMO_FIXTURES
    if not root.is_dir():
        raise ConfigError(f"fixtures.root: {str(root)!r} is not a folder")
    check_value = fixtures.raw("check_at_startup")
    if check_value is not None and not isinstance(check_value, bool) and check_value != "auto":
        raise ConfigError(f"fixtures.check_at_startup: expected true, false or auto, got {check_value!r}")
    check: bool | Literal["auto"] = "auto" if check_value is None else check_value
    default_value = fixtures.raw("default")
    if default_value is not None and not isinstance(default_value, bool) and default_value != "generated":
        raise ConfigError(f"fixtures.default: expected true, false or generated, got {default_value!r}")
    fields: Fields = {
        "fixture_root": root,
        "strict": env_bool(environ, "STRICT", fixtures.boolean("strict", False)),
        "check_at_startup": check,
        "aspect_tolerance": fixtures.number("aspect_tolerance", 0.01, 0.0, 0.5),
        "bare_ids": fixtures.choice("bare_ids", "card", BARE_ID_MODES),
        "default_enabled": default_value is not False,
        "default_generated": default_value == "generated",
        "users": _users(fixtures.section("users"), root),
        "organisations": _organisations(fixtures.section("organisations"), root),
    }
    fixtures.finish()
    return fields


def _cache(cache: Reader, environ: Mapping[str, str], base_dir: Path, fixture_root: Path) -> Fields:
    fields: Fields = {
        "cache_max_bytes": cache.integer("max_bytes", 64 * 1024 * 1024, 0, 1 << 40),
        "revalidate_seconds": cache.number("revalidate_seconds", 1.0, 0.0, 86400.0),
    }
    persistent = cache.boolean("persistent", True)
    directory_text = cache.string("directory", None)
    cache.finish()
    directory = None
    if persistent and directory_text:
        directory = (base_dir / directory_text).resolve()
    elif persistent:
        try:
            directory = state_dir(environ) / CACHE_DIR_NAME
        except ConfigError:  # no home folder: no persistent cache, rather than no server
            directory = None
    if directory is not None and directory.is_relative_to(fixture_root.resolve()):
        raise ConfigError(
            f"cache.directory: {directory} is inside the fixture folder {fixture_root}; "
            "put the cache beside it (it is not a fixture)"
        )
    fields["cache_dir"] = directory
    return fields


def _auth(auth: Reader, environ: Mapping[str, str]) -> Fields:
    username = env(environ, "USERNAME", auth.string("username", None))
    password = env(environ, "PASSWORD", auth.string("password", None))
    auth.finish()
    check_credentials("auth", "", username, password)
    return {"username": username, "password": password}


def _signing(signing: Reader, environ: Mapping[str, str], base_dir: Path) -> Fields:
    algorithm = env(environ, "JWS_ALG", signing.choice("algorithm", "RS256", ALGORITHMS)) or "RS256"
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"{ENV_PREFIX}JWS_ALG: expected one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    signing_dir_text = signing.string("directory", None)
    key_text = signing.string("key_file", None)
    cert_text = signing.string("cert_file", None)
    signing.finish()
    key_pem, cert_pem = environ.get(SIGNING_KEY_ENV) or None, environ.get(SIGNING_CERT_ENV) or None
    if (key_pem is None) != (cert_pem is None):
        given, missing = (SIGNING_KEY_ENV, SIGNING_CERT_ENV) if key_pem else (SIGNING_CERT_ENV, SIGNING_KEY_ENV)
        raise ConfigError(
            f"{given} is set but {missing} is not: give the key and its certificate together "
            "(replicas that made a certificate each would each sign differently)"
        )
    stem = key_file_stem(algorithm)
    # No place named in a config file: the per-user state folder, never the installed package.
    state = None if signing_dir_text or (key_text and cert_text) or key_pem else state_dir(environ)
    signing_dir = (base_dir / signing_dir_text).resolve() if signing_dir_text else (state or base_dir) / "signing"
    return {
        "algorithm": algorithm,
        "key_file": (base_dir / key_text).resolve() if key_text else signing_dir / f"{stem}-key.pem",
        "cert_file": (base_dir / cert_text).resolve() if cert_text else signing_dir / f"{stem}-cert.pem",
        "state_dir": state,
        "key_pem": key_pem,
        "cert_pem": cert_pem,
    }


def _admin(admin: Reader, environ: Mapping[str, str]) -> Fields:
    fields: Fields = {
        "admin_enabled": admin.boolean("enabled", True),
        "admin_token": env(environ, "ADMIN_TOKEN", admin.string("token", None)),
        "protect_metrics": env_bool(environ, "PROTECT_METRICS", admin.boolean("protect_metrics", False)),
        "journal_size": admin.integer("journal_size", 1000, 1, 1_000_000),
    }
    admin.finish()
    if fields["admin_token"] is not None and len(fields["admin_token"]) < 16:
        raise ConfigError("admin.token: use at least 16 characters (e.g. `openssl rand -hex 16`)")
    return fields


def _state(state: Reader, environ: Mapping[str, str]) -> Fields:
    redis_url = env(environ, "REDIS_URL", state.string("redis_url", None))
    backend_default = "redis" if redis_url else "memory"
    backend = env(environ, "STATE_BACKEND", state.choice("backend", backend_default, STATE_BACKENDS))
    if backend not in STATE_BACKENDS:
        raise ConfigError(f"{ENV_PREFIX}STATE_BACKEND: expected one of {', '.join(STATE_BACKENDS)}, got {backend!r}")
    namespace = env(environ, "STATE_NAMESPACE", state.string("namespace", "content-provider"))
    state.finish()
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
    return {
        "state_backend": backend or "memory",
        "redis_url": redis_url,
        "redis_password": environ.get(ENV_PREFIX + "REDIS_PASSWORD") or None,
        "state_namespace": namespace,
    }


def _logging(logging_: Reader) -> Fields:
    fields: Fields = {
        "access_log": logging_.boolean("access_log", True),
        "log_level": logging_.choice("level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
    }
    logging_.finish()
    return fields


def parse_settings(data: Any, base_dir: Path, environ: Mapping[str, str], source: Path | None = None) -> Settings:
    """Build settings from parsed YAML and the environment (environment wins)."""
    top = Reader(data, "")
    server = _server(top.section("server"), environ, base_dir)
    fixtures = _fixtures(top.section("fixtures"), environ, base_dir)
    cache = _cache(top.section("cache"), environ, base_dir, fixtures["fixture_root"])
    auth = _auth(top.section("auth"), environ)
    signing = _signing(top.section("signing"), environ, base_dir)
    faults = parse_fault_settings(top.section("faults"))
    admin = _admin(top.section("admin"), environ)
    state = _state(top.section("state"), environ)
    upstream = parse_upstream(top.section("upstream"), base_dir, environ)
    if upstream is not None and upstream.mode == "record" and server["workers"] > 1:
        raise ConfigError(
            "upstream.mode: record keeps one manifest, written by one process; use server.workers: 1 to record"
        )
    if upstream is not None and upstream.mode == "record" and fixtures["fixture_root"] == DEMO_FIXTURES:
        raise ConfigError(
            "upstream.mode: record writes into the fixture folder, and the demo set is not written to; "
            "choose a folder with --fixtures DIR (or fixtures.root)"
        )
    if upstream is not None and upstream.mode == "record":
        # Every id goes to the upstream, so the file's own mappings answer nothing (the demo config's
        # name files of the demo set, not of the recording); the recording makes its own, in recorded.yaml.
        fixtures["users"], fixtures["organisations"] = {}, ()
    logging_ = _logging(top.section("logging"))
    top.finish()
    return Settings(
        **server,
        **fixtures,
        **cache,
        **auth,
        **signing,
        **admin,
        **state,
        **logging_,
        faults=faults,
        upstream=upstream,
        source=source,
    )


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the YAML file (or nothing) and the environment into settings."""
    environment = os.environ if environ is None else environ
    if path is None:
        return parse_settings({}, Path.cwd(), environment)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_settings(data, path.resolve().parent, environment, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
