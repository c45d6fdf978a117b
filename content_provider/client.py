"""Clients for the admin API: async (aiohttp) for tests that run the mock as a process,
and a small synchronous one (standard library only) behind the pytest plugin.

Each call is described once (:class:`AdminCall`: method, path, body, what to take from
the answer); the two clients only differ in how they send it. An error answer raises
:class:`AdminError` carrying the status and the server's ``{"error", "message"}``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlencode

import aiohttp

from content_provider.core.layout import SIDES
from content_provider.fixtures.generate import auth_jpeg, card_jpeg

T = TypeVar("T")


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


def _nothing(answer: Any) -> None:
    return None


def _as_dict(answer: Any) -> dict[str, Any]:
    return dict(answer)


def _answer_error(status: int, raw: bytes) -> AdminError:
    text = raw.decode(errors="replace")
    try:
        body: Any = json.loads(text) if text.startswith("{") else text
    except ValueError:
        body = text
    return AdminError(status, body)


@dataclass(frozen=True)
class AdminCall(Generic[T]):
    """One admin API call: what to send, and what the caller gets from the answer."""

    method: str
    path: str
    take: Callable[[Any], T]
    body: Any = None
    data: bytes | None = None
    raw: bool = False  # the answer is bytes (an image), not JSON

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"} if self.body is not None else {}

    @property
    def payload(self) -> bytes | None:
        return json.dumps(self.body).encode() if self.body is not None else self.data

    def result(self, raw: bytes) -> T:
        if self.raw:
            return self.take(raw)
        text = raw.decode()
        return self.take(json.loads(text) if text else None)


class _Calls:
    """Every admin call the clients make, described once."""

    @staticmethod
    def add_rule(rule: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> AdminCall[dict[str, Any]]:
        return AdminCall("POST", "/__admin/rules", _as_dict, body={**(rule or {}), **spec})

    @staticmethod
    def rules() -> AdminCall[list[dict[str, Any]]]:
        return AdminCall("GET", "/__admin/rules", lambda answer: list(answer["rules"]))

    @staticmethod
    def rule(name: str) -> AdminCall[dict[str, Any]]:
        return AdminCall("GET", f"/__admin/rules/{quote(name, safe='')}", _as_dict)

    @staticmethod
    def replace_rules(rules: list[Mapping[str, Any]]) -> AdminCall[None]:
        return AdminCall("PUT", "/__admin/rules", _nothing, body={"rules": rules})

    @staticmethod
    def delete_rule(name: str) -> AdminCall[None]:
        return AdminCall("DELETE", f"/__admin/rules/{quote(name, safe='')}", _nothing)

    @staticmethod
    def clear_rules() -> AdminCall[None]:
        return AdminCall("DELETE", "/__admin/rules", _nothing)

    @staticmethod
    def reset() -> AdminCall[None]:
        return AdminCall("POST", "/__admin/reset", _nothing)

    @staticmethod
    def reload() -> AdminCall[None]:
        return AdminCall("POST", "/__admin/reload", _nothing)

    @staticmethod
    def requests(content_id: str | None, limit: int | None) -> AdminCall[list[dict[str, Any]]]:
        return AdminCall(
            "GET", "/__admin/requests" + _query(content_id, limit), lambda answer: list(answer["requests"])
        )

    @staticmethod
    def request_count(content_id: str | None) -> AdminCall[int]:
        return AdminCall("GET", "/__admin/requests/count" + _query(content_id), lambda answer: int(answer["count"]))

    @staticmethod
    def clear_requests() -> AdminCall[None]:
        return AdminCall("DELETE", "/__admin/requests", _nothing)

    @staticmethod
    def put_image(side: str, data: bytes | None, user: str | None, org: str | None) -> AdminCall[dict[str, Any]]:
        image = data if data is not None else generated_image(side, user or org or "default")
        return AdminCall("PUT", image_path(side, user, org), _as_dict, data=image)

    @staticmethod
    def image(side: str, user: str | None, org: str | None) -> AdminCall[bytes]:
        return AdminCall("GET", image_path(side, user, org), bytes, raw=True)

    @staticmethod
    def delete_image(side: str, user: str | None, org: str | None) -> AdminCall[dict[str, Any]]:
        return AdminCall("DELETE", image_path(side, user, org), _as_dict)

    @staticmethod
    def resolve(content_id: str) -> AdminCall[dict[str, Any]]:
        return AdminCall("GET", "/__admin/fixtures/resolve" + _query(content_id), _as_dict)


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

    async def send(self, call: AdminCall[T]) -> T:
        async with self._session.request(
            call.method, self.base_url + call.path, data=call.payload, headers=call.headers
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                raise _answer_error(response.status, raw)
            return call.result(raw)

    async def add_rule(self, rule: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        return await self.send(_Calls.add_rule(rule, spec))

    async def rules(self) -> list[dict[str, Any]]:
        return await self.send(_Calls.rules())

    async def rule(self, name: str) -> dict[str, Any]:
        """One rule in force, as written (AdminError 404 ``no_such_rule`` when there is none)."""
        return await self.send(_Calls.rule(name))

    async def replace_rules(self, rules: list[Mapping[str, Any]]) -> None:
        await self.send(_Calls.replace_rules(rules))

    async def delete_rule(self, name: str) -> None:
        await self.send(_Calls.delete_rule(name))

    async def clear_rules(self) -> None:
        await self.send(_Calls.clear_rules())

    async def reset(self) -> None:
        await self.send(_Calls.reset())

    async def reload(self) -> None:
        await self.send(_Calls.reload())

    async def requests(self, content_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return await self.send(_Calls.requests(content_id, limit))

    async def request_count(self, content_id: str | None = None) -> int:
        return await self.send(_Calls.request_count(content_id))

    async def clear_requests(self) -> None:
        await self.send(_Calls.clear_requests())

    async def put_image(
        self, side: str, data: bytes | None = None, *, user: str | None = None, org: str | None = None
    ) -> dict[str, Any]:
        return await self.send(_Calls.put_image(side, data, user, org))

    async def image(self, side: str, *, user: str | None = None, org: str | None = None) -> bytes:
        """The side's image file as the fixture folder holds it (a JPEG, or a recorded back's JWS)."""
        return await self.send(_Calls.image(side, user, org))

    async def delete_image(self, side: str, *, user: str | None = None, org: str | None = None) -> dict[str, Any]:
        return await self.send(_Calls.delete_image(side, user, org))

    async def resolve(self, content_id: str) -> dict[str, Any]:
        return await self.send(_Calls.resolve(content_id))


class AdminClient:
    """The same calls, blocking, on the standard library: for the pytest plugin and scripts."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def send(self, call: AdminCall[T]) -> T:
        headers = dict(call.headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base_url + call.path, data=call.payload, method=call.method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw: bytes = response.read()
        except urllib.error.HTTPError as exc:
            raise _answer_error(exc.code, exc.read()) from None
        return call.result(raw)

    def add_rule(self, rule: Mapping[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
        return self.send(_Calls.add_rule(rule, spec))

    def rules(self) -> list[dict[str, Any]]:
        return self.send(_Calls.rules())

    def rule(self, name: str) -> dict[str, Any]:
        """One rule in force, as written (AdminError 404 ``no_such_rule`` when there is none)."""
        return self.send(_Calls.rule(name))

    def replace_rules(self, rules: list[Mapping[str, Any]]) -> None:
        self.send(_Calls.replace_rules(rules))

    def delete_rule(self, name: str) -> None:
        self.send(_Calls.delete_rule(name))

    def clear_rules(self) -> None:
        self.send(_Calls.clear_rules())

    def reset(self) -> None:
        self.send(_Calls.reset())

    def reload(self) -> None:
        self.send(_Calls.reload())

    def requests(self, content_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        return self.send(_Calls.requests(content_id, limit))

    def request_count(self, content_id: str | None = None) -> int:
        return self.send(_Calls.request_count(content_id))

    def clear_requests(self) -> None:
        self.send(_Calls.clear_requests())

    def put_image(
        self, side: str, data: bytes | None = None, *, user: str | None = None, org: str | None = None
    ) -> dict[str, Any]:
        return self.send(_Calls.put_image(side, data, user, org))

    def image(self, side: str, *, user: str | None = None, org: str | None = None) -> bytes:
        """The side's image file as the fixture folder holds it (a JPEG, or a recorded back's JWS)."""
        return self.send(_Calls.image(side, user, org))

    def delete_image(self, side: str, *, user: str | None = None, org: str | None = None) -> dict[str, Any]:
        return self.send(_Calls.delete_image(side, user, org))

    def resolve(self, content_id: str) -> dict[str, Any]:
        return self.send(_Calls.resolve(content_id))
