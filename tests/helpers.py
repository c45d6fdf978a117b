"""Helpers the test modules share."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from PIL import Image

from content_provider.core.reader import Reader
from content_provider.faults.rules import FaultSettings, parse_fault_settings
from content_provider.upstream.manifest import MANIFEST

DOC_CARD = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"
DOC_AUTH = "AUTH:4018e11f-1209-45f5-ade7-e59004e10745"

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


async def get_content(client: TestClient[Any, Any], content_id: Any, **kwargs: Any) -> Any:
    return await client.post("/getcontent", json={"contentId": content_id}, **kwargs)


def faults(**data: Any) -> FaultSettings:
    """Fault settings written as they would be under ``faults:`` in config.yaml."""
    return parse_fault_settings(Reader(data, "faults"))


def png_bytes(size: tuple[int, int] = (1200, 757)) -> bytes:
    """A PNG of the card's shape: right size, wrong format."""
    out = io.BytesIO()
    Image.new("RGB", size, "red").save(out, "PNG")
    return out.getvalue()


def recorded_manifest(root: Path) -> dict[str, dict[str, Any]]:
    """The recording's manifest, read as a reader of docs/upstream.md would: each id, its live
    variants (by digest, in order) and the one served."""
    lines = (root / MANIFEST).read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["recording"] == "content-provider upstream"
    ids: dict[str, dict[str, Any]] = {}
    for line in lines[1:]:
        record = json.loads(line)
        entry = ids.setdefault(record["id"], {"variants": {}, "current": None})
        if "dropped" in record:
            del entry["variants"][record["dropped"]]
            continue
        entry.update(folder=record["folder"], subject=record["subject"])
        entry["variants"][record["digest"]] = record
        if record["files"] and not record.get("moved"):
            entry["current"] = record["digest"]
    return ids
