"""The app's parts every ``POST /getcontent`` uses, taken from the app once, when it has started.

``request.app`` and ``app[KEY]`` are each a Python call (``request.app`` two); the hot path
made ten of them a request, a measurable share of a request that costs about 100 µs in all
(docs/performance.md, "Where the hot path's time goes"). The AppKeys stay where the parts are
defined and stay the way everything else reaches them; this holds the same objects, read
after the cleanup contexts (signing key, fixtures, shared state) have put them in place.
"""

from __future__ import annotations

from aiohttp import web

from content_provider.config.settings import SETTINGS, Settings
from content_provider.faults.engine import FAULTS, FaultEngine
from content_provider.fixtures.explain import EXPLAINER, Explainer
from content_provider.fixtures.store import STORE, FixtureStore
from content_provider.http.body import PARSED_BODIES, ParsedBodies
from content_provider.http.metrics import METRICS, Metrics
from content_provider.state.journal import JOURNAL, Journal


class ContentParts:
    """Filled by :meth:`take` (an ``on_startup`` hook, so after the cleanup contexts); none of the
    objects it holds is replaced while the app runs (a reloaded config changes them in place)."""

    __slots__ = ("explainer", "faults", "journal", "metrics", "parsed_bodies", "settings", "store")

    settings: Settings
    parsed_bodies: ParsedBodies
    faults: FaultEngine
    store: FixtureStore
    explainer: Explainer
    journal: Journal  # the memory journal, or the shared one state/ put in its place at start-up
    metrics: Metrics

    async def take(self, app: web.Application) -> None:
        self.settings = app[SETTINGS]
        self.parsed_bodies = app[PARSED_BODIES]
        self.faults = app[FAULTS]
        self.store = app[STORE]
        self.explainer = app[EXPLAINER]
        self.journal = app[JOURNAL]
        self.metrics = app[METRICS]
