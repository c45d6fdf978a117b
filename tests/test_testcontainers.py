"""content_provider.testing: the Testcontainers module, against podman's Docker API.

A session fixture starts ``podman system service`` on a socket of its own (stopped at the end);
each test points Testcontainers at it the way a user would (``DOCKER_HOST``, no Ryuk, the Docker
host's address), through monkeypatch, and runs this tree's image. What is checked is what a test
of another project sees: the container is ready when ``start`` returns, its URL answers, the client
it gives changes what the mock answers, and a container that cannot start says why and is gone.
"""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from testcontainers.core.config import ConnectionMode, testcontainers_config

from content_provider.client import AdminClient, AdminError
from content_provider.fixtures.generate import card_jpeg
from content_provider.testing import ContainerNotReady, ContentProviderContainer

from .containers import get_content, podman, podman_environ, readable, removed, unique_name
from .docs import Block, python_examples

DEMO_CARD = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"
LOOPBACK = "127.0.0.1"


def answers_ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            client.sendall(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
            return client.recv(100).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


@pytest.fixture(scope="session")
def docker_api(podman_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``podman system service`` on a socket of its own: a Docker API for Testcontainers."""
    folder = tmp_path_factory.mktemp("podman-api")
    path, log = folder / "podman.sock", folder / "service.log"
    with log.open("w") as output:
        service = subprocess.Popen(
            [podman_ready, "system", "service", "--time=0", f"unix://{path}"],
            env=podman_environ(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (path.exists() and answers_ping(path)):
            if service.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"podman system service did not answer on {path}:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield f"unix://{path}"
    finally:
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(30)


@pytest.fixture
def testcontainers_env(docker_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Testcontainers pointed at podman's API as docs/containers.md tells a user to. Some of these
    variables testcontainers reads once, when imported (by this module, before the service ran), so
    its configuration is set to what they say as well."""
    environment = {
        "DOCKER_HOST": docker_api,
        "TESTCONTAINERS_RYUK_DISABLED": "true",  # Ryuk's image cannot be pulled here; each test removes its own
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
        "TESTCONTAINERS_HOST_OVERRIDE": LOOPBACK,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(testcontainers_config, "_ryuk_disabled", True)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.docker_host)
    monkeypatch.setattr(testcontainers_config, "tc_host_override", LOOPBACK)


def container_exists(name: str) -> bool:
    return podman("container", "exists", name, check=False).returncode == 0


def test_importing_it_without_testcontainers_names_the_extra() -> None:
    script = "import sys; sys.modules['testcontainers'] = None; import content_provider.testing"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: content_provider.testing needs testcontainers: "), last
    assert "pip install 'content-provider[testcontainers]'" in last


@pytest.mark.usefixtures("testcontainers_env")
def test_it_is_ready_when_started_and_its_client_has_the_token(project_image: str) -> None:
    name = unique_name("cp-tc")
    began = time.monotonic()
    with ContentProviderContainer(project_image, bind_address=LOOPBACK, name=name) as provider:
        ready = time.monotonic() - began
        assert provider.url.startswith(f"http://{LOOPBACK}:")
        status, body, _ = get_content(provider.url, DEMO_CARD)  # ready: no waiting of the test's own
        assert status == 200, body
        assert [element["key"] for element in body["data"]] == ["front", "back"]
        assert len(provider.admin_token) >= 16
        admin = provider.client()
        admin.add_rule(name="down", match={"id": "PROV:bob"}, outcome=503)
        assert get_content(provider.url, "PROV:bob")[0] == 503
        assert admin.request_count(content_id="PROV:bob") == 1
        with pytest.raises(AdminError) as refused:
            AdminClient(provider.url).rules()  # through the published port: not loopback, the token is needed
        assert refused.value.status == 401
        assert container_exists(name)
    assert not container_exists(name)
    print(f"ContentProviderContainer: start to ready {ready:.1f} s")  # shown with -s; docs/containers.md


@pytest.mark.usefixtures("testcontainers_env")
def test_it_serves_a_mounted_folder_with_a_config_file_and_settings(project_image: str, tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    (folder / "users" / "kate").mkdir(parents=True)
    front = card_jpeg("kate", "front")
    (folder / "users" / "kate" / "front.jpg").write_bytes(front)
    config = tmp_path / "config.yaml"
    config.write_text("faults:\n  rules:\n    - {name: slow-down, match: {id: 'PROV:ann'}, outcome: 502}\n")
    provider = (
        ContentProviderContainer(project_image, bind_address=LOOPBACK)
        .with_fixtures(readable(folder))
        .with_config(readable(tmp_path) / "config.yaml")
        .with_env("CONTENT_PROVIDER_USERNAME", "hermod")
        .with_env("CONTENT_PROVIDER_PASSWORD", "s3cret")
    )
    with provider:
        assert get_content(provider.url, "PROV:kate")[0] == 401  # the settings: basic authentication
        status, body, _ = get_content(provider.url, "PROV:kate", auth=("hermod", "s3cret"))
        assert status == 200, body
        assert base64.b64decode(body["data"][0]["data"]) == front  # the mounted folder, not the demo set
        assert get_content(provider.url, "PROV:ann", auth=("hermod", "s3cret"))[0] == 502  # the config file
        with pytest.raises(AdminError) as read_only:
            provider.client().put_image("front", user="kate")
        assert read_only.value.status == 409  # mounted read-only: the folder on disk is never changed
    assert (folder / "users" / "kate" / "front.jpg").read_bytes() == front


@pytest.mark.usefixtures("testcontainers_env")
def test_it_builds_the_image_from_a_folder(project_image: str, tmp_path: Path) -> None:
    """Through the Docker API's build: a Containerfile that bakes a fixture folder into the image."""
    (tmp_path / "cards" / "default").mkdir(parents=True)
    front = card_jpeg("baked", "front")
    (tmp_path / "cards" / "default" / "front.jpg").write_bytes(front)
    lines = [f"FROM {project_image}", "USER 0", "RUN rm -rf /fixtures/*", "COPY --chown=10001:10001 cards/ /fixtures/"]
    (tmp_path / "Containerfile").write_text("\n".join([*lines, "USER 10001", ""]))
    tag = f"localhost/content-provider-tc:{unique_name('build')}"
    with removed("image", tag):
        with ContentProviderContainer(tag, build_context=readable(tmp_path), bind_address=LOOPBACK) as provider:
            status, body, _ = get_content(provider.url, "PROV:anyone")
            assert status == 200, body
            assert base64.b64decode(body["data"][0]["data"]) == front
        assert podman("image", "exists", tag, check=False).returncode == 0  # kept: a second build is quick


@pytest.mark.usefixtures("testcontainers_env")
def test_a_missing_image_says_how_to_make_it() -> None:
    provider = ContentProviderContainer(f"localhost/content-provider-missing:{unique_name('none')}")
    with pytest.raises(
        ContainerNotReady, match=r"there is no image .* build it first \(docker build -t content-provider \."
    ):
        provider.start()


@pytest.mark.usefixtures("testcontainers_env")
def test_a_container_that_exits_says_why_and_is_removed(project_image: str) -> None:
    name = unique_name("cp-tc")
    began = time.monotonic()
    with (
        pytest.raises(ContainerNotReady) as failed,
        ContentProviderContainer(project_image, admin_token="too-short", name=name, startup_timeout=60),
    ):
        pass
    assert time.monotonic() - began < 30  # told at once, not at the end of the 60 s
    message = str(failed.value)
    assert "exited (status 2)" in message
    assert "admin.token: use at least 16 characters" in message  # the mock's own words, from its log
    assert not container_exists(name)


@pytest.mark.usefixtures("testcontainers_env")
def test_a_container_not_ready_in_time_says_so_with_its_log(project_image: str) -> None:
    name = unique_name("cp-tc")
    provider = ContentProviderContainer(project_image, name=name, startup_timeout=3).with_command("--port 9999")
    with pytest.raises(ContainerNotReady) as failed:
        provider.start()  # without ``with``: removed all the same
    message = str(failed.value)
    assert "did not answer 200 within 3 s" in message
    assert "http://0.0.0.0:9999/getcontent" in message  # its log says where it listens instead
    assert not container_exists(name)
    provider.stop()  # and stopping again does nothing


@pytest.mark.usefixtures("testcontainers_env")
@pytest.mark.parametrize("example", python_examples("testcontainers"), ids=str)
def test_doc_example_passes_as_a_consumer_runs_it(
    pytester: pytest.Pytester, example: Block, project_image: str
) -> None:
    """The docs' pytest example, as another project runs it; only the image's name is this tree's."""
    assert '"content-provider:latest"' in example.text
    source = example.text.replace('"content-provider:latest"', repr(project_image))
    pytester.makepyfile(test_with_the_image=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=source.count("\ndef test_"))
