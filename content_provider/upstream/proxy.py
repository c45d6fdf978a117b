"""The path of a ``POST /getcontent`` that goes to the upstream, in every mode, and the app's set-up for it.

:func:`goes_upstream` decides (``proxy`` and ``record``: always; ``spy``: unless our fixtures
answer at user or organisation level), :func:`answer_from_upstream` sends the request body on
and returns the upstream's answer, checked (and recorded), as an
:class:`~content_provider.store.UpstreamAnswer`; the handler then sends it as it is, or lets
:func:`~content_provider.delivery.deliver` shape it like any fixture answer when a fault rule
matches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from content_provider.config.settings import SETTINGS
from content_provider.conformance.rules import Options
from content_provider.conformance.trust import load_trust
from content_provider.core.contract import ContentId
from content_provider.core.errors import ApiError
from content_provider.core.reader import ConfigError
from content_provider.core.records import Entry, UpstreamNote
from content_provider.fixtures.answers import FixtureError, Resolution, UpstreamAnswer
from content_provider.fixtures.store import STORE
from content_provider.upstream.client import Fetched, UpstreamClient, session_ctx
from content_provider.upstream.record import Recorder
from content_provider.upstream.validate import Validator

log = logging.getLogger("content_provider.upstream")

CONFORMANCE_HEADER = "X-Content-Provider-Conformance"
RESOLVED_HEADER = "X-Content-Provider-Resolved"


@dataclass
class Upstream:
    """Everything the upstream modes need, made once by :func:`upstream_ctx`."""

    client: UpstreamClient
    validator: Validator | None
    recorder: Recorder | None
    resolution: Resolution  # "upstream host:port", shared by every upstream answer

    @property
    def mode(self) -> str:
        return self.client.settings.mode


UPSTREAM: web.AppKey[Upstream] = web.AppKey("upstream")  # only with upstream.url


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """The upstream's session, trust anchors, validator and recorder; nothing without ``upstream.url``."""
    settings = app[SETTINGS]
    upstream = settings.upstream
    if upstream is None:
        yield
        return
    trust = None
    if upstream.trust is not None:
        try:
            trust = await asyncio.to_thread(load_trust, upstream.trust)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"upstream.trust: cannot load {upstream.trust}: {exc}") from None
    validator = None
    if upstream.validate:
        validator = Validator(
            Options(trust=trust, timeout=upstream.timeout, aspect_tolerance=settings.aspect_tolerance)
        )
    recorder = None
    if upstream.mode == "record":
        recorder = await asyncio.to_thread(Recorder, settings.fixture_root, upstream.url, upstream.keep_earlier)
    try:
        async for session in session_ctx(upstream):
            resolution = Resolution("upstream", upstream.address, ())
            app[UPSTREAM] = Upstream(UpstreamClient(upstream, session), validator, recorder, resolution)
            checked = "not checked (upstream.validate: false)"
            if validator is not None:
                checked = f"checked live, backs verified against {upstream.trust}" if trust else "checked live"
                checked += "" if trust else " (no upstream.trust: CP13 unverified)"
            where = f", recorded into {settings.fixture_root}" if recorder is not None else ""
            log.info("upstream: %s mode, POST %s/getcontent; answers %s%s", upstream.mode, upstream.url, checked, where)
            yield
    finally:
        if recorder is not None:
            await recorder.close()  # the writes under way finish first


async def goes_upstream(app: web.Application, content_id: ContentId) -> bool:
    """Whether this id is answered by the upstream: always, but in ``spy`` mode for an id our
    fixtures answer at user or organisation level (the default level is not used)."""
    if app[UPSTREAM].mode != "spy":
        return True
    try:
        answer = await app[STORE].answer(content_id)
    except FixtureError:
        return False  # the fixture path reports it
    return answer is None or answer.resolution.level == "default"


async def answer_from_upstream(
    app: web.Application, entry: Entry, content_id: ContentId, body: bytes
) -> UpstreamAnswer:
    """The upstream's answer to ``body``, checked, recorded in ``record`` mode; never changed."""
    upstream = app[UPSTREAM]
    note = UpstreamNote()
    entry.upstream = note
    entry.resolved = upstream.resolution.label
    try:
        fetched: Fetched = await upstream.client.post(body)
    except ApiError as exc:
        note.error = exc.code
        raise
    note.status, note.seconds = fetched.status, fetched.seconds
    headers = fetched.passed_headers()
    headers[RESOLVED_HEADER] = upstream.resolution.label
    verdict = None
    if upstream.validator is not None:
        verdict = await upstream.validator.verdict(content_id.raw, fetched.status, fetched.headers, fetched.body)
        note.verdict = verdict
        headers[CONFORMANCE_HEADER] = verdict.header
    if upstream.recorder is not None:
        await upstream.recorder.record(content_id, fetched, verdict)
    return UpstreamAnswer(
        fetched.body,
        upstream.resolution,
        (),
        fetched.status,
        fetched.content_type,
        headers,
    )
