"""Reading a YAML mapping with errors that name the key: shared by config and faults."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from content_provider.core.patterns import pattern_error

_N = TypeVar("_N", int, float)


ASCII_DIGITS = re.compile(r"[0-9]+")


def ascii_int(text: str) -> int | None:
    """``text`` as a non-negative integer when it is ASCII digits only, else ``None``.

    ``str.isdigit()`` also takes ``²`` (which ``int()`` refuses) and other scripts' digits (which it reads as
    numbers): every number we parse from a request or a file goes through here instead.
    """
    return int(text) if ASCII_DIGITS.fullmatch(text) else None


def whole_number(value: Any) -> int | None:
    """``value`` as an int when it is a whole number (``2`` or ``2.0``, as JSON Schema's ``integer``
    takes them; never ``True``), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key."""


class Reader:
    """Walks one mapping of the YAML file, recording which keys were used."""

    def __init__(self, data: Any, where: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'top level'}: expected a mapping, got {kind(data)}")
        self.data: dict[Any, Any] = data
        self.where = where
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Reader:
        return Reader(self.raw(name), self.key(name))

    def string(self, name: str, default: str | None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{self.key(name)}: expected a string, got {kind(value)}")
        return str(value)

    def text(self, name: str, non_empty: bool = False) -> str | None:
        """A string that is one in the data (no number is taken for it), or ``None`` when absent;
        for the fault rules, whose every key the OpenAPI document describes exactly."""
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, str) or (non_empty and not value):
            wanted = "a non-empty string" if non_empty else "a string"
            raise ConfigError(f"{self.key(name)}: expected {wanted}, got {kind(value) if value else repr(value)}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        number = whole_number(value)
        if number is None:
            raise ConfigError(f"{self.key(name)}: expected an integer, got {value!r}")
        return bounded(self.key(name), number, minimum, maximum)

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.key(name)}: expected a number, got {value!r}")
        return bounded(self.key(name), float(value), minimum, maximum)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(name, default)
        assert value is not None
        if value not in choices:
            raise ConfigError(f"{self.key(name)}: expected one of {', '.join(choices)}, got {value!r}")
        return value

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.raw(name)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise ConfigError(f"{self.key(name)}: expected a list of strings, got {kind(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise ConfigError(f"{self.key(name)}[{index}]: expected a non-empty string, got {item!r}")
        return tuple(value)

    def patterns(self, name: str) -> tuple[str, ...]:
        """Glob patterns, or full-match regular expressions written ``re:...``."""
        values = self.string_list(name)
        for index, pattern in enumerate(values):
            _check_pattern(pattern, f"{self.key(name)}[{index}]")
        return values

    def pattern(self, name: str) -> str | None:
        """One pattern, as :meth:`patterns` takes them; ``None`` when absent."""
        value = self.text(name, non_empty=True)
        if value is not None:
            _check_pattern(value, self.key(name))
        return value

    def finish(self) -> None:
        unknown = sorted(str(k) for k in self.data if k not in self.used)
        if unknown:
            known = ", ".join(sorted(self.used))
            raise ConfigError(f"{self.key(unknown[0])}: unknown key (known here: {known})")


def _check_pattern(pattern: str, key: str) -> None:
    error = pattern_error(pattern)
    if error is not None:
        raise ConfigError(f"{key}: {error}")


def kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def bounded(key: str, value: _N, minimum: _N, maximum: _N) -> _N:
    if not minimum <= value <= maximum:
        raise ConfigError(f"{key}: must be between {minimum} and {maximum}, got {value}")
    return value
