"""Containers for the tests: podman, the local base images, the project's image, and containers,
pods, networks and volumes that are always removed. Not a test file; a pytest plugin that
tests/conftest.py loads, so its fixtures are there for every test module.

Nothing is pulled from a registry (there may be none): the base ``localhost/debian-python:bookworm``
is made once with debootstrap from the Debian mirror apt already uses, and everything else is built
on it. Every podman call made here runs with this module's ``containers.conf`` (runc, and ulimits
the default of which these machines refuse), found by ``CONTAINERS_CONF``.

What it offers (names kept stable; the Kubernetes and Testcontainers tests build on them):

Fixtures, session scope. A test that takes one is a *container test* (below):

- ``podman_ready`` -> ``str``: the podman binary, working, run as root. Found on ``PATH``, or
  installed with ``apt-get install podman runc debootstrap`` when missing. When podman cannot be
  had or cannot run (or this is not root), every container test FAILS with one message saying
  what to install or do.
- ``project_image`` -> ``str``: the image built from this tree's ``Containerfile`` on the local
  base, tagged ``localhost/content-provider:test-<digest of the build context>``; built once per
  session, and not again while the tree is unchanged (the tag names the tree, so two clones or
  worktrees on one machine never test each other's image).
- ``redis_image`` -> ``str``: ``localhost/content-provider-redis:bookworm``, Debian's
  redis-server on the local base (``CMD`` is ``redis-server`` listening on every address, no
  persistence).

The marker ``containers``: given to every test that takes one of the fixtures above (or is marked
with it), together with a timeout of ``CONTAINER_TEST_TIMEOUT`` seconds, since the first such test
of a fresh machine builds the base image. ``CONTENT_PROVIDER_NO_CONTAINERS=1`` deselects them all,
and the run's summary says so.

Functions and constants:

- ``podman(*args, check=True, timeout=..., input=None)`` -> ``CompletedProcess[str]``: one podman
  call (text output captured); a failure with ``check`` raises ``AssertionError`` naming the
  command, its status and its output.
- ``podman_environ()`` -> ``dict[str, str]``: ``os.environ`` plus ``CONTAINERS_CONF``, for any
  other program that drives podman (podman-compose, ``podman system service``).
- ``ensure_base_image()``, ``ensure_redis_image()``, ``ensure_project_image()`` -> the image's
  name: what the fixtures call (each builds under a machine-wide lock, ``build_lock()``).
- ``build_image(tag, containerfile, context, build_args)``: a ``podman build --format docker``
  (``HEALTHCHECK`` kept) with the host's CA bundle mounted for the build's pip and apt.
- ``unique_name(prefix)`` -> ``str``: ``prefix-<random>``, for every container, pod, network,
  volume or compose project a test makes.
- ``removed(kind, name)``: a context manager that removes the ``kind`` (``container``, ``pod``,
  ``network``, ``volume``, ``secret``) named ``name`` at its end, whatever happened.
- ``run_container(image, *, env=None, volumes=(), args=(), options=(), prefix="cp-test", port=8080)``:
  a context manager: ``podman run -d`` with a unique name, ``port`` published on a free port of
  127.0.0.1; yields a ``Container``, removed (with its anonymous volumes) at the end.
- ``Container``: ``name``, ``port`` (on 127.0.0.1), ``url``; ``logs()``, ``inspect(template)``,
  ``exec(*command)``, ``stop(seconds)``, ``healthcheck()``, ``wait_ready(timeout)``.
- ``wait_http(url, timeout)``: poll ``GET url`` until it answers 200 (``AssertionError`` otherwise).
- ``get_content(url, content_id, auth=None, timeout=10)`` -> ``(status, JSON body, headers)``:
  ``POST /getcontent`` as Hermod sends it, an error status too.
- ``readable(folder)`` -> the folder, made readable by the image's user (pytest makes its
  folders 0700), for mounting into a container.
- ``compose_project(file, environ, prefix="cp-compose")``: a context manager: ``podman-compose
  up -d`` of ``file`` as a project of a unique name, ``environ`` added to the environment of
  every podman-compose call (the file's ``${...}``); yields a ``ComposeProject``
  (``name``, ``compose(*args)``, ``containers(service)`` -> ``list[Container]`` by replica
  number). At the end every container (with its anonymous volumes), pod, network and volume of
  the project is removed.
- ``free_port()``: a free port on 127.0.0.1.
- ``CA_BUNDLE``, ``BASE_IMAGE``, ``REDIS_IMAGE``, ``PROJECT_REPOSITORY``, ``CACHE``, ``ROOT``.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from content_provider.serving.workers import free_port as free_port_on

ROOT = Path(__file__).resolve().parent.parent
OPT_OUT = "CONTENT_PROVIDER_NO_CONTAINERS"
MARKER = "containers"
FIXTURES = ("podman_ready", "project_image", "redis_image")
_DESELECTED = pytest.StashKey[int]()  # how many container tests the opt-out left out
CONTAINER_TEST_TIMEOUT = 900  # seconds; the first container test of a fresh machine builds the base
PACKAGES = ("podman", "runc", "debootstrap")
INSTALL_HINT = (
    f"apt-get install {' '.join(PACKAGES)} (./dev test does it when run as root), "
    f"or set {OPT_OUT}=1 to leave the container tests out"
)

BASE_IMAGE = "localhost/debian-python:bookworm"
REDIS_IMAGE = "localhost/content-provider-redis:bookworm"
PROJECT_REPOSITORY = "localhost/content-provider"
PRUNE_AFTER = "24h"  # this tree's image is rebuilt at every change: older ones are removed after this
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Machine-wide, not per clone: the images live in podman's one store, shared by every clone.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "content-provider-tests" / "containers"

CONTAINERS_CONF = """\
# Written by tests/containers.py for every podman call the tests make (CONTAINERS_CONF).
[containers]
# the default limits are refused on these machines
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]

