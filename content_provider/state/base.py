"""Where the shared state lives: the rules in force, the trigger counters, the request journal
and uploaded images.

One backend per module, behind :class:`StateBackend`, which the admin API, the fault engine
and the journal use:

- ``memory`` (state/memory.py, the default): this process only, nothing to install;
- ``redis`` (state/redis.py): every replica on every machine, and ``serve --workers N``,
  see one state (docs/several-instances.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from content_provider.core.errors import ApiError
from content_provider.faults.rules import Rule
from content_provider.fixtures.write import FixtureImage

T = TypeVar("T")
RuleChange = Callable[[tuple[Rule, ...]], tuple[Rule, ...]]


def unavailable(detail: str = "") -> ApiError:
    """The admin API's answer while the shared state backend cannot be reached."""
    more = f": {detail}" if detail else ""
    return ApiError(503, "state_unavailable", f"the shared state backend (Redis) cannot be reached{more}; try again")


class StateBackend:
    """What the admin API, the fault engine and the journal need from where the state lives."""

    kind = "memory"

    @property
    def reachable(self) -> bool:
        return True

    @property
    def journal_dropped(self) -> int:
        """Journal entries that could not be written (counted, shown in /healthz and /metrics)."""
        return 0

    @property
    def errors(self) -> int:
        """Calls to the backend that failed."""
        return 0

    async def start(self) -> None:
        """Connect; raise ConfigError naming the setting when that cannot be done."""

    async def close(self) -> None:
        """Write what is pending and disconnect."""

    async def change_rules(self, change: RuleChange, restart: bool) -> None:
        """Put ``change(rules in force)`` in force everywhere; ``restart``: every counter starts again,
        else rules that stay keep theirs. Raises what ``change`` raises."""
        raise NotImplementedError

    async def journal_entries(self, content_id: str | None, limit: int | None) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def journal_count(self, content_id: str | None) -> int:
        raise NotImplementedError

    async def clear_journal(self) -> None:
        raise NotImplementedError

    async def change_image(self, image: FixtureImage, data: bytes | None, apply: Callable[[], Awaitable[T]]) -> T:
        """Write ``data`` as ``image`` (None: delete it) everywhere: shared first, then ``apply`` makes the
        change here, so a change that cannot be shared changes nothing. ``data`` has been checked."""
        raise NotImplementedError

    async def reset_done(self) -> None:
        """After a reset here (rules and journal are reset through the other calls)."""

    def health(self) -> dict[str, Any]:
        return {"backend": self.kind, "reachable": self.reachable, "journal_dropped": self.journal_dropped}


STATE: web.AppKey[StateBackend] = web.AppKey("state")  # where rules, counts, journal and uploads are shared
