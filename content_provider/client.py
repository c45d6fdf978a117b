"""Clients for the admin API: async (aiohttp) for tests that run the mock as a process,
and a small synchronous one (standard library only) behind the pytest plugin.

Both speak the same routes; an error answer raises :class:`AdminError` carrying the
status and the server's ``{"error", "message"}``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from content_provider.core.layout import SIDES
from content_provider.fixtures.generate import auth_jpeg, card_jpeg


class AdminError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"admin API answered {status}: {message}")


def image_path(side: str, user: str | None = None, org: str | None = None) -> str:
    """The admin path of one image: a user's, an organisation's, or the default's."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {side!r}")
    if user is not None and org is not None:
        raise ValueError("give user or org, not both")
    if user is not None:
        return f"/__admin/fixtures/users/{quote(user, safe='')}/{side}"
    if org is not None:
        return f"/__admin/fixtures/orgs/{quote(org, safe='')}/{side}"
    return f"/__admin/fixtures/default/{side}"


def generated_image(side: str, label: str) -> bytes:
    return auth_jpeg(label) if side == "auth" else card_jpeg(label, "back" if side == "back" else "front")


def _query(content_id: str | None, limit: int | None = None) -> str:
    params: dict[str, str] = {}
    if content_id is not None:
        params["contentId"] = content_id
    if limit is not None:
        params["limit"] = str(limit)
    return f"?{urlencode(params)}" if params else ""


class AsyncAdminClient:
    """``async with AsyncAdminClient("http://127.0.0.1:8080", token=...) as admin: ...``"""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._session = aiohttp.ClientSession(headers=headers)

    async def __aenter__(self) -> AsyncAdminClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            body = json.loads(text) if text else None
            if response.status >= 400:
                raise AdminError(response.status, body)
            return body

    async def add_rule(self, rule: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/__admin/rules", json={**(rule or {}), **spec})
        return result

    async def rules(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/__admin/rules"))["rules"])

    async def replace_rules(self, rules: list[Mapping[str, Any]]) -> None:
        await self._call("PUT", "/__admin/rules", json={"rules": rules})

    async def delete_rule(self, name: str) -> None:
        await self._call("DELETE", f"/__admin/rules/{quote(name, safe='')}")

    async def clear_rules(self) -> None:
        await self._call("DELETE", "/__admin/rules")

    async def reset(self) -> None:
        await self._call("POST", "/__admin/reset")

    async def reload(self) -> None:
        await self._call("POST", "/__admin/reload")

    async def requests(self, content_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/__admin/requests" + _query(content_id, limit)))["requests"])

    async def request_count(self, content_id: str | None = None) -> int:
        return int((await self._call("GET", "/__admin/requests/count" + _query(content_id)))["count"])

    async def clear_requests(self) -> None:
        await self._call("DELETE", "/__admin/requests")

    async def put_image(
        self, side: str, data: bytes | None = None, *, user: str | None = None, org: str | None = None
    ) -> dict[str, Any]:
        image = data if data is not None else generated_image(side, user or org or "default")
        result: dict[str, Any] = await self._call("PUT", image_path(side, user, org), data=image)
        return result

    async def delete_image(self, side: str, *, user: str | None = None, org: str | None = None) -> None:
        await self._call("DELETE", image_path(side, user, org))

    async def resolve(self, content_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/__admin/fixtures/resolve" + _query(content_id))
        return result


class AdminClient:
    """The same calls, blocking, on the standard library: for the pytest plugin and scripts."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None, data: bytes | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode()
            raise AdminError(exc.code, json.loads(raw) if raw.startswith("{") else raw) from None
        return json.loads(text) if text else None

    def add_rule(self, rule: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/__admin/rules", {**(rule or {}), **spec})
        return result

    def rules(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/__admin/rules")["rules"])

    def replace_rules(self, rules: list[Mapping[str, Any]]) -> None:
        self._call("PUT", "/__admin/rules", {"rules": rules})

    def delete_rule(self, name: str) -> None:
        self._call("DELETE", f"/__admin/rules/{quote(name, safe='')}")

    def clear_rules(self) -> None:
        self._call("DELETE", "/__admin/rules")

    def reset(self) -> None:
        self._call("POST", "/__admin/reset")

    def reload(self) -> None:
        self._call("POST", "/__admin/reload")

    def requests(self, content_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self._call("GET", "/__admin/requests" + _query(content_id, limit))["requests"])

    def request_count(self, content_id: str | None = None) -> int:
        return int(self._call("GET", "/__admin/requests/count" + _query(content_id))["count"])

    def clear_requests(self) -> None:
        self._call("DELETE", "/__admin/requests")

    def put_image(
        self, side: str, data: bytes | None = None, *, user: str | None = None, org: str | None = None
    ) -> dict[str, Any]:
        image = data if data is not None else generated_image(side, user or org or "default")
        result: dict[str, Any] = self._call("PUT", image_path(side, user, org), data=image)
        return result

    def delete_image(self, side: str, *, user: str | None = None, org: str | None = None) -> None:
        self._call("DELETE", image_path(side, user, org))

    def resolve(self, content_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/__admin/fixtures/resolve" + _query(content_id))
        return result
