"""Fault rules: which requests get which latency or failure, reproducibly.

A rule has a *match* (all ids, a use case, exact ids, patterns), *triggers* (first N,
every Nth, a probability) and *effects* (a delay, a bandwidth limit, and an outcome:
an HTTP error, a broken payload, a connection fault, a hang, or a scripted sequence
of outcomes per id). Rules are looked at in order for every request:

- every rule that matches counts the request, whether or not it then fires;
- delays of all firing rules add up; the lowest bandwidth limit wins;
- the first firing rule that has an outcome decides the outcome.

Random choices are a pure function of ``faults.seed``, the rule's name and the rule's
count (see :func:`draw`), so the same requests in the same order get the same faults on
every run, and replicas that share their counts (``state.backend: redis``) give the same
pattern as one process, whichever replica takes which request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import NormalDist
from typing import Any

from content_provider.core.contract import ContentId, UseCase
from content_provider.core.layout import SAFE_NAME
from content_provider.core.patterns import compile_pattern
from content_provider.core.reader import ConfigError, Reader, whole_number
from content_provider.faults.payloads import PAYLOAD_MODES

# The tables the parser below checks a rule against. The OpenAPI document's rule schema is made
# from them too (faults/schema.py), so the two say the same.
NAMED_OUTCOMES = ("ok", "hang")
CONNECTION_MODES = ("reset", "close", "partial", "garbage")
BODY_KINDS = ("json", "empty", "html")
DELAY_AT = ("headers", "body")
USE_CASES = ("any", UseCase.CARD.value, UseCase.AUTH.value)  # match.use_case
EFFECTS = ("delay", "bandwidth", "outcome", "sequence", "rate_limit")  # a rule does at least one of these
MAX_COUNT = 1 << 40  # first, every, bandwidth
MAX_REQUESTS = 1 << 30  # rate_limit.requests
STATUSES = (100, 599)  # an injected status, lowest and highest
STATUS_TEXT = "(?:status: ?)?([1-5][0-9][0-9])"  # an outcome written as text: 503, status:503, status: 503
# A duration: seconds as a number, or a text (0.2, .5s, 200ms, 2 s, 1.5m, 2min, 1h), at most a year.
DURATION_NUMBER = r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+"
DURATION_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "min": Decimal(60), "h": Decimal(3600)}
DURATION = re.compile(f"({DURATION_NUMBER})(?: ?({'|'.join(sorted(DURATION_UNITS, key=len, reverse=True))}))?")
MAX_DURATION_SECONDS = 365 * 86400
DEFAULT_MAX_DELAY = 3600.0  # faults.max_delay_seconds
Z99 = 2.3263478740408408  # standard normal quantile at 0.99
_UNIT = NormalDist()


@dataclass(frozen=True)
class Delay:
    """A delay in seconds: fixed, uniform between two bounds, or lognormal from median and p99."""

    kind: str
    a: float
    b: float = 0.0

    def sample(self, u: float, cap: float) -> float:
        """The delay for the uniform draw ``u`` in [0, 1) (see :func:`draw`)."""
        if self.kind == "fixed":
            value = self.a
        elif self.kind == "uniform":
            value = self.a + (self.b - self.a) * u
        else:
            mu = math.log(self.a)
            sigma = (math.log(self.b) - mu) / Z99
            value = math.exp(mu + sigma * _UNIT.inv_cdf(min(max(u, 1e-12), 1 - 1e-12)))
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
class Window:
    """When a rule is in force, counted from when it was put in force (loaded, reset or added):
    from ``after`` on, for ``lasting`` seconds (or ever), and within that, when ``period`` is
    set, during the first ``active`` seconds of every period."""

    after: float = 0.0
    lasting: float | None = None
    period: float | None = None
    active: float = 0.0

    def state(self, elapsed: float) -> tuple[bool, float | None]:
        """Whether the rule is in force ``elapsed`` s after its start, and in how many seconds that
        changes (``None``: never again)."""
        if elapsed < self.after:
            return False, self.after - elapsed
        into = elapsed - self.after
        if self.lasting is not None and into >= self.lasting:
            return False, None
        ends_in = None if self.lasting is None else self.lasting - into
        if self.period is None:
            return True, ends_in
        phase = into % self.period
        on = phase < self.active
        flips_in = self.active - phase if on else self.period - phase
        if ends_in is not None and ends_in <= flips_in:
            return on, ends_in if on else None
        return on, flips_in

    def describe(self) -> str:
        parts = []
        if self.after:
            parts.append(f"after {self.after:g}s")
        if self.lasting is not None:
            parts.append(f"for {self.lasting:g}s")
        if self.period is not None:
            parts.append(f"{self.active:g}s of every {self.period:g}s")
        return ", ".join(parts)


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
    window: Window | None = None

    @property
    def counted(self) -> bool:
        """Whether what the rule does depends on its count: ``first``, ``every``, a probability draw, a
        ``sequence``, a ``rate_limit`` or a random delay. Any other rule does the same to every request
        it matches, so a shared backend need not count it (no round trip)."""
        return (
            self.first is not None
            or self.every is not None
            or self.probability < 1.0
            or bool(self.sequence)
            or self.rate_limit is not None
            or (self.delay is not None and self.delay.kind != "fixed")
        )


@dataclass(frozen=True)
class FaultSettings:
    seed: int = 0
    header: bool = True
    content_id_directives: bool = False
    max_delay_seconds: float = DEFAULT_MAX_DELAY
    rules: tuple[Rule, ...] = ()


# --------------------------------------------------------------------------- parsing
#
# A rule is read strictly, so that exactly the rules the OpenAPI document's schema allows are
# taken: a key is given with a value of its type or left out (no null), a text is a string, and
# every choice, bound and pattern comes from the tables at the top of this module.


class DuplicateRuleName(ConfigError):
    """Two rules of one list share a name (the admin API answers 409)."""


def parse_duration(value: Any, key: str, *, positive: bool = False, cap: float | None = None) -> float:
    """Seconds from a number or a text like ``200ms``, ``2s``, ``2 s``, ``1.5m``, ``1h``: zero or more
    (more than zero when ``positive``), at most a year, and at most ``cap`` when given. A text is
    compared exactly (as a decimal), as the document's patterns compare it."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{key}: expected a duration like 0.2, '200ms' or '2s', got {value!r}")
    if isinstance(value, str):
        match = DURATION.fullmatch(value)
        if not match:
            raise ConfigError(f"{key}: expected a duration like 0.2, '200ms' or '2s', got {value!r}")
        seconds = Decimal(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
    elif not math.isfinite(value):
        raise ConfigError(f"{key}: expected a duration like 0.2, '200ms' or '2s', got {value!r}")
    else:
        seconds = Decimal(value)
    if seconds < 0:
        raise ConfigError(f"{key}: must be zero or more, got {value!r}")
    if positive and seconds == 0:
        raise ConfigError(f"{key}: must be more than zero, got {value!r}")
    if seconds > MAX_DURATION_SECONDS:
        raise ConfigError(f"{key}: {value!r} is more than a year ({MAX_DURATION_SECONDS}s)")
    if cap is not None and seconds > Decimal(cap):
        raise ConfigError(f"{key}: {float(seconds):g}s is over faults.max_delay_seconds ({cap:g}s)")
    return float(seconds)


def _required(reader: Reader, name: str, example: str = "") -> Any:
    if name not in reader.data:
        raise ConfigError(f"{reader.key(name)}: required{example}")
    return reader.raw(name)


def parse_delay(value: Any, key: str, cap: float) -> Delay:
    """A duration, ``{fixed: d}``, ``{uniform: [a, b]}`` (in either order) or ``{lognormal: {median, p99}}``;
    every bound a delay can reach at most ``cap`` (a lognormal's median; its tail is cut at the cap)."""
    if not isinstance(value, dict):
        return Delay("fixed", parse_duration(value, key, cap=cap))
    reader = Reader(value, key)
    if "uniform" in value:
        bounds = reader.raw("uniform")
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise ConfigError(f"{key}.uniform: expected [min, max], got {bounds!r}")
        low, high = sorted(parse_duration(b, f"{key}.uniform[{i}]", cap=cap) for i, b in enumerate(bounds))
        delay = Delay("uniform", low, high)
    elif "lognormal" in value:
        inner = reader.section("lognormal")
        median = parse_duration(_required(inner, "median"), inner.key("median"), positive=True, cap=cap)
        p99 = parse_duration(_required(inner, "p99"), inner.key("p99"))
        inner.finish()
        delay = Delay("lognormal", median, max(median, p99))  # a p99 at or below the median: no spread
    elif "fixed" in value:
        delay = Delay("fixed", parse_duration(reader.raw("fixed"), f"{key}.fixed", cap=cap))
    else:
        raise ConfigError(f"{key}: expected a duration, or one of fixed, uniform, lognormal")
    reader.finish()
    return delay


_STATUS_TEXT = re.compile(STATUS_TEXT)


def parse_outcome(value: Any, key: str) -> Outcome:
    """An outcome: ``ok``, a status (``503``, ``"503"``, ``"status:503"``), a payload or connection mode
    name, ``hang``, or a mapping with one of ``status``, ``payload``, ``connection``."""
    code = whole_number(value)
    if code is not None:
        return _status(code, key)
    if isinstance(value, str):
        status = _STATUS_TEXT.fullmatch(value)
        if status is not None:
            return Outcome("status", int(status.group(1)))
        if value in NAMED_OUTCOMES:
            return Outcome(value)
        if value in CONNECTION_MODES:
            return Outcome("connection", mode=value)
        if value in PAYLOAD_MODES:
            return Outcome("payload", mode=value)
        raise ConfigError(
            f"{key}: unknown outcome {value!r}; expected ok, hang, a status code, one of "
            f"{', '.join(CONNECTION_MODES)}, or a payload mode ({', '.join(sorted(PAYLOAD_MODES))})"
        )
    if isinstance(value, dict):
        reader = Reader(value, key)
        if "status" in value:
            code = reader.integer("status", 0, *STATUSES)
            body = reader.choice("body", "json", BODY_KINDS)
            retry = reader.raw("retry_after")
            retry_after = parse_duration(retry, reader.key("retry_after")) if retry is not None else None
            outcome = Outcome("status", code, body, retry_after, reader.text("message"))
        elif "payload" in value:
            outcome = Outcome("payload", mode=reader.choice("payload", "", tuple(sorted(PAYLOAD_MODES))))
        elif "connection" in value:
            outcome = Outcome("connection", mode=reader.choice("connection", "", CONNECTION_MODES))
        else:
            raise ConfigError(f"{key}: a mapping outcome needs one of status, payload, connection")
        reader.finish()
        return outcome
    raise ConfigError(f"{key}: expected an outcome, got {type(value).__name__}")


def _status(code: int, key: str) -> Outcome:
    low, high = STATUSES
    if not low <= code <= high:
        raise ConfigError(f"{key}: HTTP status must be {low}-{high}, got {code}")
    return Outcome("status", code)


def _positive_int(reader: Reader, name: str) -> int | None:
    if reader.raw(name) is None:
        return None
    return reader.integer(name, 1, 1, MAX_COUNT)


def _no_nulls(data: Any, key: str) -> None:
    """A rule has no null anywhere: a key is given a value or left out (in YAML, ``outcome:`` with
    nothing after it is a slip, not a way to say "none")."""
    stack = [(data, key)]
    while stack:
        value, where = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for name, item in items:
            inner = f"{where}[{name}]" if isinstance(value, list) else f"{where}.{name}"
            if item is None:
                raise ConfigError(f"{inner}: no value (null); give one, or leave the key out")
            stack.append((item, inner))


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
    _no_nulls(reader.data, key)
    name = reader.text("name")
    if name is not None and not SAFE_NAME.match(name):
        raise ConfigError(
            f"{reader.key('name')}: {name!r} is not a rule name: letters, digits and . _ @ + = -, "
            "starting with a letter or digit, at most 200 (it is a URL path segment and header text)"
        )
    name = name or default_name
    match_reader = reader.section("match")
    use_case_text = match_reader.choice("use_case", "any", USE_CASES)
    single = match_reader.text("id", non_empty=True)
    ids = match_reader.string_list("ids") + ((single,) if single is not None else ())
    single_pattern = match_reader.pattern("pattern")
    patterns = match_reader.patterns("patterns") + ((single_pattern,) if single_pattern is not None else ())
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
    rate_limit = None
    if "rate_limit" in reader.data:
        limit_reader = reader.section("rate_limit")
        requests = limit_reader.integer("requests", 0, 1, MAX_REQUESTS)
        if not requests:
            raise ConfigError(f"{limit_reader.where}.requests: required")
        window = limit_reader.raw("window")
        seconds = parse_duration(window, limit_reader.key("window"), positive=True) if window is not None else 1.0
        rate_limit = (requests, seconds)
        limit_reader.finish()
    in_force = _parse_window(reader)
    reader.finish()
    if outcome is not None and sequence:
        raise ConfigError(f"{key}: give outcome or sequence, not both")
    if not any(effect in reader.data for effect in EFFECTS):
        raise ConfigError(f"{key}: the rule does nothing; give {', '.join(EFFECTS[:-1])} or {EFFECTS[-1]}")
    spec = {"name": name, **{k: v for k, v in reader.data.items() if k != "name"}}
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
        in_force,
    )


