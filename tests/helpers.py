"""Helpers the test modules share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

DOC_CARD = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"
DOC_AUTH = "AUTH:4018e11f-1209-45f5-ade7-e59004e10745"

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


async def get_content(client: TestClient[Any, Any], content_id: Any, **kwargs: Any) -> Any:
    return await client.post("/getcontent", json={"contentId": content_id}, **kwargs)
