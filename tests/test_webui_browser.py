"""The web page end to end in headless Chromium, against a real server with an admin token.

What a person at the page sees: the cards really render, the text colour switches, a
fault added from the page shapes the next ``POST /getcontent``, and the traffic table
shows it. Skipped, saying what is missing, where no Chromium can be had (see browser.py).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from content_provider.client import AdminClient
from content_provider.fixtures.generate import card_jpeg
from content_provider.pytest_plugin import ContentProviderServer

from .browser import launch, served_settings
from .helpers import DOC_CARD

TOKEN = "browser-test-admin-token"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, signing_dir: Path) -> Iterator[ContentProviderServer]:
    folder = tmp_path_factory.mktemp("webui")
    server = ContentProviderServer(served_settings(folder, signing_dir, admin_token=TOKEN))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch()


@pytest.fixture
def admin(server: ContentProviderServer) -> AdminClient:
    client = AdminClient(server.url, TOKEN)
    client.reset()
    return client


@pytest.fixture
def page(browser: Any, server: ContentProviderServer, admin: AdminClient) -> Iterator[Any]:
    """The page, opened at the server's root (a browser is sent on to /ui/) with the token entered."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    assert page.url == server.url + "/ui/"
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("article.owner img.preview-image")
    yield page
    context.close()
    assert errors == [], f"script errors on the page: {errors}"


