"""The Redis backend: every replica, on every machine, sees one state.

Keys, all under ``<state.namespace>:``:

- ``generation``: a random id, made when Redis has none (it restarted empty, or was emptied);
  ``version`` goes up by one on every change (rules, images, reset) and ``flush`` on every journal
  read, both counted within a generation: a replica that sees a new one takes everything up again
  and gives Redis its rules if Redis has none (state/redis_scripts.py, ``GENERATION``);
- ``rules``: the rules in force as written, each with a token naming its counters;
- ``c:<token>`` (a rule's count), ``seq:<token>`` (its sequence step per content id),
  ``rl:<token>:<client>`` (a rate-limit window): counted by one Lua script per request that
  matches a rule, so counts are exact across replicas (directives use ``d:<content id>``);
- ``requests``: the journal, a stream capped at ``admin.journal_size`` entries (each
  ``Entry.packed()`` as JSON), written in batches every ``JOURNAL_BATCH_SECONDS``, one script
  call a batch (a version before wrote ``journal``, another format: the two do not mix);
- ``images`` / ``imagever``: uploaded (or deleted: empty) images by canonical path
  (``users/<name>/<side>.jpg``, see fixtures/write.py), and the change each was made at
  (``<generation>:<version>``, never made twice); every replica writes them into its own fixture
  folder, and refuses (logs) a path that names no fixture image or bytes that are not a good JPEG
  for their side. After Redis lost its state they hold only what was uploaded since: each replica
  keeps the files it has;
- ``heartbeats`` and ``alive:<id>``: each replica's heartbeat, with the generation and version
  it has applied and the last journal flush it did, so an admin change or a journal read waits
  until every live replica is there (at most ``ACK_TIMEOUT`` seconds).

Each replica looks at ``generation`` and ``version`` every ``POLL_SECONDS``; that loop also
notices when Redis goes away and comes back. Every value read is checked before use
(state/redis_values.py): a bad one is skipped or replaced, logged once and shown in /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError, ResponseError, WatchError

from content_provider.config.settings import SETTINGS
from content_provider.core.errors import ApiError
from content_provider.core.reader import ConfigError
from content_provider.core.records import Entry, shown
from content_provider.faults.engine import FAULTS, Counted, RemoteCounter
from content_provider.faults.rules import Rule
from content_provider.fixtures.store import STORE
from content_provider.fixtures.write import BadFixturePath, BadImage, FixtureImage, put_image, remove_image
from content_provider.state.base import RuleChange, StateBackend, T, unavailable
from content_provider.state.journal import JOURNAL, Journal
from content_provider.state.redis_scripts import (
    BEAT_SCRIPT,
    COUNT_SCRIPT,
    IMAGE_SCRIPT,
    JOURNAL_SCRIPT,
    REPLICAS_SCRIPT,
    STATE_SCRIPT,
)
from content_provider.state.redis_values import BadValue, BadValues, decode_rules, journal_entry

log = logging.getLogger("content_provider.state")

POLL_SECONDS = 0.05  # how often each replica looks for changes (and whether Redis is there)
ACK_TIMEOUT = 2.0  # an admin change or journal read waits at most this for every live replica
ALIVE_MS = 3000  # a replica that has not beaten its heart for this long is not waited for
JOURNAL_BATCH_SECONDS = 0.01  # journal entries are written together, at most this late
JOURNAL_BUFFER = 50_000  # entries waiting while Redis is slow; past this they are dropped (and counted)
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 2.0
CLOSE_TIMEOUT = 5.0

# what a request asks the count script: the seed, its content id and client, the rules it matched
_Asked = tuple[str, str, str, list[tuple[Rule, str, str]]]
COUNT_BATCH = 256  # requests counted per script call at most (it runs atomically: others wait meanwhile)
JOURNAL_CHUNK = 1000  # entries per script call: a backlog after an outage goes as several


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _RedisJournal(Journal):
    """The journal's hot-path side: entries wait in a list, written in batches by the backend."""

    def __init__(self, backend: RedisState) -> None:
        super().__init__(1)
        self._backend = backend

    def record(self, entry: Entry) -> None:
        self._backend.buffer(entry)


