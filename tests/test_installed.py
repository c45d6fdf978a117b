"""The installed path, as a project that depends on content-provider meets it.

The wheel and the sdist are built with ``build`` (the wheel from the sdist, so the sdist
must hold everything a build needs), the wheel is installed into a fresh virtual
environment outside the clone, and its ``content-provider`` runs with no config file from
folders that have nothing to do with the repository. The installed package folder is made
read-only first; as root that does not stop a write, so every test also checks that no
file in it changed and none appeared.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from content_provider.conformance.jpeg import image_size
from content_provider.core.fsutil import copy_tree
from content_provider.core.version import __version__
from content_provider.fixtures.generate import card_jpeg
from content_provider.signing.jws import verify_back

from .helpers import DOC_AUTH, DOC_CARD
from .test_cli import SERVING, Server

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "images"
WEBUI = ("index.html", "app.js", "style.css")
STOP_TIMEOUT = 15.0


def run(
    args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; its output is in the failure message when it fails."""
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def demo_files() -> dict[str, bytes]:
    return {str(p.relative_to(DEMO)): p.read_bytes() for p in DEMO.rglob("*") if p.is_file()}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes and mode."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True)
class Built:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``python -m build``: the sdist from the clone, then the wheel from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT])
    [wheel] = out.glob("content_provider-*.whl")
    [sdist] = out.glob("content_provider-*.tar.gz")
    return Built(wheel, sdist)


@dataclass(frozen=True)
class Installed:
    venv: Path
    package: Path
    before: dict[str, str]
    scratch: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "content-provider"

    def folder(self, name: str) -> Path:
        """A new folder outside the clone, to run from or to use as a home."""
        path = self.scratch / name
        path.mkdir()
        return path

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """The environment of a user who installed the wheel: their own home, none of our settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONTENT_PROVIDER_", "XDG_", "PYTHON", "PYTEST_", "VIRTUAL_ENV"))
        }
        return {**env, "HOME": str(home), "PATH": f"{self.venv / 'bin'}:{env.get('PATH', '')}", **extra}

    def assert_untouched(self) -> None:
        assert snapshot(self.package) == self.before, "the installed package folder was written to"


@pytest.fixture(scope="module")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel in a fresh virtual environment outside the clone, its package folder read-only."""
    base = tmp_path_factory.mktemp("installed")
    assert not base.resolve().is_relative_to(ROOT)
    venv = base / "venv"
    run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", built.wheel, "pytest"])
    where = run([python, "-c", "import content_provider; print(content_provider.__file__)"], cwd=base)
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(venv / "lib"), package
    run(["chmod", "-R", "a-w", package])
    before = snapshot(package)
    (base / "scratch").mkdir()
    try:
        yield Installed(venv, package, before, base / "scratch")
    finally:
        run(["chmod", "-R", "u+w", package])  # so the temporary folder can be removed


# --------------------------------------------------------------------------- the artefacts


def test_sdist_holds_what_a_build_needs(built: Built) -> None:
    top = f"content_provider-{__version__}/"
    with tarfile.open(built.sdist) as sdist:
        names = {n.removeprefix(top) for n in sdist.getnames()}
        demo = {}
        for member in sdist.getmembers():
            handle = sdist.extractfile(member)
            if handle is not None and member.name.startswith(top + "fixtures/images/"):
                demo[member.name.removeprefix(top + "fixtures/images/")] = handle.read()
    assert {"pyproject.toml", "README.md", "PKG-INFO", "config.yaml"} <= names
    assert {"content_provider/openapi.json", *(f"content_provider/admin/webui/{f}" for f in WEBUI)} <= names
    assert {n for n in names if n.startswith("fixtures/")} == {f"fixtures/images/{n}" for n in demo_files()}
    assert demo == demo_files()
    assert not [n for n in names if "__pycache__" in n or n.startswith((".venv", "tests/", "bench/"))]


