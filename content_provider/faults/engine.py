"""The fault engine: which rules fire for a request (counts, probabilities, sequences, time
windows), as a :class:`Plan`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from content_provider.core.contract import ContentId
from content_provider.core.lru import LRU
from content_provider.faults.rules import FaultSettings, Outcome, Rule

# Directive states per content id, and per rule the sequence positions per content id and the
# rate-limit windows per client, are kept for the most recently seen this many; an id or client
# forgotten starts again (its sequence from the top).
KEYED_STATES = 10_000
_V = TypeVar("_V")
DRAW_DIGITS = 13  # hex digits of SHA-1 taken for a draw: 52 bits, exact in a double (and in Redis's Lua)


def draw(seed: int, name: str, count: int, purpose: str = "p") -> float:
    """A number in [0, 1): a pure function of the seed, the rule's name, its count and the purpose
    (``p`` for the probability trigger, ``d`` for the delay). The Redis backend's script computes the
    same with ``redis.sha1hex``, so both backends draw the same for the same count."""
    digest = hashlib.sha1(f"{seed}:{name}:{count}:{purpose}".encode()).hexdigest()
    return int(digest[:DRAW_DIGITS], 16) / float(1 << (4 * DRAW_DIGITS))


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
    count: int = 0
    per_id: LRU[str, int] = field(default_factory=lambda: LRU(KEYED_STATES))  # the next sequence step, by id
    windows: LRU[str, deque[float]] = field(default_factory=lambda: LRU(KEYED_STATES))  # request times, by client


@dataclass(frozen=True)
class Counted:
    """What a rule's counters say about one request that it matches: its count (this one
    included), whether the triggers let it fire, the sequence step it takes (-1: none) and,
    when rate limited, the seconds to wait (0: not limited)."""

    count: int
    fired: bool
    step: int = -1
    retry_after: int = 0


# What a rule whose effect depends on no count (not Rule.counted) gets from a shared backend: no
# round trip, it fires on every request it matches (its count is used by nothing).
ALWAYS = Counted(0, True)


def _touch(states: LRU[str, _V], key: str, new: Callable[[], _V]) -> _V:
    """The state kept for ``key``, made when missing; the least recently seen falls off past the bound."""
    value = states.get(key)
    if value is None:
        value = new()
        states.put(key, value)
    return value


def triggered(rule: Rule, name: str, count: int, seed: int) -> bool:
    """Whether the triggers (first, every, probability) let a rule fire on its ``count``-th request."""
    if rule.first is not None and count > rule.first:
        return False
    if rule.every is not None and count % rule.every:
        return False
    return not (rule.probability < 1.0 and draw(seed, name, count) >= rule.probability)


def directive_name(raw_id: str) -> str:
    """The name a directive's counters and draws go by: its own per full content id."""
    return f"directive:{raw_id}"


