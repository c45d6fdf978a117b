"""The HTML conformance report's samples, shared by its tests: a mock set up to pass every rule, ids
that make it fail one visible rule each (content id directives), every broken payload the mock has,
and a hostile provider that puts markup in every string it sends.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image

from content_provider.config.settings import Settings
from content_provider.conformance.checker import check
from content_provider.conformance.html import Produced, format_html
from content_provider.core.b64 import b64url_encode
from content_provider.faults.payloads import PAYLOAD_MODES
from content_provider.faults.rules import CONNECTION_MODES

from .browser import served_settings
from .helpers import DOC_AUTH, DOC_CARD, faults
from .test_conformance import BREAKS

USER, PASSWORD = "hermod", "s3cret-report"
PASSING_IDS = (DOC_CARD, DOC_AUTH)
# The failing samples, one card per fault, each the rule it breaks: CP08-CP14 on the images and the
# back (the ones a person judges by looking), CP01-CP07 on the answer itself. CP15-CP18 pass here.
IMAGE_FAULTS: dict[str, tuple[str, ...]] = {
    "PROV": ("wrong_aspect", "exif_rotated", "jws_bad_signature", "jws_alg_none", "jws_expired_cert"),
    "AUTH": ("damaged_jpeg", "oversized_image"),
}
ANSWER_FAULTS: dict[str, tuple[str, ...]] = {
    "PROV": ("503", "malformed_json", "misspelt_member"),
    "AUTH": ("wrong_content_type", "extra_elements", "base64url"),
}


def _ids(modes: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``PROV:acme-<mode>;fault=<mode>`` (acme's card) or ``AUTH:alice;fault=<mode>`` -> the rule it breaks."""
    return {
        f"{'PROV:acme-' + mode if use_case == 'PROV' else 'AUTH:alice'};fault={mode}": BREAKS[mode]
        for use_case, names in modes.items()
        for mode in names
    }


FAILING = _ids(IMAGE_FAULTS)
FAILING_ANSWERS = _ids(ANSWER_FAULTS)
# Every broken payload and connection the mock can send, each on its own id.
EVERY_FAULT = {f"PROV:acme-{mode};fault={mode}": BREAKS[mode] for mode in (*PAYLOAD_MODES, *CONNECTION_MODES, "503")}

# Markup in every string a provider sends: shown as text, it must never run.
SCRIPT = "<script>window.pwned = 'script'</script><img src=x onerror=\"window.pwned = 'img'\">"


def sample_settings(folder: Path, signing_dir: Path) -> Settings:
    """The mock as the samples check it: credentials (CP15), no default card (CP16), directives on."""
    return served_settings(
        folder,
        signing_dir,
        default_enabled=False,
        username=USER,
        password=PASSWORD,
        faults=faults(content_id_directives=True),
    )


def check_args(url: str, jwks: Path, content_ids: tuple[str, ...] | list[str], output: Path) -> list[str]:
    """The command line that makes a sample report (as docs/conformance.md shows it)."""
    ids = [arg for content_id in content_ids for arg in ("--content-id", content_id)]
    credentials = ["--user", USER, "--password", PASSWORD, "--trust", str(jwks)]
    return ["check", url, *credentials, *ids, "--format", "html", "--output", str(output)]


# --------------------------------------------------------------------------- a hostile provider


def _jpeg(size: tuple[int, int] = (1200, 757)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (40, 90, 160)).save(out, "JPEG")
    return out.getvalue()


def hostile_jws() -> str:
    """A back whose JWS header has markup in its values, its keys and its x5c; its payload a real JPEG."""
    header = {"alg": SCRIPT, "kid": SCRIPT, "x5c": [SCRIPT], "typ": SCRIPT, SCRIPT: SCRIPT}
    return f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(_jpeg())}.{b64url_encode(SCRIPT.encode())}"


def hostile_answer(labelled: bool = False) -> dict[str, Any]:
    """Markup in every member of every element and in the back's JWS; ``labelled``: the back's own
    labels right, so the checker goes on to verify the hostile header (CP13, CP14)."""
    front = base64.b64encode(_jpeg()).decode()
    back = {"key": "back", "content_type": SCRIPT, "content_encoding": SCRIPT, "data": hostile_jws()}
    if labelled:
        back.update(content_type="application/jose", content_encoding="text/plain")
    return {
        "data": [
            {"key": "front", "content_type": SCRIPT, "content_encoding": SCRIPT, "data": front},
            back,
            *(
                []
                if labelled
                else [{"key": SCRIPT, "content_type": SCRIPT, "content_encoding": SCRIPT, "data": SCRIPT}]
            ),
        ],
        SCRIPT: SCRIPT,
    }


def hostile_app() -> web.Application:
    """A provider that answers each id with a different hostile answer; markup wherever a string goes."""

    async def getcontent(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            content_id = str(json.loads(body)["contentId"])
        except (ValueError, KeyError, TypeError):
            return web.Response(status=200, text=SCRIPT, content_type="text/html")  # CP17's evidence
        headers = {"Content-Type": f"text/html; charset={SCRIPT}", "X-Hostile": SCRIPT}
        if content_id.endswith(";status"):
            return web.Response(status=500, text=SCRIPT, headers=headers)  # CP01's evidence
        if content_id.endswith(";body"):
            return web.Response(text=SCRIPT + '{"data": [', headers=headers)  # CP02's evidence
        if content_id.endswith(";members"):  # CP05's evidence: the member names
            return web.json_response({"data": [{SCRIPT: SCRIPT, "key": SCRIPT}]}, headers={"X-Hostile": SCRIPT})
        answer = hostile_answer(labelled=content_id.endswith(";jws"))
        return web.Response(body=json.dumps(answer).encode(), headers=headers)

    app = web.Application()
    app.router.add_post("/getcontent", getcontent)
    return app


SUFFIXES = ("", ";jws", ";status", ";body", ";members")
HOSTILE_IDS = (*(f"PROV:{SCRIPT}{suffix}" for suffix in SUFFIXES), f"AUTH:{SCRIPT}")


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` on a free loopback port; its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _hostile_report(trust: dict[str, Any]) -> str:
    async with serving(hostile_app()) as url:
        report = await check(url, HOSTILE_IDS, user=SCRIPT, password=SCRIPT, trust=trust, timeout=10)
    return format_html(report, Produced(f"content-provider check {SCRIPT}"))


def hostile_report(trust: dict[str, Any]) -> str:
    """The HTML report on the hostile provider (``trust``: any JWKS, so CP13 reads the hostile header)."""
    return asyncio.run(_hostile_report(trust))


# --------------------------------------------------------------------------- reading a report


class Tags(HTMLParser):
    """Every start tag of a page and its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def inert(page: str) -> Tags:
    """Fail unless ``page`` is one self-contained, script-free file; its tags."""
    tags = Tags()
    tags.feed(page)
    names = {tag for tag, _ in tags.tags}
    assert not names & {"script", "iframe", "object", "embed", "link", "form", "base", "frame"}, names
    for tag, attrs in tags.tags:
        assert not [name for name in attrs if name.lower().startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)  # the CSP allows the one style sheet only
        src = attrs.get("src")
        assert src is None or re.fullmatch(r"data:image/(jpeg|png|gif|webp);base64,[A-Za-z0-9+/=]+", src), src[:80]
        href = attrs.get("href")
        assert href is None or href.startswith("#"), href
    return tags