[engine]
# crun fails on these machines' cgroups
runtime = "runc"
"""

REDIS_CONTAINERFILE = f"""\
FROM {BASE_IMAGE}
RUN apt-get update \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \\
    && rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
"""


# --------------------------------------------------------------------------- podman itself


def containers_conf() -> Path:
    path = CACHE / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".containers.conf.{os.getpid()}")
        partial.write_text(CONTAINERS_CONF)
        partial.replace(path)
    return path


def podman_environ() -> dict[str, str]:
    """The environment for podman, and for programs that run it (podman-compose, a podman service)."""
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf())}


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Held while installing or building a shared image, by every pytest process on this machine."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _install() -> str | None:
    """apt-get install podman and what it needs here; ``None`` when this cannot be done."""
    if shutil.which("apt-get") is None:
        return None
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", *PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=900, check=False)
        if done.returncode != 0:
            return None
    return shutil.which("podman")


@functools.cache
def _find_podman() -> tuple[str | None, str]:
    """The working podman binary, or ``None`` and why not."""
    if os.geteuid() != 0:
        return None, (
            "the container tests run podman as root (debootstrap makes their base image; bridge networks): "
            f"run them as root, or set {OPT_OUT}=1 to leave them out"
        )
    binary = shutil.which("podman")
    if binary is None or any(shutil.which(tool) is None for tool in PACKAGES[1:]):
        with build_lock():
            binary = shutil.which("podman")
            if binary is None or any(shutil.which(tool) is None for tool in PACKAGES[1:]):
                binary = _install()
    if binary is None:
        return None, f"the container tests need podman, runc and debootstrap, and they are not here: {INSTALL_HINT}"
    try:
        info = subprocess.run(
            [binary, "info", "--format", "{{.Host.OCIRuntime.Name}}"],
            capture_output=True,
            text=True,
            env=podman_environ(),
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"podman info did not answer within 120 s: podman cannot run here ({INSTALL_HINT})"
    if info.returncode != 0:
        return None, f"podman cannot run here (podman info: {info.stderr.strip()[-500:]}); {INSTALL_HINT}"
    return binary, ""


def require_podman() -> str:
    """The podman binary; fails the calling test, with what to install, when there is none that runs."""
    binary, problem = _find_podman()
    if binary is None:
        pytest.fail(problem, pytrace=False)
    return binary


def podman(
    *args: str, check: bool = True, timeout: float = 300, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [require_podman(), *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=podman_environ(), timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"podman {' '.join(args)}: no answer within {timeout:g} s") from exc
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)}: exit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


# --------------------------------------------------------------------------- images


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 sources first, then sources.list), else Debian's own."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for stanza in sources.read_text().split("\n\n"):
            fields: dict[str, str] = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, flags=re.MULTILINE))
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        for line in listing.read_text().splitlines():
            found = re.match(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if found:
                return found.group(1)
    return DEFAULT_MIRROR


def ensure_base_image() -> str:
    """``localhost/debian-python:bookworm``: Debian minbase with python3, its venv and CA certificates;
    made with debootstrap in a temporary folder and imported, once per machine."""
    require_podman()
    with build_lock():
        if image_exists(BASE_IMAGE):
            return BASE_IMAGE
        folder = Path(tempfile.mkdtemp(prefix="debian-python-", dir="/var/tmp"))
        try:
            rootfs = folder / "root"
            debootstrap = ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates"]
            done = subprocess.run(
                [*debootstrap, SUITE, str(rootfs), debian_mirror()],
                capture_output=True,
                text=True,
                timeout=1200,
                check=False,
            )
            if done.returncode != 0:
                raise AssertionError(
                    f"debootstrap failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
                )
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            archive = folder / "root.tar"
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(archive), "."], check=True, timeout=600)
            podman("import", "--change", f"ENV PATH={PATH}", "--change", "ENV LANG=C.UTF-8",
                   "--change", 'CMD ["python3"]', str(archive), BASE_IMAGE, timeout=600)  # fmt: skip
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return BASE_IMAGE


def build_image(
    tag: str, containerfile: Path, context: Path, build_args: Mapping[str, str] | None = None, timeout: float = 1200
) -> None:
    """``podman build``, in the docker format (the OCI one drops ``HEALTHCHECK``), with the host's CA
    bundle mounted so that pip and apt inside the build trust what this machine trusts."""
    command = ["build", "--format", "docker", "--tag", tag, "--file", str(containerfile)]
    if CA_BUNDLE.is_file():
        command += ["--volume", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    for name, value in (build_args or {}).items():
        command += ["--build-arg", f"{name}={value}"]
    podman(*command, str(context), timeout=timeout)


def ensure_redis_image() -> str:
    """``localhost/content-provider-redis:bookworm``: Debian's redis-server on the local base, once."""
    ensure_base_image()
    with build_lock():
        if not image_exists(REDIS_IMAGE):
            with tempfile.TemporaryDirectory(prefix="redis-image-") as folder:
                containerfile = Path(folder) / "Containerfile"
                containerfile.write_text(REDIS_CONTAINERFILE)
                build_image(REDIS_IMAGE, containerfile, Path(folder))
    return REDIS_IMAGE


