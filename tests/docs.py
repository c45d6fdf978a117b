"""Reading the project's documentation (README.md and docs/*.md) for the tests that keep it honest.

The examples, tables and links of every page are found here, so a test can run or check
each of them wherever it lives; see docs/development.md, "The documentation is tested".
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# Every fenced block names one of these; all but ``text`` (output, listings) are tested.
LANGUAGES = ("python", "yaml", "sh", "json", "text")

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", flags=re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int
    language: str
    text: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def read(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def blocks(language: str | None = None, files: tuple[Path, ...] = DOC_FILES) -> list[Block]:
    """The fenced blocks of ``files`` (every page by default), of one language or all."""
    found = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            block = Block(path, text.count("\n", 0, match.start()) + 1, match.group(1).strip(), match.group(2))
            if language is None or block.language == language:
                found.append(block)
    return found


def without_code(text: str) -> str:
    """The page without fenced blocks and inline code, line numbers kept: what is left is prose."""
    text = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return re.sub(r"`[^`\n]*`", "", text)


def table(text: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    assert len(starts) == 1, f"expected one table headed {header!r}, found {len(starts)}"
    rows = []
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return rows


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# How each kind of ``python`` example is run, and by which test:
PYTHON_KINDS: dict[str, Callable[[str], bool]] = {
    # tests/test_readme.py runs it against a live mock
    "verify_back": lambda text: "verify_back(" in text,
    "conformance": lambda text: "from content_provider.conformance import check" in text,
    # tests/test_plugin.py runs it with pytester, as a consuming project would
    "plugin test": lambda text: re.search(r"^def test_\w+\([^)]*\bcontent_provider\b", text, re.MULTILINE) is not None,
    "plugin conftest": lambda text: "def content_provider_settings(" in text,
    # tests/test_testcontainers.py runs it with pytester against the image, through podman's Docker API
    "testcontainers": lambda text: "from content_provider.testing import ContentProviderContainer" in text,
    # tests/test_public_api.py runs it
    "public api": lambda text: "from content_provider import " in text and "create_app(" in text,
}


def python_examples(kind: str) -> list[Block]:
    examples = [block for block in blocks("python") if PYTHON_KINDS[kind](block.text)]
    assert examples, f"no python example of the kind {kind!r} in the docs"
    return examples


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub makes for the headings of a page (``#`` headings outside code)."""
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    prose = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for heading in re.findall(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", prose, flags=re.MULTILINE):
        heading = re.sub(r"`([^`]*)`", r"\1", heading)
        heading = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        seen = counts.get(slug, 0)
        counts[slug] = seen + 1
        anchors.add(slug if seen == 0 else f"{slug}-{seen}")
    return anchors


def project_files() -> list[Path]:
    """The project's files: tracked ones and new ones git does not ignore (else every file but caches)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return sorted({ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()})
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
        return sorted(
            path
            for path in ROOT.rglob("*")
            if path.is_file() and not skip & set(path.relative_to(ROOT).parts) and ".egg-info" not in str(path)
        )
