"""The admin API against the mock as a separate process: the async client, and kill -9 mid-upload."""

from __future__ import annotations

import asyncio
import io
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from content_provider.client import AdminError, AsyncAdminClient
from content_provider.fixtures.generate import card_jpeg

from .helpers import DOC_CARD
from .test_cli import Server, serving, write_config


@pytest.fixture
async def server(tmp_path: Path, fixture_root: Path, signing_dir: Path) -> AsyncIterator[Server]:
    config = write_config(tmp_path, fixture_root, signing_dir, "logging:\n  access_log: false\n")
    async with serving(config, tmp_path) as running:
        yield running


async def test_async_client_arranges_and_inspects(server: Server) -> None:
    async with AsyncAdminClient(server.url) as admin, aiohttp.ClientSession() as session:
        await admin.add_rule(name="retry", match={"id": DOC_CARD}, sequence=[503, "ok"])
        assert [r["name"] for r in await admin.rules()] == ["retry"]
        codes = []
        for _ in range(2):
            async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response:
                codes.append(response.status)
        assert codes == [503, 200]
        assert await admin.request_count(DOC_CARD) == 2
        assert [e["status"] for e in await admin.requests(DOC_CARD)] == [200, 503]
        assert (await admin.rule("retry"))["sequence"] == [503, "ok"]
        with pytest.raises(AdminError) as missing:
            await admin.rule("no-such")
        assert (missing.value.status, missing.value.body["error"]) == (404, "no_such_rule")
        kim = card_jpeg("kim")
        assert (await admin.put_image("front", kim, user="kim"))["bytes"] == len(kim)
        assert await admin.image("front", user="kim") == kim
        assert (await admin.resolve("PROV:kim"))["level"] == "user"
        assert (await admin.delete_image("front", user="kim"))["deleted"] == "users/kim/front.jpg"
        with pytest.raises(AdminError) as gone:
            await admin.image("front", user="kim")
        assert gone.value.status == 404
        with pytest.raises(AdminError) as caught:
            await admin.add_rule(outcome="explode")
        assert caught.value.status == 400
        await admin.reset()
        assert await admin.rules() == []
        assert await admin.request_count() == 0


def big_card(seed: int) -> bytes:
    """A large card JPEG (noise does not compress), so an upload takes a while to write."""
    image = Image.effect_noise((1800, 1136), 60 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


async def test_kill_9_during_uploads_leaves_every_image_whole(server: Server, fixture_root: Path) -> None:
    images = [big_card(i) for i in range(4)] + [card_jpeg("small")]
    names = [f"victim-{i}" for i in range(6)]

    async def hammer(session: aiohttp.ClientSession, name: str) -> None:
        for round_ in range(1000):
            data = images[round_ % len(images)]
            url = f"{server.url}/__admin/fixtures/users/{name}/front"
            try:
                async with session.put(url, data=io.BytesIO(data)) as response:
                    await response.read()
            except (aiohttp.ClientError, ConnectionError):
                return  # the server is gone

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(hammer(session, name)) for name in names for _ in range(3)]
        # Wait until every target exists, then kill while uploads are still in flight.
        for _ in range(400):
            if all((fixture_root / "users" / n / "front.jpg").exists() for n in names):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        server.process.send_signal(signal.SIGKILL)
        await server.process.wait()
        await asyncio.gather(*tasks)

    for name in names:
        image = fixture_root / "users" / name / "front.jpg"
        assert image.read_bytes() in images, f"{image} is not one whole upload"
        with Image.open(image) as decoded:
            decoded.load()
        leftovers = [p.name for p in image.parent.iterdir() if p.name != "front.jpg"]
        assert all(p.startswith(".front.jpg.") and p.endswith(".tmp") for p in leftovers)