def context_files() -> list[Path]:
    """The files of the Containerfile's build context, as ``.dockerignore`` (an allow list) names them."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", ".dockerignore should start with '*' (an allow list)"
    allowed = [ROOT / rule[1:].rstrip("/") for rule in rules if rule.startswith("!")]
    excluded = [rule.removeprefix("**/") for rule in rules[1:] if not rule.startswith("!")]
    files = {ROOT / "Containerfile", ROOT / ".dockerignore"}
    for path in allowed:
        files |= {path} if path.is_file() else {p for p in path.rglob("*") if p.is_file()}
    return sorted(p for p in files if not any(fnmatch(part, rule) for part in p.parts for rule in excluded))


def project_tag() -> str:
    digest = hashlib.sha256()
    for path in context_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{PROJECT_REPOSITORY}:test-{digest.hexdigest()[:16]}"


@functools.cache
def ensure_project_image() -> str:
    """This tree's image on the local base, built when no image of this tree's tag exists."""
    base = ensure_base_image()
    tag = project_tag()
    if not image_exists(tag):
        build_image(tag, ROOT / "Containerfile", ROOT, {"BASE": base})
        prune_old_images()
    return tag


def prune_old_images() -> None:
    """Each change to the tree is a new tag: those of other trees older than a day go (one in use
    stays), and so do build stages left untagged as long."""
    listed = podman("images", "--filter", f"reference={PROJECT_REPOSITORY}:test-*", "--filter", f"until={PRUNE_AFTER}",
                    "--format", "{{.Repository}}:{{.Tag}}", check=False)  # fmt: skip
    for old in listed.stdout.split():
        podman("rmi", old, check=False)
    podman("image", "prune", "--force", "--filter", f"until={PRUNE_AFTER}", check=False)


# --------------------------------------------------------------------------- containers


def unique_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def free_port() -> int:
    return free_port_on("127.0.0.1")


@contextlib.contextmanager
def removed(kind: str, name: str) -> Iterator[str]:
    """Remove the podman object ``name`` of ``kind`` at the end, however the block ends."""
    try:
        yield name
    finally:
        if kind == "container":
            podman("rm", "--force", "--volumes", "--time", "0", name, check=False, timeout=120)
        elif kind == "pod":
            podman("pod", "rm", "--force", "--time", "0", name, check=False, timeout=120)
        elif kind == "secret":  # podman 4.3's secret rm has no --force
            podman("secret", "rm", name, check=False, timeout=120)
        else:
            podman(kind, "rm", "--force", name, check=False, timeout=120)


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    problem = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError) as exc:
            problem = str(exc)
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout:g} s ({problem})")


def get_content(
    url: str, content_id: str, auth: tuple[str, str] | None = None, timeout: float = 10
) -> tuple[int, Any, dict[str, str]]:
    """``POST /getcontent`` as Hermod sends it: the status, the JSON body and the headers (of an error too)."""
    headers = {"Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()} if auth else {}
    body = json.dumps({"contentId": content_id}).encode()
    request = urllib.request.Request(f"{url}/getcontent", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def readable(folder: Path) -> Path:
    """Readable by the image's user (pytest makes its folders 0700, for root only), to be mounted."""
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@dataclass(frozen=True)
class Container:
    name: str
    port: int  # the container's port, published on 127.0.0.1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=check)

    def stop(self, seconds: int) -> subprocess.CompletedProcess[str]:
        return podman("stop", "--time", str(seconds), self.name, timeout=seconds + 60)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """``podman healthcheck run``: status 0 and ``healthy`` when the image's check passes."""
        return podman("healthcheck", "run", self.name, check=False, timeout=60)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until ``/healthz`` answers 200 from the host; the container's log when it does not."""
        try:
            wait_http(f"{self.url}/healthz", timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.name}'s log:\n{self.logs()[-3000:]}") from None


