"""The stable API (docs/architecture.md): the facade's names, its types visible to users' mypy,
and the example that shows it."""

from __future__ import annotations

import runpy
import tempfile
from pathlib import Path

import content_provider

from .docs import python_examples

PACKAGE = Path(content_provider.__file__).parent


def test_the_facade_exports_what_the_docs_name() -> None:
    for name in content_provider.__all__:
        assert getattr(content_provider, name) is not None, name
    assert set(content_provider.__all__) >= {"create_app", "Settings", "AdminClient", "AsyncAdminClient"}


def test_the_package_ships_its_types() -> None:
    assert (PACKAGE / "py.typed").is_file()


def test_the_stable_api_example_runs() -> None:
    for block in python_examples("public api"):
        with tempfile.TemporaryDirectory() as folder:
            script = Path(folder) / "example.py"
            script.write_text(block.text, encoding="utf-8")
            runpy.run_path(str(script), run_name="__main__")
