"""A Testcontainers module: the mock's container image, started for a test, with a ready admin client.

::

    from content_provider.testing import ContentProviderContainer

    with ContentProviderContainer("content-provider:latest").with_fixtures("tests/cards") as provider:
        provider.client().add_rule(name="down", match={"id": "PROV:bob"}, outcome=503)
        ...  # point the system under test at provider.url

It needs the ``testcontainers`` extra (``pip install 'content-provider[testcontainers]'``) and a
Docker API: Docker's, or podman's (``podman system service``). The image is the one the repository's
``Containerfile`` builds (docs/containers.md), taken by name or built from a folder here. The
container is ready when ``GET /healthz`` answers 200; when it exits first, or is not ready in
time, :class:`ContainerNotReady` says why, with the end of its log, and the container is removed.

The client is the package's :class:`~content_provider.client.AdminClient`, on the container's URL
with its admin token: the mock's admin API answers only loopback callers without a token, and a
call through a published port is not loopback to the container.
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self, cast

try:
    from docker.errors import ImageNotFound
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.waiting_utils import WaitStrategy, WaitStrategyTarget
except ImportError as exc:
    raise ImportError(
        f"content_provider.testing needs testcontainers: pip install 'content-provider[testcontainers]' ({exc})"
    ) from exc

from content_provider.client import AdminClient

DEFAULT_IMAGE = "content-provider:latest"  # what `docker build -t content-provider .` makes
PORT = 8080  # the image's EXPOSE
FIXTURES_PATH = "/fixtures"  # the image's fixture folder
CONFIG_PATH = "/config/config.yaml"  # read by the image when there is one
STARTUP_TIMEOUT = 60.0  # seconds from start until /healthz answers 200
LOG_TAIL = 3000  # characters of the container's log in an error


class ContainerNotReady(RuntimeError):
    """The image is not there, the container exited, or its ``/healthz`` did not answer 200 in time;
    the message says which, with the end of the container's log."""


def _log_tail(container: WaitStrategyTarget) -> str:
    try:
        stdout, stderr = container.get_logs()
    except Exception as exc:  # the container may be gone already; say so rather than hide the first error
        return f"(its log could not be read: {exc})"
    text = (stdout + stderr).decode(errors="replace").strip()
    return text[-LOG_TAIL:] if text else "(its log is empty)"


class HealthzReady(WaitStrategy):
    """Until ``GET /healthz`` on the mock's port answers 200; fails at once when the container exits."""

    def wait_until_ready(self, container: WaitStrategyTarget) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last = "no answer yet"
        url = None
        while time.monotonic() < deadline:
            container.reload()
            if container.status in ("exited", "dead"):
                state = container.get_wrapped_container().attrs.get("State", {})
                raise ContainerNotReady(
                    f"the content-provider container exited (status {state.get('ExitCode', '?')}) before "
                    f"/healthz answered 200. Its log:\n{_log_tail(container)}"
                )
            if container.status == "running":
                if url is None:
                    host, port = container.get_container_host_ip(), container.get_exposed_port(PORT)
                    url = f"http://{host}:{port}/healthz"
                try:
                    with urllib.request.urlopen(url, timeout=2) as answer:
                        if answer.status == 200:
                            return
                        last = f"{answer.status}"
                except urllib.error.HTTPError as error:
                    last = f"{error.code} {error.read(500).decode(errors='replace')}"
                except OSError as error:  # refused, reset, timed out: not listening yet
                    last = str(getattr(error, "reason", error))
            time.sleep(self._poll_interval)
        raise ContainerNotReady(
            f"the content-provider container's {url or '/healthz'} did not answer 200 within "
            f"{self._startup_timeout:g} s (last: {last}). Its log:\n{_log_tail(container)}"
        )


class ContentProviderContainer(DockerContainer):
    """The mock's image in a container: port 8080 published, an admin token set, ready when
    ``/healthz`` answers 200.

    ``image``: the image to run, or with ``build_context`` the tag to build it as (from that
    folder's ``containerfile``, with ``build_args``; the image is kept, so a second build is
    quick). ``admin_token``: the mock's ``admin.token``, random by default. ``bind_address``: the
    Docker host's address to publish the port on (e.g. ``127.0.0.1``); every address by default,
    as Testcontainers does. Other keywords go to :class:`DockerContainer`. Settings go in as
    ``with_env("CONTENT_PROVIDER_...", value)`` or a file, :meth:`with_config`.
    """

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        build_context: str | os.PathLike[str] | None = None,
        containerfile: str = "Containerfile",
        build_args: Mapping[str, str] | None = None,
        admin_token: str | None = None,
        bind_address: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.admin_token = secrets.token_hex(16) if admin_token is None else admin_token
        self._build = None if build_context is None else (Path(build_context), containerfile, dict(build_args or {}))
        self._url: str | None = None
        self.with_exposed_ports(PORT)
        if bind_address is not None:  # docker's (address, port) form, which testcontainers' type leaves out
            self.ports[str(PORT)] = cast(Any, (bind_address, None))
        self.with_env("CONTENT_PROVIDER_ADMIN_TOKEN", self.admin_token)
        self.waiting_for(HealthzReady().with_startup_timeout(int(startup_timeout)).with_poll_interval(0.1))

    def with_fixtures(self, folder: str | os.PathLike[str], *, writable: bool = False) -> Self:
        """Serve ``folder`` (the layout of docs/fixtures.md) instead of the image's demo set.

        Read-only by default, so that a test's uploads never change the folder (they answer that
        it cannot be written); ``writable=True`` lets them write into it. Its files must be readable
        by the image's user, uid 10001.
        """
        path = Path(folder).resolve()
        if not path.is_dir():
            raise ValueError(f"with_fixtures: {str(path)!r} is not a folder")
        return self.with_volume_mapping(path, FIXTURES_PATH, "rw" if writable else "ro")

    def with_config(self, config_file: str | os.PathLike[str]) -> Self:
        """Mount ``config_file`` as the image's ``/config/config.yaml`` (read-only)."""
        path = Path(config_file).resolve()
        if not path.is_file():
            raise ValueError(f"with_config: {str(path)!r} is not a file")
        return self.with_volume_mapping(path, CONFIG_PATH, "ro")

    def start(self) -> Self:
        if self._build is not None:
            context, containerfile, build_args = self._build
            DockerImage(
                context, tag=self.image, dockerfile_path=containerfile, clean_up=False, buildargs=build_args
            ).build()
        try:
            return super().start()
        except ImageNotFound as exc:
            raise ContainerNotReady(
                f"there is no image {self.image!r} here: build it first (docker build -t content-provider . in a "
                "clone of content-provider), or give build_context"
            ) from exc
        except BaseException:
            self.stop()  # not left running when it did not become ready
            raise

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        """Remove the container (once: a second call, as ``with`` makes after a failed start, does nothing)."""
        if self._container is not None:
            super().stop(force, delete_volume)
            self._container = None
        self._url = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the started container, the base of ``/getcontent`` and ``/__admin/``."""
        if self._url is None:
            self._url = f"http://{self.get_container_host_ip()}:{self.get_exposed_port(PORT)}"
        return self._url

    def client(self) -> AdminClient:
        """An admin client for this container, with its token."""
        return AdminClient(self.url, token=self.admin_token)