@contextlib.contextmanager
def run_container(
    image: str,
    *,
    env: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    args: Sequence[str] = (),
    options: Sequence[str] = (),
    prefix: str = "cp-test",
    port: int = 8080,
) -> Iterator[Container]:
    """``podman run -d IMAGE ARGS`` with a unique name and ``port`` on a free port of 127.0.0.1;
    the container and its anonymous volumes are removed at the end. ``volumes`` are ``-v`` values,
    ``options`` more ``podman run`` options, ``args`` the arguments after the image."""
    name = unique_name(prefix)
    host_port = free_port()
    command = ["run", "--detach", "--name", name, "--publish", f"127.0.0.1:{host_port}:{port}"]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    for volume in volumes:
        command += ["--volume", volume]
    with removed("container", name):
        podman(*command, *options, image, *args, timeout=120)
        yield Container(name, host_port)


# --------------------------------------------------------------------------- the plugin


@pytest.fixture(scope="session")
def podman_ready() -> str:
    return require_podman()


@pytest.fixture(scope="session")
def project_image(podman_ready: str) -> str:
    return ensure_project_image()


@pytest.fixture(scope="session")
def redis_image(podman_ready: str) -> str:
    return ensure_redis_image()


def is_container_test(item: pytest.Item) -> bool:
    uses = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker(MARKER) is not None or bool(uses & set(FIXTURES))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: needs podman and the images of tests/containers.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = [item for item in items if is_container_test(item)]
    if os.environ.get(OPT_OUT) and chosen:
        config.hook.pytest_deselected(items=chosen)
        items[:] = [item for item in items if not is_container_test(item)]
        config.stash[_DESELECTED] = len(chosen)
        return
    for item in chosen:
        item.add_marker(pytest.mark.containers)
        item.add_marker(pytest.mark.timeout(CONTAINER_TEST_TIMEOUT))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    count = config.stash.get(_DESELECTED, 0)
    if count:
        terminalreporter.write_line(f"{OPT_OUT}=1: {count} container tests deselected (they need podman)")


# --------------------------------------------------------------------------- compose


@dataclass(frozen=True)
class ComposeProject:
    name: str
    file: Path
    environ: Mapping[str, str]

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """``podman-compose -p NAME -f FILE ARGS`` with the project's environment."""
        command = [sys.executable, "-m", "podman_compose", "-p", self.name, "-f", str(self.file), *args]
        environ = {**podman_environ(), **self.environ}
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"podman-compose {' '.join(args)}: no answer within {timeout:g} s") from exc
        if done.returncode != 0:
            raise AssertionError(
                f"podman-compose {' '.join(args)}: exit status {done.returncode}\n{done.stderr[-3000:]}"
            )
        return done

    def container_names(self, service: str | None = None) -> list[str]:
        filters = ["--filter", f"label=io.podman.compose.project={self.name}"]
        if service is not None:
            filters += ["--filter", f"label=io.podman.compose.service={service}"]
        listed = podman("ps", "--all", *filters, "--format", "{{.Names}}").stdout.split()
        return sorted(listed, key=lambda name: int(name.rsplit("_", 1)[-1]) if name[-1].isdigit() else 0)

    def containers(self, service: str, port: int = 8080) -> list[Container]:
        """The service's replicas, in replica order, each with the host port ``port`` is published on."""
        found = []
        for name in self.container_names(service):
            published = podman("port", name, str(port)).stdout.split()[0]
            found.append(Container(name, int(published.rsplit(":", 1)[1])))
        return found


@contextlib.contextmanager
def compose_project(file: Path, environ: Mapping[str, str], prefix: str = "cp-compose") -> Iterator[ComposeProject]:
    project = ComposeProject(unique_name(prefix), file, dict(environ))
    try:
        project.compose("up", "--detach")
        yield project
    finally:
        label = f"label=io.podman.compose.project={project.name}"
        for name in project.container_names():
            podman("rm", "--force", "--volumes", "--time", "0", name, check=False, timeout=120)
        podman("pod", "rm", "--force", f"pod_{project.name}", check=False, timeout=120)
        for kind in ("network", "volume"):
            listed = podman(kind, "ls", "--filter", label, "--format", "{{.Name}}", check=False).stdout.split()
            for name in listed:
                podman(kind, "rm", "--force", name, check=False, timeout=120)
