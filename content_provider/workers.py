"""``serve --workers N``: N processes on one port, sharing what the admin API changes.

The supervisor (the process the user started) binds the port, makes the signing key once
and starts N workers: the same command again, told by environment variables which worker
it is, which inherited sockets to accept on and where the shared state folder is. Every
worker accepts on the supervisor's sockets (whichever is free takes a new connection), and
listens on a private loopback port that it writes to the state folder. The port is bound
once, without ``SO_REUSEPORT``: a second server on it is refused, as with one process.

What is shared, and how:

- fixture files: on disk; every worker sees a change within ``cache.revalidate_seconds``;
- an admin call that changes something (rules, reset, reload, clearing the journal, an
  upload or delete) is done by the worker it reaches, then replayed to every sibling on its
  private port (an upload is not written again: the siblings only drop their memo);
- a journal read (``/__admin/requests``, ``/count``) gathers every worker's entries;
- trigger counters (``first``, ``every``, ``sequence``, probability draws, rate limits) are
  per worker: with N workers a ``first: 2`` rule can fire 2 x N times. Use one worker
  (the default) where exact counts matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import hdrs, web

from .fsutil import atomic_write
from .keys import ROLE, SIBLING_SESSION
from .listener import bind_sockets

log = logging.getLogger("content_provider")

WORKER_ENV = "CONTENT_PROVIDER_WORKER"  # "<index>:<count>"
STATE_ENV = "CONTENT_PROVIDER_WORKER_STATE"
SOCKETS_ENV = "CONTENT_PROVIDER_WORKER_SOCKETS"  # inherited listening file descriptors, comma-separated
SECRET_ENV = "CONTENT_PROVIDER_WORKER_SECRET"
SIBLING_HEADER = "X-Content-Provider-Sibling"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class WorkerRole:
    """Who this process is, when it is one of several workers."""

    index: int
    count: int
    state: Path
    secret: str
    sockets: tuple[int, ...] = ()  # file descriptors of the supervisor's listening sockets

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WorkerRole | None:
        role, state, secret = environ.get(WORKER_ENV), environ.get(STATE_ENV), environ.get(SECRET_ENV)
        if not role or not state or not secret:
            return None
        index, _, count = role.partition(":")
        sockets = tuple(int(fd) for fd in environ.get(SOCKETS_ENV, "").split(",") if fd)
        return cls(int(index), int(count), Path(state), secret, sockets)

    def listening_sockets(self) -> list[socket.socket]:
        """The supervisor's listening sockets, inherited: every worker accepts on them."""
        return [socket.socket(fileno=fd) for fd in self.sockets]

    def announce(self, url: str) -> None:
        """Tell the supervisor and the siblings where this worker's private port is."""
        record = {"index": self.index, "pid": os.getpid(), "url": url}
        atomic_write(self.state / f"worker-{self.index}.json", json.dumps(record).encode())


def is_sibling_call(request: web.Request) -> bool:
    """A call replayed by a sibling worker (do it here only; do not replay it again)."""
    role = request.app.get(ROLE)
    given = request.headers.get(SIBLING_HEADER)
    return role is not None and given is not None and hmac.compare_digest(given.encode(), role.secret.encode())


async def sibling_session_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        app[SIBLING_SESSION] = session
        yield


def _sibling_urls(role: WorkerRole) -> list[str]:
    urls = []
    for index in range(role.count):
        if index != role.index:
            with contextlib.suppress(OSError, ValueError, KeyError):
                urls.append(json.loads((role.state / f"worker-{index}.json").read_bytes())["url"])
    return urls


async def _to_siblings(request: web.Request, body: bytes) -> list[tuple[int, Any]]:
    """The same call on every sibling: (status, JSON answer) from each that answered."""
    role = request.app.get(ROLE)
    if role is None or is_sibling_call(request):
        return []
    headers = {SIBLING_HEADER: role.secret}
    for name in (hdrs.AUTHORIZATION, hdrs.CONTENT_TYPE):
        if name in request.headers:
            headers[name] = request.headers[name]
    session = request.app[SIBLING_SESSION]

    async def call(url: str) -> tuple[int, Any] | None:
        try:
            async with session.request(request.method, url + request.path_qs, data=body, headers=headers) as answer:
                return answer.status, await answer.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.error("worker %d: replaying %s %s to %s failed: %s", role.index, request.method, request.path, url, exc)
            return None

    results = await asyncio.gather(*(call(url) for url in await asyncio.to_thread(_sibling_urls, role)))
    return [result for result in results if result is not None]


async def replay(request: web.Request, body: bytes) -> None:
    """After a change here succeeded: the same change on every sibling."""
    for status, answer in await _to_siblings(request, body):
        if status >= 400:
            log.error("a sibling worker refused %s %s: %s", request.method, request.path, answer)


async def gathered(request: web.Request) -> list[Any]:
    """A read's JSON answer from every sibling (empty when not a worker, or for a sibling's call)."""
    return [answer for status, answer in await _to_siblings(request, b"") if status == 200]


# --------------------------------------------------------------------------- the supervisor


def free_port(host: str) -> int:
    """A port free now, for benchmarks and tests that must name one up front (it may be taken later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def supervise(
    argv: Sequence[str], environ: Mapping[str, str], count: int, host: str, port: int, scheme: str, base_path: str
) -> int:
    """Run ``count`` workers of ``content-provider <argv>`` on ``host:port`` until SIGINT/SIGTERM.

    Raises :class:`OSError` when the port cannot be bound (taken, say) before starting any.
    """
    listening = bind_sockets(host, port)
    port = listening[0].getsockname()[1]
    fds = tuple(sock.fileno() for sock in listening)
    state = Path(tempfile.mkdtemp(prefix="content-provider-workers-"))
    secret = secrets.token_hex(16)
    command = [sys.executable, "-m", "content_provider", *argv, "--port", str(port)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            env = {**environ, WORKER_ENV: f"{index}:{count}", STATE_ENV: str(state), SECRET_ENV: secret}
            env[SOCKETS_ENV] = ",".join(map(str, fds))
            workers.append(subprocess.Popen(command, env=env, pass_fds=fds))
        for sock in listening:  # the workers hold them now
            sock.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while not all((state / f"worker-{i}.json").exists() for i in range(count)):
            if stopping:
                return 0
            failed = next((w for w in workers if w.poll() is not None), None)
            if failed is not None:
                log.error("a worker exited with status %s while starting", failed.returncode)
                return failed.returncode or 1
            if time.monotonic() > deadline:
                log.error("the workers did not start within %g s", READY_TIMEOUT)
                return 1
            time.sleep(0.05)
        shown = f"[{host}]" if ":" in host else host
        pids = ", ".join(str(w.pid) for w in workers)
        log.info("serving POST %s://%s:%d%s/getcontent with %d workers (pids %s)", scheme, shown, port, base_path,
                 count, pids)  # fmt: skip
        while not stopping:
            failed = next((w for w in workers if w.poll() is not None), None)
            if failed is not None:
                log.error("worker pid %d exited with status %s; stopping the others", failed.pid, failed.returncode)
                return 1
            time.sleep(0.2)
        log.info("stopping %d workers", count)
        return 0
    finally:
        for sock in listening:
            sock.close()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(state, ignore_errors=True)
