"""``upstream.mode: record``: each upstream answer written into the fixture folder, whole, honest, bounded.

For a content id ``PROV:<subject>`` or ``AUTH:<subject>`` the answer is served from ``users/<folder>/``
in the usual layout, so the folder replays as it is:

- ``front.jpg`` and ``auth.jpg``: the upstream's base64 decoded, byte for byte;
- ``back.jws``: the upstream's JWS, verbatim (the store serves it as it is, never re-signed,
  so the vendor's signature still verifies);
- ``users/<folder>`` is a link to ``answers/<folder>/<version>/``, one whole state of the folder
  (fixtures/write.py): an answer is written in full where nothing looks, then served by one
  rename, so a crash at any moment leaves the earlier answer or the new one, never a mix;
- ``upstream-manifest.jsonl`` (manifest.py): for each id, each distinct answer (by SHA-256 of
  status and body), when and from where, its verdict, its files; appended a line per change,
  before the change is served, and what the recorder mends the disk to when it starts again;
- ``recorded.yaml``: a config to replay with (``serve --config``): the folder as fixtures, no
  default, a signing folder beside it, no persistent cache (nothing is written under the user's
  home), and the subjects that have no folder of their own mapped.

The folder is the subject when that is a folder name no other recorded subject has (case
aside: ``Variant`` and ``variant`` are one folder on some file systems) and no folder of someone's
own is there; else ``rec-<hash of the subject>``, mapped in ``recorded.yaml``. Ids that differ
only in their prefix's case, or a bare id and its prefixed twin, are one id to a replay: the
first to record images for it is the one served, and another's different answer is listed in
the manifest, not written. An answer that is not a 200 with images (an error, a redirect) is
listed, never written. Earlier answers are kept, ``upstream.keep_earlier`` per id. Credentials
and headers are never recorded. One recorder per folder: it holds a lock on the folder.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from content_provider.core.contract import ContentId, UseCase
from content_provider.core.fsutil import atomic_write, is_atomic_temporary
from content_provider.core.layout import SIDES_FOR, USERS_DIR, recorded_file
from content_provider.core.reader import ConfigError
from content_provider.fixtures.write import (
    Version,
    is_folder_name,
    is_free_for_recording,
    publish_version,
    published_version,
    recorded_folders,
    remove_version,
    stage_version,
    sweep_recording,
    version_names,
)
from content_provider.upstream.client import Fetched
from content_provider.upstream.manifest import MANIFEST, Entry, Manifest
from content_provider.upstream.validate import Verdict

log = logging.getLogger("content_provider.upstream.record")

LEGACY_MANIFEST = "upstream-manifest.json"  # what recordings before the journal kept
FRAGMENT = "recorded.yaml"
REPLAY_SIGNING = ".dev-signing"  # the replay's own development key, beside the recording, never committed
SIDE_OF = {"front": "front", "back": "back", "auth_image": "auth"}  # element key -> side


def answer_digest(status: int, body: bytes) -> str:
    return "sha256:" + hashlib.sha256(f"{status}\0".encode() + body).hexdigest()


def answer_files(use_case: UseCase, status: int, body: bytes) -> dict[str, bytes] | str:
    """The sides an answer is recorded as (side -> bytes), or why it is not written as images."""
    if 300 <= status < 400:
        return f"status {status}: a redirect, passed on as it came, never followed"
    if status != 200:
        return f"status {status}: no images to write"
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    elements = document.get("data") if isinstance(document, dict) else None
    if not isinstance(elements, list) or not elements:
        return "no data array with elements"
    keys = {key for key, side in SIDE_OF.items() if side in SIDES_FOR[use_case]}
    files: dict[str, bytes] = {}
    for element in elements:
        key = element.get("key") if isinstance(element, dict) else None
        data = element.get("data") if isinstance(element, dict) else None
        if key not in keys or not isinstance(data, str):
            return f"an element with key {key!r} is not one of {sorted(keys)} with string data"
        if key == "back":
            files["back"] = data.encode("utf-8", "surrogatepass")  # the JWS as sent, byte for byte
            continue
        try:
            files[SIDE_OF[key]] = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return f"{key} is not strict base64"
    primary = SIDES_FOR[use_case][0]
    if primary not in files:
        return f"no {primary} in the answer"
    return files


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Recorder:
    """Writes upstream answers into ``root`` and keeps the manifest; one answer at a time.

    Made in a thread (it reads the manifest and mends what a crash left); :meth:`close` at the end."""

    def __init__(self, root: Path, url: str, keep_earlier: int = 3) -> None:
        self.root = root
        self.url = url
        self.keep_earlier = keep_earlier
        self._lock_fd = os.open(root, os.O_RDONLY)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise ConfigError(f"upstream.mode record: another content-provider is recording into {root}") from None
        try:
            if (root / LEGACY_MANIFEST).exists() and not (root / MANIFEST).exists():
                raise ConfigError(
                    f"upstream.mode record: {root} was recorded by an earlier content-provider ({LEGACY_MANIFEST}); "
                    "it replays as it is, but record into a new folder"
                )
            self.manifest = Manifest(root / MANIFEST)
            self._fragment = ""
            self._mend()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._last = {raw: entry.last for raw, entry in self.manifest.entries.items()}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def record(self, content_id: ContentId, fetched: Fetched, verdict: Verdict | None) -> None:
        """Write the answer when it is new for this id; an answer seen last time costs one hash.

        A recording that fails (a full disk, say) is logged; the answer is passed on all the same.
        The write goes on when the request that asked for it is cancelled."""
        digest = answer_digest(fetched.status, fetched.body)
        if self._last.get(content_id.raw) == digest:
            return
        task = asyncio.ensure_future(self._record_locked(content_id, fetched.status, fetched.body, digest, verdict))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.shield(task)

    async def _record_locked(
        self, content_id: ContentId, status: int, body: bytes, digest: str, verdict: Verdict | None
    ) -> None:
        async with self._lock:
            if self._last.get(content_id.raw) == digest:
                return
            try:
                await asyncio.to_thread(self._record, content_id, status, body, digest, verdict)
            except (OSError, ValueError) as exc:
                log.error("recording %r failed, so its answer was passed on but not recorded: %s", content_id.raw, exc)
                return
            self._last[content_id.raw] = digest

    async def close(self) -> None:
        """Let the writes under way finish, then let go of the manifest and the folder."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.manifest.close()
        os.close(self._lock_fd)

    # ------------------------------------------------------------------ in a thread

    def _record(self, content_id: ContentId, status: int, body: bytes, digest: str, verdict: Verdict | None) -> None:
        raw, use, subject = content_id.raw, content_id.use_case.value, content_id.subject
        entry = self.manifest.entries.get(raw)
        folder = entry.folder if entry is not None else self._folder_for(subject)
        known = entry.variant(digest) if entry is not None else None
        record: dict[str, Any] = {
            "id": raw,
            "use": use,
            "subject": subject,
            "folder": f"{USERS_DIR}/{folder}",
            "digest": digest,
            "recorded": known["recorded"] if known is not None else _now(),
            "from": self.url,
            "status": status,
            "verdict": verdict.as_json() if verdict is not None else None,
            "files": [],
            "version": None,
        }
        if known is not None:
            record["again"] = _now()
        files = answer_files(content_id.use_case, status, body)
        owner = self.manifest.owners.get((use, subject), raw)
        version = None
        if isinstance(files, str):
            record["not_written"] = files
        elif owner != raw:
            record["not_written"] = self._refusal(owner, digest)
        else:
            if folder != subject and (use, subject) not in self.manifest.owners:
                self._write_fragment(extra=(use, subject, folder))  # mapped before its files appear
            base = self.manifest.served.get(folder)
            version = stage_version(
                self.root, folder, Version.parse(base) if base else None, SIDES_FOR[content_id.use_case], files
            )
            record["version"] = version.path
            record["files"] = [version.file(side) for side in files]
        self.manifest.append(record)  # from here on, this is the answer: a crash is mended to it
        if version is not None:
            publish_version(self.root, version)
            self._carry_others(folder, raw, version)
        self._bound(self.manifest.entries[raw])
        self._collect(folder)
        self.manifest.compact_if_due()
        self._log(self.manifest.entries[raw], record)

    def _refusal(self, owner: str, digest: str) -> str:
        shown = f"a replay cannot tell this id from {owner!r} (the prefix's case, or a bare id, is not told apart)"
        if self.manifest.entries[owner].current == digest:
            return f"{shown}; it answers both with {owner!r}'s files, the same answer"
        return f"{shown} and answers both with {owner!r}'s files: this different answer is listed, not written"

    def _folder_for(self, subject: str) -> str:
        """The folder a new subject's answers go to: itself when free, else a name made from it."""
        known = self.manifest.folder_of.get(subject)
        if known is not None:
            return known
        made = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
        candidates = [subject] if is_folder_name(subject) else []
        candidates += [f"rec-{made[:16]}", f"rec-{made[:32]}", f"rec-{made}"]
        for name in candidates:
            taken = self.manifest.subject_of.get(name.casefold())
            if taken is None and is_free_for_recording(self.root, name):
                return name
        raise ValueError(f"no free folder for the subject {subject!r}")

    def _carry_others(self, folder: str, raw: str, version: Version) -> None:
        """The folder's other ids (``AUTH:x`` beside ``PROV:x``) are served from the new version too:
        their files are listed there, so the version they were in can go when nothing else lists it."""
        for other in self.manifest.in_folder[folder]:
            entry = self.manifest.entries[other]
            current = entry.variant(entry.current)
            if other == raw or current is None or current["version"] == version.path:
                continue
            sides = [Path(name).stem for name in current["files"]]
            if all((self.root / version.file(side)).is_file() for side in sides):
                files = [version.file(side) for side in sides]
                self.manifest.append({**current, "version": version.path, "files": files, "moved": True})

    def _bound(self, entry: Entry) -> None:
        """Keep ``upstream.keep_earlier`` earlier answers of the id with files, and as many without."""
        written = [d for d, v in entry.variants.items() if v["files"] and d != entry.current]
        unwritten = [d for d, v in entry.variants.items() if not v["files"] and d != entry.last]
        for digests in (written, unwritten):
            for dropped in digests[: max(0, len(digests) - self.keep_earlier)]:
                self.manifest.append({"id": entry.raw, "dropped": dropped})

    def _collect(self, folder: str) -> None:
        """Delete the folder's versions that nothing serves or lists any more."""
        listed = {self.manifest.served.get(folder)}
        for raw in self.manifest.in_folder.get(folder, []):
            listed |= {variant["version"] for variant in self.manifest.entries[raw].variants.values()}
        for name in version_names(self.root, folder):
            version = Version.of(folder, name)
            if version.path not in listed:
                remove_version(self.root, version)

    def _log(self, entry: Entry, record: dict[str, Any]) -> None:
        if "not_written" in record and "not told apart" in record["not_written"]:
            log.warning("not recorded %r: %s", entry.raw, record["not_written"])
        elif len(entry.variants) > 1 and "again" not in record and record["files"]:
            log.warning(
                "the upstream's answer for %r changed; the new one is recorded, %d earlier kept (see %s)",
                entry.raw,
                len(entry.variants) - 1,
                MANIFEST,
            )
        else:
            log.info("recorded %r: %s", entry.raw, ", ".join(record["files"]) or record.get("not_written", ""))

    # ------------------------------------------------------------------ at start

    def _mend(self) -> None:
        """Make the disk say what the manifest says, after a crash at any moment: the links serve
        the versions listed last, and nothing half written or no longer listed is left."""
        mended = sweep_recording(self.root)
        for name in os.listdir(self.root):
            if any(is_atomic_temporary(name, of) for of in (MANIFEST, FRAGMENT, ".gitignore")):
                (self.root / name).unlink()
                mended.append(name)
        for folder, path in self.manifest.served.items():
            try:
                if publish_version(self.root, Version.parse(path)):
                    mended.append(f"{USERS_DIR}/{folder}")
            except (OSError, ValueError) as exc:
                log.warning("recording %s: cannot serve %s from %s: %s", self.root, f"{USERS_DIR}/{folder}", path, exc)
        for entry in list(self.manifest.entries.values()):
            self._bound(entry)  # keep_earlier may be smaller than last time
        for folder in recorded_folders(self.root):
            if folder in self.manifest.in_folder:
                self._collect(folder)
            elif published_version(self.root, folder) is None:  # written, but never listed: a crash
                for name in version_names(self.root, folder):
                    remove_version(self.root, Version.of(folder, name))
                mended.append(f"answers/{folder}")
        self._write_fragment()
        if not (self.root / ".gitignore").exists():
            atomic_write(self.root / ".gitignore", f"{REPLAY_SIGNING}/\n".encode())
        self.manifest.compact_if_due()
        if mended:
            log.warning("recording %s: mended what an interrupted run left: %s", self.root, ", ".join(mended))

    def _write_fragment(self, extra: tuple[str, str, str] | None = None) -> None:
        """``recorded.yaml``, when what it says changed: the folder, no default, the mapped subjects."""
        mapped = [(use, subject, self.manifest.folder_of[subject]) for use, subject in self.manifest.owners]
        users: dict[str, dict[str, str]] = {}
        for use, subject, folder in [*mapped, *([extra] if extra else [])]:
            if folder != subject:
                for side in SIDES_FOR[UseCase(use)]:
                    users.setdefault(subject, {})[side] = f"{USERS_DIR}/{folder}/{recorded_file(side)}"
        config = {
            "fixtures": {"root": ".", "default": False, "users": users},
            "signing": {"directory": REPLAY_SIGNING},
            # a replay writes nothing outside its folder, and the cache may not live inside it
            "cache": {"persistent": False},
        }
        header = (
            "# Made by content-provider serve in upstream record mode: replay the recording with\n"
            f"#   content-provider serve --config {FRAGMENT}\n"
            "# (fixtures.users maps the recorded ids that have no folder of their own; see docs/upstream.md)\n"
        )
        text = header + yaml.safe_dump(config, sort_keys=True, allow_unicode=False)  # ASCII: any id, even \ud800
        if text != self._fragment:
            with contextlib.suppress(FileNotFoundError):
                if (self.root / FRAGMENT).read_text(encoding="ascii") == text:
                    self._fragment = text
                    return
            atomic_write(self.root / FRAGMENT, text.encode("ascii"))
            self._fragment = text