def test_wheel_carries_the_demo_set_and_package_data(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        bundled = {
            n.removeprefix("content_provider/demo_fixtures/"): wheel.read(n)
            for n in names
            if n.startswith("content_provider/demo_fixtures/")
        }
        metadata = wheel.read(f"content_provider-{__version__}.dist-info/METADATA").decode()
    assert bundled == demo_files()
    assert {"content_provider/openapi.json", *(f"content_provider/admin/webui/{f}" for f in WEBUI)} <= names
    assert {n.split("/")[0] for n in names} == {"content_provider", f"content_provider-{__version__}.dist-info"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert f"\nVersion: {__version__}\n" in metadata  # the one version, from content_provider/core/version.py


def test_metadata_renders(built: Built) -> None:
    result = run([sys.executable, "-m", "twine", "check", "--strict", built.wheel, built.sdist])
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_a_copy_of_a_read_only_demo_set_can_be_written(tmp_path: Path) -> None:
    """What serve and the pytest plugin do with the demo set inside an installed (read-only) package."""
    source = tmp_path / "installed"
    copy_tree(DEMO, source)
    for path in [*source.rglob("*"), source]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        copy = copy_tree(source, tmp_path / "copy")
    finally:
        for path in [source, *source.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()} == {
        p.relative_to(DEMO): p.read_bytes() for p in DEMO.rglob("*") if p.is_file()
    }
    assert all(p.stat().st_mode & 0o200 for p in [copy, *copy.rglob("*")])


# --------------------------------------------------------------------------- the installed command


@asynccontextmanager
async def serving(installed: Installed, cwd: Path, env: dict[str, str]) -> AsyncIterator[Server]:
    """``content-provider serve --port 0`` from the virtual environment; always stopped and waited for."""
    process = await asyncio.create_subprocess_exec(
        installed.command, "serve", "--port", "0", cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
            if not line:
                await process.wait()
                raise AssertionError("the server exited before serving:\n" + "".join(log))
            log.append(line)
            match = SERVING.search(line)
            if match:
                break
        server = Server(process, match.group(1), log)
        yield server
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()


async def use_the_demo(installed: Installed, cwd: Path, env: dict[str, str]) -> str:
    """Serve with no config, ask for the demo ids as Hermod would, change an image, stop; the log."""
    async with serving(installed, cwd, env) as server, aiohttp.ClientSession() as session:
        assert server.url.startswith("http://127.0.0.1:")
        async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response:
            assert response.status == 200
            assert response.headers["X-Content-Provider-Resolved"] == "user 67d21afb-e830-4fee-a691-00a997ffbe1a"
            data = (await response.json())["data"]
        assert [element["key"] for element in data] == ["front", "back"]
        front = base64.b64decode(data[0]["data"])
        assert image_size(front) == (1200, 757)
        async with session.get(f"{server.url}/.well-known/jwks.json") as response:
            jwks = await response.json()
        header, payload = verify_back(data[1]["data"], jwks)
        assert header["alg"] == "RS256"
        assert image_size(payload) == (1200, 757)

        async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_AUTH}) as response:
            assert [e["key"] for e in (await response.json())["data"]] == ["auth_image"]
        async with session.get(f"{server.url}/healthz") as response:
            assert await response.json() == {
                "status": "ok",
                "version": __version__,
                "fixture_problems": [],
                "fixtures_writable": True,  # the private copy, not the package
                "state": {"backend": "memory", "reachable": True, "journal_dropped": 0},
            }

        # The admin API changes a private copy of the demo set, never the package.
        upload = f"{server.url}/__admin/fixtures/users/zed/front"
        async with session.put(upload, data=card_jpeg("Zed")) as response:
            assert response.status == 201, await response.text()
        async with session.post(f"{server.url}/getcontent", json={"contentId": "PROV:zed"}) as response:
            assert response.headers["X-Content-Provider-Resolved"] == "user zed"
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), STOP_TIMEOUT) == 0
    return await server.full_log()


def test_installed_serve_answers_the_demo_ids_from_any_folder(installed: Installed) -> None:
    home, cwd = installed.folder("serve-home"), installed.folder("serve-cwd")
    env = installed.env(home)
    key_file = home / ".local" / "state" / "content-provider" / "signing" / "rsa-key.pem"
    log = asyncio.run(use_the_demo(installed, cwd, env))
    assert "Traceback" not in log
    assert f"made a new development signing key (RSA) at {key_file}" in log
    assert f"with the development key {key_file}" in log
    [copy] = re.findall(r"the demo set, copied to (\S+) for this run", log)
    assert not Path(copy).exists(), "the private copy outlived the server"
    assert list(cwd.iterdir()) == []  # nothing left in the working folder either
    installed.assert_untouched()

    # check-fixtures, from another folder: the bundled set is sound, and the same key is reused.
    checked = run([installed.command, "check-fixtures"], cwd=installed.folder("check-cwd"), env=env)
    bundled = installed.package / "demo_fixtures"
    assert checked.stdout.strip() == f"11 fixture image(s) checked in {bundled}, 0 problem(s)"
    assert "made a new development signing key" not in checked.stderr
    installed.assert_untouched()


