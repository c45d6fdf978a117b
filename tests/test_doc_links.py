"""No dead relative link in the docs, and nothing in the project points outside the repository.

A relative link or image in README.md or docs/*.md must name a file (or folder) of the
repository, and a ``#anchor`` a heading of the page it names. Web addresses (http, https)
are not checked; a ``file:`` URL, an absolute path, or a relative path that climbs out of
the repository is a failure, and so is any file of the project that mentions the shared
folder outside it where the vendor's notes were kept.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .docs import DOC_FILES, ROOT, heading_anchors, project_files, without_code

# [text](target "title"), ![alt](target), [label]: target, <img src="..."> and <a href="...">
_INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", flags=re.MULTILINE)
_HTML = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", flags=re.IGNORECASE)
_WEB = re.compile(r"^(?:https?|mailto):", flags=re.IGNORECASE)
# Built from parts so that this file does not match itself.
_OUTSIDE = re.compile("|".join([r"\.\./" + "shared", "shared/" + "(?:CONTRACT|seeds)", "/wor" + "k/"]))


def links(text: str) -> list[tuple[int, str]]:
    """(line, target) of every link and image of a page's prose."""
    prose = without_code(text)
    found = []
    for pattern in (_INLINE, _REFERENCE, _HTML):
        for match in pattern.finditer(prose):
            found.append((prose.count("\n", 0, match.start()) + 1, match.group(1)))
    return sorted(found)


def problem(page: Path, target: str, files: set[Path]) -> str | None:
    """Why ``target``, linked from ``page``, does not resolve inside the repository; else None."""
    if _WEB.match(target):
        return None
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE) or target.startswith(("/", "\\")):
        return "points outside the repository (use a path relative to the page)"
    path_text, _, anchor = target.partition("#")
    resolved = (page.parent / path_text).resolve() if path_text else page
    if not resolved.is_relative_to(ROOT):
        return "points outside the repository"
    if resolved.is_dir():
        if not any(file.is_relative_to(resolved) for file in files):
            return "names a folder with no file of the project in it"
    elif resolved not in files:
        return "names no file of the repository"
    if anchor:
        if resolved.suffix != ".md":
            return f"has an anchor #{anchor} into a file that is not Markdown"
        if anchor not in heading_anchors(resolved.read_text(encoding="utf-8")):
            return f"#{anchor} is no heading of {resolved.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("page", DOC_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page: Path) -> None:
    files = set(project_files())
    broken = [
        f"{page.relative_to(ROOT)}:{line}: {target}: {why}"
        for line, target in links(page.read_text(encoding="utf-8"))
        if (why := problem(page, target, files)) is not None
    ]
    assert not broken, "\n".join(broken)


def test_the_link_check_finds_what_it_should() -> None:
    """The checker itself: each kind of bad link is caught, good ones pass."""
    page = ROOT / "docs" / "README.md"
    files = set(project_files())
    text = "\n".join(
        [
            "[ok](contract.md) [ok](contract.md#basic-authentication) ![ok](web-page.png) [ok](../config.yaml)",
            "[web](https://example.com/x) <http://127.0.0.1:8080/>",
            "[gone](nothing.md) [anchor](contract.md#no-such-heading) [out](../../x/CONTRACT.md)",
            "[abs](/etc/passwd) [file](file:///etc/passwd) [ignored](../.venv/bin/python)",
            "```text",
            "[in code](nowhere.md)",
            "```",
        ]
    )
    found = {target: problem(page, target, files) for _, target in links(text)}
    assert {target for target, why in found.items() if why is None} == {
        "contract.md",
        "contract.md#basic-authentication",
        "web-page.png",
        "../config.yaml",
        "https://example.com/x",
    }
    assert {target for target, why in found.items() if why is not None} == {
        "nothing.md",
        "contract.md#no-such-heading",
        "../../x/CONTRACT.md",
        "/etc/passwd",
        "file:///etc/passwd",
        "../.venv/bin/python",
    }


def test_no_file_of_the_project_points_outside_it() -> None:
    offenders = []
    for path in project_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images
        for number, line in enumerate(text.splitlines(), start=1):
            if _OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
