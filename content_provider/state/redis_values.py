"""What the Redis backend (state/redis.py) reads, checked before use, and the record of what was not
good enough: anyone who can reach Redis can write any key, so nothing read there is trusted.

- the rules go through the parser of the config file and the admin API (faults/rules.py), their
  counter tokens must be hex and their own;
- a journal entry must be what ``Entry.packed()`` makes (core/records.py, ``packed_problem``);
- the counts, the generation and the heartbeats are checked by the Lua scripts that use them
  (state/redis_scripts.py), which name what they skipped or replaced.

A bad value is skipped (or, where the backend writes anyway, replaced), logged once per key (and
field) and again at most every ``LOG_AGAIN_SECONDS`` while it stays, and shown in ``/healthz``
under ``state.bad_values``: the ``BAD_VALUES_SHOWN`` keys most recently found bad, each with the
latest problem, how often it was met and when last.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import time
from typing import Any

from content_provider.core.lru import LRU
from content_provider.core.reader import ConfigError
from content_provider.core.records import packed_problem
from content_provider.faults.rules import Rule, parse_rules

log = logging.getLogger("content_provider.state")

LOG_AGAIN_SECONDS = 60.0  # a bad value met again and again is logged again at most this often
BAD_VALUES_SHOWN = 20  # keys named in /healthz, the most recently found bad
LOGGED = 10_000  # (key, field) pairs whose last log line is remembered
TOKEN = re.compile(r"[0-9a-f]{1,64}")  # what the backend makes as a rule's counter token (secrets.token_hex)


class BadValue(ValueError):
    """A value read from Redis that cannot be used; the message says why."""


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads would take NaN and Infinity, and json.dumps write them


def _json(raw: bytes) -> Any:
    """Strict JSON (no NaN, no Infinity); raises BadValue."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadValue(f"not JSON ({str(exc)[:200]})") from None


class BadValues:
    """The values read from Redis that could not be used: logged (rate limited) and shown."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.count = 0
        self._shown: LRU[str, dict[str, Any]] = LRU(BAD_VALUES_SHOWN)
        self._logged: LRU[tuple[str, str | None], float] = LRU(LOGGED)

    def report(self, key: str, problem: str, field: str | None = None) -> None:
        """``key`` (without the namespace; ``field`` of it, for a hash or a stream) held a value that was
        skipped or replaced because of ``problem``."""
        self.count += 1
        seen = self._shown.get(key) or {"times": 0}
        seen.update(
            problem=problem if field is None else f"{field}: {problem}",
            times=seen["times"] + 1,
            last=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        )
        self._shown.put(key, seen)
        if self.due((key, field)):
            where = self._prefix + key + ("" if field is None else f" {field}")
            log.warning("bad value at %.200s in Redis: %s", where, problem)

    def due(self, identity: tuple[str, str | None]) -> bool:
        """Whether a line about ``identity`` may be logged now (then not again for LOG_AGAIN_SECONDS)."""
        now = time.monotonic()
        last = self._logged.get(identity)
        if last is not None and now - last < LOG_AGAIN_SECONDS:
            return False
        self._logged.put(identity, now)
        return True

    def shown(self) -> dict[str, Any]:
        """For /healthz: by key, the most recent last."""
        return {key: dict(self._shown.peek(key) or {}) for key in self._shown}

    def pairs(self, flat: list[Any]) -> None:
        """Report what a script named: ``[key, problem, key, problem, ...]`` (keys with or without the prefix)."""
        for key, problem in zip(flat[::2], flat[1::2], strict=True):
            name = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            why = problem.decode(errors="replace") if isinstance(problem, bytes) else str(problem)
            self.report(name.removeprefix(self._prefix), why)


def decode_rules(raw: bytes, cap: float) -> tuple[tuple[Rule, ...], dict[str, str]]:
    """The rules Redis holds (``{"rules": [{"token": ..., "spec": {...}}, ...]}``) and each one's
    counter token, by name; raises BadValue."""
    stored = _json(raw)
    items = stored.get("rules") if isinstance(stored, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise BadValue('not {"rules": [{"token": ..., "spec": {...}}, ...]}')
    tokens = [item.get("token") for item in items]
    if not all(isinstance(token, str) and TOKEN.fullmatch(token) for token in tokens):
        raise BadValue("a rule's token is not hex digits")
    if len(set(tokens)) != len(tokens):
        raise BadValue("two rules share one token (their counts would be one)")
    try:
        rules = parse_rules([item.get("spec") for item in items], "rules", cap)
    except (ConfigError, RecursionError) as exc:
        raise BadValue(str(exc)) from None
    return rules, {rule.name: str(token) for rule, token in zip(rules, tokens, strict=True)}


def journal_entry(fields: Any) -> list[Any]:
    """A journal entry's ``Entry.packed()`` from its stream fields; raises BadValue."""
    data = fields.get(b"e") if isinstance(fields, dict) else None
    if not isinstance(data, bytes):
        raise BadValue("no field e")
    packed = _json(data)
    problem = packed_problem(packed)
    if problem is not None:
        raise BadValue(f"not a journal entry: {problem}")
    assert isinstance(packed, list)  # what packed_problem passed
    return packed