class FaultEngine:
    """Holds the rules in force and their counters; decides the plan for each request.

    The counters live here (one process) unless ``remote`` is set: then
    :meth:`plan_remote` counts in the shared state backend (see state/redis.py) and this
    process's counters are used only while that backend cannot be reached.
    """

    def __init__(self, settings: FaultSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._started: dict[str, float] = {}  # when each rule was put in force: its time window counts from then
        self._states: dict[str, _RuleState] = {}
        self._directive_states: LRU[str, _RuleState] = LRU(KEYED_STATES)
        self.remote: RemoteCounter | None = None
        self.tokens: dict[str, str] = {}  # rule name -> the shared counters' key (remote only)
        self.replace(settings.rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def replace(self, rules: tuple[Rule, ...], tokens: dict[str, str] | None = None) -> None:
        """Put new rules in force; all counters start again."""
        self._rules = rules
        self._states = {rule.name: _RuleState() for rule in rules}
        now = self._clock()
        self._started = {rule.name: now for rule in rules}
        self._directive_states.clear()
        self.tokens = dict(tokens or {})

    def adopt(self, rules: tuple[Rule, ...], tokens: dict[str, str]) -> None:
        """The shared rules, as another replica left them: local counters kept for rules still there."""
        kept = {name: state for name, state in self._states.items() if self.tokens.get(name) == tokens.get(name)}
        now = self._clock()  # a rule new here starts its time window now (within the propagation bound)
        self._started = {rule.name: self._started[rule.name] if rule.name in kept else now for rule in rules}
        self._rules = rules
        self._states = {rule.name: kept.get(rule.name) or _RuleState() for rule in rules}
        self.tokens = dict(tokens)

    def restart_windows(self) -> None:
        """Time windows count from now: called when the server starts serving, so start-up (making a
        key, checking fixtures) does not use up a rule's ``after`` or ``for``."""
        now = self._clock()
        self._started = dict.fromkeys(self._started, now)

    def windows(self) -> dict[str, dict[str, Any]]:
        """For each rule with a time window: in force now or not, and in how many seconds that changes."""
        now = self._clock()
        shown: dict[str, dict[str, Any]] = {}
        for rule in self._rules:
            if rule.window is not None:
                active, changes_in = rule.window.state(now - self._started[rule.name])
                seconds = None if changes_in is None else round(changes_in, 3)
                shown[rule.name] = {"active": active, "changesInSeconds": seconds, "window": rule.window.describe()}
        return shown

    def reconfigure(self, settings: FaultSettings) -> None:
        """New fault settings from a reloaded config; counters start again."""
        self.settings = settings
        self.replace(settings.rules)

    def plan(self, content_id: ContentId, client: str, directive: Rule | None = None, raw_id: str = "") -> Plan:
        """Count this request against every rule (in this process) and say which faults it gets.

        A directive from the content id comes first, with its own counters per full
        content id (so ``seq=`` steps through its outcomes for that exact id).
        """
        plan = Plan()
        if directive is not None:
            state = _touch(self._directive_states, raw_id, _RuleState)
            self._apply(directive, directive_name(raw_id), state, content_id, client, plan)
        for rule in self._rules:
            self._apply(rule, rule.name, self._states[rule.name], content_id, client, plan)
        return plan

    async def plan_remote(
        self, content_id: ContentId, client: str, directive: Rule | None = None, raw_id: str = ""
    ) -> Plan:
        """As :meth:`plan`, with the counts kept in the shared backend: one round trip for all the
        matching rules whose effect depends on a count (:attr:`Rule.counted`), none when none does.
        Counted here while the backend is unreachable."""
        remote = self.remote
        matching: list[tuple[Rule, str, str]] = []  # (rule, name for draws, counters' key)
        if directive is not None and directive.match.matches(content_id):
            matching.append((directive, directive_name(raw_id), "d:" + raw_id))
        for rule in self._rules:
            if rule.match.matches(content_id) and self._in_window(rule):
                matching.append((rule, rule.name, self.tokens.get(rule.name, rule.name)))
        if not matching:
            return Plan()
        if remote is None or not remote.reachable:
            return self.plan(content_id, client, directive, raw_id)
        counting = [match for match in matching if match[0].counted]
        counted: list[Counted] | None = []
        if counting:
            counted = await remote.count(self.settings.seed, counting, content_id.raw, client)
        if counted is None:  # lost just now: this process counts until it is back
            return self.plan(content_id, client, directive, raw_id)
        results = iter(counted)
        plan = Plan()
        for rule, name, _ in matching:  # in order: the first outcome wins
            self._shape(rule, name, next(results) if rule.counted else ALWAYS, plan)
        return plan

    def _apply(self, rule: Rule, name: str, state: _RuleState, content_id: ContentId, client: str, plan: Plan) -> None:
        if not rule.match.matches(content_id):
            return
        if not self._in_window(rule):
            return  # out of its window the rule is as if absent: it does not count the request either
        state.count += 1
        if not triggered(rule, name, state.count, self.settings.seed):
            return
        step = -1
        if rule.sequence:
            step = _touch(state.per_id, content_id.raw, int)
            state.per_id.put(content_id.raw, step + 1)
        wait = self._rate_limited(rule.rate_limit, state, client) if rule.rate_limit is not None else 0
        self._shape(rule, name, Counted(state.count, True, step, wait), plan)

    def _in_window(self, rule: Rule) -> bool:
        return rule.window is None or rule.window.state(self._clock() - self._started[rule.name])[0]

    def _shape(self, rule: Rule, name: str, counted: Counted, plan: Plan) -> None:
        """Add what a fired rule does to the plan (the same for both backends)."""
        if not counted.fired:
            return
        outcome = rule.outcome
        if rule.sequence:
            step = counted.step
            outcome = rule.sequence[step] if 0 <= step < len(rule.sequence) else None
        if counted.retry_after and rule.rate_limit is not None:
            requests, window = rule.rate_limit
            outcome = Outcome(
                "status",
                429,
                retry_after=counted.retry_after,
                message=f"rate limit: {requests} requests per {window:g}s",
            )
        if outcome is not None and outcome.kind == "ok":
            outcome = None
        delay = 0.0
        if rule.delay:
            delay = rule.delay.sample(
                draw(self.settings.seed, name, counted.count, "d"), self.settings.max_delay_seconds
            )
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
    def _rate_limited(limit: tuple[int, float], state: _RuleState, client: str) -> int:
        """Seconds to wait when ``client`` is over the limit, else 0 (and the request is counted)."""
        requests, window = limit
        now = time.monotonic()
        seen: deque[float] = _touch(state.windows, client, deque)
        while seen and seen[0] <= now - window:
            seen.popleft()
        if len(seen) >= requests:
            return max(1, math.ceil(seen[0] + window - now))
        seen.append(now)
        return 0


FAULTS: web.AppKey[FaultEngine] = web.AppKey("faults")


class RemoteCounter:
    """Counts in a shared backend (see state/redis.py); ``count`` answers None when it could not."""

    @property
    def reachable(self) -> bool:
        raise NotImplementedError

    async def count(
        self, seed: int, matching: list[tuple[Rule, str, str]], content_id: str, client: str
    ) -> list[Counted] | None:
        raise NotImplementedError
