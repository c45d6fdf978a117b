"""Schemathesis hooks for the property-based run of the whole API (schemathesis.toml names this file).

What the OpenAPI document cannot say, and a tester must know to send valid requests:

- an upload is a real JPEG, and a card side is 1200:757: a JSON Schema can only say "a non-empty
  binary", so the document says it in words and this strategy makes such JPEGs;
- a query member whose value is an empty list or null is not sent at all, so Schemathesis
  (4.32) would judge a request by a member the server never saw (GET /__admin/preview's
  ``target`` is an object spread over the query: ``{"contentId": "K", "x": []}`` goes out as
  ``?contentId=K``, a valid request, yet counts as one that should have been refused): such
  cases are left out;
- ``POST /getcontent`` answers as the contract says only while no fault rule is in force: the
  run also adds rules (that is what the admin API is for), and a rule's answer is broken on
  purpose (``hang``, ``reset``, a 418, a truncated JPEG...). So before each ``/getcontent`` call
  the rules are removed, through the admin API itself.
"""

from __future__ import annotations

import io
import urllib.request
from typing import Any

import schemathesis
from hypothesis import strategies as st
from PIL import Image

# card shapes within the 1 % tolerance of 1200:757 (an authentication image may have any shape);
# mostly small, as encoding and decoding a full-size card each time is most of an upload's cost
SIZES = [(120, 76), (240, 151), (1200, 757)]


@st.composite
def jpegs(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from(SIZES))
    colour = draw(st.tuples(*[st.integers(0, 255)] * 3))
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=draw(st.integers(20, 95)))
    return out.getvalue()


schemathesis.openapi.media_type("image/jpeg", jpegs(), aliases=["application/octet-stream"])

CONTENT_OPERATION = "/getcontent"


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: dict[str, Any]) -> None:
    if case.operation.path != CONTENT_OPERATION:
        return
    base = case.operation.schema.get_base_url().rstrip("/")
    request = urllib.request.Request(f"{base}/__admin/rules", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


@schemathesis.hook
def filter_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> bool:
    return not query or all(value is not None and value != [] for value in query.values())
