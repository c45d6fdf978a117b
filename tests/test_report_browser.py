"""The HTML conformance report in headless Chromium, as the people it is for open it: a file from a CI
run, or the page the mock's web page links to.

Every image really decodes, each failing rule's mark is visible on its card, markup from a provider
runs nothing (with the page's Content-Security-Policy and without it), the page does not break at
360 px and prints. ``--report-screenshots DIR`` saves the passing and the failing sample's pictures
for docs/conformance.md. Skipped, saying what is missing, where no Chromium can be had (browser.py).
"""

from __future__ import annotations

import io
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from content_provider.cli import main
from content_provider.conformance.html import CSP
from content_provider.pytest_plugin import ContentProviderServer

from .browser import launch
from .report_samples import (
    EVERY_FAULT,
    FAILING,
    FAILING_ANSWERS,
    PASSING_IDS,
    SCRIPT,
    check_args,
    hostile_report,
    sample_settings,
)

TIMEOUT_MS = 15_000
TOKEN = "report-browser-admin-token"
SCREENSHOT_WIDTH = 1040
SCREENSHOT_BYTES = 400_000  # each picture in docs/ at most


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, signing_dir: Path) -> Iterator[ContentProviderServer]:
    settings = sample_settings(tmp_path_factory.mktemp("report-browser"), signing_dir).replace(admin_token=TOKEN)
    server = ContentProviderServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reports(server: ContentProviderServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample reports, made by the command line as a CI job would: passing, failing, every fault, hostile."""
    folder = tmp_path_factory.mktemp("reports")
    jwks_file = folder / "jwks.json"
    with urllib.request.urlopen(server.url + "/.well-known/jwks.json", timeout=10) as answer:
        jwks = json.load(answer)
    jwks_file.write_text(json.dumps(jwks))
    made = {}
    for name, ids, status in (
        ("pass", PASSING_IDS, 0),
        ("fail", tuple(FAILING), 1),
        ("fail-answers", tuple(FAILING_ANSWERS), 1),
        ("faults", tuple(EVERY_FAULT), 1),
    ):
        made[name] = folder / f"{name}.html"
        assert main(check_args(server.url, jwks_file, ids, made[name]), {}) == status, name
    made["hostile"] = folder / "hostile.html"
    made["hostile"].write_text(hostile_report(jwks), encoding="utf-8")
    return made


@pytest.fixture(scope="module")
def browser(reports: dict[str, Path]) -> Iterator[Any]:
    """Started after the reports are made: Playwright's sync API runs an event loop in this thread."""
    yield from launch()


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:
    """Open a report file; afterwards, no script error, no dialog and no policy violation happened."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    pages: list[Any] = []
    trouble: list[str] = []

    def open_report(path: Path, width: int = 1100) -> Any:
        page = context.new_page()
        page.set_viewport_size({"width": width, "height": 900})
        page.on("pageerror", lambda error: trouble.append(f"script error: {error}"))

        def dialog(opened: Any) -> None:
            trouble.append(f"dialog: {opened.message}")
            opened.dismiss()

        page.on("dialog", dialog)
        page.on("console", lambda message: trouble.append(f"console: {message.text}"))
        page.goto(path.as_uri())
        pages.append(page)
        return page

    yield open_report
    context.close()
    assert trouble == [], trouble


def decoded(page: Any) -> list[list[Any]]:
    page.wait_for_function("[...document.images].every(i => i.complete)")
    sizes: list[list[Any]] = page.eval_on_selector_all(
        "img", "images => images.map(i => [i.alt, i.naturalWidth, i.naturalHeight])"
    )
    return sizes


def card(page: Any, content_id: str) -> Any:
    return page.locator(f'article[data-content-id="{content_id}"]')


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["width"] > 0
        and inner["height"] > 0
        and outer["x"] - 1 <= inner["x"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1
        and outer["y"] - 1 <= inner["y"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def test_the_passing_report_draws_every_card_in_its_outline(opened: Any, reports: dict[str, Path]) -> None:
    page = opened(reports["pass"])
    assert page.locator("#verdict").inner_text().startswith("PASS: OK: 0 required rule(s) failed")
    sizes = decoded(page)
    assert len(sizes) == 3
    assert all(width > 0 and height > 0 for _, width, height in sizes), sizes
    front = card(page, PASSING_IDS[0]).locator('figure[data-key="front"] .card-frame')
    box = front.bounding_box()
    assert abs(box["width"] / box["height"] - 1200 / 757) < 0.01  # the card's shape, as the phone draws it
    assert 330 <= box["width"] <= 350
    radius = front.evaluate("f => getComputedStyle(f).borderTopLeftRadius")
    assert radius != "0px"  # the style sheet applied: its hash is the one the policy allows
    assert page.locator(".mark").count() == 0
    signature = card(page, PASSING_IDS[0]).locator(".sig").inner_text()
    assert signature.startswith("Signature: verified — verified: RS256 with key")
    assert page.locator("table.matrix").inner_text().count("✗") == 0


def marked(page: Any, failing: dict[str, str]) -> None:
    """Each id's rule is marked on its card, and failed in the matrix, linked to its result."""
    for content_id, rule in failing.items():
        article = card(page, content_id)
        mark = article.locator(f'.mark[data-rule="{rule}"]').first
        assert mark.is_visible(), (content_id, rule)
        assert mark.inner_text().startswith(f"{rule} FAIL"), (content_id, rule)
        frame = mark.locator("xpath=ancestor::div[contains(@class, 'frame')]")
        if frame.count():  # on the image it is about, or where the card would be
            assert inside(mark.bounding_box(), frame.bounding_box()), (content_id, rule)
        else:  # about the answer as a whole (its Content-Type, its elements): above its cards
            assert rule in ("CP03", "CP04"), (content_id, rule)
            assert mark.locator("xpath=ancestor::ul[@class='answer-marks']").count() == 1
        cell = page.locator(f'table.matrix a[href="#{article.get_attribute("id")}-{rule}"]')
        assert cell.inner_text() == "✗ FAIL"  # and in the summary, linked to the rule's row


def test_the_failing_samples_show_every_rule_of_an_answer_failing(opened: Any, reports: dict[str, Path]) -> None:
    assert {*FAILING.values(), *FAILING_ANSWERS.values(), "CP06"} == {f"CP{n:02}" for n in range(1, 15)}
    page = opened(reports["fail-answers"])
    assert page.locator("#verdict").inner_text().startswith("FAIL: NOT CONFORMANT")
    assert all(width > 0 for _, width, _ in decoded(page))
    marked(page, FAILING_ANSWERS)
    extra = card(page, "AUTH:alice;fault=extra_elements")
    assert extra.locator('.answer-marks .mark[data-rule="CP06"]').is_visible()
    assert extra.locator("figure").count() == 2  # the unexpected element drawn too


def test_each_failing_rule_is_marked_on_its_image(opened: Any, reports: dict[str, Path]) -> None:
    page = opened(reports["fail"])
    assert page.locator("#verdict").inner_text().startswith("FAIL: NOT CONFORMANT")
    sizes = decoded(page)
    assert all(width > 0 and height > 0 for _, width, height in sizes), sizes
    marked(page, FAILING)
    # The wrong-aspect image: 900x900, fitted whole (bands either side) with the 1200:757 frame over it.
    aspect = card(page, "PROV:acme-wrong_aspect;fault=wrong_aspect").locator('figure[data-key="front"]')
    assert aspect.locator("img").evaluate("i => [i.naturalWidth, i.naturalHeight]") == [900, 900]
    outline = aspect.locator(".mark-frame").bounding_box()
    assert abs(outline["width"] / outline["height"] - 1200 / 757) < 0.02
    # The rotated one: drawn as stored (757x1200, EXIF not applied), so the bands either side show, with
    # the arrow to where EXIF says its top is.
    rotated = card(page, "PROV:acme-exif_rotated;fault=exif_rotated").locator('figure[data-key="front"]')
    assert rotated.locator("img").evaluate("i => getComputedStyle(i).imageOrientation") == "none"
    with Image.open(io.BytesIO(rotated.locator(".card-frame").screenshot())) as shot:
        drawn = shot.convert("RGB")
    for x in (0.06, 0.94):  # the hatched band, where an upright 1200x757 card would be
        pixel = drawn.getpixel((int(drawn.width * x), int(drawn.height * 0.85)))
        assert isinstance(pixel, tuple)
        assert min(pixel) > 200, (x, pixel)
    assert "757x1200 JPEG" in rotated.locator("figcaption").inner_text()
    arrow = rotated.locator(".mark-arrow").bounding_box()
    image = rotated.locator(".card-frame").bounding_box()
    assert arrow["x"] + arrow["width"] < image["x"] + image["width"] / 2  # EXIF 6: the top is stored at the left
    # The signature that does not verify says so beside the back; the undecodable image is not drawn.
    signed = card(page, "PROV:acme-jws_bad_signature;fault=jws_bad_signature").locator(".sig")
    assert signed.inner_text().startswith("Signature: NOT verified — does not verify against --trust")
    broken = card(page, "AUTH:alice;fault=damaged_jpeg")
    assert broken.locator("img").count() == 0
    assert broken.locator(".no-image").inner_text() == "no image the phone could show"


def test_every_broken_payload_of_the_mock_is_marked_and_every_image_decodes(
    opened: Any, reports: dict[str, Path]
) -> None:
    page = opened(reports["faults"])
    sizes = decoded(page)
    assert len(sizes) > len(EVERY_FAULT)
    assert all(width > 0 and height > 0 for _, width, height in sizes), [s for s in sizes if not s[1]]
    for content_id, rule in EVERY_FAULT.items():
        mark = card(page, content_id).locator(f'.mark[data-rule="{rule}"]').first
        assert mark.is_visible(), (content_id, rule)


@pytest.mark.parametrize("policy", ["with its policy", "without its policy"])
def test_markup_from_the_provider_runs_nothing(
    opened: Any, reports: dict[str, Path], tmp_path: Path, policy: str
) -> None:
    """``<script>`` and an ``onerror`` in every string the provider sent: shown as text, never run, even
    with the Content-Security-Policy taken out (the escaping alone holds)."""
    path = reports["hostile"]
    if policy == "without its policy":
        text = path.read_text(encoding="utf-8")
        stripped = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
        assert stripped != text
        path = tmp_path / "hostile-no-policy.html"
        path.write_text(stripped, encoding="utf-8")
    page = opened(path)
    decoded(page)
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.scripts.length") == 0
    assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
    text = page.locator("body").inner_text()
    assert SCRIPT in text  # the provider's strings, there to read
    meta = page.locator('meta[http-equiv="Content-Security-Policy"]')
    assert meta.count() == (1 if policy == "with its policy" else 0)
    if meta.count():
        assert meta.get_attribute("content") == CSP


@pytest.mark.parametrize("name", ["pass", "fail"])
def test_at_360_px_nothing_leaves_the_screen(opened: Any, reports: dict[str, Path], name: str) -> None:
    page = opened(reports[name], width=360)
    decoded(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    frame = page.locator(".card-frame").first.bounding_box()
    assert frame["x"] >= 0
    assert frame["x"] + frame["width"] <= 360


def test_it_prints(opened: Any, reports: dict[str, Path]) -> None:
    page = opened(reports["fail"])
    decoded(page)
    page.emulate_media(media="print")
    assert page.locator(".scroll").first.evaluate("s => getComputedStyle(s).overflowX") == "visible"
    assert page.locator("article.answer").first.evaluate("a => getComputedStyle(a).breakInside") == "avoid-page"
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    assert len(pdf) > 50_000  # the images too


def test_the_web_page_opens_the_report_with_its_token(browser: Any, server: ContentProviderServer) -> None:
    """The link on /ui/: with admin.token set the page fetches the report with the token and opens it."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/ui/")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.wait_for_selector("article.owner img.preview-image")
    with context.expect_page() as opened:
        page.click("#report-link")
    report = opened.value
    report.on("console", lambda message: errors.append(f"report: {message.text}"))
    report.wait_for_selector("article.answer")
    assert report.url.startswith("blob:")
    assert report.locator("h1").inner_text() == "Conformance report"
    sizes = decoded(report)
    assert len(sizes) >= 8
    assert all(width > 0 for _, width, _ in sizes)
    radius = report.locator(".card-frame").first.evaluate("f => getComputedStyle(f).borderTopLeftRadius")
    assert radius != "0px"  # the page's policy lets the report's style sheet in
    assert "PROV:organisation acme" in report.locator("table.matrix").inner_text()
    context.close()
    assert errors == []


def small_png(shot: bytes) -> bytes:
    """A screenshot in 64 colours: a tenth of the size, still sharp for text and cards."""
    with Image.open(io.BytesIO(shot)) as image:
        fewer = image.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    fewer.save(out, "PNG", optimize=True)
    return out.getvalue()


@pytest.mark.parametrize("name", ["pass", "fail", "fail-answers"])
def test_screenshot(
    browser: Any, reports: dict[str, Path], request: pytest.FixtureRequest, tmp_path: Path, name: str
) -> None:
    """docs/conformance.md's pictures: ``./dev test tests/test_report_browser.py --report-screenshots docs``."""
    context = browser.new_context(viewport={"width": SCREENSHOT_WIDTH, "height": 900})
    page = context.new_page()
    page.goto(reports[name].as_uri())
    decoded(page)
    shot = small_png(page.screenshot(full_page=True))
    context.close()
    assert 30_000 < len(shot) < SCREENSHOT_BYTES, len(shot)
    (tmp_path / f"conformance-{name}.png").write_bytes(shot)
    wanted = request.config.getoption("--report-screenshots")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        (Path(wanted) / f"conformance-{name}.png").write_bytes(shot)
