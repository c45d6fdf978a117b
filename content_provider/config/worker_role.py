"""Who this process is when ``serve --workers N`` runs several: read from the environment the supervisor sets."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from content_provider.core.fsutil import atomic_write

WORKER_ENV = "CONTENT_PROVIDER_WORKER"  # "<index>:<count>"
STATE_ENV = "CONTENT_PROVIDER_WORKER_STATE"
SOCKETS_ENV = "CONTENT_PROVIDER_WORKER_SOCKETS"  # inherited listening file descriptors, comma-separated


@dataclass(frozen=True)
class WorkerRole:
    """Who this process is, when it is one of several workers."""

    index: int
    count: int
    state: Path
    sockets: tuple[int, ...] = ()  # file descriptors of the supervisor's listening sockets

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> WorkerRole | None:
        role, state = environ.get(WORKER_ENV), environ.get(STATE_ENV)
        if not role or not state:
            return None
        index, _, count = role.partition(":")
        sockets = tuple(int(fd) for fd in environ.get(SOCKETS_ENV, "").split(",") if fd)
        return cls(int(index), int(count), Path(state), sockets)

    def listening_sockets(self) -> list[socket.socket]:
        """The supervisor's listening sockets, inherited: every worker accepts on them."""
        return [socket.socket(fileno=fd) for fd in self.sockets]

    def announce(self) -> None:
        """Tell the supervisor this worker is serving."""
        atomic_write(
            self.state / f"worker-{self.index}.json", f'{{"index": {self.index}, "pid": {os.getpid()}}}'.encode()
        )


ROLE: web.AppKey[WorkerRole] = web.AppKey("worker_role")  # only with serve --workers N
