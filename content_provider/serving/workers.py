"""``serve --workers N``: N processes on one port, sharing one state through Redis.

The supervisor (the process the user started) binds the port, makes the signing key once
and starts N workers: the same command again, told by environment variables which worker
it is and which inherited sockets to accept on. Every worker accepts on the supervisor's
sockets (whichever is free takes a new connection). The port is bound once, without
``SO_REUSEPORT``: a second server on it is refused, as with one process.

What the admin API changes (rules, counters, the journal, uploads) is shared the way
replicas on several machines share it: ``state.backend: redis`` (content_provider/state/).
With ``state.redis_url`` set the workers use that Redis; without one the supervisor starts a
private ``redis-server`` on a Unix socket in its temporary folder (no TCP port, no disk
writes) and stops it at the end; when there is no ``redis-server`` it says what to install.
So trigger counts are exact across workers, as in one process.

Metrics: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a folder of its own, so a scrape
of ``/metrics`` through any worker sums every worker's values (see metrics.py).
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from content_provider.config.environment import ENV_PREFIX
from content_provider.config.parse import redis_extra_missing
from content_provider.config.worker_role import SOCKETS_ENV, STATE_ENV, WORKER_ENV
from content_provider.core.reader import ConfigError
from content_provider.http.metrics import MULTIPROC_ENV
from content_provider.serving.listener import bind_sockets

log = logging.getLogger("content_provider")
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
REDIS_START_TIMEOUT = 10.0
INSTALL_REDIS = (
    "serve --workers N shares its state through Redis: install redis-server (Debian and Ubuntu: "
    "apt-get install redis-server; macOS: brew install redis), or set state.redis_url "
    f"({ENV_PREFIX}REDIS_URL) to a Redis of your own"
)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, be sent SIGTERM when the supervisor dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def private_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A ``redis-server`` of the supervisor's own, on a Unix socket in ``folder``; its URL.

    Raises :class:`ConfigError` saying what to install when there is none, or why it did not start.
    """
    missing = redis_extra_missing()
    if missing is not None:
        raise ConfigError(f"{INSTALL_REDIS}; and {missing}: pip install 'content-provider[redis]'")
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(INSTALL_REDIS)
    sock = folder / "redis.sock"
    command = [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700", "--save", "",
               "--appendonly", "no", "--dir", str(folder), "--loglevel", "warning"]  # fmt: skip
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, preexec_fn=_die_with_parent
    )
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while not sock.exists():
        if process.poll() is not None:
            raise ConfigError(f"the private redis-server ({binary}) exited with status {process.returncode}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise ConfigError(f"the private redis-server ({binary}) did not start within {REDIS_START_TIMEOUT:g} s")
        time.sleep(0.02)
    return process, f"unix://{sock}"


# --------------------------------------------------------------------------- the supervisor


def free_port(host: str) -> int:
    """A port free now, for benchmarks and tests that must name one up front (it may be taken later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def supervise(
    argv: Sequence[str],
    environ: Mapping[str, str],
    count: int,
    host: str,
    port: int,
    scheme: str,
    base_path: str,
    redis_url: str | None = None,
) -> int:
    """Run ``count`` workers of ``content-provider <argv>`` on ``host:port`` until SIGINT/SIGTERM.

    ``redis_url``: the configured one; without it a private redis-server is started.
    Raises :class:`OSError` when the port cannot be bound (taken, say) before starting any, and
    :class:`ConfigError` when there is no Redis to share the state in.
    """
    state = Path(tempfile.mkdtemp(prefix="content-provider-workers-"))
    redis_server: subprocess.Popen[bytes] | None = None
    shared = dict(environ)
    try:
        if not environ.get(ENV_PREFIX + "REDIS_URL") and not redis_url:
            redis_server, shared[ENV_PREFIX + "REDIS_URL"] = private_redis(state)
            log.info("state shared by the workers in a private redis-server on %s", shared[ENV_PREFIX + "REDIS_URL"])
        shared[ENV_PREFIX + "STATE_BACKEND"] = "redis"
        (state / "metrics").mkdir()
        shared[MULTIPROC_ENV] = str(state / "metrics")
        listening = bind_sockets(host, port)
    except BaseException:
        _stop_redis(redis_server)
        shutil.rmtree(state, ignore_errors=True)
        raise
    port = listening[0].getsockname()[1]
    fds = tuple(sock.fileno() for sock in listening)
    command = [sys.executable, "-m", "content_provider", *argv, "--port", str(port)]
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            env = {**shared, WORKER_ENV: f"{index}:{count}", STATE_ENV: str(state)}
            env[SOCKETS_ENV] = ",".join(map(str, fds))
            # SIGTERM when the supervisor dies, even by kill -9 before a worker could look (cli.py also watches)
            workers.append(subprocess.Popen(command, env=env, pass_fds=fds, preexec_fn=_die_with_parent))
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
        _stop_redis(redis_server)
        shutil.rmtree(state, ignore_errors=True)


def _stop_redis(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