def _parse_window(reader: Reader) -> Window | None:
    """``after``, ``for`` and ``every_period: {period, active}``: when a rule is in force. An ``active``
    at least as long as its ``period`` keeps the rule in force all the time (within after and for)."""
    after_value, for_value = reader.raw("after"), reader.raw("for")
    after = parse_duration(after_value, reader.key("after")) if after_value is not None else 0.0
    lasting = parse_duration(for_value, reader.key("for"), positive=True) if for_value is not None else None
    period = active = None
    if "every_period" in reader.data:
        periodic = reader.section("every_period")
        example = " (e.g. every_period: {period: 5m, active: 1m})"
        period = parse_duration(_required(periodic, "period", example), periodic.key("period"), positive=True)
        active = parse_duration(_required(periodic, "active", example), periodic.key("active"), positive=True)
        periodic.finish()
        if active >= period:  # in force all of every period: as if no period were given
            period = active = None
    if after == 0.0 and lasting is None and period is None:
        return None
    return Window(after, lasting, period, active or 0.0)


def parse_fault_settings(reader: Reader) -> FaultSettings:
    seed = reader.integer("seed", 0, 0, (1 << 63) - 1)
    header = reader.boolean("header", True)
    directives = reader.boolean("content_id_directives", False)
    cap = reader.number("max_delay_seconds", DEFAULT_MAX_DELAY, 0.0, 7 * 86400.0)
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
            raise DuplicateRuleName(f"{key}: two rules are named {rule.name!r}; names must be unique")
        rules.append(rule)
    return tuple(rules)
