"""Shared fixtures: a private copy of the bundled fixtures and a client over real HTTP."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from content_provider.app import create_app
from content_provider.config.settings import DEMO_FIXTURES, Settings
from content_provider.http.accesslog import AccessLogger

from .helpers import MakeClient

pytest_plugins = ["pytester", "tests.containers"]  # podman, the images and their fixtures


_STATE = tempfile.TemporaryDirectory(prefix="content-provider-test-state-")


def pytest_configure(config: pytest.Config) -> None:
    """What the mock keeps in the per-user state folder (the persistent cache, a key when no config
    names one) goes to a folder of the run's own, for every process a test starts, never the home folder."""
    os.environ.setdefault("CONTENT_PROVIDER_STATE_DIR", _STATE.name)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ui-screenshot",
        metavar="PATH",
        default=None,
        help="also save the web page's screenshot from the browser tests to PATH (the README's picture)",
    )
    parser.addoption(
        "--report-screenshots",
        metavar="DIR",
        default=None,
        help="also save the HTML conformance report's sample screenshots to DIR (docs/conformance.md's pictures)",
    )


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """``main()`` sets up logging on the stream pytest captures for that test; put the root
    logger back afterwards, or later log lines go to a closed stream ("Logging error")."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def signing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development key for the whole run: making RSA keys is slow."""
    return tmp_path_factory.mktemp("signing")


@pytest.fixture
def fixture_root(tmp_path: Path) -> Path:
    """A private copy of the bundled fixtures, so tests can edit it freely."""
    root = tmp_path / "images"
    shutil.copytree(DEMO_FIXTURES, root)
    return root


@pytest.fixture
def settings(fixture_root: Path, signing_dir: Path) -> Settings:
    return Settings(
        fixture_root=fixture_root,
        key_file=signing_dir / "rsa-key.pem",
        cert_file=signing_dir / "rsa-cert.pem",
        revalidate_seconds=0.0,
        access_log=False,
    )


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """Start the real app on a loopback socket; keyword arguments override settings."""

    async def make(**changes: Any) -> TestClient[Any, Any]:
        server = TestServer(create_app(settings.replace(**changes)))
        await server.start_server(access_log_class=AccessLogger)  # the server's own one-line log
        client: TestClient[Any, Any] = await aiohttp_client(server)
        return client

    return make
