"""Fixture images: which file answers a content id, and the prepared answer for it.

Resolution, for a subject (the content id without its ``PROV:``/``AUTH:`` prefix):

1. ``fixtures.users.<subject>`` in config, when it names the image asked for;
2. the folder ``users/<subject>/`` (only when the subject is a plain folder name);
3. the first organisation, exact members before patterns, that has the image;
4. ``default/``, when ``fixtures.default`` is on.

A content id never becomes a path by itself: only names matching ``SAFE_NAME`` are
looked up as folders, and every file found is checked to lie inside the fixture
folder after symlinks are followed.

The encoded answer is cached in memory, keyed by the files' identity (path, size,
mtime, inode), so a hot id costs two dictionary lookups and no disk read or base64 work.
Files on disk are looked at again at most every ``cache.revalidate_seconds``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiofiles
from multidict import CIMultiDict

from .cache import ByteBoundedLRU
from .config import SAFE_NAME, Organisation, Settings, UserImages
from .contract import ContentId, UseCase, answer_body, image_element, jws_element
from .imagecheck import FixtureProblem, jpeg_problem, jws_payload
from .layout import (
    DEFAULT_DIR,
    MEMBERS_FILE,
    ORGS_DIR,
    SIDES,
    SIDES_FOR,
    USERS_DIR,
    extensions_for,
    is_card_side,
    is_recorded_back,
)
from .patterns import compile_pattern, is_pattern, pattern_error
from .signing import Signer

log = logging.getLogger("content_provider.fixtures")

MEMO_ENTRIES = 20_000  # about 1.8 kB each; a forgotten id costs a few stat calls, not a rebuild
MEMBERS_FILE_LIMIT = 4 * 1024 * 1024

# (key, real path, size, mtime_ns, inode) of each file in an answer
Fingerprint = tuple[tuple[str, str, int, int, int], ...]


class FixtureError(Exception):
    """A fixture cannot be served (unreadable, or invalid under ``strict``)."""

    def __init__(self, code: str, message: str, problems: tuple[FixtureProblem, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems


@dataclass(frozen=True)
class Resolution:
    """Which images answer a content id, and why."""

    level: str  # "user", "organisation" or "default"
    owner: str  # the subject, the organisation's name, or "default"
    files: tuple[tuple[str, Path], ...]
    fingerprint: Fingerprint

    @functools.cached_property
    def cache_key(self) -> str:
        """The fingerprint as one string: its hash is computed once, not on every cache lookup."""
        return repr(self.fingerprint)

    @functools.cached_property
    def label(self) -> str:
        """For the log and the ``X-Content-Provider-Resolved`` header (kept header-safe); made once."""
        text = self.level if self.level == "default" else f"{self.level} {self.owner}"
        return quote(text, safe=" /:@+=-._~")


@dataclass(frozen=True)
class Prepared:
    """An encoded 200 answer for a set of files; shared by every id that resolves to them."""

    body: bytes
    problems: tuple[FixtureProblem, ...]


@dataclass(slots=True)  # not frozen: one is made per request, and frozen ones are slow to make
class Answer:
    """What to send for one content id, and why."""

    body: bytes
    resolution: Resolution
    problems: tuple[FixtureProblem, ...]


@dataclass(slots=True)
class UpstreamAnswer(Answer):
    """An answer that came from the upstream (content_provider/upstream/), to be passed on as it came."""

    status: int
    content_type: str | None
    headers: CIMultiDict[str]  # the upstream's end-to-end headers, plus ours


@dataclass
class StoreStats:
    """Counters that make the cache observable (tests and benchmarks read them)."""

    file_reads: int = 0
    builds: int = 0
    hits: int = 0
    revalidations: int = 0


@dataclass
class _Memo:
    resolution: Resolution | None
    checked_at: float


@dataclass(frozen=True)
class _Org:
    name: str
    members: frozenset[str]
    patterns: tuple[str, ...]
    matchers: tuple[Callable[[str], bool], ...]
    images: UserImages
    folder: Path


def parse_members(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A ``members.txt``: one id or pattern a line; ``#`` starts a comment."""
    members: list[str] = []
    patterns: list[str] = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            (patterns if is_pattern(entry) else members).append(entry)
    return tuple(members), tuple(patterns)


