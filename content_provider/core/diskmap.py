"""A bounded map of bytes to bytes kept in one file across restarts, and never trusted when read.

The persistent cache (signatures, image checks: see ``cache.directory``) is one of these per
kind. In memory it is a :class:`ThreadSafeLRU`; on disk a snapshot, written atomically
(:func:`atomic_write`: a crash leaves the old file or the new one) when something was added.
The file is outside the process (another replica, an old version, a hostile user may have
written it), so reading it checks its magic, its scope, every length and a SHA-256 of the
whole; a file that fails is ignored with one warning, and whoever uses an entry validates it
again (a signature is verified, a check result shape-checked) and :meth:`reject` s a bad one.

File layout: ``MAGIC``, then big-endian ``u32`` length + the scope (UTF-8), ``u32`` entries,
each ``u16`` key length, ``u32`` value length, key, value; then the SHA-256 of all before it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
from pathlib import Path

from content_provider.core.fsutil import atomic_write
from content_provider.core.lru import ThreadSafeLRU

log = logging.getLogger("content_provider.cache")

MAGIC = b"content-provider cache 1\n"
_U32 = struct.Struct(">I")
_ENTRY = struct.Struct(">HI")
_DIGEST = 32
MAX_SCOPE = 1024

FileStat = tuple[int, int, int]  # size, mtime_ns, inode of the file last read or written


class BadFile(ValueError):
    """Why a cache file is not used."""


class DiskMap:
    """``max_entries`` values by key, least recently used dropped; loaded from and saved to ``path``.

    ``scope`` names what the entries mean (a file of another scope is not used, silently: e.g.
    written by another version); keys and values longer than ``max_key`` / ``max_value`` are
    refused. :meth:`peek` and :meth:`put` may be called from any thread.
    """

    def __init__(self, path: Path, scope: str, max_entries: int, max_key: int, max_value: int) -> None:
        self.path = path
        self.scope = scope.encode("utf-8")
        self.max_entries = max_entries
        self.max_key = max_key
        self.max_value = max_value
        self._entries: ThreadSafeLRU[bytes, bytes] = ThreadSafeLRU(max_entries)
        self.peek = self._entries.peek  # no lock: one dictionary read
        self._dirty = False
        self._file: FileStat | None = None
        self._save_lock = threading.Lock()  # one snapshot at a time
        self._warned = False
        self.loaded = 0  # entries read from the file at start
        self.hits = 0  # entries taken from the file and found good (counted by the user of an entry)
        self.added = 0  # entries made by this process
        self.rejected = 0  # entries from the file that failed their user's validation

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------------ any thread

    def put(self, key: bytes, value: bytes) -> None:
        if len(key) > self.max_key or len(value) > self.max_value:
            return
        self._entries.put(key, value)
        self.added += 1
        self._dirty = True

    def hit(self) -> None:
        self.hits += 1

    def reject(self, key: bytes, why: str) -> None:
        """An entry its user found bad: forgotten, and said once per process."""
        self._entries.pop(key)
        self.rejected += 1
        self._dirty = True  # the next snapshot leaves it out
        self._warn(f"an entry failed its check ({why}); entries are checked one by one, bad ones are not used")

    def _warn(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("persistent cache %s: %s", self.path, why)

    # ------------------------------------------------------------------ blocking

    def load(self) -> None:
        """Read the file, if there is one; a bad one is ignored with one warning. Never raises."""
        try:
            entries, stat = self._read()
        except FileNotFoundError:
            return
        except (OSError, BadFile) as exc:
            self._warn(f"not used: {exc}")
            return
        if entries is None:
            return
        for key, value in entries:
            self._entries.put(key, value)
        self.loaded = len(entries)
        self._file = stat

    def _read(self) -> tuple[list[tuple[bytes, bytes]] | None, FileStat]:
        """The file's entries (oldest first), or ``None`` when it has another scope; raises ``BadFile``."""
        with open(self.path, "rb") as handle:
            st = os.fstat(handle.fileno())
            stat = (st.st_size, st.st_mtime_ns, st.st_ino)
            limit = len(MAGIC) + 8 + MAX_SCOPE + self.max_entries * (_ENTRY.size + self.max_key + self.max_value)
            if st.st_size > limit + _DIGEST:
                raise BadFile(f"{st.st_size} bytes, more than {self.max_entries} entries can take")
            data = handle.read(limit + _DIGEST + 1)
        if len(data) < len(MAGIC) + 8 + _DIGEST or not data.startswith(MAGIC):
            raise BadFile("not a content-provider cache file")
        body, digest = data[:-_DIGEST], data[-_DIGEST:]
        if hashlib.sha256(body).digest() != digest:
            raise BadFile("its checksum does not match (cut short or changed)")
        view = memoryview(body)
        offset = len(MAGIC)
        (scope_length,) = _U32.unpack_from(view, offset)
        offset += _U32.size
        if scope_length > MAX_SCOPE or offset + scope_length + _U32.size > len(view):
            raise BadFile("a bad header")
        if bytes(view[offset : offset + scope_length]) != self.scope:
            log.info("persistent cache %s: written for another version or setting; starting afresh", self.path)
            return None, stat
        offset += scope_length
        (count,) = _U32.unpack_from(view, offset)
        offset += _U32.size
        if count > self.max_entries:
            raise BadFile(f"{count} entries, more than the {self.max_entries} kept")
        entries = []
        for _ in range(count):
            if offset + _ENTRY.size > len(view):
                raise BadFile("an entry is cut short")
            key_length, value_length = _ENTRY.unpack_from(view, offset)
            offset += _ENTRY.size
            if key_length > self.max_key or value_length > self.max_value:
                raise BadFile("an entry is longer than any this cache makes")
            end = offset + key_length + value_length
            if end > len(view):
                raise BadFile("an entry is cut short")
            entries.append((bytes(view[offset : offset + key_length]), bytes(view[offset + key_length : end])))
            offset = end
        if offset != len(view):
            raise BadFile("bytes after the last entry")
        return entries, stat

    def save(self) -> bool:
        """Write a snapshot when something changed (whether one was written); entries another process
        wrote to the file meanwhile are kept as the oldest. Raises ``OSError`` when it cannot write."""
        with self._save_lock:
            if not self._dirty:
                return False
            self._dirty = False
            try:
                ours = self._entries.items()
                try:
                    st = os.stat(self.path)
                    changed = (st.st_size, st.st_mtime_ns, st.st_ino) != self._file
                except FileNotFoundError:
                    changed = False
                theirs: list[tuple[bytes, bytes]] = []
                if changed:  # another process (a worker, a warm run) wrote it since we read it
                    try:
                        theirs = self._read()[0] or []
                    except (OSError, BadFile):
                        theirs = []
                known = {key for key, _ in ours}
                merged = [item for item in theirs if item[0] not in known] + ours
                merged = merged[-self.max_entries :]
                parts = [MAGIC, _U32.pack(len(self.scope)), self.scope, _U32.pack(len(merged))]
                for key, value in merged:
                    parts += (_ENTRY.pack(len(key), len(value)), key, value)
                body = b"".join(parts)
                atomic_write(self.path, body + hashlib.sha256(body).digest(), mode=0o600)
                st = os.stat(self.path)
                self._file = (st.st_size, st.st_mtime_ns, st.st_ino)
            except BaseException:
                self._dirty = True  # tried again next time
                raise
            return True
