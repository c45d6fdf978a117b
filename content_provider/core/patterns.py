"""Patterns that pick content ids or members: a glob (``*``, ``?``, ``[..]``) or a full-match
regular expression written ``re:...``. Fault rules and organisations both use them."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

REGEX_PREFIX = "re:"


def is_pattern(entry: str) -> bool:
    """Whether a ``members.txt`` line is a pattern rather than one exact id."""
    return entry.startswith(REGEX_PREFIX) or any(ch in entry for ch in "*?[")


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used, or ``None``."""
    if pattern.startswith(REGEX_PREFIX):
        try:
            re.compile(pattern[len(REGEX_PREFIX) :])
        except re.error as exc:
            return f"bad regular expression {pattern!r}: {exc}"
    return None


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A test for whole strings; raises ``re.error`` for a bad ``re:`` pattern (see :func:`pattern_error`)."""
    if pattern.startswith(REGEX_PREFIX):
        compiled = re.compile(pattern[len(REGEX_PREFIX) :])
        return lambda text: compiled.fullmatch(text) is not None
    return lambda text: fnmatch.fnmatchcase(text, pattern)