@dataclass
class _OrgIndex:
    """Organisations from config and from ``orgs/*/``, refreshed when the folder changes."""

    root: Path
    configured: tuple[Organisation, ...]
    orgs: tuple[_Org, ...] = ()
    signature: tuple[tuple[str, int], ...] | None = None
    problems: list[FixtureProblem] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _signature(self) -> tuple[tuple[str, int], ...]:
        folder = self.root / ORGS_DIR
        parts: list[tuple[str, int]] = []
        try:
            parts.append(("", folder.stat().st_mtime_ns))
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_dir() and SAFE_NAME.match(entry.name):
                    members = Path(entry.path) / MEMBERS_FILE
                    try:
                        parts.append((entry.name, members.stat().st_mtime_ns))
                    except FileNotFoundError:
                        parts.append((entry.name, -1))
        except FileNotFoundError:
            pass
        return tuple(parts)

    def refresh(self) -> None:
        with self.lock:
            signature = self._signature()
            if signature == self.signature:
                return
            self.signature = signature
            problems: list[FixtureProblem] = []
            orgs: list[_Org] = []
            seen: set[str] = set()
            for org in self.configured:
                members, patterns = self._folder_members(org.name, problems)
                orgs.append(self._make(org.name, org.members + members, org.patterns + patterns, org.images))
                seen.add(org.name)
            for name, _ in signature[1:]:
                if name not in seen:
                    members, patterns = self._folder_members(name, problems)
                    orgs.append(self._make(name, members, patterns, UserImages()))
            self.orgs = tuple(orgs)
            self.problems = problems

    def _make(self, name: str, members: tuple[str, ...], patterns: tuple[str, ...], images: UserImages) -> _Org:
        matchers = []
        for pattern in patterns:
            try:
                matchers.append(compile_pattern(pattern))
            except re.error:
                continue  # reported by _folder_members; config patterns are checked at load
        return _Org(name, frozenset(members), patterns, tuple(matchers), images, self.root / ORGS_DIR / name)

    def _folder_members(self, name: str, problems: list[FixtureProblem]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        path = self.root / ORGS_DIR / name / MEMBERS_FILE
        try:
            with path.open("rb") as handle:
                raw = handle.read(MEMBERS_FILE_LIMIT + 1)
        except FileNotFoundError:
            return (), ()
        except OSError as exc:
            problems.append(FixtureProblem(path, f"cannot read members: {exc}"))
            return (), ()
        if len(raw) > MEMBERS_FILE_LIMIT:
            problems.append(FixtureProblem(path, f"larger than {MEMBERS_FILE_LIMIT} bytes; ignored"))
            return (), ()
        members, patterns = parse_members(raw.decode("utf-8", errors="replace"))
        for pattern in patterns:
            error = pattern_error(pattern)
            if error is not None:
                problems.append(FixtureProblem(path, error))
        return members, patterns

    def candidates(self, subject: str) -> Iterator[_Org]:
        """Organisations the subject belongs to: exact members first, then patterns."""
        orgs = self.orgs
        for org in orgs:
            if subject in org.members:
                yield org
        for org in orgs:
            if subject not in org.members and any(match(subject) for match in org.matchers):
                yield org


class FixtureStore:
    """Answers content ids from the fixture folder, with a bounded cache of prepared answers."""

    def __init__(self, settings: Settings, signer: Signer) -> None:
        self.settings = settings
        self.signer = signer
        self.root = settings.fixture_root
        self.real_root = os.path.realpath(self.root)
        self.stats = StoreStats()
        self.answers: ByteBoundedLRU[Prepared] = ByteBoundedLRU(settings.cache_max_bytes)
        self._memo: OrderedDict[tuple[UseCase, str], _Memo] = OrderedDict()
        self._resolving: dict[Any, asyncio.Future[Any]] = {}
        self._building: dict[Any, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._orgs = _OrgIndex(self.root, settings.organisations)
        self._orgs_checked_at = -1e18
        self.problems: dict[Path, str] = {}

    # ------------------------------------------------------------------ serving

    async def answer(self, content_id: ContentId) -> Answer | None:
        """The prepared answer for ``content_id``, or ``None`` when nothing resolves."""
        memo_key = (content_id.use_case, content_id.subject)
        now = time.monotonic()
        memo = self._memo.get(memo_key)
        revalidate = self.settings.revalidate_seconds
        # With revalidate_seconds > 0 a hot id never waits for the disk: a due check runs in the
        # background and the answer in hand is served meanwhile (stale-while-revalidate).
        if memo is not None and revalidate > 0:
            cached = self.answers.get(memo.resolution.cache_key) if memo.resolution is not None else None
            if memo.resolution is None or cached is not None:
                if now - memo.checked_at >= revalidate:
                    memo.checked_at = now  # one background check at a time
                    self._background(self._refresh(memo_key))
                if cached is None or memo.resolution is None:
                    return None
                self.stats.hits += 1
                return Answer(cached.body, memo.resolution, cached.problems)
        try:
            resolution = await self._once(self._resolving, memo_key, lambda: self._resolve(memo_key))
        except OSError as exc:
            raise FixtureError("fixture_unreadable", f"cannot read the fixture folder: {exc.strerror}") from None
        if revalidate > 0:  # with 0 every request looks at the disk: a memo would never be read
            self._remember(memo_key, _Memo(resolution, now))
        if resolution is None:
            return None
        cached = await self.prepared(content_id.use_case, resolution)
        return Answer(cached.body, resolution, cached.problems)

    async def prepared(self, use_case: UseCase, resolution: Resolution) -> Prepared:
        """The encoded answer for ``resolution``: from the cache, or built once for all who wait."""
        cached = self.answers.get(resolution.cache_key)
        if cached is not None:
            self.stats.hits += 1
            return cached
        prepared: Prepared = await self._once(
            self._building, resolution.cache_key, lambda: self._prepare(use_case, resolution)
        )
        return prepared

    @staticmethod
    async def _once(pending: dict[Any, asyncio.Future[Any]], key: Any, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``work`` once for concurrent callers with the same key; all get its result.

        Without this, a burst of requests for a cold id would each read, decode and sign
        the same files at once, stalling the event loop for everyone.
        """
        future = pending.get(key)
        if future is None:
            future = asyncio.ensure_future(work())
            pending[key] = future
            future.add_done_callback(lambda _: pending.pop(key, None))
        return await asyncio.shield(future)

    def _background(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, memo_key: tuple[UseCase, str]) -> None:
        """Look at the disk again for one id, off the request path; prepare a changed answer."""
        try:
            resolution = await self._once(self._resolving, memo_key, lambda: self._resolve(memo_key))
        except OSError as exc:
            log.error("cannot read the fixture folder: %s", exc)
            return
        self._remember(memo_key, _Memo(resolution, time.monotonic()))
        if resolution is not None and self.answers.get(resolution.cache_key) is None:
            try:
                await self._once(self._building, resolution.cache_key, lambda: self._prepare(memo_key[0], resolution))
            except FixtureError as exc:
                log.error("%s", exc)
                self._memo.pop(memo_key, None)  # the next request takes the slow path and reports it

    async def _resolve(self, memo_key: tuple[UseCase, str]) -> Resolution | None:
        self.stats.revalidations += 1
        return await asyncio.to_thread(self.resolve, *memo_key)

    async def _prepare(self, use_case: UseCase, resolution: Resolution) -> Prepared:
        prepared = await self._build(use_case, resolution)
        self.answers.put(resolution.cache_key, prepared, len(prepared.body))
        return prepared

    def _remember(self, key: tuple[UseCase, str], memo: _Memo) -> None:
        self._memo[key] = memo
        self._memo.move_to_end(key)
        if len(self._memo) > MEMO_ENTRIES:
            self._memo.popitem(last=False)

    async def _build(self, use_case: UseCase, resolution: Resolution) -> Prepared:
        contents: list[tuple[str, Path, bytes]] = []
        for key, path in resolution.files:
            try:
                async with aiofiles.open(path, "rb") as handle:
                    data = await handle.read()
            except OSError as exc:
                raise FixtureError(
                    "fixture_unreadable", f"cannot read fixture {self._relative(path)}: {exc.strerror}"
                ) from None
            self.stats.file_reads += 1
            contents.append((key, path, data))
        self.stats.builds += 1
        prepared = await asyncio.to_thread(self._encode, use_case, contents)
        for _, path, _ in contents:  # update on the event loop, where /healthz reads it
            self.problems.pop(self._relative(path), None)
        for problem in prepared.problems:
            self.problems[problem.path] = problem.reason
        if prepared.problems and self.settings.strict:
            raise FixtureError(
                "fixture_invalid",
                "; ".join(str(p) for p in prepared.problems) + " (fixtures.strict is on)",
                prepared.problems,
            )
        return prepared

    def _encode(self, use_case: UseCase, contents: list[tuple[str, Path, bytes]]) -> Prepared:
        problems = []
        elements = []
        for key, path, data in contents:
            recorded = jws_payload(data) if key == "back" and is_recorded_back(path) else None
            if isinstance(recorded, str):
                reason: str | None = recorded
            else:
                image = data if recorded is None else recorded[1]
                reason = jpeg_problem(image, card=use_case is UseCase.CARD, tolerance=self.settings.aspect_tolerance)
            if reason is not None:
                problem = FixtureProblem(self._relative(path), reason)
                problems.append(problem)
                log.warning("fixture problem: %s", problem)
            if key == "back" and recorded is not None:  # recorded from a real provider: as it is, never re-signed
                compact = recorded[0] if not isinstance(recorded, str) else data.decode("ascii", "replace").strip()
                elements.append(jws_element("back", compact))
            elif key == "back":
                elements.append(jws_element("back", self.signer.sign(data)))
            elif key == "auth":
                elements.append(image_element("auth_image", data))
            else:
                elements.append(image_element(key, data))
        return Prepared(answer_body(elements), tuple(problems))

    # ------------------------------------------------------------------ resolution (runs in a thread)

    def resolve(self, use_case: UseCase, subject: str) -> Resolution | None:
        """Which files answer ``subject`` for ``use_case``; blocking, call off the event loop."""
        keys = SIDES_FOR[use_case]
        found = self._user_files(subject, keys)
        if found:
            return self._resolution("user", subject, found)
        self._refresh_orgs()
        for org in self._orgs.candidates(subject):
            found = self._org_files(org, keys)
            if found:
                return self._resolution("organisation", org.name, found)
        return self._default_resolution(keys)

    def resolve_owner(self, use_case: UseCase, level: str, owner: str) -> Resolution | None:
        """The files a user, an organisation or the default answers with, whoever asks; blocking.

        For the web page's previews, which show each owner's card without a member id.
        """
        keys = SIDES_FOR[use_case]
        if level == "user":
            found = self._user_files(owner, keys)
            return self._resolution("user", owner, found) if found else None
        if level == "organisation":
            self._refresh_orgs()
            for org in self._orgs.orgs:
                if org.name == owner:
                    found = self._org_files(org, keys)
                    return self._resolution("organisation", org.name, found) if found else None
            return None
        return self._default_resolution(keys) if level == "default" else None

    def _user_files(self, subject: str, keys: tuple[str, ...]) -> list[tuple[str, str, int, int, int]]:
        configured = self.settings.users.get(subject)
        if configured is not None and getattr(configured, keys[0]) is not None:
            found = self._configured_files(configured, keys)
            if found:
                return found
        return self._folder_files(self.root / USERS_DIR / subject, keys) if SAFE_NAME.match(subject) else []

    def _org_files(self, org: _Org, keys: tuple[str, ...]) -> list[tuple[str, str, int, int, int]]:
        if getattr(org.images, keys[0]) is not None:
            return self._configured_files(org.images, keys)
        return self._folder_files(org.folder, keys)

    def _default_resolution(self, keys: tuple[str, ...]) -> Resolution | None:
        if self.settings.default_enabled:
            found = self._folder_files(self.root / DEFAULT_DIR, keys)
            if found:
                return self._resolution("default", "default", found)
        return None

    def _refresh_orgs(self) -> None:
        now = time.monotonic()
        if now - self._orgs_checked_at >= self.settings.revalidate_seconds:
            self._orgs_checked_at = now
            self._orgs.refresh()

    def _inside(self, path: Path) -> str | None:
        """The real path when ``path`` lies inside the fixture folder, else ``None``."""
        real = os.path.realpath(path)
        return real if real.startswith(self.real_root + os.sep) else None

    def _stat(self, key: str, path: Path) -> tuple[str, str, int, int, int] | None:
        real = self._inside(path)
        if real is None:
            if os.path.lexists(path):
                log.warning("refusing %s: it points outside the fixture folder %s", path, self.root)
            return None
        try:
            st = os.stat(real)
        except FileNotFoundError:
            return None
        if not os.path.isfile(real):
            return None
        return (key, real, st.st_size, st.st_mtime_ns, st.st_ino)

    def _folder_files(self, folder: Path, keys: tuple[str, ...]) -> list[tuple[str, str, int, int, int]]:
        found = []
        for key in keys:
            for extension in extensions_for(key):
                entry = self._stat(key, folder / f"{key}{extension}")
                if entry is not None:
                    found.append(entry)
                    break
            else:
                if key == keys[0]:
                    return []  # no primary image here: this level does not answer
        return found

    def _configured_files(self, images: UserImages, keys: tuple[str, ...]) -> list[tuple[str, str, int, int, int]]:
        found = []
        for key in keys:
            path = getattr(images, key)
            entry = self._stat(key, path) if path is not None else None
            if entry is None:
                if key == keys[0]:
                    if path is not None:
                        log.warning("configured fixture %s is missing", path)
                    return []
                continue
            found.append(entry)
        return found

    def _resolution(self, level: str, owner: str, found: list[tuple[str, str, int, int, int]]) -> Resolution:
        return Resolution(level, owner, tuple((key, Path(real)) for key, real, *_ in found), tuple(found))

    def invalidate(self) -> None:
        """Look at the disk again on the next request (after an upload or a delete)."""
        self._memo.clear()
        self._orgs_checked_at = -1e18

    def refresh_organisations(self) -> None:
        """Re-read organisation folders and members now; blocking."""
        self._orgs.refresh()

    def organisations(self) -> tuple[_Org, ...]:
        return self._orgs.orgs

    def relative(self, path: Path) -> Path:
        """``path`` relative to the fixture folder, for messages (never an absolute path)."""
        return self._relative(Path(os.path.realpath(path)))

    def _relative(self, path: Path) -> Path:
        try:
            return Path(path).relative_to(self.real_root)
        except ValueError:
            return Path(path)

    # ------------------------------------------------------------------ start-up check

    def count_folders(self, limit: int) -> int:
        """User and organisation folders, counted up to ``limit`` (listing names, reading no image)."""
        count = 0
        for top in (USERS_DIR, ORGS_DIR):
            try:
                with os.scandir(self.root / top) as entries:
                    for _ in entries:
                        count += 1
                        if count >= limit:
                            return count
            except FileNotFoundError:
                continue
        return count

    def fixture_files(self) -> Iterator[tuple[Path, bool]]:
        """Every image file the store may serve, with whether it is a card side."""
        for top in (USERS_DIR, ORGS_DIR):
            folder = self.root / top
            if folder.is_dir():
                for owner in sorted(folder.iterdir()):
                    if owner.is_dir():
                        yield from self._images_in(owner)
        yield from self._images_in(self.root / DEFAULT_DIR)
        mapped = list(self.settings.users.values()) + [org.images for org in self.settings.organisations]
        for images in mapped:
            for side in SIDES:
                path = getattr(images, side)
                if path is not None:
                    yield path, is_card_side(side)

    def _images_in(self, folder: Path) -> Iterator[tuple[Path, bool]]:
        for side in SIDES:
            for extension in extensions_for(side):
                path = folder / f"{side}{extension}"
                if path.is_file():
                    yield path, is_card_side(side)

    def check_all(self) -> list[FixtureProblem]:
        """Decode every fixture once; blocking, call off the event loop. Reports, never raises."""
        problems: list[FixtureProblem] = []
        for path, card in self.fixture_files():
            relative = self._relative(Path(os.path.realpath(path)))
            if self._inside(path) is None:
                problems.append(FixtureProblem(relative, "points outside the fixture folder; never served"))
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.append(FixtureProblem(relative, f"cannot read: {exc.strerror}"))
                continue
            recorded = jws_payload(data) if is_recorded_back(path) else None
            if isinstance(recorded, str):
                reason: str | None = recorded
            else:
                image = data if recorded is None else recorded[1]
                reason = jpeg_problem(image, card=card, tolerance=self.settings.aspect_tolerance)
            if reason is not None:
                problems.append(FixtureProblem(relative, reason))
        self._orgs.refresh()
        problems.extend(self._orgs.problems)
        for problem in problems:
            self.problems[problem.path] = problem.reason
        return problems
