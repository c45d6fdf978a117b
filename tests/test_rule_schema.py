"""The OpenAPI document's fault rule and the server's rule parser say the same, so they cannot drift.

The document holds what ``faults/schema.py`` makes from the parser's tables; a rule Schemathesis
generates from the document is one the parser takes, one it generates against the document is
refused, and for rules near valid ones the document's verdict (``jsonschema_rs``, as Schemathesis
reads it) is the parser's. Rewrite the document's rule schemas after changing the parser with
``./dev run python -m tests.test_rule_schema``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from content_provider.core.reader import ConfigError
from content_provider.faults.rules import (
    DEFAULT_MAX_DELAY,
    DURATION_NUMBER,
    MAX_DURATION_SECONDS,
    parse_duration,
    parse_rule,
)
from content_provider.faults.schema import decimal_pattern, duration_pattern, rule_schemas

DOCUMENT = Path(__file__).resolve().parent.parent / "content_provider" / "openapi.json"
CAP = DEFAULT_MAX_DELAY
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def write_rule_schemas() -> None:
    """Put what ``rule_schemas()`` makes into the document (its other schemas stay as they are)."""
    document = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    document["components"]["schemas"].update(rule_schemas())
    DOCUMENT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def components() -> dict[str, Any]:
    schemas: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))["components"]["schemas"]
    return schemas


def test_the_document_holds_the_schemas_made_from_the_parser() -> None:
    made = rule_schemas()
    held = {name: components().get(name) for name in made}
    assert held == made, "the rule schemas changed: ./dev run python -m tests.test_rule_schema rewrites them"


def validator(name: str = "Rule") -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(
        {"$ref": f"#/components/schemas/{name}", "components": {"schemas": components()}}
    )


def parses(rule: Any) -> bool:
    try:
        parse_rule(rule, "rule", CAP, "rule-1")
    except ConfigError:
        return False
    return True


def compiles_everywhere(rule: Any) -> bool:
    """False when a ``re:`` pattern is in the rule: whether it compiles is the one thing the schema leaves to words."""
    return "re:" not in json.dumps(rule)


# --------------------------------------------------------------------------- the duration patterns

NUMBER = re.compile(DURATION_NUMBER)


@EXAMPLES
@given(
    text=st.text("0123456789.", max_size=12),
    bound=st.sampled_from([0, 1, 9, 10, 59, 60, 61, 100, 3599, 3600, 31536000]),
    positive=st.booleans(),
)
def test_the_decimal_pattern_is_the_decimal_comparison(text: str, bound: int, positive: bool) -> None:
    value = Decimal(text) if NUMBER.fullmatch(text) else None
    expected = value is not None and (value > 0 if positive else value >= 0) and value <= bound
    assert (re.fullmatch(decimal_pattern(bound, positive), text) is not None) is expected


@EXAMPLES
@given(
    text=st.text("0123456789. msinh", max_size=12) | st.sampled_from(["3600", "3600.0s", "60m", "1h", "1.0 h", ".5"]),
    limit=st.sampled_from([CAP, MAX_DURATION_SECONDS]),
    positive=st.booleans(),
)
def test_the_duration_pattern_is_parse_duration(text: str, limit: float, positive: bool) -> None:
    try:
        parse_duration(text, "d", positive=positive, cap=limit)
        taken = True
    except ConfigError:
        taken = False
    assert (re.fullmatch(duration_pattern(limit, positive), text) is not None) is taken


# --------------------------------------------------------------------------- whole rules

ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-1000, 2**41)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)


def rule_operation() -> Any:
    """A one-operation API whose body is the document's Rule: Schemathesis generates rules as the run does."""
    api = {
        "openapi": "3.1.0",
        "info": {"title": "rules", "version": "1"},
        "paths": {
            "/rules": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rule"}}},
                    },
                    "responses": {"default": {"description": "any"}},
                }
            }
        },
        "components": {"schemas": components()},
    }
    return schemathesis.openapi.from_dict(api)["/rules"]["POST"]


OPERATION = rule_operation()


@EXAMPLES
@given(case=OPERATION.as_strategy(generation_mode=GenerationMode.POSITIVE))
def test_every_rule_the_document_allows_is_taken(case: schemathesis.Case[Any]) -> None:
    if compiles_everywhere(case.body):
        assert parses(case.body), case.body


@EXAMPLES
@given(case=OPERATION.as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_every_rule_the_document_refuses_is_refused(case: schemathesis.Case[Any]) -> None:
    if not isinstance(case.body, bytes) and not validator().is_valid(case.body):  # bytes: not JSON at all
        assert not parses(case.body), case.body


def _mutated(rule: Any, path: list[Any], replacement: Any, drop: bool) -> Any:
    if not path:
        return replacement
    key, rest = path[0], path[1:]
    if isinstance(rule, dict) and key in rule:
        copy = dict(rule)
        if drop and not rest:
            del copy[key]
        else:
            copy[key] = _mutated(rule[key], rest, replacement, drop)
        return copy
    if isinstance(rule, list) and isinstance(key, int) and key < len(rule):
        return [_mutated(item, rest, replacement, drop) if i == key else item for i, item in enumerate(rule)]
    return rule


def _paths(value: Any, prefix: list[Any]) -> list[list[Any]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, [*prefix, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, [*prefix, index])
    return found


@EXAMPLES
@given(
    case=OPERATION.as_strategy(generation_mode=GenerationMode.POSITIVE),
    pick=st.integers(0, 10**6),
    replacement=ANY_JSON,
    drop=st.booleans(),
    extra=st.none() | st.tuples(st.text(max_size=10), ANY_JSON),
)
def test_near_a_valid_rule_the_document_and_the_parser_agree(
    case: schemathesis.Case[Any], pick: int, replacement: Any, drop: bool, extra: tuple[str, Any] | None
) -> None:
    paths = _paths(case.body, [])
    rule = _mutated(case.body, paths[pick % len(paths)], replacement, drop)
    if extra is not None and isinstance(rule, dict):
        rule = {**rule, extra[0]: extra[1]}
    if compiles_everywhere(rule):
        assert validator().is_valid(rule) is parses(rule), rule


@pytest.mark.parametrize(
    "rule",
    [
        {"delay": "2s\n"},
        {"delay": " 2s"},
        {"delay": "2  s"},
        {"delay": "3600.0000000000000001"},
        {"delay": 3600},
        {"delay": {"uniform": [1, "3600.5s"]}},
        {"delay": {"lognormal": {"median": 0, "p99": 1}}},
        {"outcome": None, "delay": 1},
        {"sequence": [None, None]},
        {"outcome": "status:  503"},
        {"outcome": "0503"},
        {"outcome": 503.0},
        {"first": 2.5, "delay": 1},
        {"outcome": True},
        {"name": "", "delay": 1},
        {"name": "a\n", "delay": 1},
        {"name": "x" * 201, "delay": 1},
        {"match": {"id": ""}, "delay": 1},
        {"match": {"use_case": "prov"}, "delay": 1},
        {"rate_limit": {}},
        {"rate_limit": {"requests": 1, "window": "0ms"}},
        {"every_period": {"period": "1m", "active": "2m"}, "delay": 1},
        {"first": 0, "delay": 1},
        {"first": 2**40 + 1, "delay": 1},
        {"probability": 1.5, "delay": 1},
        {"after": "8761h", "delay": 1},
        {"after": "8760h", "delay": 1},
    ],
)
def test_edges_the_document_and_the_parser_agree_on(rule: dict[str, Any]) -> None:
    assert validator().is_valid(rule) is parses(rule)


if __name__ == "__main__":
    write_rule_schemas()
