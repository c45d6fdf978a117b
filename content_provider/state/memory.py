"""The default backend: the state of this one process, as it always was."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from content_provider.faults.engine import FAULTS
from content_provider.fixtures.write import FixtureImage
from content_provider.state.base import RuleChange, StateBackend, T
from content_provider.state.journal import JOURNAL


class MemoryState(StateBackend):
    kind = "memory"

    def __init__(self, app: web.Application) -> None:
        self._app = app

    async def change_rules(self, change: RuleChange, restart: bool) -> None:
        engine = self._app[FAULTS]
        rules = change(engine.rules)
        if restart:
            engine.replace(rules)
        else:
            engine.adopt(rules, {})

    async def journal_entries(self, content_id: str | None, limit: int | None) -> list[dict[str, Any]]:
        return [entry.as_json() for entry in self._app[JOURNAL].entries(content_id, limit)]

    async def journal_count(self, content_id: str | None) -> int:
        return self._app[JOURNAL].count(content_id)

    async def clear_journal(self) -> None:
        self._app[JOURNAL].clear()

    async def change_image(self, image: FixtureImage, data: bytes | None, apply: Callable[[], Awaitable[T]]) -> T:
        return await apply()  # nobody to share it with
