"""The container image (``Containerfile``), built from this tree on the local Debian base and run
with podman (tests/containers.py): it serves the contract, as a user other than root, from the
fixtures and the configuration it is given, is healthy by its own ``HEALTHCHECK``, and stops
cleanly on SIGTERM. docs/containers.md says the same to its readers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from content_provider import __version__
from content_provider.app import SHUTDOWN_TIMEOUT
from content_provider.fixtures.generate import card_jpeg

from .containers import ROOT, Container, get_content, podman, readable, run_container
from .helpers import DOC_CARD

TOKEN = "a-token-of-sixteen-characters-or-more"
HERMOD = ("hermod", "s3cret")  # basic auth, as Hermod sends it
START_BOUND = 30.0  # seconds from podman run to healthy: the HEALTHCHECK's start period


def admin(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(scope="module")
def demo(project_image: str) -> Iterator[Container]:
    """The image as built, run with no configuration at all: the demo set."""
    started = time.monotonic()
    with run_container(project_image, prefix="cp-image") as container:
        container.wait_ready(START_BOUND)
        assert time.monotonic() - started < START_BOUND
        yield container


def test_the_image_serves_the_demo_set(demo: Container) -> None:
    status, body, _ = get_content(demo.url, DOC_CARD)
    assert status == 200
    assert [element["key"] for element in body["data"]] == ["front", "back"]
    assert get_content(demo.url, "PROV:acme-42")[2]["X-Content-Provider-Resolved"].startswith("organisation acme")


def test_the_image_passes_the_conformance_check(demo: Container, tmp_path: Path) -> None:
    """``content-provider check``, run from the host as a provider's builder would, against the
    container, its back sides verified against the container's own JWKS."""
    jwks = tmp_path / "jwks.json"
    with urllib.request.urlopen(f"{demo.url}/.well-known/jwks.json", timeout=10) as answer:
        jwks.write_bytes(answer.read())
    command = ["check", demo.url, "--trust", str(jwks), "--content-id", DOC_CARD, "--format", "json"]
    checked = subprocess.run(
        [sys.executable, "-m", "content_provider", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] is True, checked.stdout
    assert report["failed_required"] == [], checked.stdout
    assert set(report["not_verified"]) == {"CP15"}, checked.stdout  # basic auth: none configured here


def test_the_image_runs_as_its_own_user_not_root(demo: Container) -> None:
    assert demo.exec("id", "-u").stdout.strip() == "10001"
    assert demo.exec("id", "-g").stdout.strip() == "10001"
    assert demo.inspect("{{.Config.User}}") == "10001:10001"
    # serve is the container's first process, so it is the one that gets SIGTERM
    assert demo.exec("cat", "/proc/1/cmdline").stdout.split("\0")[1:4] == [
        "/opt/content-provider/bin/content-provider",
        "serve",
        "--host",
    ]


def test_the_image_is_healthy_by_its_own_healthcheck(demo: Container, project_image: str) -> None:
    [image] = json.loads(podman("image", "inspect", project_image).stdout)
    assert "/healthz" in " ".join(image["Healthcheck"]["Test"])  # kept: built in the docker format
    ran = demo.healthcheck()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert demo.inspect("{{.State.Health.Status}}") == "healthy"


def test_the_image_is_labelled(project_image: str) -> None:
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", project_image).stdout)
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "content-provider"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert "org.opencontainers.image.source" in labels


def test_the_containerfile_version_is_the_package_version() -> None:
    """The label's default comes from the Containerfile (a label cannot be computed in a build):
    held equal to ``__version__`` here, in every run, with or without podman."""
    [default] = re.findall(r"^ARG VERSION=(\S+)$", (ROOT / "Containerfile").read_text(), flags=re.MULTILINE)
    assert default == __version__


@pytest.fixture(scope="module")
def configured(project_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """A fixture folder of one user's card mounted at /fixtures (read-only), a config.yaml at
    /config/config.yaml with a fault rule, and settings in the environment."""
    fixtures = tmp_path_factory.mktemp("fixtures")
    (fixtures / "users" / "alice").mkdir(parents=True)
    (fixtures / "users" / "alice" / "front.jpg").write_bytes(card_jpeg("alice"))
    config = tmp_path_factory.mktemp("config")
    (config / "config.yaml").write_text(
        'faults:\n  rules:\n    - {name: down, match: {id: "PROV:carol"}, outcome: 503}\n', encoding="utf-8"
    )
    env = {
        "CONTENT_PROVIDER_ADMIN_TOKEN": TOKEN,
        "CONTENT_PROVIDER_USERNAME": HERMOD[0],
        "CONTENT_PROVIDER_PASSWORD": HERMOD[1],
    }
    volumes = [f"{readable(fixtures)}:/fixtures:ro", f"{readable(config)}:/config:ro"]
    with run_container(project_image, env=env, volumes=volumes, prefix="cp-image-configured") as container:
        container.wait_ready(START_BOUND)
        yield container


def test_a_mounted_fixture_folder_is_served_instead_of_the_demo_set(configured: Container) -> None:
    status, body, headers = get_content(configured.url, "PROV:alice", auth=HERMOD)
    assert status == 200
    assert headers["X-Content-Provider-Resolved"].startswith("user alice")
    assert [element["key"] for element in body["data"]] == ["front"]
    assert get_content(configured.url, DOC_CARD, auth=HERMOD)[0] == 404  # the demo set is not there


def test_the_config_file_and_the_environment_take_effect(configured: Container) -> None:
    assert get_content(configured.url, "PROV:carol", auth=HERMOD)[0] == 503  # config.yaml's rule
    assert get_content(configured.url, "PROV:alice")[0] == 401  # CONTENT_PROVIDER_USERNAME and _PASSWORD
    # CONTENT_PROVIDER_ADMIN_TOKEN: from the host the admin API is not loopback, so the token is needed
    assert admin(configured.url, "GET", "/__admin/rules")[0] == 401
    status, rules = admin(configured.url, "GET", "/__admin/rules", token=TOKEN)
    assert status == 200
    assert [rule["name"] for rule in rules["rules"]] == ["down"]


def test_sigterm_stops_it_cleanly_within_the_documented_time(project_image: str, tmp_path: Path) -> None:
    """``podman stop`` (SIGTERM): a short delay in flight gets its answer, a 60 s one is ended,
    and the container is gone well within the 10 s promise, exit status 0, the log saying so."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.yaml").write_text(
        "faults:\n  rules:\n"
        '    - {name: short, match: {id: "PROV:bob"}, delay: 2s}\n'
        '    - {name: long, match: {id: "PROV:acme-42"}, delay: 60s}\n',
        encoding="utf-8",
    )
    answers: dict[str, object] = {}

    def ask(content_id: str) -> None:
        try:
            answers[content_id] = get_content(container.url, content_id, timeout=90)[0]
        except OSError as exc:  # the connection closed: what a wait cut short at shutdown gets
            answers[content_id] = type(exc).__name__

    with run_container(project_image, volumes=[f"{readable(config)}:/config:ro"], prefix="cp-image-stop") as container:
        container.wait_ready(START_BOUND)
        askers = [threading.Thread(target=ask, args=(content_id,)) for content_id in ("PROV:bob", "PROV:acme-42")]
        for asker in askers:
            asker.start()
        time.sleep(1.0)  # both requests are in their delays
        started = time.monotonic()
        container.stop(int(SHUTDOWN_TIMEOUT) + 20)  # more than the promise: podman must not need its SIGKILL
        took = time.monotonic() - started
        for asker in askers:
            asker.join(30)
        assert container.inspect("{{.State.ExitCode}}") == "0"
        log = container.logs()
    assert took < SHUTDOWN_TIMEOUT, took
    assert answers["PROV:bob"] == 200, answers  # its 2 s delay ended within the shutdown
    assert answers["PROV:acme-42"] != 200, answers
    assert "ended 1 injected wait(s) that would outlast the shutdown" in log, log
    assert log.rstrip().endswith("stopped"), log[-2000:]
