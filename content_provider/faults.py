"""Fault rules: which requests get which latency or failure, reproducibly.

A rule has a *match* (all ids, a use case, exact ids, patterns), *triggers* (first N,
every Nth, a probability) and *effects* (a delay, a bandwidth limit, and an outcome:
an HTTP error, a broken payload, a connection fault, a hang, or a scripted sequence
of outcomes per id). Rules are looked at in order for every request:

- every rule that matches counts the request, whether or not it then fires;
- delays of all firing rules add up; the lowest bandwidth limit wins;
- the first firing rule that has an outcome decides the outcome.

Random choices come from one ``random.Random`` per rule seeded with
``faults.seed`` and the rule's name, so the same requests in the same order get the
same faults on every run.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .contract import ContentId, UseCase
from .faultpayloads import PAYLOAD_MODES
from .patterns import compile_pattern
from .schema import ConfigError, Reader, ascii_int

CONNECTION_MODES = ("reset", "close", "partial", "garbage")
BODY_KINDS = ("json", "empty", "html")
DELAY_AT = ("headers", "body")
# Directive states per content id, and per rule the sequence positions per content id and the
# rate-limit windows per client, are kept for the most recently seen this many; an id or client
# forgotten starts again (its sequence from the top).
KEYED_STATES = 10_000
_V = TypeVar("_V")
Z99 = 2.3263478740408408  # standard normal quantile at 0.99
DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|min)?\s*$")


@dataclass(frozen=True)
class Delay:
    """A delay in seconds: fixed, uniform between two bounds, or lognormal from median and p99."""

    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random, cap: float) -> float:
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = rng.uniform(self.a, self.b)
        else:
            mu = math.log(self.a)
            sigma = (math.log(self.b) - mu) / Z99
            value = rng.lognormvariate(mu, sigma)
        return min(value, cap)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.a:g}s"
        if self.kind == "uniform":
            return f"uniform {self.a:g}-{self.b:g}s"
        return f"lognormal median {self.a:g}s p99 {self.b:g}s"


@dataclass(frozen=True)
class Outcome:
    """What a request gets instead of (or as) its normal answer."""

    kind: str  # ok | status | payload | connection | hang
    status: int = 0
    body: str = "json"
    retry_after: float | None = None
    message: str | None = None
    mode: str = ""

    def describe(self) -> str:
        if self.kind == "status":
            return f"status {self.status}"
        if self.kind in ("payload", "connection"):
            return self.mode
        return self.kind


@dataclass(frozen=True)
class Match:
    """Which content ids a rule applies to. Empty means every id."""

    use_case: UseCase | None = None
    ids: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    matchers: tuple[Callable[[str], bool], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        # patterns are checked when the rule is read (Reader.patterns), so they compile here
        object.__setattr__(self, "matchers", tuple(compile_pattern(p) for p in self.patterns))

    def matches(self, content_id: ContentId) -> bool:
        if self.use_case is not None and content_id.use_case is not self.use_case:
            return False
        if not self.ids and not self.patterns:
            return True
        if content_id.raw in self.ids:
            return True
        return any(match(content_id.raw) for match in self.matchers)


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match = Match()
    probability: float = 1.0
    first: int | None = None
    every: int | None = None
    delay: Delay | None = None
    delay_at: str = "headers"
    bandwidth: int | None = None
    outcome: Outcome | None = None
    sequence: tuple[Outcome, ...] = ()
    rate_limit: tuple[int, float] | None = None
    spec: Any = field(default=None, compare=False)  # as written, for the admin API to show


@dataclass(frozen=True)
class FaultSettings:
    seed: int = 0
    header: bool = True
    content_id_directives: bool = False
    max_delay_seconds: float = 3600.0
    rules: tuple[Rule, ...] = ()


@dataclass
class Plan:
    """The faults one request gets: filled by :meth:`FaultEngine.plan`, carried out by delivery."""

    rules: list[str] = field(default_factory=list)
    delay: float = 0.0
    delay_at: str = "headers"
    bandwidth: int | None = None
    outcome: Outcome | None = None
    note: str = ""  # what delivery could not do as asked (a payload mode on an upstream error, say)

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def describe(self) -> str:
        parts = [",".join(self.rules)]
        if self.outcome is not None:
            parts.append(f"outcome={self.outcome.describe()}")
        if self.delay:
            parts.append(f"delay={self.delay * 1000:.0f}ms@{self.delay_at}")
        if self.bandwidth:
            parts.append(f"bandwidth={self.bandwidth}B/s")
        return "; ".join(parts) + self.note


@dataclass
class _RuleState:
    rng: random.Random
    count: int = 0
    per_id: OrderedDict[str, int] = field(default_factory=OrderedDict)  # least recently seen first
    windows: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)


def _touch(states: OrderedDict[str, _V], key: str, new: Callable[[], _V]) -> _V:
    """The state kept for ``key``, made when missing; the least recently seen falls off past the bound."""
    value = states.get(key)
    if value is None:
        value = states[key] = new()
        if len(states) > KEYED_STATES:
            states.popitem(last=False)
    else:
        states.move_to_end(key)
    return value


class FaultEngine:
    """Holds the rules in force and their counters; decides the plan for each request."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._states: dict[str, _RuleState] = {}
        self._directive_states: OrderedDict[str, _RuleState] = OrderedDict()
        self.replace(settings.rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def replace(self, rules: tuple[Rule, ...]) -> None:
        """Put new rules in force; all counters and random streams start again."""
        self._rules = rules
        self._states = {rule.name: self._new_state(rule.name) for rule in rules}
        self._directive_states.clear()

    def add(self, rule: Rule) -> None:
        """Put one more rule in force, last; other rules keep their counters."""
        if any(r.name == rule.name for r in self._rules):
            raise ConfigError(f"rule.name: a rule named {rule.name!r} is already in force")
        self._rules = (*self._rules, rule)
        self._states[rule.name] = self._new_state(rule.name)

    def remove(self, name: str) -> bool:
        """Take a rule out of force; False when there is none of that name."""
        kept = tuple(r for r in self._rules if r.name != name)
        if len(kept) == len(self._rules):
            return False
        self._rules = kept
        self._states.pop(name, None)
        return True

    def reconfigure(self, settings: FaultSettings) -> None:
        """New fault settings from a reloaded config; counters start again."""
        self.settings = settings
        self.replace(settings.rules)

    def _new_state(self, name: str) -> _RuleState:
        return _RuleState(random.Random(f"{self.settings.seed}:{name}"))

    def plan(self, content_id: ContentId, client: str, directive: Rule | None = None, raw_id: str = "") -> Plan:
        """Count this request against every rule and say which faults it gets.

        A directive from the content id comes first, with its own counters per full
        content id (so ``seq=`` steps through its outcomes for that exact id).
        """
        plan = Plan()
        if directive is not None:
            state = _touch(self._directive_states, raw_id, lambda: self._new_state(f"directive:{raw_id}"))
            self._apply(directive, state, content_id, client, plan)
        for rule in self._rules:
            self._apply(rule, self._states[rule.name], content_id, client, plan)
        return plan

    def _apply(self, rule: Rule, state: _RuleState, content_id: ContentId, client: str, plan: Plan) -> None:
        if not rule.match.matches(content_id):
            return
        state.count += 1
        if rule.first is not None and state.count > rule.first:
            return
        if rule.every is not None and state.count % rule.every:
            return
        if rule.probability < 1.0 and state.rng.random() >= rule.probability:
            return
        outcome = rule.outcome
        if rule.sequence:
            step = _touch(state.per_id, content_id.raw, int)
            state.per_id[content_id.raw] = step + 1
            outcome = rule.sequence[step] if step < len(rule.sequence) else None
        if rule.rate_limit is not None:
            outcome = self._rate_limited(rule.rate_limit, state, client) or outcome
        if outcome is not None and outcome.kind == "ok":
            outcome = None
        delay = rule.delay.sample(state.rng, self.settings.max_delay_seconds) if rule.delay else 0.0
        if outcome is None and not delay and rule.bandwidth is None:
            return  # nothing to do this time (e.g. a sequence step that says ok)
        plan.rules.append(rule.name)
        if delay:
            plan.delay += delay
            plan.delay_at = rule.delay_at
        if rule.bandwidth is not None:
            plan.bandwidth = min(plan.bandwidth or rule.bandwidth, rule.bandwidth)
        if outcome is not None and plan.outcome is None:
            plan.outcome = outcome

    @staticmethod
    def _rate_limited(limit: tuple[int, float], state: _RuleState, client: str) -> Outcome | None:
        requests, window = limit
        now = time.monotonic()
        seen: deque[float] = _touch(state.windows, client, deque)
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= requests:
            wait = max(1, math.ceil(seen[0] + window - now))
            return Outcome("status", 429, retry_after=wait, message=f"rate limit: {requests} requests per {window:g}s")
        seen.append(now)
        return None


# --------------------------------------------------------------------------- parsing


def parse_duration(value: Any, key: str) -> float:
    """Seconds from a number or a string like ``200ms``, ``2s``, ``1.5m``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a duration like 0.2, '200ms' or '2s', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = DURATION.match(str(value))
        if not match:
            raise ConfigError(f"{key}: expected a duration like 0.2, '200ms' or '2s', got {value!r}")
        number, unit = float(match.group(1)), match.group(2) or "s"
        seconds = number / 1000 if unit == "ms" else number * 60 if unit in ("m", "min") else number
    if seconds < 0 or not math.isfinite(seconds):
        raise ConfigError(f"{key}: must be zero or more, got {value!r}")
    return seconds


def parse_delay(value: Any, key: str, cap: float) -> Delay:
    if isinstance(value, dict):
        reader = Reader(value, key)
        if "uniform" in value:
            bounds = reader.raw("uniform")
            if not isinstance(bounds, list) or len(bounds) != 2:
                raise ConfigError(f"{key}.uniform: expected [min, max], got {bounds!r}")
            low = parse_duration(bounds[0], f"{key}.uniform[0]")
            high = parse_duration(bounds[1], f"{key}.uniform[1]")
            if low > high:
                raise ConfigError(f"{key}.uniform: min {low:g}s is above max {high:g}s")
            delay = Delay("uniform", low, high)
        elif "lognormal" in value:
            inner = reader.section("lognormal")
            median = parse_duration(inner.raw("median"), f"{inner.where}.median")
            p99 = parse_duration(inner.raw("p99"), f"{inner.where}.p99")
            inner.finish()
            if not 0 < median < p99:
                raise ConfigError(f"{inner.where}: need 0 < median < p99, got median {median:g}s, p99 {p99:g}s")
            delay = Delay("lognormal", median, p99)
        elif "fixed" in value:
            delay = Delay("fixed", parse_duration(reader.raw("fixed"), f"{key}.fixed"))
        else:
            raise ConfigError(f"{key}: expected a duration, or one of fixed, uniform, lognormal")
        reader.finish()
    else:
        delay = Delay("fixed", parse_duration(value, key))
    top = delay.a if delay.kind == "fixed" else delay.b if delay.kind == "uniform" else delay.a
    if top > cap:
        raise ConfigError(f"{key}: {top:g}s is over faults.max_delay_seconds ({cap:g}s)")
    return delay


def parse_outcome(value: Any, key: str) -> Outcome:
    """An outcome: ``ok``, a status (``503``), a payload or connection mode name, ``hang``, or a mapping."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected an outcome, got {value!r}")
    if isinstance(value, int):
        return _status(value, key)
    if isinstance(value, str):
        text = value.strip()
        code = ascii_int(text.removeprefix("status:").strip())
        if code is not None:
            return _status(code, key)
        if text in ("ok", "hang"):
            return Outcome(text)
        if text in CONNECTION_MODES:
            return Outcome("connection", mode=text)
        if text in PAYLOAD_MODES:
            return Outcome("payload", mode=text)
        raise ConfigError(
            f"{key}: unknown outcome {text!r}; expected ok, hang, a status code, one of "
            f"{', '.join(CONNECTION_MODES)}, or a payload mode ({', '.join(sorted(PAYLOAD_MODES))})"
        )
    if isinstance(value, dict):
        reader = Reader(value, key)
        if "status" in value:
            outcome = _status(reader.integer("status", 0, 100, 599), key)
            body = reader.choice("body", "json", BODY_KINDS)
            retry = reader.raw("retry_after")
            retry_after = parse_duration(retry, f"{key}.retry_after") if retry is not None else None
            message = reader.string("message", None)
            outcome = Outcome("status", outcome.status, body, retry_after, message)
        elif "payload" in value:
            outcome = parse_outcome(reader.choice("payload", "", tuple(sorted(PAYLOAD_MODES))), key)
        elif "connection" in value:
            outcome = Outcome("connection", mode=reader.choice("connection", "", CONNECTION_MODES))
        else:
            raise ConfigError(f"{key}: a mapping outcome needs one of status, payload, connection")
        reader.finish()
        return outcome
    raise ConfigError(f"{key}: expected an outcome, got {type(value).__name__}")


