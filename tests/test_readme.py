"""The README's and docs/' examples are run, and their tables checked, so they cannot drift from the server.

Each check reads the page the thing now lives on (see tests/docs.py); the README keeps the quick start.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import subprocess

import yaml

from content_provider.config.parse import parse_settings
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import CONNECTION_MODES

from .docs import DOC_FILES, ROOT, Block, blocks, python_examples, read
from .helpers import MakeClient


async def run_example(example: Block, base: str) -> str:
    """Run a python example against the mock at ``base`` (in a thread: it blocks); what it printed."""
    source = example.text.replace('"http://127.0.0.1:8080"', repr(base))
    output = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(output):
            exec(compile(source, str(example), "exec"), {})

    await asyncio.to_thread(run)
    return output.getvalue()


async def test_verify_back_example_runs(make_client: MakeClient) -> None:
    client = await make_client()
    base = str(client.make_url("")).rstrip("/")
    for example in python_examples("verify_back"):
        output = await run_example(example, base)
        assert re.fullmatch(r"RS256 \S{43} \d+ bytes of JPEG\n", output), example


async def test_conformance_library_example_runs(make_client: MakeClient) -> None:
    client = await make_client()
    base = str(client.make_url("")).rstrip("/")
    for example in python_examples("conformance"):
        output = await run_example(example, base)
        assert output == "['CP16']\n", example  # what the example's comment says


def test_quick_start_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md",)
    [quick_start] = [b.text for b in blocks("sh", readme) if "./dev serve" in b.text and "./dev test" in b.text]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines() if line.strip()]
    assert commands == ["./dev serve", "./dev test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "exec ./dev test"


def test_every_error_code_in_the_code_is_documented() -> None:
    sources = "".join(p.read_text() for p in (ROOT / "content_provider").rglob("*.py"))
    codes = set(re.findall(r'ApiError\(\s*\d+,\s*"([a-z_]+)"', sources))
    codes |= set(re.findall(r'FixtureError\(\s*"([a-z_]+)"', sources))
    codes |= set(re.findall(r'\d+: \("([a-z_]+)"', sources))
    assert codes
    docs = "".join(path.read_text(encoding="utf-8") for path in DOC_FILES)
    documented = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", docs, flags=re.MULTILINE))
    assert codes <= documented, codes - documented


def test_faults_example_parses_and_does_what_it_says() -> None:
    faults_page = (ROOT / "docs" / "faults.md",)
    [example, windows] = [block.text for block in blocks("yaml", faults_page) if block.text.startswith("faults:")]
    settings = parse_settings(yaml.safe_load(example), ROOT, {})
    names = [rule.name for rule in settings.faults.rules]
    assert names == ["retry-test", "slow-auth", "flaky-acme"]
    assert settings.faults.seed == 42
    outage, spells = parse_settings(yaml.safe_load(windows), ROOT, {}).faults.rules
    assert outage.window is not None
    assert outage.window.state(5) == (False, 5)  # 10 s after the rules are put in force ...
    assert outage.window.state(20) == (True, 20)  # ... for 30 s
    assert outage.window.state(41) == (False, None)
    assert spells.window is not None
    assert spells.window.state(30) == (True, 30)  # the first minute of every five
    assert spells.window.state(90) == (False, 210)


def test_every_outcome_is_in_the_faults_table() -> None:
    page = read("docs/faults.md")
    table = set(re.findall(r"^\| `?([a-z_0-9 /]+?)`? \| `([a-z_0-9]+)`", page, flags=re.MULTILINE))
    documented = {config for _, config in table}
    assert set(PAYLOAD_MODES) <= documented
    assert set(CONNECTION_MODES) | {"hang", "ok"} <= documented


def test_every_conformance_rule_is_in_the_conformance_page() -> None:
    from content_provider.conformance.rules import RULES

    page = read("docs/conformance.md")
    for rule in RULES.values():
        kind = "required" if rule.required else "recommended"
        assert f"| {rule.id} | {kind} | {rule.title} |" in page


def test_dev_prints_its_whole_help() -> None:
    """``./dev`` alone lists every command (the help was once cut off before ``./dev run``)."""
    shown = subprocess.run(["sh", str(ROOT / "dev")], capture_output=True, text=True, check=False)
    assert shown.returncode == 0
    for command in ("./dev serve", "./dev test", "./dev run"):
        assert command in shown.stdout, shown.stdout
    assert "set -eu" not in shown.stdout
    unknown = subprocess.run(["sh", str(ROOT / "dev"), "nope"], capture_output=True, text=True, check=False)
    assert unknown.returncode == 2
    assert "./dev run" in unknown.stdout
