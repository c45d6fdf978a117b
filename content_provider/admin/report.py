"""``GET /__admin/report``: the HTML conformance report on the running mock's own fixtures.

The same page ``content-provider check --fixtures DIR --format html`` writes: every owner's
answer as ``POST /getcontent`` would send it (fault rules aside), checked with the conformance
rules, the cards drawn as the phone shows them (content_provider/fixtures/review.py,
content_provider/conformance/html.py). The web page links to it.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from content_provider.conformance.html import CSP_HEADER, Produced, format_html
from content_provider.core.errors import ApiError
from content_provider.fixtures.review import review
from content_provider.fixtures.store import STORE

HEADERS = {
    "Content-Security-Policy": CSP_HEADER,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Disposition": 'inline; filename="conformance-report.html"',  # the name it is saved under
}


async def report(request: web.Request) -> web.Response:
    started = time.monotonic()
    try:
        made = await review(request.app[STORE])
    except OSError as exc:  # the folder itself (an image that cannot be read is the report's to say)
        raise ApiError(500, "fixture_unreadable", f"cannot read the fixture folder: {exc.strerror}") from None
    produced = Produced(f"GET {request.path}", seconds=time.monotonic() - started)
    page = await asyncio.to_thread(format_html, made, produced)  # base64 of every image: off the event loop
    return web.Response(text=page, content_type="text/html", headers=HEADERS)
