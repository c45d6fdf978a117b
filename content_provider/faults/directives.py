"""Content id directives: ``PROV:alice;fault=503;delay=2s`` carries a one-off rule in the id itself."""

from __future__ import annotations

from typing import Any

from content_provider.core.reader import ConfigError, ascii_int
from content_provider.faults.rules import Rule, parse_rule

# --------------------------------------------------------------------------- directives in the content id

DIRECTIVE_SEPARATOR = ";"
DIRECTIVE_KEYS = ("fault", "delay", "bandwidth", "seq", "delay_at")


def split_directives(raw: str, cap: float) -> tuple[str, Rule | None]:
    """``PROV:bob;fault=503;delay=200ms`` -> (``PROV:bob``, a rule for this request).

    Raises :class:`ConfigError` naming the directive when one is malformed.
    """
    base, sep, tail = raw.partition(DIRECTIVE_SEPARATOR)
    if not sep:
        return raw, None
    values: dict[str, Any] = {}
    for part in tail.split(DIRECTIVE_SEPARATOR):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not eq or name not in DIRECTIVE_KEYS:
            raise ConfigError(f"directive {part!r}: expected one of {', '.join(f'{k}=...' for k in DIRECTIVE_KEYS)}")
        values[name] = value.strip()
    data: dict[str, Any] = {"name": "directive", "match": {"id": base} if base else {}}
    if "fault" in values:
        data["outcome"] = values["fault"]
    if "seq" in values:
        data["sequence"] = [v.strip() for v in values["seq"].split(",") if v.strip()]
    if "delay" in values:
        data["delay"] = values["delay"]
    if "delay_at" in values:
        data["delay_at"] = values["delay_at"]
    if "bandwidth" in values:
        bandwidth = ascii_int(values["bandwidth"])
        if bandwidth is None:
            raise ConfigError(f"directive bandwidth={values['bandwidth']!r}: expected bytes per second (digits 0-9)")
        data["bandwidth"] = bandwidth
    return base, parse_rule(data, "directive", cap, "directive")
