"""The README's examples are run, so they cannot drift from what the server does."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from pathlib import Path

import yaml

from content_provider.config import parse_settings
from content_provider.faultpayloads import PAYLOAD_MODES
from content_provider.faults import CONNECTION_MODES

from .helpers import MakeClient

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


async def test_verify_back_example_runs(make_client: MakeClient) -> None:
    client = await make_client()
    [example] = [block for block in code_blocks("python") if "verify_back" in block]
    base = str(client.make_url("")).rstrip("/")
    source = example.replace('"http://127.0.0.1:8080"', repr(base))
    output = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(output):
            exec(compile(source, "README.md", "exec"), {})

    await asyncio.to_thread(run)
    assert re.fullmatch(r"RS256 \S{43} \d+ bytes of JPEG\n", output.getvalue())


def test_quick_start_is_what_ci_runs() -> None:
    [quick_start] = [block for block in code_blocks("sh") if "./dev serve" in block and "./dev test" in block]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines() if line.strip()]
    assert commands == ["./dev serve", "./dev test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "exec ./dev test"


def test_every_error_code_in_the_code_is_documented() -> None:
    sources = "".join(p.read_text() for p in (ROOT / "content_provider").glob("*.py"))
    codes = set(re.findall(r'ApiError\(\s*\d+,\s*"([a-z_]+)"', sources))
    codes |= set(re.findall(r'FixtureError\(\s*"([a-z_]+)"', sources))
    codes |= set(re.findall(r'\d+: \("([a-z_]+)"', sources))
    assert codes
    documented = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", README, flags=re.MULTILINE))
    assert codes <= documented, codes - documented


def test_faults_example_parses_and_does_what_it_says() -> None:
    [example] = [block for block in code_blocks("yaml") if block.startswith("faults:")]
    settings = parse_settings(yaml.safe_load(example), ROOT, {})
    names = [rule.name for rule in settings.faults.rules]
    assert names == ["retry-test", "slow-auth", "flaky-acme"]
    assert settings.faults.seed == 42


def test_every_outcome_is_in_the_readme_table() -> None:
    table = set(re.findall(r"^\| `?([a-z_0-9 /]+?)`? \| `([a-z_0-9]+)`", README, flags=re.MULTILINE))
    documented = {config for _, config in table}
    assert set(PAYLOAD_MODES) <= documented
    assert set(CONNECTION_MODES) | {"hang", "ok"} <= documented


def test_every_conformance_rule_is_in_the_readme() -> None:
    from content_provider.conformance import RULES

    for rule in RULES.values():
        kind = "required" if rule.required else "recommended"
        assert f"| {rule.id} | {kind} | {rule.title} |" in README
