"""pytest plugin: a ``content_provider`` fixture for any project that installs this package.

Registered through the ``pytest11`` entry point. A session fixture starts the mock once,
in-process on a background thread and a free loopback port, over a temporary copy of
the demo fixtures; the function fixture resets it before each test and removes the
images the test added afterwards::

    def test_hermod_retries(content_provider):
        content_provider.add_rule(match={"id": "PROV:bob"}, sequence=[503, 503, "ok"])
        ...  # point Hermod (or your client) at content_provider.url
        content_provider.assert_request_count(3, content_id="PROV:bob")

Override the ``content_provider_settings`` fixture (a dict of :class:`Settings` fields)
to change how the server is configured.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from content_provider.app import create_app
from content_provider.client import AdminClient, AdminError
from content_provider.config.settings import DEMO_FIXTURES, Settings
from content_provider.core.fsutil import atomic_write, copy_tree
from content_provider.core.layout import DEFAULT_DIR, ORGS_DIR, USERS_DIR, extensions_for
from content_provider.fixtures.generate import write_demo

START_TIMEOUT = 30.0


class ContentProviderServer:
    """The mock on its own event loop in a daemon thread, for tests that are not async."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="content-provider", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.settings.base_path}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"content-provider did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            raise RuntimeError(f"content-provider did not start: {self._error}") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(create_app(self.settings, {}), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", self.settings.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()


class ContentProvider(AdminClient):
    """What a test gets: the URL to hand to Hermod, and verbs to arrange and inspect the mock."""

    def __init__(self, server: ContentProviderServer) -> None:
        super().__init__(server.url, server.settings.admin_token)
        self.server = server
        self.url = server.url
        self.fixture_root = server.settings.fixture_root
        # each image slot a test changed, with the files that were there before (restored after)
        self._replaced: dict[tuple[str, str | None, str | None], list[_SavedFile]] = {}

    def add_image(
        self,
        side: str = "front",
        data: bytes | None = None,
        *,
        user: str | None = None,
        org: str | None = None,
    ) -> dict[str, Any]:
        """Add (or replace) an image; given as bytes or generated. After the test the slot is as it was:
        an added image is removed, a replaced one (a demo image, say) comes back byte for byte."""
        slot = (side, user, org)
        if slot not in self._replaced:
            self._replaced[slot] = _saved_files(self._folder(user, org), side)
        return self.put_image(side, data, user=user, org=org)

    def _folder(self, user: str | None, org: str | None) -> Path:
        if user is not None:
            return self.fixture_root / USERS_DIR / user
        if org is not None:
            return self.fixture_root / ORGS_DIR / org
        return self.fixture_root / DEFAULT_DIR

    def assert_request_count(self, expected: int, content_id: str | None = None) -> None:
        """Fail with the journal in the message when the count is not ``expected``."""
        seen = self.requests(content_id)
        if len(seen) != expected:
            what = f"for {content_id!r}" if content_id else "in all"
            lines = "\n".join(f"  {e['time']} {e['contentId']!r} -> {e['status']}" for e in seen)
            raise AssertionError(f"expected {expected} request(s) {what}, got {len(seen)}:\n{lines}")

    def cleanup(self) -> None:
        """Put every image slot the test changed back as it was, then reset the mock."""
        for (side, user, org), saved in reversed(self._replaced.items()):
            try:
                self.delete_image(side, user=user, org=org)
            except AdminError as exc:
                if exc.status != 404:  # the test deleted it itself: nothing to remove
                    raise
            for original in saved:
                original.restore()
        self._replaced.clear()
        self.reset()  # also makes the server look at the disk again


@dataclass(frozen=True)
class _SavedFile:
    """A fixture file as it was before a test replaced it."""

    path: Path
    data: bytes
    mode: int
    times_ns: tuple[int, int]

    def restore(self) -> None:
        atomic_write(self.path, self.data, self.mode)
        os.utime(self.path, ns=self.times_ns)


def _saved_files(folder: Path, side: str) -> list[_SavedFile]:
    """The files an upload to ``side`` in ``folder`` replaces (it writes .jpg and removes a .jpeg twin)."""
    saved = []
    for extension in extensions_for(side):
        path = folder / f"{side}{extension}"
        try:
            stat = path.stat()
            saved.append(
                _SavedFile(path, path.read_bytes(), stat.st_mode & 0o7777, (stat.st_atime_ns, stat.st_mtime_ns))
            )
        except FileNotFoundError:
            continue
    return saved


def prepare_fixture_folder(folder: Path) -> Path:
    """A private, writable copy of the demo fixtures (made with Pillow when the bundled ones are absent)."""
    images = folder / "images"
    if DEMO_FIXTURES.is_dir():
        copy_tree(DEMO_FIXTURES, images)
    else:
        write_demo(images)
    return images


@pytest.fixture(scope="session")
def content_provider_settings() -> dict[str, Any]:
    """Override in a conftest.py to configure the mock: keyword arguments of ``Settings``."""
    return {}


@pytest.fixture(scope="session")
def content_provider_server(
    tmp_path_factory: pytest.TempPathFactory, content_provider_settings: dict[str, Any]
) -> Iterator[ContentProviderServer]:
    """The mock, started once per test session."""
    folder = tmp_path_factory.mktemp("content-provider")
    defaults: dict[str, Any] = {
        "port": 0,
        "fixture_root": prepare_fixture_folder(folder),
        "key_file": folder / "signing" / "rsa-key.pem",
        "cert_file": folder / "signing" / "rsa-cert.pem",
        "revalidate_seconds": 0.0,
        "access_log": False,
    }
    server = ContentProviderServer(Settings(**{**defaults, **content_provider_settings}))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def content_provider(content_provider_server: ContentProviderServer) -> Iterator[ContentProvider]:
    """The mock, reset to its configured state for this test."""
    provider = ContentProvider(content_provider_server)
    provider.reset()
    yield provider
    provider.cleanup()