class RedisState(StateBackend, RemoteCounter):
    kind = "redis"

    def __init__(self, app: web.Application) -> None:
        self._app = app
        settings = app[SETTINGS]
        self._url = settings.redis_url or "redis://127.0.0.1:6379/0"
        # typed Any: redis-py's annotations mix bytes and str (decode_responses is off: bytes here)
        self._redis: Any = aioredis.from_url(
            self._url,
            password=settings.redis_password,  # else the URL's, if it has one
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            decode_responses=False,
        )
        self._prefix = settings.state_namespace + ":"
        self._id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._state_script = self._redis.register_script(STATE_SCRIPT)
        self._image_script = self._redis.register_script(IMAGE_SCRIPT)
        self._count_script = self._redis.register_script(COUNT_SCRIPT)
        self._beat_script = self._redis.register_script(BEAT_SCRIPT)
        self._replicas_script = self._redis.register_script(REPLICAS_SCRIPT)
        self._journal_script = self._redis.register_script(JOURNAL_SCRIPT)
        self._reachable = False
        self._generation: str | None = None  # the generation applied here
        self._version = -1  # the version (of that generation) applied here
        self._flushed = 0  # the last flush request (of that generation) done here
        self._image_versions: dict[bytes, bytes] = {}  # each image's change applied here, as Redis holds it
        self._pending: list[Entry] = []
        self._wake = asyncio.Event()
        self._dropped = 0
        self._errors = 0
        self._bad = BadValues(self._prefix)
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_lock = asyncio.Lock()
        # requests waiting for their counts, and the task that counts them (count())
        self._counting: list[tuple[_Asked, asyncio.Future[list[Counted] | None]]] = []
        self._count_calls: asyncio.Future[None] | None = None

    # ------------------------------------------------------------------ life

    def key(self, name: str) -> bytes:
        return (self._prefix + name).encode()

    @property
    def reachable(self) -> bool:
        return self._reachable

    @property
    def journal_dropped(self) -> int:
        return self._dropped

    @property
    def errors(self) -> int:
        return self._errors

    def health(self) -> dict[str, Any]:
        return {
            **super().health(),
            "namespace": self._prefix[:-1],
            "errors": self._errors,
            "bad_values": self._bad.shown(),
        }

    async def start(self) -> None:
        try:
            await self._redis.ping()
            await self._sync()
        except RedisError as exc:
            await self._redis.aclose()
            raise ConfigError(
                f"state.redis_url: cannot reach Redis at {redacted(self._url)}: {exc} "
                "(start redis-server, or set state.backend: memory)"
            ) from None
        self._reachable = True
        self._app[FAULTS].remote = self
        self._app[JOURNAL] = _RedisJournal(self)
        self._tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._write_journal())]
        log.info("shared state in Redis at %s, namespace %s", redacted(self._url), self._prefix[:-1])

    async def close(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):  # a Redis that does not answer must not hold the exit
                await self._close()
        except TimeoutError:
            log.warning("the shared state backend did not close within %g s", CLOSE_TIMEOUT)

    async def _close(self) -> None:
        if self._count_calls is not None:
            self._count_calls.cancel()
        for _, future in self._counting:  # counted here, as while Redis is unreachable
            if not future.done():
                future.set_result(None)
        self._counting = []
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._pending and self._reachable:
            try:
                await self._flush_journal()
            except Exception as exc:  # counted as dropped; the rest of the closing still happens
                log.warning("the last journal entries were not written: %s", exc)
        with contextlib.suppress(RedisError):
            await self._redis.hdel(self.key("heartbeats"), self._id)
            await self._redis.delete(self.key("alive:" + self._id))
        await self._redis.aclose()

    def _lost(self, exc: RedisError) -> None:
        """A command failed: Redis is gone (or stalled), or it refused the command (ResponseError:
        a value of a kind the command cannot work on, which no script here expected)."""
        self._errors += 1
        if isinstance(exc, ResponseError):
            self._bad.report("(a command)", f"Redis refused it: {exc}")
            return
        if self._reachable:
            log.error("lost the shared state backend (%s): serving with the last known rules, admin answers 503", exc)
        self._reachable = False

    def _refused(self, exc: RedisError) -> Exception:
        """What an admin call answers after ``exc`` (see :meth:`_lost`)."""
        self._lost(exc)
        if isinstance(exc, ResponseError):
            return ApiError(503, "state_unavailable", f"Redis refused the change: {exc}; try again")
        return unavailable(str(exc))

    async def _watch(self) -> None:
        """Every POLL_SECONDS: beat the heart, look for changes, notice losing and finding Redis."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if not self._reachable:
                    await self._redis.ping()
                    log.warning("the shared state backend is back; taking up its state")
                    self._version = -1  # take everything again (or give it ours, if Redis lost its state)
                await self._sync()
                self._reachable = True
            except RedisError as exc:
                self._lost(exc)
                if isinstance(exc, ResponseError):  # it answers: a bad value, reported; admin calls may repair it
                    self._reachable = True
            except Exception as exc:  # the watcher outlives anything in the data: log it, keep looking
                self._errors += 1
                if self._bad.due(("(unexpected)", type(exc).__name__)):
                    log.error("shared state not applied: unexpected %s: %s", type(exc).__name__, exc)

    async def _beat(self) -> None:
        replaced = await self._beat_script(
            keys=[self.key("heartbeats"), self.key("alive:" + self._id)],
            args=[self._id, f"{self._generation or '0'} {self._version} {self._flushed}", ALIVE_MS],
        )
        if replaced:
            self._bad.report("heartbeats", f"a {replaced.decode()}, not a hash: replaced")

    def _fresh_generation(self) -> str:
        return secrets.token_hex(8)

    async def _state(self, flush: bool = False) -> tuple[str, int, int]:
        """Redis's generation, version and flush (``flush``: one more, for a journal read), after a
        new generation was made if it had none or held counts that are none."""
        gen, version, flushes, *bad = await self._state_script(
            keys=[self.key("generation"), self.key("version"), self.key("flush")],
            args=[self._fresh_generation(), int(flush)],
        )
        self._bad.pairs(bad)
        return gen.decode(), int(version), int(flushes)

    async def _sync(self) -> None:
        async with self._sync_lock:
            await self._sync_locked()

    async def _sync_locked(self) -> None:
        """Apply what changed since the version applied here; then beat the heart."""
        generation, version, flush = await self._state()
        if generation != self._generation:
            if self._generation is not None:
                log.warning(
                    "the shared state in Redis is a new generation (Redis restarted empty, was emptied, or held a "
                    "change count that is none): taking all of it up again, and giving it our rules if it has none"
                )
            self._generation = generation
            self._version = -1
            self._flushed = 0
            self._image_versions = {}
        if version != self._version:
            await self._apply_rules()
            await self._apply_images()
            self._version = version
        if flush > self._flushed:
            await self._flush_journal()
            self._flushed = flush
        await self._beat()

    async def _seed(self) -> None:
        """Redis has no rules (it lost its state): the rules in force here become the shared ones,
        unless another replica was first."""
        engine = self._app[FAULTS]
        stored = [{"token": engine.tokens.get(rule.name) or self._token(), "spec": rule.spec} for rule in engine.rules]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("rules"), json.dumps({"rules": stored}).encode(), nx=True)
            pipe.incr(self.key("version"))
            await pipe.execute()

    @staticmethod
    def _token() -> str:
        return secrets.token_hex(6)

    async def _shared_rules(self, client: Any) -> tuple[tuple[Rule, ...], dict[str, str]] | None:
        """The rules Redis holds and their tokens, None when it holds none; raises BadValue."""
        try:
            raw = await client.get(self.key("rules"))
        except ResponseError as exc:
            raise BadValue(f"not a string ({exc})") from None
        return None if raw is None else decode_rules(raw, self._app[FAULTS].settings.max_delay_seconds)

    async def _apply_rules(self) -> None:
        try:
            shared = await self._shared_rules(self._redis)
            if shared is None:
                await self._seed()
                shared = await self._shared_rules(self._redis)
        except BadValue as exc:
            self._bad.report("rules", f"{exc}; the rules in force here stay until an admin change replaces them")
            return
        engine = self._app[FAULTS]
        if shared is not None and shared != (engine.rules, engine.tokens):
            engine.adopt(*shared)

    async def _apply_images(self) -> None:
        """Write here the images changed since last time. Paths and versions stay bytes, as Redis has
        them: anything may be written there, and a path that names no fixture image, or data that is
        not a good image for its side, is logged (once per change) and never written; the rest go on."""
        try:
            versions: dict[bytes, bytes] = await self._redis.hgetall(self.key("imagever"))
            changed = [path for path, version in versions.items() if self._image_versions.get(path) != version]
            if not changed:
                return
            datas = await self._redis.hmget(self.key("images"), changed)
        except ResponseError as exc:
            self._bad.report("images", f"images or imagever is not a hash ({exc}): no upload applied until the next")
            return
        store = self._app[STORE]
        tolerance = self._app[SETTINGS].aspect_tolerance
        for raw, data in zip(changed, datas, strict=True):
            self._image_versions[raw] = versions[raw]
            try:
                if data is None:
                    raise BadImage("imagever names it, images holds nothing for it")
                image = FixtureImage.parse(raw)
                if data:
                    await put_image(store, image, data, tolerance)
                else:
                    await remove_image(store, image)
            except (BadFixturePath, BadImage) as exc:
                self._bad.report("images", f"not applying the shared image here: {exc}", repr(raw[:120]))
            except OSError as exc:
                log.error("could not apply the shared image %.120r here: %s", raw, exc)

    async def _wait_for_replicas(self, version: int = 0, flush: int = 0) -> None:
        """Until every live replica has applied ``version`` and flushed for ``flush`` (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACK_TIMEOUT
        await self._beat()
        while True:
            low_version, low_flush, _live, skipped = await self._replicas_script(
                keys=[self.key("heartbeats"), self.key("generation")], args=[self._prefix + "alive:", ALIVE_MS]
            )
            if skipped:
                self._bad.report("heartbeats", f"{skipped} heartbeat(s) that no replica writes: not waited for")
            if int(low_version) >= version and int(low_flush) >= flush:
                return
            if loop.time() > deadline:
                log.warning("a replica has not caught up within %g s; answering anyway", ACK_TIMEOUT)
                return
            await asyncio.sleep(0.005)

    # ------------------------------------------------------------------ rules and counts

    def _check(self) -> None:
        if not self._reachable:
            raise unavailable()

    async def change_rules(self, change: RuleChange, restart: bool) -> None:
        self._check()
        try:
            await self._change_rules(change, restart)
        except RedisError as exc:
            raise self._refused(exc) from None

    async def _change_rules(self, change: RuleChange, restart: bool) -> None:
        engine = self._app[FAULTS]
        async with self._sync_lock:
            await self._sync_locked()  # what Redis holds now (a new generation, rules it lost) is taken up first
            async with self._redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(self.key("rules"))
                        try:
                            shared = await self._shared_rules(pipe)
                        except BadValue as exc:  # replaced by this change
                            self._bad.report("rules", f"{exc}; replaced by an admin change")
                            shared = None
                        current, tokens = shared or (engine.rules, engine.tokens)
                        rules = change(current)  # raises ApiError/ConfigError to refuse the change
                        kept = {} if restart else {r.name: tokens[r.name] for r in rules if r.name in tokens}
                        new_tokens = {rule.name: kept.get(rule.name) or self._token() for rule in rules}
                        gone = set(tokens.values()) - set(new_tokens.values())
                        stored = [{"token": new_tokens[r.name], "spec": r.spec} for r in rules]
                        pipe.multi()
                        pipe.set(self.key("rules"), json.dumps({"rules": stored}).encode())
                        pipe.incr(self.key("version"))
                        for token in gone:
                            pipe.delete(self.key("c:" + token), self.key("seq:" + token))
                        results = await pipe.execute()
                        break
                    except WatchError:
                        continue
            engine.adopt(rules, new_tokens)
            await self._sync_locked()  # in force here (with whatever else changed meanwhile) before waiting
        await self._wait_for_replicas(version=int(results[1]))

    async def count(
        self, seed: int, matching: list[tuple[Rule, str, str]], content_id: str, client: str
    ) -> list[Counted] | None:
        """Counted with the other requests that came while the last call was under way: one round
        trip for all of them (exact: the script counts them in the order they came)."""
        future: asyncio.Future[list[Counted] | None] = asyncio.get_running_loop().create_future()
        self._counting.append(((str(seed), content_id, client, matching), future))
        if self._count_calls is None or self._count_calls.done():
            self._count_calls = asyncio.ensure_future(self._count_waiting())
        return await future

    async def _count_waiting(self) -> None:
        """Count the waiting requests, ``COUNT_BATCH`` a call, one call at a time, until none waits."""
        while self._counting:
            batch, self._counting = self._counting[:COUNT_BATCH], self._counting[COUNT_BATCH:]
            results: list[list[Counted] | None] = [None] * len(batch)  # None: counted here, by each
            try:
                if self._reachable:
                    results = await self._count_batch([asked for asked, _ in batch])
            except RedisError as exc:
                self._lost(exc)
            except Exception as exc:  # an answer of the wrong shape, or a bug: this batch is counted here
                self._errors += 1
                if self._bad.due(("(count)", type(exc).__name__)):
                    log.error("counting in Redis failed (counted here instead): %s: %s", type(exc).__name__, exc)
            finally:  # also when cancelled at shutdown: no request is left waiting
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # its request may have been cancelled meanwhile
                        future.set_result(result)

    async def _count_batch(self, batch: list[_Asked]) -> list[list[Counted] | None]:
        """One script call for ``batch``; its answer checked against what was asked (ValueError)."""
        places: dict[tuple[str | int, ...], int] = {}  # each rule's arguments, once a call
        rules: list[str | int] = []
        asked: list[str | int] = []
        for seed, content_id, client, matching in batch:
            mine = []
            for rule, name, key in matching:
                requests, window = rule.rate_limit or (0, 0.0)
                spec = (
                    name,
                    key,
                    rule.first or 0,
                    rule.every or 0,
                    repr(rule.probability),
                    len(rule.sequence),
                    requests,
                    max(1, round(window * 1000)) if requests else 0,
                )
                place = places.get(spec)
                if place is None:
                    place = places[spec] = len(places) + 1
                    rules += spec
                mine.append(str(place))
            asked += (seed, content_id, client, ",".join(mine))
        text, bad = await self._count_script(args=[self._prefix, len(places), *rules, *asked])
        if bad:
            self._bad.pairs(bad)
        lines = text.decode("ascii").split("\n") if isinstance(text, bytes) else []
        if len(lines) != len(batch):
            raise ValueError(f"the count script answered {len(lines)} requests of {len(batch)}")
        counted: list[list[Counted] | None] = []
        for (_, _, _, matching), line in zip(batch, lines, strict=True):
            numbers = [int(n) for n in line.split()]
            if len(numbers) != 4 * len(matching):
                raise ValueError("the count script answered another number of rules than asked")
            counted.append(
                [
                    Counted(numbers[i + 1], bool(numbers[i]), numbers[i + 2], numbers[i + 3])
                    for i in range(0, len(numbers), 4)
                ]
            )
        return counted

    # ------------------------------------------------------------------ journal

    def buffer(self, entry: Entry) -> None:
        if not self._reachable or len(self._pending) >= JOURNAL_BUFFER:
            self._dropped += 1
            return
        self._pending.append(entry)
        self._wake.set()

    async def _write_journal(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(JOURNAL_BATCH_SECONDS)
            self._wake.clear()
            try:
                await self._flush_journal()
            except RedisError as exc:
                self._lost(exc)
            except Exception:  # a bug must cost the batch (counted as dropped), never the writer
                log.exception("writing the journal to Redis failed")

    async def _flush_journal(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        capacity = self._app[SETTINGS].journal_size
        key = self.key("requests")
        written = 0
        try:
            while written < len(batch):
                packed = [_encoded(entry) for entry in batch[written : written + JOURNAL_CHUNK]]
                _, replaced = await self._journal_script(keys=[key], args=[capacity, *packed])
                if replaced:
                    self._bad.report("requests", f"it took no entry ({replaced.decode()}): replaced")
                written += len(packed)
        except Exception:
            self._dropped += len(batch) - written
            raise

    async def _settle_journal(self) -> None:
        """Every live replica writes what it holds of the journal before this one reads or clears it."""
        _, _, flush = await self._state(flush=True)
        await self._flush_journal()
        self._flushed = max(self._flushed, flush)
        await self._wait_for_replicas(flush=flush)

    async def _journal(self, content_id: str | None) -> list[dict[str, Any]]:
        """Every entry, newest first, after every live replica wrote what it had; an entry that is
        not one the replicas write is skipped (and reported)."""
        self._check()
        key = self.key("requests")
        try:
            await self._settle_journal()
            try:
                raw = await self._redis.xrevrange(key, count=self._app[SETTINGS].journal_size)
            except ResponseError as exc:
                self._bad.report("requests", f"not a stream ({exc}): read as empty, replaced by the next entries")
                raw = []
        except RedisError as exc:
            raise self._refused(exc) from None
        entries = []
        bad: list[str] = []
        for entry_id, fields in raw:
            try:
                entries.append(shown(journal_entry(fields)))
            except BadValue as exc:
                bad.append(f"{entry_id.decode(errors='replace')}: {exc}")
        if bad:
            self._bad.report("requests", f"{len(bad)} entries no replica wrote, skipped; the first, {bad[0]}")
        if content_id is not None:
            entries = [e for e in entries if e.get("contentId") == content_id]
        entries.sort(key=lambda e: str(e["time"]), reverse=True)
        return entries

    async def journal_entries(self, content_id: str | None, limit: int | None) -> list[dict[str, Any]]:
        entries = await self._journal(content_id)
        return entries if limit is None else entries[:limit]

    async def journal_count(self, content_id: str | None) -> int:
        return len(await self._journal(content_id))

    async def clear_journal(self) -> None:
        self._check()
        try:
            await self._settle_journal()
            await self._redis.delete(self.key("requests"))
        except RedisError as exc:
            raise self._refused(exc) from None

    # ------------------------------------------------------------------ images

    async def change_image(self, image: FixtureImage, data: bytes | None, apply: Callable[[], Awaitable[T]]) -> T:
        self._check()
        path = image.path.encode()
        try:
            async with self._sync_lock:  # no poll applies another change to this image between the two
                generation, version, *bad = await self._image_script(
                    keys=[self.key(name) for name in ("generation", "version", "flush", "images", "imagever")],
                    args=[self._fresh_generation(), path, data or b""],
                )
                self._bad.pairs(bad)
                # shared: now here, as the others will
                self._image_versions[path] = generation + b":" + str(version).encode()
                try:
                    done = await apply()
                except BaseException:
                    self._image_versions.pop(path, None)  # not done here: the next poll tries again
                    raise
                await self._sync_locked()
            await self._wait_for_replicas(version=int(version))
        except RedisError as exc:
            raise self._refused(exc) from None
        return done


def _encoded(entry: Entry) -> bytes:
    """An entry as the journal stores it: orjson, a fifteenth of json.dumps's time (paid per request),
    or json.dumps for what orjson refuses (a content id with a lone surrogate, which JSON allows)."""
    packed = entry.packed()
    try:
        return orjson.dumps(packed)
    except TypeError:
        return json.dumps(packed).encode("ascii")
