"""The container image (``Containerfile``), built from this tree on the local Debian base and run
with podman (tests/containers.py): it serves the contract, as a user other than root, from the
fixtures and the configuration it is given, is healthy by its own ``HEALTHCHECK``, and stops
cleanly on SIGTERM. docs/containers.md says the same to its readers."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from .containers import run_container
from .helpers import DOC_CARD


def post_content(url: str, content_id: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}/getcontent", data=json.dumps({"contentId": content_id}).encode())
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def test_the_image_serves_the_demo_set(project_image: str) -> None:
    with run_container(project_image) as container:
        container.wait_ready()
        status, body = post_content(container.url, DOC_CARD)
        assert status == 200
        assert [element["key"] for element in body["data"]] == ["front", "back"]
