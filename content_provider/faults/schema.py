"""A fault rule as JSON Schema: the ``components.schemas`` of the OpenAPI document that describe
``POST /__admin/rules`` and ``PUT /__admin/rules``.

Made from the parser's own tables (:mod:`content_provider.faults.rules`): the keys, the choices, the
bounds, the name and status patterns, the duration units and limits. ``tests/test_rule_schema.py``
checks that the document holds exactly what :func:`rule_schemas` makes, and that a rule the schema
allows is one the parser takes and the other way round, so the two cannot drift apart.

Two things a JSON Schema cannot say are left to the descriptions: a ``re:`` pattern must be a
Python regular expression that compiles, and two rules of one list may not share a name (the
server answers 409 for that).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from content_provider.core.layout import SAFE_NAME_PATTERN
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import (
    BODY_KINDS,
    CONNECTION_MODES,
    DEFAULT_MAX_DELAY,
    DELAY_AT,
    DURATION_UNITS,
    EFFECTS,
    MAX_COUNT,
    MAX_DURATION_SECONDS,
    MAX_REQUESTS,
    NAMED_OUTCOMES,
    STATUS_TEXT,
    STATUSES,
    USE_CASES,
)

REF = "#/components/schemas/"
_FRACTION = r"(?:\.[0-9]+)?"


def _canonical_up_to(bound: int) -> list[str]:
    """Regular expressions, one per branch, for the integers 1 to ``bound`` written without leading zeros."""
    if bound < 1:
        return []
    digits = str(bound)
    width = len(digits)
    branches = []
    if width > 1:  # every shorter number
        branches.append("[1-9]" + (f"[0-9]{{0,{width - 2}}}" if width > 2 else ""))
    for i in range(width):  # as long as bound: the same first i digits, then a smaller one, then any
        low, high = (1 if i == 0 else 0), int(digits[i]) - 1
        if high >= low:
            rest = width - i - 1
            digit = str(low) if low == high else f"[{low}-{high}]"
            branches.append(digits[:i] + digit + ("[0-9]" if rest == 1 else f"[0-9]{{{rest}}}" if rest else ""))
    branches.append(digits)
    return branches


def decimal_pattern(bound: int, positive: bool) -> str:
    """A regular expression (unanchored, the same in Python and ECMA-262) for the texts that
    ``DURATION_NUMBER`` matches whose exact value is at most ``bound``, and more than zero when
    ``positive``: leading zeros and any number of decimals included."""
    if bound < 0:
        raise ValueError(f"bound {bound} is below zero")
    below = _canonical_up_to(bound - 1)
    branches = []
    if bound == 0:
        branches += [] if positive else [r"0+(?:\.0+)?", r"\.0+"]
    else:
        if positive:
            branches.append(r"0*\.[0-9]*[1-9][0-9]*")  # under 1, more than 0
        else:
            branches += ["0+" + _FRACTION, r"\.[0-9]+"]  # under 1
        if below:
            branches.append(f"0*(?:{'|'.join(below)})" + _FRACTION)
        branches.append(f"0*{bound}" + r"(?:\.0+)?")
    return f"(?:{'|'.join(branches)})" if branches else "(?!)"


def duration_pattern(limit_seconds: float, positive: bool) -> str:
    """The duration texts ``rules.DURATION`` takes whose value is at most ``limit_seconds`` (and more
    than zero when ``positive``), anchored. The limit must be a whole number in every unit."""
    by_factor: dict[Decimal, list[str]] = {}
    for unit, factor in DURATION_UNITS.items():
        by_factor.setdefault(factor, []).append(unit)
    branches = []
    for factor, units in by_factor.items():
        bound = Decimal(limit_seconds) / factor
        if bound != bound.to_integral_value():
            raise ValueError(f"{limit_seconds:g}s is not a whole number of {units[0]}")
        number = decimal_pattern(int(bound), positive)
        names = "|".join(sorted(units, key=len, reverse=True))
        unit_part = f"(?: ?(?:{names}))" + ("?" if factor == 1 else "")  # a bare number is seconds
        branches.append(number + unit_part)
    return f"^(?:{'|'.join(branches)})$"


def _duration(limit_seconds: float, positive: bool, description: str) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "maximum": limit_seconds}
    number["exclusiveMinimum" if positive else "minimum"] = 0
    text = {"type": "string", "pattern": duration_pattern(limit_seconds, positive)}
    return {"description": description, "anyOf": [number, text]}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    """An object with these keys and no other."""
    shown: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if required:
        shown["required"] = list(required)
    return {**shown, "properties": properties, **more}


_DOES_SOMETHING: dict[str, Any] = {
    "not": {
        "anyOf": [
            {"properties": {effect: {"not": {}} for effect in EFFECTS}},
            {"required": ["outcome", "sequence"]},
        ]
    }
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def rule_schemas(cap: float = DEFAULT_MAX_DELAY) -> dict[str, Any]:
    """The schemas of a fault rule, for a server whose ``faults.max_delay_seconds`` is ``cap``."""
    counts = {"type": "integer", "minimum": 1, "maximum": MAX_COUNT}
    status = {"type": "integer", "minimum": STATUSES[0], "maximum": STATUSES[1]}
    payload_modes = sorted(PAYLOAD_MODES)
    text = {"type": "string", "minLength": 1}
    pattern = {
        "type": "string",
        "minLength": 1,
        "description": "a glob (PROV:acme-*) or re: and a Python regular expression (it must compile), on the whole id",
    }
    year = f"at most a year ({MAX_DURATION_SECONDS} s)"
    longest = f"at most faults.max_delay_seconds ({cap:g} s in this document)"
    return {
        "Rule": _closed(
            {
                "name": {
                    "type": "string",
                    "pattern": f"^{SAFE_NAME_PATTERN}$",
                    "description": "new among the rules in force; without one the rule is named rule-N",
                },
                "match": _ref("RuleMatch"),
                "probability": {"type": "number", "minimum": 0, "maximum": 1},
                "first": {**counts, "description": "only the first N matching requests"},
                "every": {**counts, "description": "the Nth, 2Nth, ... matching request"},
                "delay": _ref("RuleDelay"),
                "delay_at": {"type": "string", "enum": list(DELAY_AT)},
                "bandwidth": {**counts, "description": "bytes per second"},
                "outcome": _ref("RuleOutcome"),
                "sequence": {"type": "array", "minItems": 1, "items": _ref("RuleOutcome")},
                "rate_limit": _closed(
                    {
                        "requests": {"type": "integer", "minimum": 1, "maximum": MAX_REQUESTS},
                        "window": {**_ref("PositiveDuration"), "description": "1 s when not given"},
                    },
                    ("requests",),
                ),
                "after": {**_ref("Duration"), "description": "in force only from this long after it was put in force"},
                "for": {**_ref("PositiveDuration"), "description": "in force this long (after `after`), then no more"},
                "every_period": _closed(
                    {"period": _ref("PositiveDuration"), "active": _ref("PositiveDuration")},
                    ("period", "active"),
                    description="in force for the first `active` of every `period` (all of it when active >= period)",
                ),
            },
            description=(
                "A fault rule: the keys of faults.rules in config.yaml (docs/faults.md), none of them null. "
                f"It does at least one of {', '.join(EFFECTS)}, and has not both outcome and sequence."
            ),
            # "does something": not (none of the effects, or both outcome and sequence). A `not` rather
            # than an anyOf, so that client generators still see an object with properties.
            **_DOES_SOMETHING,
        ),
        "Rules": _closed(
            {"rules": {"type": "array", "items": _ref("Rule"), "description": "names unique (409 otherwise)"}},
            ("rules",),
            description="Every rule, in order; an empty list removes them all",
        ),
        "RuleMatch": _closed(
            {
                "use_case": {"type": "string", "enum": list(USE_CASES)},
                "id": {**text, "description": "one content id, as Hermod sends it"},
                "ids": {"type": "array", "items": text},
                "pattern": pattern,
                "patterns": {"type": "array", "items": pattern},
            },
            description="Which content ids the rule applies to; every id when empty or not given",
        ),
        "RuleOutcome": {
            "description": "What a matching request gets (docs/faults.md, Every outcome)",
            "anyOf": [
                status,
                {"type": "string", "enum": [*NAMED_OUTCOMES, *CONNECTION_MODES, *payload_modes]},
                {"type": "string", "pattern": f"^{STATUS_TEXT}$", "description": "503, status:503, status: 503"},
                _closed(
                    {
                        "status": status,
                        "body": {"type": "string", "enum": list(BODY_KINDS)},
                        "retry_after": _ref("Duration"),
                        "message": {"type": "string"},
                    },
                    ("status",),
                ),
                _closed({"payload": {"type": "string", "enum": payload_modes}}, ("payload",)),
                _closed({"connection": {"type": "string", "enum": list(CONNECTION_MODES)}}, ("connection",)),
            ],
        },
        "RuleDelay": {
            "description": f"A delay: every bound it can reach {longest}",
            "anyOf": [
                _ref("DelayDuration"),
                _closed({"fixed": _ref("DelayDuration")}, ("fixed",)),
                _closed(
                    {
                        "uniform": {
                            "type": "array",
                            "items": _ref("DelayDuration"),
                            "minItems": 2,
                            "maxItems": 2,
                            "description": "the two bounds, in either order",
                        }
                    },
                    ("uniform",),
                ),
                _closed({"lognormal": _ref("RuleLognormal")}, ("lognormal",)),
            ],
        },
        "RuleLognormal": _closed(
            {
                "median": _duration(cap, True, f"more than zero, {longest}"),
                "p99": {**_ref("Duration"), "description": "at or below the median: no spread"},
            },
            ("median", "p99"),
            description="A delay drawn from a lognormal distribution with this median and 99th percentile",
        ),
        "Duration": _duration(MAX_DURATION_SECONDS, False, f"Seconds, or a text (0.2, 200ms, 2 s, 1.5m, 1h); {year}"),
        "PositiveDuration": _duration(MAX_DURATION_SECONDS, True, f"A Duration more than zero, {year}"),
        "DelayDuration": _duration(cap, False, f"A Duration {longest}"),
    }
