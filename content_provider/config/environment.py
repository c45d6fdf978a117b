"""Reading settings from the environment: ``CONTENT_PROVIDER_*`` wins over the file, and an
empty variable counts as unset. Also the checks every section with credentials makes."""

from __future__ import annotations

from collections.abc import Mapping

from content_provider.core.reader import ConfigError, ascii_int

ENV_PREFIX = "CONTENT_PROVIDER_"


def env(environ: Mapping[str, str], name: str, fallback: str | None) -> str | None:
    """``$CONTENT_PROVIDER_<name>``, else ``fallback`` (the file's value)."""
    return environ.get(ENV_PREFIX + name) or fallback


def env_int(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    value = ascii_int(text.removeprefix("-"))  # a sign is read, so the range check can name the range
    if value is None:
        raise ConfigError(f"{ENV_PREFIX}{name}: expected a whole number (digits 0-9), got {raw!r}")
    return -value if text.startswith("-") else value


def env_bool(environ: Mapping[str, str], name: str, fallback: bool) -> bool:
    raw = (environ.get(ENV_PREFIX + name) or "").strip().lower()
    if not raw:
        return fallback
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name}: expected true or false, got {raw!r}")


def check_credentials(section: str, env_stem: str, username: str | None, password: str | None) -> None:
    """Basic-auth credentials come as a pair, and the user name cannot hold the ``:`` that
    basic authentication splits on (``auth:`` and ``upstream:`` alike)."""
    if (username is None) != (password is None):
        raise ConfigError(
            f"{section}: set both username and password (or {ENV_PREFIX}{env_stem}USERNAME and "
            f"{ENV_PREFIX}{env_stem}PASSWORD), or neither"
        )
    if username is not None and ":" in username:
        raise ConfigError(f"{section}.username: may not contain ':' (basic authentication splits on it)")
