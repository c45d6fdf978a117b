"""Fixture images: which file answers a content id, and the prepared answer for it.

Resolution, for a subject (the content id without its ``PROV:``/``AUTH:`` prefix):

1. ``fixtures.users.<subject>`` in config, when it names the image asked for;
2. the folder ``users/<subject>/`` (only when the subject is a plain folder name);
3. the first organisation, exact members before patterns, that has the image;
4. ``default/``, when ``fixtures.default`` is on.

A content id never becomes a path by itself: only names matching ``SAFE_NAME`` are
looked up as folders, and every file found is checked to lie inside the fixture
folder after symlinks are followed.

The encoded answer is cached in memory, keyed by the level, the owner and the files'
identity (path, size, mtime, inode), so a hot id costs two dictionary lookups and no disk
read or base64 work.
Files on disk are looked at again at most every ``cache.revalidate_seconds``.

A cold id (a user asked for the first time) costs one hop into the build thread, which
resolves it (an ``lstat`` per file name in the user's folder), reads its files,
base64-encodes them and signs the back; the cold ids queued meanwhile go in the same hop.
A payload signed before is not signed again (see :meth:`Signer.sign`). Each file is checked
(decoded by :func:`jpeg_problem`) once, and bytes checked before (a copy) are not decoded
again: with ``fixtures.strict`` before it is served; otherwise after, in the background, by
one thread of low priority, and a problem is reported (log, ``/healthz``, the web page) when
the check has run. The files waiting for their check are bounded: when ``CHECK_BACKLOG``
wait, the serving thread checks the file itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import re
import stat
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from multidict import CIMultiDict

from .cache import ByteBoundedLRU
from .config import SAFE_NAME, Organisation, Settings, UserImages
from .contract import ContentId, UseCase, answer_of_parts, image_part, jws_part
from .generate import auth_jpeg, card_jpeg
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

GENERATED_LABEL = 40  # characters of the subject written on a generated card
MEMO_ENTRIES = 20_000  # ids remembered, a few hundred bytes each; a forgotten id costs a lookup, not a rebuild
MEMBERS_FILE_LIMIT = 4 * 1024 * 1024
CHECK_BACKLOG = 20_000  # files waiting for their background check; with more, the serving thread checks
CHECKED_ENTRIES = 50_000  # files whose check result is remembered, so each is decoded once; ~350 bytes each
CHECK_BATCH = 32  # files checked per hop into the checking thread
# Threads that resolve, read, encode and sign cold ids. Few: their Python code takes turns on the GIL
# with the event loop, and each more thread is one more the loop may wait behind.
BUILD_THREADS = 1
COLD_BATCH = 32  # cold ids per hop at most: each waits for the whole of its batch, whose answers live together

# An id's memo: its key (use case value, subject) and value (the Resolution.cache_key of its answer,
# None when nothing resolves; when it was looked at): strings and numbers only, which the garbage
# collector stops tracking, so a full memo adds nothing to its passes.
MemoKey = tuple[str, str]
Memo = tuple[str | None, float]
# what a build thread made of one cold id (see FixtureStore._cold), or why it could not
_ColdResult = tuple["Resolution | None", "_Built | None"] | Exception
# a cold id and the future its requests wait on
_ColdWaiter = tuple[MemoKey, "asyncio.Future[tuple[Resolution | None, Prepared | None]]"]
# (key, real path, size, mtime_ns, inode) of each file in an answer
FileEntry = tuple[str, str, int, int, int]
Fingerprint = tuple[FileEntry, ...]
# (real path, size, mtime_ns, inode): one version of one file, checked once
FileKey = tuple[str, int, int, int]
_STALE = "stale"  # a check's file changed (or went) before it ran: the new version is checked when served


def read_file(path: str) -> bytes:
    """A fixture's bytes; blocking."""
    with open(path, "rb") as handle:
        return handle.read()


