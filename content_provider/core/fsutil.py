"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _temporary_beside(path: Path, data: bytes, mode: int) -> Iterator[str]:
    """``data`` in a synced temporary file in ``path``'s folder, for the caller to move into place;
    removed afterwards if it is still there (the move failed, or it was a hard link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        yield tmp_name
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    A crash at any point leaves either the old file or the new one, never a mix.
    """
    with _temporary_beside(path, data, mode) as tmp_name:
        os.replace(tmp_name, path)
    fsync_dir(path.parent)


def create_once(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write ``path`` whole unless it exists; ``False`` when another process made it first.

    For a file several processes may make at the same moment (replicas sharing one state
    folder making the signing key): the first one wins and the others read its file,
    instead of each keeping its own. Written to a temporary and hard-linked into place,
    so the file is never seen half-written and never replaced.
    """
    with _temporary_beside(path, data, mode) as tmp_name:
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            return False
    fsync_dir(path.parent)
    return True


def is_atomic_temporary(name: str, of: str) -> bool:
    """Whether ``name`` is a temporary file :func:`atomic_write` made for a file named ``of``
    (one a crash left behind, if no write is under way)."""
    return name.startswith(f".{of}.") and name.endswith(".tmp")


def write_synced(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a new file and fsync it (its folder is not: the caller renames or fsyncs that)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make the names in folder ``path`` (a rename, a new file) survive a crash."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def copy_tree(source: Path, target: Path) -> Path:
    """Copy the files under ``source`` into ``target`` as new files of this user.

    Unlike ``shutil.copytree`` no permissions are copied, so a copy of a read-only folder
    (an installed package's demo set) can be written to.
    """
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.rglob("*")):
        copy = target / path.relative_to(source)
        if path.is_dir():
            copy.mkdir(exist_ok=True)
        elif path.is_file():
            shutil.copyfile(path, copy)
    return target