def _status(code: int, key: str) -> Outcome:
    if not 100 <= code <= 599:
        raise ConfigError(f"{key}: HTTP status must be 100-599, got {code}")
    return Outcome("status", code)


def _positive_int(reader: Reader, name: str) -> int | None:
    if reader.raw(name) is None:
        return None
    return reader.integer(name, 1, 1, 1 << 40)


def unused_name(taken: Iterable[str], position: int) -> str:
    """The name of an unnamed rule: ``rule-<position>`` (counted from 1), or the next number up
    that no rule in ``taken`` has."""
    names = set(taken)
    number = position
    while f"rule-{number}" in names:
        number += 1
    return f"rule-{number}"


def parse_rule(data: Any, key: str, cap: float, default_name: str) -> Rule:
    """One rule; ``default_name`` when it has none (see :func:`unused_name`)."""
    reader = Reader(data, key)
    name = reader.string("name", None)
    if name is not None and not name.strip():
        raise ConfigError(f"{reader.key('name')}: may not be empty")
    name = name or default_name
    match_reader = reader.section("match")
    use_case_text = match_reader.choice("use_case", "any", ("any", "PROV", "AUTH"))
    single = match_reader.string("id", None)
    ids = match_reader.string_list("ids") + ((single,) if single else ())
    patterns = match_reader.patterns("patterns")
    single_pattern = match_reader.string("pattern", None)
    if single_pattern:
        patterns += (single_pattern,)
    match_reader.finish()
    match = Match(None if use_case_text == "any" else UseCase(use_case_text), frozenset(ids), patterns)
    probability = reader.number("probability", 1.0, 0.0, 1.0)
    first = _positive_int(reader, "first")
    every = _positive_int(reader, "every")
    delay_value = reader.raw("delay")
    delay = parse_delay(delay_value, reader.key("delay"), cap) if delay_value is not None else None
    delay_at = reader.choice("delay_at", "headers", DELAY_AT)
    bandwidth = _positive_int(reader, "bandwidth")
    outcome_value = reader.raw("outcome")
    outcome = parse_outcome(outcome_value, reader.key("outcome")) if outcome_value is not None else None
    sequence_value = reader.raw("sequence")
    sequence: tuple[Outcome, ...] = ()
    if sequence_value is not None:
        if not isinstance(sequence_value, list) or not sequence_value:
            raise ConfigError(f"{reader.key('sequence')}: expected a non-empty list of outcomes")
        sequence = tuple(parse_outcome(v, f"{reader.key('sequence')}[{i}]") for i, v in enumerate(sequence_value))
    limit_reader = reader.section("rate_limit")
    rate_limit = None
    if limit_reader.data:
        requests = limit_reader.integer("requests", 0, 1, 1 << 30)
        window = parse_duration(limit_reader.raw("window") or 1, f"{limit_reader.where}.window")
        if not requests:
            raise ConfigError(f"{limit_reader.where}.requests: required")
        rate_limit = (requests, window or 1.0)
    limit_reader.finish()
    reader.finish()
    if outcome is not None and sequence:
        raise ConfigError(f"{key}: give outcome or sequence, not both")
    if outcome is None and not sequence and delay is None and bandwidth is None and rate_limit is None:
        raise ConfigError(f"{key}: the rule does nothing; give delay, bandwidth, outcome, sequence or rate_limit")
    spec = {"name": name, **{k: v for k, v in data.items() if k != "name"}}
    return Rule(
        name,
        match,
        probability,
        first,
        every,
        delay,
        delay_at,
        bandwidth,
        outcome,
        sequence,
        rate_limit,
        spec,
    )


def parse_fault_settings(reader: Reader) -> FaultSettings:
    seed = reader.integer("seed", 0, 0, (1 << 63) - 1)
    header = reader.boolean("header", True)
    directives = reader.boolean("content_id_directives", False)
    cap = reader.number("max_delay_seconds", 3600.0, 0.0, 7 * 86400.0)
    rules = parse_rules(reader.raw("rules"), reader.key("rules"), cap)
    reader.finish()
    return FaultSettings(seed, header, directives, cap, rules)


def parse_rules(value: Any, key: str, cap: float) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list of rules")
    given = [str(item["name"]) for item in value if isinstance(item, dict) and isinstance(item.get("name"), str)]
    rules: list[Rule] = []
    for index, item in enumerate(value):
        default_name = unused_name([*given, *(r.name for r in rules)], index + 1)
        rule = parse_rule(item, f"{key}[{index}]", cap, default_name)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{key}: two rules are named {rule.name!r}; names must be unique")
        rules.append(rule)
    return tuple(rules)


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
    data: dict[str, Any] = {"name": "directive", "match": {"id": base}}
    if "fault" in values:
        data["outcome"] = values["fault"]
    if "seq" in values:
        data["sequence"] = [v for v in values["seq"].split(",") if v]
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