def _lower_priority() -> None:
    """Run the calling thread (the background checker) at the lowest priority, so checks yield to serving."""
    if sys.platform == "linux":  # there a thread has its own nice value; elsewhere the whole process would
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class FixtureError(Exception):
    """A fixture cannot be served (unreadable, or invalid under ``strict``)."""

    def __init__(self, code: str, message: str, problems: tuple[FixtureProblem, ...] = (), status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems
        self.status = status  # 503 for shutting_down: the server is stopping, not broken


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which images answer a content id, and why.

    One is kept per cached answer (in :class:`Prepared`), not per content id: the memo of ids
    holds only strings and numbers, which the garbage collector stops tracking, because its full
    passes over tens of thousands of tracked objects took 50-80 ms and made the cold p99.
    """

    level: str  # "user", "organisation", "default" or "generated"
    owner: str  # the subject, the organisation's name, or "default"
    fingerprint: Fingerprint
    cache_key: str = field(init=False)  # level, owner and fingerprint as one string: its hash is computed once
    label: str = field(init=False)  # for the log and the X-Content-Provider-Resolved header (header-safe)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_key", repr((self.level, self.owner, self.fingerprint)))
        text = self.level if self.level == "default" else f"{self.level} {self.owner}"
        object.__setattr__(self, "label", quote(text, safe=" /:@+=-._~"))

    @property
    def files(self) -> tuple[tuple[str, Path], ...]:
        """Each image's side and real path (none for a generated answer: it is drawn, not read)."""
        if self.level == "generated":
            return ()
        return tuple((key, Path(real)) for key, real, *_ in self.fingerprint)


@dataclass(frozen=True, slots=True)
class Prepared:
    """An encoded 200 answer for a resolution; shared by every id that resolves to it."""

    body: bytes
    problems: tuple[FixtureProblem, ...]
    resolution: Resolution


@dataclass
class _Built:
    """What a worker thread made of a resolution's files, handed to the event loop."""

    prepared: Prepared
    reads: int
    checked: list[tuple[FileKey, str | None]]  # checks done now: file, reason (None: fine)
    unchecked: list[tuple[FileKey, bool]]  # left to the background: file, whether it is a card side


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
    checks: int = 0  # images decoded to check them (start-up check excluded)


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
        self._memo: OrderedDict[MemoKey, Memo] = OrderedDict()
        self._resolving: dict[Any, asyncio.Future[Any]] = {}
        self._building: dict[Any, asyncio.Future[Any]] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._orgs = _OrgIndex(self.root, settings.organisations)
        self._orgs_checked_at = -1e18
        self.problems: dict[Path, str] = {}
        # the image check, once per file version: results (loop-owned; threads only read them) and the backlog
        self._checked: OrderedDict[FileKey, str | None] = OrderedDict()
        self._unchecked: dict[FileKey, bool] = {}
        # the same by content (SHA-256, card side, recorded back), written by the threads that check
        self._checked_content: OrderedDict[tuple[bytes, bool, bool], str | None] = OrderedDict()
        self._checked_content_lock = threading.Lock()
        self._checking: asyncio.Task[None] | None = None
        self._checker: ThreadPoolExecutor | None = None
        self._builder: ThreadPoolExecutor | None = None
        self._cold_queue: list[_ColdWaiter] = []  # cold ids waiting for a free build thread
        self._cold_batches = 0  # batches of cold ids in the build threads
        self._closed = False

    def close(self) -> None:
        """Stop the background checks and the builds (at shutdown); cold ids still waiting hear so."""
        self._closed = True
        self._fail_cold(self._cold_queue)
        self._cold_queue = []
        if self._checking is not None:
            self._checking.cancel()
        for pool in (self._checker, self._builder):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._checker = self._builder = None

    def _in_builder(self, work: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Run ``work(*args)`` in one of the BUILD_THREADS threads."""
        if self._builder is None:
            self._builder = ThreadPoolExecutor(BUILD_THREADS, "fixture-build")
        return asyncio.get_running_loop().run_in_executor(self._builder, work, *args)

    # ------------------------------------------------------------------ serving

    async def answer(self, content_id: ContentId) -> Answer | None:
        """The prepared answer for ``content_id``, or ``None`` when nothing resolves."""
        memo_key = (content_id.use_case.value, content_id.subject)
        now = time.monotonic()
        memo = self._memo.get(memo_key)
        revalidate = self.settings.revalidate_seconds
        # With revalidate_seconds > 0 a hot id never waits for the disk: a due check runs in the
        # background and the answer in hand is served meanwhile (stale-while-revalidate).
        if memo is not None and revalidate > 0:
            answer_key, checked_at = memo
            cached = self.answers.get(answer_key) if answer_key is not None else None
            if answer_key is None or cached is not None:
                if now - checked_at >= revalidate:
                    self._memo[memo_key] = (answer_key, now)  # one background check at a time
                    self._background(self._refresh(memo_key))
                if cached is None:
                    return None
                self.stats.hits += 1
                return Answer(cached.body, cached.resolution, cached.problems)
        try:
            resolution, built = await self._once(self._resolving, memo_key, lambda: self._cold(memo_key))
        except OSError as exc:
            raise FixtureError("fixture_unreadable", f"cannot read the fixture folder: {exc.strerror}") from None
        if revalidate > 0:  # with 0 every request looks at the disk: a memo would never be read
            self._remember(memo_key, (None if resolution is None else resolution.cache_key, now))
        if resolution is None:
            return None
        # a user's answer was made in the same hop as the resolution; an organisation's or the
        # default's (shared by many ids) is made once for all who wait, by prepared()
        cached = built or await self.prepared(content_id.use_case, resolution)
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

    async def _refresh(self, memo_key: MemoKey) -> None:
        """Look at the disk again for one id, off the request path; prepare a changed answer."""
        try:
            resolution, _ = await self._once(self._resolving, memo_key, lambda: self._cold(memo_key))
            self._remember(memo_key, (None if resolution is None else resolution.cache_key, time.monotonic()))
            if resolution is not None and self.answers.get(resolution.cache_key) is None:
                use_case = UseCase(memo_key[0])
                await self._once(self._building, resolution.cache_key, lambda: self._prepare(use_case, resolution))
        except OSError as exc:
            log.error("cannot read the fixture folder: %s", exc)
        except FixtureError as exc:
            log.error("%s", exc)
            self._memo.pop(memo_key, None)  # the next request takes the slow path and reports it

    def _cold(self, memo_key: MemoKey) -> asyncio.Future[tuple[Resolution | None, Prepared | None]]:
        """Resolve an id in a worker thread and, for a user's own files not in the cache, read,
        encode and sign them in the same hop; the future's result is the resolution and the answer
        made, if one was.

        Cold ids go in batches: each build thread, when free, takes every id queued meanwhile, and
        hands all its results back to the event loop in one call, so a burst of cold ids costs the
        loop one hop per batch rather than one per id."""
        self.stats.revalidations += 1
        future: asyncio.Future[tuple[Resolution | None, Prepared | None]] = asyncio.get_running_loop().create_future()
        if self._closed:  # close() has told those queued already
            self._fail_cold([(memo_key, future)])
            return future
        self._cold_queue.append((memo_key, future))
        if self._cold_batches < BUILD_THREADS:
            self._start_cold_batch()
        return future

    @staticmethod
    def _fail_cold(waiting: list[_ColdWaiter], why: str = "the server is shutting down") -> None:
        for _, future in waiting:
            if not future.done():
                future.set_exception(FixtureError("shutting_down", why, status=503))

    def _start_cold_batch(self) -> None:
        batch = self._cold_queue[:COLD_BATCH]
        del self._cold_queue[:COLD_BATCH]
        loop = asyncio.get_running_loop()
        if self._builder is None:
            self._builder = ThreadPoolExecutor(BUILD_THREADS, "fixture-build")
        keys = [memo_key for memo_key, _ in batch]
        try:
            done = self._builder.submit(self._resolve_and_make_all, keys, self._check_now())
        except RuntimeError as exc:  # the pool was shut down meanwhile
            self._fail_cold(batch, f"the fixture build thread stopped: {exc}")
            return
        self._cold_batches += 1

        def hand_back(_: object) -> None:  # in the build thread: one wake-up of the loop per batch
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
                loop.call_soon_threadsafe(self._finish_cold_batch, batch, done)

        done.add_done_callback(hand_back)

    def _finish_cold_batch(self, batch: list[_ColdWaiter], done: Future[list[_ColdResult]]) -> None:
        """On the event loop: accept each id's answer and wake its waiters; start the next batch."""
        self._cold_batches -= 1
        try:
            self._hand_out(batch, done)
        finally:
            while self._cold_queue and self._cold_batches < BUILD_THREADS and not self._closed:
                self._start_cold_batch()

    def _hand_out(self, batch: list[_ColdWaiter], done: Future[list[_ColdResult]]) -> None:
        try:
            results = done.result()
        except BaseException as exc:  # cancelled at shutdown, or a bug: every id of the batch hears of it
            stopped = FixtureError("shutting_down", f"the fixture build thread stopped: {exc!r}", status=503)
            results = [stopped] * len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
                continue
            resolution, built = result
            try:
                prepared = None if resolution is None or built is None else self._accept(resolution, built)
            except Exception as exc:  # FixtureError under strict; anything else must not leave waiters hanging
                future.set_exception(exc)
                continue
            future.set_result((resolution, prepared))

    def _resolve_and_make_all(self, keys: list[MemoKey], check_now: bool) -> list[_ColdResult]:
        """A batch of cold ids, each with its own result or error; blocking, in a build thread."""
        users = self._real_users_folder()
        return [self._resolve_and_make_one(key, check_now, users) for key in keys]

    def _resolve_and_make_one(self, key: MemoKey, check_now: bool, users: str | None) -> _ColdResult:
        """One id's result, or its error (an unreadable file, say), which is not its batch's: caught here,
        where the traceback holds no other id's answer alive."""
        try:
            return self._resolve_and_make(UseCase(key[0]), key[1], check_now, users)
        except Exception as exc:
            return exc

    def _resolve_and_make(
        self, use_case: UseCase, subject: str, check_now: bool, users: str | None = None
    ) -> tuple[Resolution | None, _Built | None]:
        resolution = self.resolve(use_case, subject, users)
        if resolution is None or resolution.level not in ("user", "generated"):  # only this id's own answer
            return resolution, None
        if self.answers.peek(resolution.cache_key) is not None:
            return resolution, None
        return resolution, self._make(use_case, resolution, check_now)

    async def _prepare(self, use_case: UseCase, resolution: Resolution) -> Prepared:
        built = await self._in_builder(self._make, use_case, resolution, self._check_now())
        return self._accept(resolution, built)

    def _remember(self, key: MemoKey, memo: Memo) -> None:
        self._memo[key] = memo
        self._memo.move_to_end(key)
        if len(self._memo) > MEMO_ENTRIES:
            self._memo.popitem(last=False)

    # ------------------------------------------------------------------ building and checking

    def _check_now(self) -> bool:
        """Whether a build checks its files itself: under ``strict``, or when the backlog is full."""
        return self.settings.strict or len(self._unchecked) >= CHECK_BACKLOG

    def _make(self, use_case: UseCase, resolution: Resolution, check_now: bool) -> _Built:
        """Read, check (when ``check_now`` and not checked before), encode and sign; blocking, in a worker thread."""
        if resolution.level == "generated":
            return _Built(self._draw(use_case, resolution), 0, [], [])
        problems: list[FixtureProblem] = []
        checked: list[tuple[FileKey, str | None]] = []
        unchecked: list[tuple[FileKey, bool]] = []
        elements = []
        card = use_case is UseCase.CARD
        for key, real, size, mtime, inode in resolution.fingerprint:
            try:
                data = read_file(real)
            except OSError as exc:
                relative = self._relative(Path(real))
                raise FixtureError("fixture_unreadable", f"cannot read fixture {relative}: {exc.strerror}") from None
            file_key = (real, size, mtime, inode)
            reason = self._checked.get(file_key, _STALE)  # a dict read: safe beside the loop's writes
            if reason == _STALE:
                if check_now:
                    reason = self._content_problem(real, data, card)
                    checked.append((file_key, reason))
                else:
                    reason = None
                    unchecked.append((file_key, card))
            if reason is not None:
                problems.append(FixtureProblem(self._relative(Path(real)), reason))
            if key == "back" and is_recorded_back(
                Path(real)
            ):  # recorded from a real provider: as it is, never re-signed
                recorded = jws_payload(data)
                compact = recorded[0] if not isinstance(recorded, str) else data.decode("ascii", "replace").strip()
                elements.append(jws_part("back", compact))
            elif key == "back":
                elements.append(jws_part("back", self.signer.sign(data)))
            elif key == "auth":
                elements.append(image_part("auth_image", data))
            else:
                elements.append(image_part(key, data))
        prepared = Prepared(answer_of_parts(elements), tuple(problems), resolution)
        return _Built(prepared, len(resolution.fingerprint), checked, unchecked)

    def _accept(self, resolution: Resolution, built: _Built) -> Prepared:
        """On the event loop: note the checks, queue the rest, refuse under strict, cache the answer."""
        self.stats.file_reads += built.reads
        self.stats.builds += 1
        for file_key, reason in built.checked:
            self._record_check(file_key, reason)
        for file_key, card in built.unchecked:
            self._queue_check(file_key, card)
        prepared = built.prepared
        if prepared.problems and self.settings.strict:
            raise FixtureError(
                "fixture_invalid",
                "; ".join(str(p) for p in prepared.problems) + " (fixtures.strict is on)",
                prepared.problems,
            )
        self.answers.put(resolution.cache_key, prepared, len(prepared.body))
        return prepared

    def _draw(self, use_case: UseCase, resolution: Resolution) -> Prepared:
        """A card (front, signed back) or an auth image drawn for the resolution's subject: the same
        images for the same subject on every run; blocking (in the build thread, one hop for all of it)."""
        subject = resolution.owner
        label = subject if len(subject) <= GENERATED_LABEL else subject[: GENERATED_LABEL - 1] + "…"
        if use_case is UseCase.AUTH:
            parts = [image_part("auth_image", auth_jpeg(label, optimize=False))]
        else:
            back = card_jpeg(label, "back", optimize=False)
            parts = [
                image_part("front", card_jpeg(label, "front", optimize=False)),
                jws_part("back", self.signer.sign(back)),
            ]
        return Prepared(answer_of_parts(parts), (), resolution)

    def _record_check(self, file_key: FileKey, reason: str | None) -> None:
        """A check's result, on the event loop, where /healthz reads the problems."""
        self.stats.checks += 1
        self._checked[file_key] = reason
        self._checked.move_to_end(file_key)
        if len(self._checked) > CHECKED_ENTRIES:
            self._checked.popitem(last=False)
        if reason is None:
            if self.problems:  # a problem reported for an earlier version of this file is gone
                self.problems.pop(self._relative(Path(file_key[0])), None)
        else:
            relative = self._relative(Path(file_key[0]))
            log.warning("fixture problem: %s", FixtureProblem(relative, reason))
            self.problems[relative] = reason

    def _queue_check(self, file_key: FileKey, card: bool) -> None:
        if file_key in self._checked or file_key in self._unchecked:
            return
        self._unchecked[file_key] = card
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check_backlog())

    async def _check_backlog(self) -> None:
        """Check the files served unchecked, a batch per hop, in one thread of low priority."""
        loop = asyncio.get_running_loop()
        if self._checker is None:
            self._checker = ThreadPoolExecutor(1, "fixture-check", initializer=_lower_priority)
        while self._unchecked:
            batch = list(itertools.islice(self._unchecked.items(), CHECK_BATCH))
            try:
                reasons = await loop.run_in_executor(self._checker, self._check_files, batch)
            except Exception:  # never lose the backlog's bound: drop the batch, it is checked when built again
                log.exception("checking fixtures failed")
                reasons = [_STALE] * len(batch)
            for (file_key, _), reason in zip(batch, reasons, strict=True):
                self._unchecked.pop(file_key, None)
                if reason != _STALE:
                    self._record_check(file_key, reason)

    def _check_files(self, batch: list[tuple[FileKey, bool]]) -> list[str | None]:
        """Check each file if it is still the version served; blocking.

        A file with the same bytes as one checked before (fixture sets are often one image copied
        into every user's folder) gets that check's result without being decoded again."""
        reasons: list[str | None] = []
        for (real, size, mtime, inode), card in batch:
            try:
                with open(real, "rb") as handle:
                    st = os.fstat(handle.fileno())
                    data = handle.read() if (st.st_size, st.st_mtime_ns, st.st_ino) == (size, mtime, inode) else None
            except OSError:
                data = None
            if data is None:
                reasons.append(_STALE)
                continue
            reasons.append(self._content_problem(real, data, card))
        return reasons

    def _content_problem(self, real: str, data: bytes, card: bool) -> str | None:
        """:meth:`_file_problem`, decoding only bytes not checked before; blocking, any thread."""
        content = (hashlib.sha256(data).digest(), card, is_recorded_back(Path(real)))
        reason = self._checked_content.get(content, _STALE)
        if reason == _STALE:
            reason = self._file_problem(real, data, card)
            with self._checked_content_lock:
                self._checked_content[content] = reason
                if len(self._checked_content) > CHECKED_ENTRIES:
                    self._checked_content.popitem(last=False)
        return reason

    def _file_problem(self, real: str, data: bytes, card: bool) -> str | None:
        """Why a fixture file is not a good image, or ``None``; a recorded ``back.jws`` by its payload."""
        if is_recorded_back(Path(real)):
            recorded = jws_payload(data)
            if isinstance(recorded, str):
                return recorded
            data = recorded[1]
        return jpeg_problem(data, card=card, tolerance=self.settings.aspect_tolerance)

    async def checks_done(self) -> None:
        """Wait until every file served so far has been checked (tests use it)."""
        while self._checking is not None and not self._checking.done():
            await asyncio.shield(self._checking)

    async def check(self, resolution: Resolution) -> tuple[FixtureProblem, ...]:
        """The problems of a resolution's files, checking those not checked yet (for the web page)."""
        if resolution.level == "generated":
            return ()  # drawn, not read: its fingerprint names no file
        batch = [
            ((real, size, mtime, inode), is_card_side(key)) for key, real, size, mtime, inode in resolution.fingerprint
        ]
        unknown = [item for item in batch if item[0] not in self._checked]
        if unknown:
            reasons = await asyncio.to_thread(self._check_files, unknown)
            for (file_key, _), reason in zip(unknown, reasons, strict=True):
                if reason != _STALE:
                    self._record_check(file_key, reason)
        problems = []
        for file_key, _ in batch:
            reason = self._checked.get(file_key)
            if reason is not None:
                problems.append(FixtureProblem(self._relative(Path(file_key[0])), reason))
        return tuple(problems)

    # ------------------------------------------------------------------ resolution (runs in a thread)

    def resolve(self, use_case: UseCase, subject: str, users: str | None = None) -> Resolution | None:
        """Which files answer ``subject`` for ``use_case``; blocking, call off the event loop.

        ``users``: the real path of ``users/`` when the caller worked it out (once for a batch)."""
        keys = SIDES_FOR[use_case]
        found = self._user_files(subject, keys, users)
        if found:
            return self._resolution("user", subject, found)
        self._refresh_orgs()
        for org in self._orgs.candidates(subject):
            found = self._org_files(org, keys)
            if found:
                return self._resolution("organisation", org.name, found)
        if self.settings.default_generated:
            return self._generated(use_case, subject)
        return self._default_resolution(keys)

    @staticmethod
    def _generated(use_case: UseCase, subject: str) -> Resolution:
        """``fixtures.default: generated``: images drawn for this subject (no file; its own cache entry)."""
        return Resolution("generated", subject, ((f"generated {use_case.value}", subject, 0, 0, 0),))

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

    def _user_files(self, subject: str, keys: tuple[str, ...], users: str | None = None) -> list[FileEntry]:
        configured = self.settings.users.get(subject)
        if configured is not None and getattr(configured, keys[0]) is not None:
            found = self._configured_files(configured, keys)
            if found:
                return found
        if not SAFE_NAME.match(subject):
            return []
        folder = self.root / USERS_DIR / subject
        if users is not None:  # users/ is a folder inside the fixture folder: one lstat tells a plain subfolder
            real = f"{users}{os.sep}{subject}"
            try:
                mode = os.lstat(real).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return []
            if stat.S_ISDIR(mode):
                return self._folder_files(folder, keys, real)
        return self._folder_files(folder, keys)

    def _real_users_folder(self) -> str | None:
        """The real path of ``users/`` when it lies inside the fixture folder, else ``None``."""
        real = os.path.realpath(self.root / USERS_DIR)
        return real if real.startswith(self.real_root + os.sep) else None

    def _org_files(self, org: _Org, keys: tuple[str, ...]) -> list[FileEntry]:
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

    def _stat(self, key: str, path: Path) -> FileEntry | None:
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

    def _folder_files(self, folder: Path, keys: tuple[str, ...], real_folder: str | None = None) -> list[FileEntry]:
        """The images of one folder: each name a side may have, in order, until one is there.

        When the folder's real path (``real_folder`` when known) lies inside the fixture folder, one
        ``lstat`` per name tells a plain file (a user folder is usually looked at once, when its id
        is first asked, and this finds its files in about a third of the time that listing the folder
        takes); a symlink, or a folder that leads out, has each file's real path worked out on its own.
        """
        if real_folder is None:
            real_folder = os.path.realpath(folder)
        inside = real_folder.startswith(self.real_root + os.sep)
        found = []
        for key in keys:
            for extension in extensions_for(key):
                name = f"{key}{extension}"
                file: FileEntry | None = None
                if inside:
                    real = f"{real_folder}{os.sep}{name}"
                    try:
                        st = os.lstat(real)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    if stat.S_ISREG(st.st_mode):
                        file = (key, real, st.st_size, st.st_mtime_ns, st.st_ino)
                    elif stat.S_ISLNK(st.st_mode):
                        file = self._stat(key, folder / name)
                    # else a folder where an image should be: missing
                else:
                    file = self._stat(key, folder / name)
                if file is not None:
                    found.append(file)
                    break
            else:
                if key == keys[0]:
                    return []  # no primary image here: this level does not answer
        return found

    def _configured_files(self, images: UserImages, keys: tuple[str, ...]) -> list[FileEntry]:
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

    def _resolution(self, level: str, owner: str, found: list[FileEntry]) -> Resolution:
        return Resolution(level, owner, tuple(found))

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
            real = self._inside(path)
            relative = self._relative(Path(os.path.realpath(path)))
            if real is None:
                problems.append(FixtureProblem(relative, "points outside the fixture folder; never served"))
                continue
            try:
                with open(real, "rb") as handle:
                    st = os.fstat(handle.fileno())
                    data = handle.read()
            except OSError as exc:
                problems.append(FixtureProblem(relative, f"cannot read: {exc.strerror}"))
                continue
            reason = self._file_problem(real, data, card)
            if len(self._checked) < CHECKED_ENTRIES:  # before serving: a file served later is not decoded again
                self._checked[(real, st.st_size, st.st_mtime_ns, st.st_ino)] = reason
            if reason is not None:
                problems.append(FixtureProblem(relative, reason))
        self._orgs.refresh()
        problems.extend(self._orgs.problems)
        for problem in problems:
            self.problems[problem.path] = problem.reason
        return problems
