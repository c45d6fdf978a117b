"""A recording's manifest, ``upstream-manifest.jsonl``: a journal of JSON lines, only ever appended.

The first line says what the file is; every other line is one of

- an answer (a *variant*) of one content id: ``id``, ``use`` (``PROV``/``AUTH``), ``subject``,
  ``folder`` (``users/<name>``), ``digest`` (SHA-256 of status and body), ``recorded`` (first
  seen), ``from``, ``status``, ``verdict``, ``files`` (where its images are kept, in ``version``),
  and when it wrote none ``not_written`` (why); ``again`` when an answer seen before came back;
  ``moved`` when only where its files are kept changed;
- ``{"id", "dropped": digest}``: an earlier answer no longer kept (``upstream.keep_earlier``).

Reading the file replays its lines: an id's answers in the order last seen, the one served
(``current``: the last with files). A line is appended and fsynced *before* what it says is
served, so after a crash the manifest says what should be, and the recorder mends the disk to
it at its next start; a last line a crash cut short (no newline) is dropped. Each change costs
one line; when most lines say things no longer true the file is rewritten, whole and atomically,
with a line per answer kept. The file comes from outside the process (an earlier run, an edit):
each line is checked, and one that is not a recording's is refused, naming its line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content_provider.core.contract import UseCase
from content_provider.core.fsutil import atomic_write
from content_provider.core.layout import SIDES_FOR, USERS_DIR
from content_provider.core.reader import ConfigError
from content_provider.fixtures.write import BadFixturePath, Version, is_folder_name

MANIFEST = "upstream-manifest.jsonl"
HEADER = {"recording": "content-provider upstream", "format": 2}
DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
FIELDS = {"id", "use", "subject", "folder", "digest", "recorded", "from", "status", "verdict", "files", "version"}
OPTIONAL = {"not_written", "again", "moved"}
COMPACT_SLACK = 256  # lines beyond twice the live ones before the file is rewritten


@dataclass
class Entry:
    """One content id in the recording."""

    raw: str
    use: str
    subject: str
    folder: str  # the name under users/
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)  # digest -> line, oldest seen first
    current: str | None = None  # the digest whose files are served
    last: str | None = None  # the digest of the last answer seen

    def variant(self, digest: str | None) -> dict[str, Any] | None:
        return self.variants.get(digest) if digest is not None else None


class Manifest:
    """The manifest, read back and kept open for appending; blocking (the recorder's thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Entry] = {}
        self.folder_of: dict[str, str] = {}  # subject -> folder name
        self.subject_of: dict[str, str] = {}  # folder name, casefolded -> subject
        self.served: dict[str, str] = {}  # folder name -> the version path users/<name> should link to
        self.owners: dict[tuple[str, str], str] = {}  # (use, subject) -> the id whose answers a replay serves
        self.in_folder: dict[str, list[str]] = {}  # folder name -> ids
        self.lines = 0  # in the file
        self.kept = 0  # answers listed (a line each when the file is rewritten)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._read()
        except BaseException:
            os.close(self._fd)
            raise

    # ------------------------------------------------------------------ reading

    def _read(self) -> None:
        with open(self._fd, "rb", closefd=False) as handle:
            text = handle.read()
        if not text:
            self.append(HEADER)
            return
        complete = text.rfind(b"\n") + 1
        if complete < len(text):  # the last line a crash cut short: it was never acted on
            os.ftruncate(self._fd, complete)
            os.fsync(self._fd)
        for number, line in enumerate(text[:complete].splitlines(), 1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                raise self._refused(number, "not JSON") from None
            if number == 1:
                if record != HEADER:
                    raise self._refused(number, f"not {json.dumps(HEADER)}")
            else:
                problem = self._problem(record)
                if problem is not None:
                    raise self._refused(number, problem)
                self._apply(record)
            self.lines += 1
        if self.lines == 0:
            self.append(HEADER)

    def _refused(self, number: int, problem: str) -> ConfigError:
        return ConfigError(
            f"upstream.mode record: {self.path}, line {number}: {problem}; this is not a recording's manifest "
            "(or it was edited): record into another folder"
        )

    def _problem(self, record: Any) -> str | None:
        """Why a line is not one a recorder writes (or does not fit the lines before it), or None."""
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            return "not an object with an id"
        raw = record["id"]
        if "dropped" in record:
            if set(record) != {"id", "dropped"} or not DIGEST.match(str(record["dropped"])):
                return "a dropped answer is {id, dropped: sha256:...}"
            entry = self.entries.get(raw)
            if entry is None or record["dropped"] not in entry.variants:
                return "drops an answer not listed before"
            if record["dropped"] == entry.current:
                return "drops the answer served"
            return None
        if not FIELDS <= set(record) <= FIELDS | OPTIONAL:
            return f"an answer has the members {', '.join(sorted(FIELDS))} (and maybe {', '.join(sorted(OPTIONAL))})"
        use, subject, folder = record["use"], record["subject"], record["folder"]
        if use not in {case.value for case in UseCase} or not isinstance(subject, str):
            return "use is PROV or AUTH, subject a string"
        if not isinstance(folder, str) or not folder.startswith(f"{USERS_DIR}/"):
            return "folder is users/<name>"
        name = folder.removeprefix(f"{USERS_DIR}/")
        if not is_folder_name(name):
            return f"folder {folder!r} is not a folder name"
        if not isinstance(record["digest"], str) or not DIGEST.match(record["digest"]):
            return "digest is sha256:<64 hex digits>"
        status = record["status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            return "status is an HTTP status"
        strings = ("recorded", "from", *(key for key in OPTIONAL - {"moved"} if key in record))
        if not all(isinstance(record[key], str) for key in strings) or not isinstance(record.get("moved", True), bool):
            return "recorded, from, not_written and again are strings, moved true or false"
        if record["verdict"] is not None and not isinstance(record["verdict"], dict):
            return "verdict is an object or null"
        problem = self._files_problem(record, name)
        if problem is not None:
            return problem
        entry = self.entries.get(raw)
        if record.get("moved") and (entry is None or record["digest"] not in entry.variants or not record["files"]):
            return "moves the files of an answer not listed before"
        if entry is not None and (entry.use, entry.subject, entry.folder) != (use, subject, name):
            return f"{raw!r} was listed before with another use, subject or folder"
        if self.folder_of.get(subject, name) != name:
            return f"subject {subject!r} was listed before in another folder"
        if self.subject_of.get(name.casefold(), subject) != subject:
            return f"folder {folder!r} (or one differing only in case) was listed before for another subject"
        if record["files"] and self.owners.get((use, subject), raw) != raw:
            return f"{raw!r} and {self.owners[(use, subject)]!r} both have files for {use}:{subject}"
        return None

    @staticmethod
    def _files_problem(record: dict[str, Any], folder: str) -> str | None:
        files, version = record["files"], record["version"]
        if not isinstance(files, list) or not all(isinstance(name, str) for name in files):
            return "files is a list of paths"
        if not files:
            return None if version is None else "an answer without files has no version"
        try:
            kept = Version.parse(version) if isinstance(version, str) else None
        except BadFixturePath as exc:
            return str(exc)
        if kept is None or kept.folder != folder:
            return "version is answers/<its folder>/<16 hex digits>"
        allowed = {kept.file(side) for side in SIDES_FOR[UseCase(record["use"])]}
        if not set(files) <= allowed or len(set(files)) != len(files):
            return f"files are some of {', '.join(sorted(allowed))}"
        return None

    # ------------------------------------------------------------------ the state

    def _apply(self, record: dict[str, Any]) -> None:
        raw = record["id"]
        if "dropped" in record:
            del self.entries[raw].variants[record["dropped"]]
            self.kept -= 1
            return
        name = record["folder"].removeprefix(f"{USERS_DIR}/")
        entry = self.entries.get(raw)
        if entry is None:
            entry = self.entries[raw] = Entry(raw, record["use"], record["subject"], name)
            self.folder_of[entry.subject] = name
            self.subject_of[name.casefold()] = entry.subject
            self.in_folder.setdefault(name, []).append(raw)
        digest = record["digest"]
        self.kept += digest not in entry.variants
        if record.get("moved"):
            entry.variants[digest] = record  # in its place: only where its files are changed
        else:
            entry.variants.pop(digest, None)
            entry.variants[digest] = record
            entry.last = digest
            if record["files"]:
                entry.current = digest
        if record["files"]:
            self.served[name] = record["version"]
            self.owners[(entry.use, entry.subject)] = raw

    def append(self, record: dict[str, Any]) -> None:
        """Add a line, durably, then take it into the state: nothing is acted on before it is written."""
        line = json.dumps(record, ensure_ascii=True, separators=(", ", ": ")) + "\n"  # ASCII: any id, even \ud800
        os.write(self._fd, line.encode("ascii"))
        os.fsync(self._fd)
        self.lines += 1
        if record is not HEADER:
            self._apply(record)

    def live(self) -> Iterator[dict[str, Any]]:
        """A line for every answer kept, in an order that reads back to the same state: each id's
        answers as last seen, then for each folder the answer whose version it serves, ``moved``."""
        for entry in self.entries.values():
            for record in entry.variants.values():
                yield {key: value for key, value in record.items() if key != "moved"}
        for name, version in self.served.items():
            records = (r for raw in self.in_folder[name] for r in self.entries[raw].variants.values())
            serving = next((r for r in records if r["version"] == version), None)
            if serving is not None:
                yield {**serving, "moved": True}

    def compact_if_due(self) -> bool:
        """Rewrite the file with a line per answer kept, when most of its lines no longer count."""
        if self.lines <= 2 * self.kept + COMPACT_SLACK:
            return False
        lines = [HEADER, *self.live()]
        text = "".join(json.dumps(line, ensure_ascii=True, separators=(", ", ": ")) + "\n" for line in lines)
        atomic_write(self.path, text.encode("ascii"))
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self.lines = len(lines)
        return True

    def close(self) -> None:
        os.close(self._fd)
