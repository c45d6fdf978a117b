"""The OpenAPI document matches the routes the app really has, is what it serves, and says what a client
needs: an id per operation, the error codes of every error answer, links from a create to its read and delete."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from content_provider.app import create_app
from content_provider.config.settings import Settings

from .docs import DOC_FILES
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


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    document = json.loads(DOCUMENT.read_text())
    return [(method, path, op) for path, item in document["paths"].items() for method, op in item.items()]


def resolved(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """``node`` with a ``$ref`` into the document followed."""
    while "$ref" in node:
        found: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def test_every_operation_has_its_own_operation_id() -> None:
    """Generated clients name their functions after it; links point at it."""
    ids = [op.get("operationId") for _, _, op in operations()]
    assert None not in ids
    assert len(ids) == len(set(ids))


def test_every_error_answer_lists_its_codes_and_each_is_in_the_docs() -> None:
    document = json.loads(DOCUMENT.read_text())
    docs = "".join(path.read_text(encoding="utf-8") for path in DOC_FILES)
    documented = set(re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", docs, flags=re.MULTILINE))
    for method, path, op in operations():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            schema = resolved(document, resolved(document, response)["content"]["application/json"]["schema"])
            assert schema["required"] == ["error", "message"], (method, path, status)
            codes = schema["properties"]["error"]["enum"]
            assert codes, (method, path, status)
            missing = {code for code in codes if (status, code) not in documented}
            assert not missing, f"{method.upper()} {path} {status}: {missing} is in no error table of the docs"


def test_links_lead_from_each_create_to_its_read_and_delete() -> None:
    """So that Schemathesis's stateful phase walks create, read, delete of one thing."""
    by_id = {op["operationId"]: (method, path) for method, path, op in operations()}
    creates = {
        ("post", "/__admin/rules"): ("getRule", "deleteRule"),
        ("put", "/__admin/fixtures/{kind}/{name}/{side}"): ("getImage", "deleteImage"),
        ("put", "/__admin/fixtures/default/{side}"): ("getDefaultImage", "deleteDefaultImage"),
    }
    for (method, path), targets in creates.items():
        [op] = [op for m, p, op in operations() if (m, p) == (method, path)]
        for status, response in op["responses"].items():
            if status.startswith("2"):
                linked = {link["operationId"] for link in response["links"].values()}
                assert linked == set(targets), (method, path, status)
                for target in targets:
                    parameters = {p["name"] for p in op_of(by_id[target])["parameters"] if p["in"] == "path"}
                    for link in response["links"].values():
                        if link["operationId"] == target:
                            assert set(link["parameters"]) == parameters


def op_of(where: tuple[str, str]) -> dict[str, Any]:
    [op] = [op for m, p, op in operations() if (m, p) == where]
    return op