def get_content(server: ContentProviderServer, content_id: str) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(
        server.url + "/getcontent",
        data=json.dumps({"contentId": content_id}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def owner(page: Any, level: str, name: str) -> Any:
    return page.locator(f'article.owner[data-level="{level}"][data-owner="{name}"]')


def test_every_owners_cards_render_with_the_back_verified(page: Any) -> None:
    headings = page.locator("article.owner h3").all_inner_texts()
    assert headings[:3] == ["Default", "Organisation acme", "Organisation globex"]
    assert "User alice" in headings
    doc_user = owner(page, "user", DOC_CARD.split(":", 1)[1])
    doc_user.locator('figure[data-key="back"] img').wait_for()
    # Every preview really decoded in the browser: natural size, not just an <img> element.
    sizes = page.eval_on_selector_all(
        "img.preview-image", "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
    )
    assert len(sizes) >= 8
    assert all(complete and width > 0 and height > 0 for complete, width, height in sizes), sizes
    front = doc_user.locator('figure[data-key="front"] img')
    assert front.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [1200, 757]
    frame = doc_user.locator('figure[data-key="front"] .card-frame').bounding_box()
    assert abs(frame["width"] / frame["height"] - 1200 / 757) < 0.02  # the card's real shape
    badge = doc_user.locator('figure[data-key="back"] .badge').inner_text()
    assert badge.startswith("signed RS256, verified against the JWKS")
    why = doc_user.locator(".why").first.inner_text()
    assert "PROV → user" in why


def test_the_text_colour_switches_per_side(page: Any) -> None:
    acme = owner(page, "organisation", "acme")
    acme.locator('figure[data-key="back"] .overlay').wait_for()

    def look(side: str) -> list[str]:
        overlay = acme.locator(f'figure[data-key="{side}"] .overlay .text-name')
        return list(overlay.evaluate("n => [getComputedStyle(n).color, getComputedStyle(n).visibility]"))

    assert look("front") == ["rgb(255, 255, 255)", "visible"]
    page.select_option("#colour-front", "BLACK")
    assert look("front") == ["rgb(0, 0, 0)", "visible"]
    assert look("back") == ["rgb(255, 255, 255)", "visible"]
    page.select_option("#colour-back", "CLEAR")
    assert look("back")[1] == "hidden"
    page.fill("#text-name", "Ada Lovelace")
    assert acme.locator('figure[data-key="front"] .text-name').inner_text() == "Ada Lovelace"


def test_a_fault_added_on_the_page_shapes_the_next_answer(page: Any, server: ContentProviderServer) -> None:
    assert get_content(server, DOC_CARD)[0] == 200
    page.select_option("#rule-effect", "status")
    page.fill("#rule-status", "503")
    page.fill("#rule-id", DOC_CARD)
    page.fill("#rule-name", "card-down")
    page.click("#rule-form button[type=submit]")
    page.locator('#rules tr[data-rule="card-down"]').wait_for()
    status, headers = get_content(server, DOC_CARD)
    assert status == 503
    assert "card-down" in headers["X-Content-Provider-Fault"]
    assert get_content(server, "PROV:alice")[0] == 200  # only the id the rule names
    # The traffic table shows the shaped answer and the rule that shaped it.
    row = page.locator("#journal tbody tr", has_text="card-down").first
    row.wait_for()
    assert row.locator(".status").inner_text() == "503"
    assert DOC_CARD in row.inner_text()
    page.locator('#rules tr[data-rule="card-down"] button').click()
    page.locator('#rules tr[data-rule="card-down"]').wait_for(state="detached")
    assert get_content(server, DOC_CARD)[0] == 200


def test_a_broken_payload_rule_from_the_page(page: Any, admin: AdminClient, server: ContentProviderServer) -> None:
    page.select_option("#rule-effect", "payload")
    page.select_option("#rule-payload", "jws_bad_signature")
    page.select_option("#rule-use-case", "PROV")
    page.click("#rule-form button[type=submit]")
    page.locator("#rules tbody tr", has_text="jws_bad_signature").wait_for()
    [rule] = admin.rules()
    assert rule["outcome"] == "jws_bad_signature"
    assert rule["match"] == {"use_case": "PROV"}
    assert get_content(server, DOC_CARD)[0] == 200  # a broken payload still answers 200


def test_a_rule_with_a_time_window_shows_when_it_is_in_force(page: Any, admin: AdminClient) -> None:
    admin.add_rule(name="later", outcome=503, after="1h")
    row = page.locator('#rules tr[data-rule="later"]')
    row.filter(has_text="not in force, starts in").wait_for()
    assert re.search(r"starts in 35[0-9]{2} s|starts in 3600 s", row.inner_text())


def test_a_refused_rule_says_why_on_the_page(page: Any, admin: AdminClient) -> None:
    admin.add_rule(name="taken", delay="1ms")
    page.fill("#rule-name", "taken")
    page.click("#rule-form button[type=submit]")
    error = page.locator("#rule-error")
    error.filter(has_text="Not added").wait_for()
    assert "taken" in error.inner_text()
    assert [rule["name"] for rule in admin.rules()] == ["taken"]
    # A value the form itself cannot send is held back by the browser, before any request.
    page.select_option("#rule-effect", "status")
    page.fill("#rule-status", "99")
    page.fill("#rule-name", "")
    page.click("#rule-form button[type=submit]")
    assert page.locator("#rule-status").evaluate("input => input.validity.rangeUnderflow") is True
    assert len(admin.rules()) == 1


def test_resolving_an_id_on_the_page_says_which_level_answers(page: Any) -> None:
    page.fill("#resolve-id", "PROV:bob")
    page.click("#resolve-form button")
    why = page.locator("#resolved .why")
    why.wait_for()
    assert why.inner_text().startswith("PROV → organisation acme")
    page.fill("#resolve-id", "PROV:nobody-at-all")
    page.click("#resolve-form button")
    page.locator("#resolved .why", has_text="default").wait_for()


def test_resolving_an_id_on_the_page_explains_it_with_near_misses(page: Any, server: ContentProviderServer) -> None:
    folder = server.settings.fixture_root / "users" / "jane_doe"
    folder.mkdir()
    (folder / "front.jpg").write_bytes((server.settings.fixture_root / "users" / "alice" / "front.jpg").read_bytes())
    try:
        page.fill("#resolve-id", "PROV:jane.doe")
        page.click("#resolve-form button")
        misses = page.locator("#explained .near-misses")
        misses.wait_for()
        assert misses.inner_text() == "users/jane_doe/ (differs only by . _ -)"
        assert page.locator("#explained li.answered").inner_text() == "default default/: has front"
    finally:
        (folder / "front.jpg").unlink()
        folder.rmdir()


def test_a_problem_is_shown_beside_the_card(page: Any, server: ContentProviderServer) -> None:
    front = server.settings.fixture_root / "users" / "alice" / "front.jpg"
    original = front.read_bytes()
    try:
        front.write_bytes(card_jpeg("square", size=(600, 600)))  # not 1200:757
        page.click("#reload-fixtures")
        alice = owner(page, "user", "alice")
        problem = alice.locator(".problems li", has_text="aspect ratio")
        problem.wait_for()
        assert problem.inner_text().startswith("users/alice/front.jpg: aspect ratio 600x600")
        image = alice.locator('figure[data-key="front"] img')
        image.wait_for()
        assert image.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [600, 600]  # shown as it is
    finally:
        front.write_bytes(original)


def test_content_ids_in_the_traffic_table_are_text_not_markup(page: Any, server: ContentProviderServer) -> None:
    hostile = "PROV:<img src=x onerror=\"document.body.dataset.pwned='yes'\">"
    get_content(server, hostile)
    cell = page.locator("#journal tbody td.mono", has_text="onerror").first
    cell.wait_for()
    assert cell.inner_text() == hostile
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator("#journal img").count() == 0


def test_without_the_token_the_page_says_it_is_needed(browser: Any, server: ContentProviderServer) -> None:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/ui/")
    banner = page.locator("#access")
    banner.filter(has_text="admin token").wait_for()
    assert page.locator("article.owner").count() == 0
    page.fill("#token", "not-the-token-at-all")
    page.click("#token-form button")
    banner.filter(has_text="refused").wait_for()
    context.close()


def test_screenshot(
    page: Any, server: ContentProviderServer, tmp_path: Path, request: pytest.FixtureRequest, admin: AdminClient
) -> None:
    """The README's picture: ``./dev test tests/test_webui_browser.py --ui-screenshot docs/web-page.png``."""
    admin.add_rule(name="slow-globex", match={"pattern": "PROV:globex-*"}, delay="300ms")
    admin.add_rule(name="card-down", match={"id": DOC_CARD}, first=1, outcome=503)
    for content_id in (DOC_CARD, DOC_CARD, "PROV:bob", "PROV:globex-7", "AUTH:alice"):
        get_content(server, content_id)
    page.locator("#journal tbody tr").nth(4).wait_for()
    page.locator("#rules tbody tr", has_text="slow-globex").wait_for()
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    target = tmp_path / "web-page.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 50_000
    wanted = request.config.getoption("--ui-screenshot")
    if wanted:
        Path(wanted).parent.mkdir(parents=True, exist_ok=True)
        Path(wanted).write_bytes(target.read_bytes())
