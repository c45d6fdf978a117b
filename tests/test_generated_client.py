"""A Python client generated from the OpenAPI document (openapi-python-client, the most used
generator) builds, and adds and removes a rule. It could not be generated at all before: the
preview's useCase listed PROV, AUTH, prov and auth, a duplicate enum key."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from content_provider.pytest_plugin import ContentProviderServer

from .helpers import DOC_CARD

DOCUMENT = Path(__file__).resolve().parent.parent / "content_provider" / "openapi.json"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "content_provider_generated_client"
# responses it cannot turn into Python (a JPEG, a JWS, a PEM): left out of the client, said in a warning
UNSUPPORTED = ("image/jpeg", "application/jose", "application/x-pem-file")


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[ModuleType]:
    config = tmp_path / "generator.yaml"
    config.write_text("post_hooks: []\n", encoding="utf-8")  # no formatter run over the output
    built = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(DOCUMENT), "--output-path", str(tmp_path / PACKAGE),
         "--meta", "none", "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    lines = output.splitlines()
    assert not [line for line in lines if line.startswith(("Unable", "Failure", "Attempted"))], output
    assert not [line for line in lines if "will not be generated" in line], output
    warnings = [line for line in lines if line.startswith("WARNING")]
    why = [line for line in lines if line.startswith(("Cannot parse", "Unsupported content type"))]
    assert len(why) == len(warnings), output
    assert all(any(kind in line for kind in UNSUPPORTED) for line in why), output  # only those media types
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def status_of_content(url: str, content_id: str) -> int:
    request = urllib.request.Request(f"{url}/getcontent", data=json.dumps({"contentId": content_id}).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_a_generated_client_adds_and_removes_a_rule(
    generated: ModuleType, content_provider_server: ContentProviderServer
) -> None:
    api: Any = importlib.import_module(f"{PACKAGE}.api.admin")
    models: Any = importlib.import_module(f"{PACKAGE}.models")
    for operation in ("add_rule", "get_rule", "delete_rule"):
        importlib.import_module(f"{PACKAGE}.api.admin.{operation}")
    url = content_provider_server.url
    # the generator asks for a token here; this server has no admin.token, so it lets loopback in unasked
    rule = models.Rule(name="generated", match=models.RuleMatch(id=DOC_CARD), outcome=503)
    try:
        with generated.AuthenticatedClient(base_url=url, token="none-needed") as client:
            added = api.add_rule.sync(client=client, body=rule)
            assert isinstance(added, models.Rule)
            assert (added.name, added.match.id, added.outcome) == ("generated", DOC_CARD, 503)
            assert status_of_content(url, DOC_CARD) == 503
            assert api.get_rule.sync(client=client, name="generated").to_dict() == added.to_dict()
            left = api.delete_rule.sync(client=client, name="generated")
            assert isinstance(left, models.RulesInForce)
            assert left.rules == []
            assert status_of_content(url, DOC_CARD) == 200
            missing = api.get_rule.sync(client=client, name="generated")
            assert missing.error.value == "no_such_rule"
    finally:
        with urllib.request.urlopen(urllib.request.Request(f"{url}/__admin/reset", method="POST"), timeout=10):
            pass
