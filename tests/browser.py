"""Finding and starting headless Chromium for the web page's end-to-end tests.

Debian's ``chromium`` is used (``./dev test`` installs it when it can); Playwright drives
it, pointed at the binary, so no browser is downloaded. Where none can be had the tests
are skipped with a message that says what to install.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from content_provider.config.settings import Settings
from content_provider.pytest_plugin import prepare_fixture_folder

# Chromium's own calls home are refused on closed networks, many at a time; keep it quiet.
FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def served_settings(folder: Path, signing_dir: Path, **changes: Any) -> Settings:
    """The mock the browser tests open: a private copy of the demo set in ``folder``, the session's key."""
    return Settings(
        port=0,
        fixture_root=prepare_fixture_folder(folder),
        key_file=signing_dir / "rsa-key.pem",
        cert_file=signing_dir / "rsa-cert.pem",
        revalidate_seconds=0.0,
        access_log=False,
    ).replace(**changes)


def chromium_path() -> str | None:
    for candidate in (
        os.environ.get("CONTENT_PROVIDER_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def launch(extra_flags: Sequence[str] = ()) -> Iterator[Any]:
    """A headless Chromium browser for the module, or a skip saying why there is none."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install -e '.[test]' (./dev test does it)")
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "browser tests need Chromium: apt-get install chromium (./dev test does it as root), "
            "or set CONTENT_PROVIDER_CHROMIUM=/path/to/chromium"
        )
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=[*FLAGS, *extra_flags])
        except Error as exc:
            pytest.skip(f"Chromium at {executable} did not start: {exc.message.splitlines()[0]}")
        yield browser
        browser.close()
