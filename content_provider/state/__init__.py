"""Where the shared state lives: the rules in force, the trigger counters, the request journal
and uploaded images.

One backend per module, behind :class:`~content_provider.state.base.StateBackend`, which the admin API, the fault engine
and the journal use:

- ``memory`` (state/memory.py, the default): this process only, nothing to install;
- ``redis`` (state/redis.py): every replica on every machine, and ``serve --workers N``,
  see one state (docs/several-instances.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from content_provider.state.base import STATE, StateBackend


async def state_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the configured backend (a clear error when it cannot be reached) and close it at the end."""
    from content_provider.config.settings import SETTINGS

    backend: StateBackend
    if app[SETTINGS].state_backend == "redis":
        from content_provider.state.redis import RedisState  # redis-py is needed only here (the redis extra)

        backend = RedisState(app)
    else:
        from content_provider.state.memory import MemoryState

        backend = MemoryState(app)
    await backend.start()
    app[STATE] = backend
    try:
        yield
    finally:
        await backend.close()