def test_installed_generate_writes_only_where_told(installed: Installed) -> None:
    home, cwd = installed.folder("generate-home"), installed.folder("generate-cwd")
    env = installed.env(home)
    refused = subprocess.run(
        [installed.command, "generate", "demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith("content-provider: config error: generate: no fixture folder chosen")
    assert "say where to write with --fixtures DIR" in refused.stderr
    assert "Traceback" not in refused.stderr

    run([installed.command, "generate", "demo", "--fixtures", "mine"], cwd=cwd, env=env)
    made = {str(p.relative_to(cwd / "mine")): p.read_bytes() for p in (cwd / "mine").rglob("*") if p.is_file()}
    assert made.keys() == demo_files().keys()
    run([installed.command, "generate", "user", "zed", "--back", "--fixtures", "mine"], cwd=cwd, env=env)
    checked = run([installed.command, "check-fixtures", "--fixtures", "mine"], cwd=cwd, env=env)
    assert checked.stdout.strip().endswith("13 fixture image(s) checked in " + str(cwd / "mine") + ", 0 problem(s)")
    installed.assert_untouched()


def test_state_folder_that_cannot_be_made_is_a_config_error(installed: Installed) -> None:
    home = installed.folder("state-home")
    (home / "a-file").write_text("not a folder")
    state = home / "a-file" / "state"
    env = installed.env(home, CONTENT_PROVIDER_STATE_DIR=str(state))
    result = subprocess.run(
        [installed.command, "serve", "--port", "0"], cwd=home, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"content-provider: config error: cannot make the folder {state / 'signing'} for the development signing key "
        "(Not a directory); set CONTENT_PROVIDER_STATE_DIR to a folder you can write, or signing.directory in a "
        "config file"
    )
    assert "Traceback" not in result.stderr
    installed.assert_untouched()


CONSUMER_TEST = f'''
import json
import urllib.error
import urllib.request

import pytest

from content_provider.pytest_plugin import ContentProvider


def get_content(provider: ContentProvider, content_id: str) -> tuple[str, list[str]]:
    body = json.dumps({{"contentId": content_id}}).encode()
    request = urllib.request.Request(provider.url + "/getcontent", data=body)
    with urllib.request.urlopen(request, timeout=10) as response:
        keys = [element["key"] for element in json.load(response)["data"]]
        return response.headers["X-Content-Provider-Resolved"], keys


def test_demo_card(content_provider):
    assert get_content(content_provider, "{DOC_CARD}") == ("user {DOC_CARD.removeprefix("PROV:")}", ["front", "back"])
    content_provider.assert_request_count(1, content_id="{DOC_CARD}")


def test_added_image_then_retry(content_provider):
    content_provider.add_image("front", user="zed")
    content_provider.add_rule(match={{"id": "PROV:zed"}}, sequence=[503, "ok"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        get_content(content_provider, "PROV:zed")
    assert refused.value.code == 503
    refused.value.close()
    assert get_content(content_provider, "PROV:zed") == ("user zed", ["front"])
    assert "site-packages" not in str(content_provider.fixture_root)
'''


def test_consumer_project_uses_the_pytest_fixture(installed: Installed) -> None:
    project = installed.folder("consumer")
    (project / "test_hermod_like.py").write_text(CONSUMER_TEST, encoding="utf-8")
    # pytest caches the assertion-rewritten plugin module next to it, in the package's
    # __pycache__ (its own cache, skipped when it cannot write there); without bytecode
    # writing, what is left to see is what the plugin itself writes.
    env = installed.env(installed.folder("consumer-home"), PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [installed.venv / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "-W", "error", "-q"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^2 passed", result.stdout, flags=re.MULTILINE), result.stdout
    installed.assert_untouched()
