"""The OpenAPI document matches the routes the app really has, and is what it serves."""

from __future__ import annotations

import json
from pathlib import Path

from content_provider.app import create_app
from content_provider.config.settings import Settings

from .helpers import MakeClient

DOCUMENT = Path(__file__).resolve().parent.parent / "content_provider" / "openapi.json"


def routes_of_the_app() -> set[tuple[str, str]]:
    app = create_app(Settings())
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        path = path.replace("/fixtures/{kind}/{side}", "/fixtures/default/{side}")  # {kind:default}
        if route.method not in ("HEAD", "*"):  # "*": the catch-all that answers 404/405
            found.add((route.method.lower(), path))
    return found


def test_every_route_is_documented_and_nothing_else() -> None:
    document = json.loads(DOCUMENT.read_text())
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == routes_of_the_app()


async def test_the_app_serves_the_document(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/openapi.json")
    assert response.status == 200
    served = await response.json()
    assert served == json.loads(DOCUMENT.read_text())
    assert served["openapi"] == "3.1.0"
