"""Issue #30 in a real browser: a page on another site cannot change the mock, nor read it
by DNS rebinding, and the mock's own page still works (headless Chromium, see browser.py).

The mock runs as the default ``serve`` does: no admin token, loopback only. The other site
is a tiny server on another loopback port; ``evil.example`` is made to resolve to 127.0.0.1
by Chromium's resolver rules, which is what DNS rebinding achieves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from content_provider.client import AdminClient
from content_provider.config.settings import Settings
from content_provider.pytest_plugin import ContentProviderServer, prepare_fixture_folder

from .browser import launch

TIMEOUT_MS = 15_000
EVIL_PAGE = b"<!doctype html><title>another site</title><p>nothing to see"


class _OtherSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(EVIL_PAGE)))
        self.end_headers()
        self.wfile.write(EVIL_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, signing_dir: Path) -> Iterator[ContentProviderServer]:
    settings = Settings(
        port=0,
        fixture_root=prepare_fixture_folder(tmp_path_factory.mktemp("cross-site")),
        key_file=signing_dir / "rsa-key.pem",
        cert_file=signing_dir / "rsa-cert.pem",
        revalidate_seconds=0.0,
        access_log=False,
    )
    server = ContentProviderServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_site() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _OtherSite)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch(["--host-resolver-rules=MAP evil.example 127.0.0.1"])


@pytest.fixture
def admin(server: ContentProviderServer) -> AdminClient:
    client = AdminClient(server.url)
    client.reset()
    return client


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def rule_names(admin: AdminClient) -> list[str]:
    return [rule["name"] for rule in admin.rules()]


def test_a_no_cors_post_from_another_site_adds_no_rule(
    page: Any, server: ContentProviderServer, other_site: str, admin: AdminClient
) -> None:
    page.goto(other_site + "/")
    sent = page.evaluate(
        """async url => {
            const response = await fetch(url + "/__admin/rules", {
                method: "POST", mode: "no-cors",
                headers: {"Content-Type": "text/plain"},
                body: JSON.stringify({name: "csrf", outcome: 503}),
            });
            return response.type;
        }""",
        server.url,
    )
    assert sent == "opaque"  # the request went out; the browser shows the page nothing of the answer
    assert rule_names(admin) == []


def test_a_form_from_another_site_does_not_reset(
    page: Any, server: ContentProviderServer, other_site: str, admin: AdminClient
) -> None:
    admin.add_rule({"name": "kept", "outcome": 503})
    page.goto(other_site + "/")
    with page.expect_navigation():
        page.evaluate(
            """url => {
                const form = document.createElement("form");
                form.method = "POST";
                form.action = url + "/__admin/reset";
                document.body.append(form);
                form.submit();
            }""",
            server.url,
        )
    assert "origin_not_allowed" in page.content()
    assert rule_names(admin) == ["kept"]


def test_the_same_mock_by_another_name_is_another_site(
    page: Any, server: ContentProviderServer, admin: AdminClient
) -> None:
    """http://localhost:PORT and http://127.0.0.1:PORT are two origins to the browser."""
    port = server.url.rsplit(":", 1)[1]
    page.goto(f"http://localhost:{port}/healthz")
    page.evaluate(
        """url => fetch(url + "/__admin/rules", {method: "POST", mode: "no-cors",
            headers: {"Content-Type": "text/plain"}, body: '{"name": "csrf", "outcome": 503}'})""",
        server.url,
    )
    assert rule_names(admin) == []


def test_dns_rebinding_reads_and_writes_nothing(page: Any, server: ContentProviderServer, admin: AdminClient) -> None:
    admin.add_rule({"name": "secret", "outcome": 503})
    port = server.url.rsplit(":", 1)[1]
    page.goto(f"http://evil.example:{port}/healthz")  # the contract paths answer any name
    seen = page.evaluate(
        """async () => {
            const read = await fetch("/__admin/rules");
            const write = await fetch("/__admin/rules", {method: "DELETE"});
            return [read.status, (await read.json()).error, write.status];
        }"""
    )
    assert seen == [403, "host_not_allowed", 403]
    assert rule_names(admin) == ["secret"]


def test_the_mocks_own_page_still_adds_a_rule(page: Any, server: ContentProviderServer, admin: AdminClient) -> None:
    page.goto(server.url + "/ui/")
    page.select_option("#rule-effect", "status")
    page.fill("#rule-status", "503")
    page.fill("#rule-id", "PROV:bob")
    page.fill("#rule-name", "from-the-page")
    page.click("#rule-form button[type=submit]")
    page.locator('#rules tr[data-rule="from-the-page"]').wait_for()
    assert rule_names(admin) == ["from-the-page"]
    page.locator('#rules tr[data-rule="from-the-page"] button').click()
    page.locator('#rules tr[data-rule="from-the-page"]').wait_for(state="detached")
    assert rule_names(admin) == []
