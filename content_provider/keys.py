"""Typed keys for everything the application and each request carry, all in one place.

The types are imported for the type checker only: the modules that define them use these
keys themselves, so importing them here at run time would go round in a circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .config import Settings
    from .delivery import InjectedWaits
    from .explain import Explainer
    from .faults import FaultEngine
    from .handlers import ParsedBodies
    from .journal import Entry, Journal
    from .metrics import Metrics
    from .signing import Signer
    from .state import StateBackend
    from .store import FixtureStore
    from .upstream.proxy import Upstream
    from .workers import WorkerRole

# the application's
SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CONFIG_ENV: web.AppKey[dict[str, str]] = web.AppKey("config_env")  # the environment, for config reloads
SIGNER: web.AppKey[Signer] = web.AppKey("signer")
STORE: web.AppKey[FixtureStore] = web.AppKey("store")
EXPLAINER: web.AppKey[Explainer] = web.AppKey("explainer")
FAULTS: web.AppKey[FaultEngine] = web.AppKey("faults")
INJECTED_WAITS: web.AppKey[InjectedWaits] = web.AppKey("injected_waits")
JOURNAL: web.AppKey[Journal] = web.AppKey("journal")
PARSED_BODIES: web.AppKey[ParsedBodies] = web.AppKey("parsed_bodies")
STATE: web.AppKey[StateBackend] = web.AppKey("state")  # where rules, counts, journal and uploads are shared
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
ROLE: web.AppKey[WorkerRole] = web.AppKey("worker_role")  # only with serve --workers N
UPSTREAM: web.AppKey[Upstream] = web.AppKey("upstream")  # only with upstream.url

# each POST /getcontent's
EXCHANGE: web.RequestKey[Entry] = web.RequestKey("exchange")
