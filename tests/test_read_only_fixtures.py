"""A fixture folder the process may not write (a read-only mount, another user's files): said at
start-up and on /healthz, and an upload or delete is a clear 409, never a 500 (#28 item 9)."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from content_provider.fixtures.generate import card_jpeg

from .helpers import MakeClient


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made unwritable for this process: immutable for root (whom modes do not stop),
    mode 0555 for anyone else."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
        try:
            yield
        finally:
            folder.chmod(mode)


async def test_an_upload_into_a_read_only_folder_is_a_409(make_client: MakeClient, fixture_root: Path) -> None:
    client = await make_client()
    with read_only(fixture_root / "users"):
        response = await client.put("/__admin/fixtures/users/zoe/front", data=card_jpeg("zoe"))
        assert response.status == 409, await response.text()
        body = await response.json()
        assert body["error"] == "fixtures_read_only"
        assert "users/ in the fixture folder" in body["message"]
        assert "--fixtures DIR" in body["message"]
    with read_only(fixture_root / "users" / "alice"):
        deleted = await client.delete("/__admin/fixtures/users/alice/front")
        assert deleted.status == 409
        assert (await deleted.json())["error"] == "fixtures_read_only"
    assert not (fixture_root / "users" / "zoe").exists()
    assert (fixture_root / "users" / "alice" / "front.jpg").exists()
    # the default folder was writable all along
    assert (await client.put("/__admin/fixtures/default/front", data=card_jpeg("d"))).status == 200


async def test_a_read_only_fixture_folder_is_said_at_start_and_on_healthz(
    make_client: MakeClient, fixture_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with read_only(fixture_root), caplog.at_level(logging.WARNING, logger="content_provider"):
        client = await make_client()
        assert "is not writable by this process" in caplog.text
        health = await (await client.get("/healthz")).json()
        assert health["fixtures_writable"] is False
        assert (await (await client.get("/__admin/fixtures")).json())["writable"] is False
        served = await client.post("/getcontent", json={"contentId": "PROV:alice"})
        assert served.status == 200  # served as it is
    assert (await (await client.get("/healthz")).json())["fixtures_writable"] is True
