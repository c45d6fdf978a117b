"""``upstream.mode: record``: each upstream answer written into the fixture folder, binary-safe and honest.

For a content id ``PROV:<subject>`` or ``AUTH:<subject>`` the answer goes to
``users/<subject>/`` in the usual layout, so the folder can be served as it is:

- ``front.jpg`` and ``auth.jpg``: the upstream's base64 decoded, byte for byte;
- ``back.jws``: the upstream's JWS, verbatim (the store serves it as it is, never re-signed,
  so the vendor's signature still verifies);
- a subject that is not a folder name gets ``users/rec-<hash>/`` and an entry in
  ``recorded.yaml``, a config file for replaying the recording (``serve --config``);
- ``upstream-manifest.json``: for each id, every distinct answer (by SHA-256 of status and
  body): when and from where it was recorded, its verdict, the files written.

When an id's answer changes, the new one is served from then on and the earlier one is kept
in ``users/<subject>/earlier/<digest>/`` (the manifest says ``"changed": true``); an answer
that is not a 200 with images (an error, say) is listed in the manifest but writes no file.
Every file is written atomically; an image through fixtures/write.py, like an upload, so each side
keeps one file (a recorded ``back.jws`` removes a ``back.jpg`` beside it, which it would hide anyway).
Credentials and headers are never recorded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml

from content_provider.core.contract import ContentId, UseCase
from content_provider.core.fsutil import atomic_write
from content_provider.core.layout import JWS_EXTENSION, USERS_DIR
from content_provider.core.reader import ConfigError
from content_provider.fixtures.write import FixtureImage, delete_image, is_folder_name, record_image
from content_provider.upstream.client import Fetched
from content_provider.upstream.validate import Verdict

log = logging.getLogger("content_provider.upstream.record")

MANIFEST = "upstream-manifest.json"
FRAGMENT = "recorded.yaml"
EARLIER_DIR = "earlier"
# the files an answer may write, by the element key that carries each
CARD_FILES = {"front": "front.jpg", "back": "back" + JWS_EXTENSION}
AUTH_FILES = {"auth_image": "auth.jpg"}


def answer_digest(status: int, body: bytes) -> str:
    return "sha256:" + hashlib.sha256(f"{status}\0".encode() + body).hexdigest()


def folder_name(subject: str) -> str:
    """The subject itself when it is a folder name, else a stable name made from it."""
    if is_folder_name(subject):
        return subject
    return "rec-" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def answer_files(use_case: UseCase, status: int, body: bytes) -> dict[str, bytes] | str:
    """The files an answer is recorded as (name -> bytes), or why it is not written as images."""
    if status != 200:
        return f"status {status}: no images to write"
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return "the body is not JSON"
    elements = document.get("data") if isinstance(document, dict) else None
    if not isinstance(elements, list) or not elements:
        return "no data array with elements"
    names = CARD_FILES if use_case is UseCase.CARD else AUTH_FILES
    files: dict[str, bytes] = {}
    for element in elements:
        key = element.get("key") if isinstance(element, dict) else None
        data = element.get("data") if isinstance(element, dict) else None
        if key not in names or not isinstance(data, str):
            return f"an element with key {key!r} is not one of {sorted(names)} with string data"
        if key == "back":
            files[names[key]] = data.encode("utf-8")  # the JWS as sent, byte for byte
            continue
        try:
            files[names[key]] = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return f"{key} is not strict base64"
    primary = "front.jpg" if use_case is UseCase.CARD else "auth.jpg"
    if primary not in files:
        return f"no {primary.removesuffix('.jpg')} in the answer"
    return files


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


class Recorder:
    """Writes upstream answers into ``root`` and keeps the manifest; one answer at a time."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        self.manifest_path = root / MANIFEST
        self.manifest: dict[str, Any] = {"upstream": url, "answers": {}}
        if self.manifest_path.exists():
            try:
                loaded = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"upstream.mode record: cannot read the manifest {self.manifest_path}: {exc}"
                ) from None
            if not isinstance(loaded, dict) or not isinstance(loaded.get("answers"), dict):
                raise ConfigError(f"upstream.mode record: {self.manifest_path} is not a recording manifest")
            self.manifest = loaded
        self._current = {raw: entry.get("current") for raw, entry in self.manifest["answers"].items()}
        self._lock = asyncio.Lock()
        self.tasks = 0

    async def record(self, content_id: ContentId, fetched: Fetched, verdict: Verdict | None) -> None:
        """Write the answer when it is new for this id; an answer seen last time costs one hash."""
        digest = answer_digest(fetched.status, fetched.body)
        if self._current.get(content_id.raw) == digest:
            return
        async with self._lock:
            if self._current.get(content_id.raw) == digest:
                return
            await asyncio.to_thread(self._record, content_id, fetched.status, fetched.body, digest, verdict)
            self._current[content_id.raw] = digest

    # ------------------------------------------------------------------ in a thread

    def _record(self, content_id: ContentId, status: int, body: bytes, digest: str, verdict: Verdict | None) -> None:
        raw = content_id.raw
        folder = folder_name(content_id.subject)
        answers: dict[str, Any] = self.manifest["answers"]
        entry = answers.setdefault(
            raw,
            {"subject": content_id.subject, "folder": f"{USERS_DIR}/{folder}", "mapped": folder != content_id.subject},
        )
        variants: list[dict[str, Any]] = entry.setdefault("variants", [])
        previous = next((v for v in variants if v["digest"] == entry.get("current")), None)
        known = next((v for v in variants if v["digest"] == digest), None)
        files = answer_files(content_id.use_case, status, body)
        if previous is not None and previous.get("files") and not isinstance(files, str):
            self._keep(previous)
        if known is None:
            known = {
                "digest": digest,
                "recorded": _now(),
                "from": self.url,
                "status": status,
                "verdict": verdict.as_json() if verdict is not None else None,
            }
            variants.append(known)
        else:
            known["again"] = _now()  # an earlier answer came back
        if isinstance(files, str):
            known["files"] = []
            known["not_written"] = files
        else:
            known["files"] = self._write(content_id.use_case, folder, files)
        entry["current"] = digest
        entry["changed"] = len(variants) > 1
        self._save()
        if len(variants) > 1:
            log.warning(
                "the upstream's answer for %r changed (%d distinct answers so far); the new one is recorded, "
                "the earlier ones are kept (see %s)",
                raw,
                len(variants),
                MANIFEST,
            )
        else:
            log.info("recorded %r: %s", raw, ", ".join(known["files"]) or known.get("not_written", ""))

    def _keep(self, variant: dict[str, Any]) -> None:
        """Copy the answer being replaced to ``earlier/<digest>/``, so no distinct answer is lost; its
        ``files`` then say where it is kept."""
        served = [self.root / name for name in variant["files"]]
        if not served or EARLIER_DIR in Path(variant["files"][0]).parts:
            return
        kept = served[0].parent / EARLIER_DIR / variant["digest"].removeprefix("sha256:")[:16]
        for path in served:
            if path.is_file():
                atomic_write(kept / path.name, path.read_bytes())
        variant["files"] = [str((kept / path.name).relative_to(self.root)) for path in served]

    def _write(self, use_case: UseCase, folder: str, files: dict[str, bytes]) -> list[str]:
        """Each side as it came (a back as back.jws, the side's other files removed); the files written."""
        written = [
            record_image(self.root, FixtureImage.of(USERS_DIR, folder, Path(name).stem), data).path.as_posix()
            for name, data in files.items()
        ]
        if use_case is UseCase.CARD and CARD_FILES["back"] not in files:  # a back this answer no longer has
            delete_image(self.root, FixtureImage.of(USERS_DIR, folder, "back"))
        return written

    def _save(self) -> None:
        atomic_write(self.manifest_path, (json.dumps(self.manifest, indent=2, ensure_ascii=False) + "\n").encode())
        users: dict[str, dict[str, str]] = {}
        for entry in self.manifest["answers"].values():
            if not entry.get("mapped"):
                continue
            current = next((v for v in entry["variants"] if v["digest"] == entry.get("current")), None)
            for name in current.get("files", []) if current else []:
                side = Path(name).stem
                users.setdefault(entry["subject"], {})[side] = name
        config = {"fixtures": {"root": ".", "default": False, "users": users}}
        header = (
            "# Made by content-provider serve in upstream record mode: replay the recording with\n"
            f"#   content-provider serve --config {FRAGMENT}\n"
            "# (fixtures.users maps the recorded ids that are not folder names; see docs/upstream.md)\n"
        )
        text = header + yaml.safe_dump(config, sort_keys=True, allow_unicode=True)
        atomic_write(self.root / FRAGMENT, text.encode("utf-8"))
