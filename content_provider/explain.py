"""Why a content id got the images it got: each step of the resolution order, and near misses.

A developer provisions ``PROV:jane.doe`` and the phone shows the default card: the folder
was ``users/jane_doe``. This says so. Explanations are made only when asked (the admin
API, ``content-provider explain``, the web page), for a 404's message, and once per id
that falls through to the default (logged); never on the path of an id that resolves.

Near misses, cheapest first: a user folder, a config mapping or an organisation member
that differs only by case or by ``.``/``_``/``-`` (a dictionary lookup); an image that the
folder has for the other use case; a bare id that would match with a prefix; and, in a
full explanation only, names one or two edits away (a scan of the folder names).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import SAFE_NAME, Settings
from .contract import ContentId, UseCase
from .faults import split_directives
from .layout import SIDES_FOR, USERS_DIR, sides_in
from .schema import ConfigError
from .store import FixtureStore, Resolution

log = logging.getLogger("content_provider.fixtures")

MAX_EDITS = 2
HINTS_KEPT = 10_000  # best near miss per content id, for 404 messages
DEFAULT_LOG_IDS = 1_000  # ids falling through to the default that are logged (then one line saying it stops)
HINT_SECONDS = 5.0
LOG_TASKS = 4  # "why the default" lines worked out at once; ids beyond that in a burst are not logged
SEPARATORS = str.maketrans("", "", "._-")


@dataclass(frozen=True)
class Step:
    """One level of the resolution order, as tried for a content id."""

    level: str  # config user | user folder | organisation | default
    target: str  # what was looked at: fixtures.users['x'], users/x/, orgs/acme/, default/
    answered: bool
    why: str

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level, "target": self.target, "answered": self.answered, "why": self.why}


@dataclass(frozen=True)
class NearMiss:
    """Something that would have answered had the id been written a little differently."""

    target: str  # users/jane_doe/, fixtures.users['x'], orgs/acme member 'Jane.Doe', AUTH:jane
    why: str

    def as_json(self) -> dict[str, str]:
        return {"target": self.target, "why": self.why}

    def __str__(self) -> str:
        return f"{self.target} ({self.why})"


@dataclass
class Explanation:
    content_id: ContentId
    steps: list[Step] = field(default_factory=list)
    near_misses: list[NearMiss] = field(default_factory=list)
    resolution: Resolution | None = None

    @property
    def answered_by(self) -> str | None:
        return self.resolution.label if self.resolution is not None else None

    def as_json(self) -> dict[str, Any]:
        return {
            "answeredBy": self.answered_by,
            "steps": [step.as_json() for step in self.steps],
            "nearMisses": [miss.as_json() for miss in self.near_misses],
        }

    def text(self) -> str:
        """For a terminal: one line a step, then the near misses."""
        cid = self.content_id
        lines = [f"{cid.raw}: {cid.use_case.name.lower()} image for subject {cid.subject!r}"]
        lines += [f"  {'answered' if s.answered else 'no':8} {s.level:13} {s.target}: {s.why}" for s in self.steps]
        lines.append(f"  -> {self.answered_by or 'nothing answers (404)'}")
        if self.near_misses:
            lines.append("near misses:")
            lines += [f"  {miss}" for miss in self.near_misses]
        return "\n".join(lines)


def _likeness(asked: str, found: str) -> str | None:
    """How ``found`` differs from ``asked`` when only by case and/or ``.``/``_``/``-``."""
    if asked == found:
        return None
    if asked.lower() == found.lower():
        return "differs only by case"
    if asked.translate(SEPARATORS) == found.translate(SEPARATORS):
        return "differs only by . _ -"
    if asked.lower().translate(SEPARATORS) == found.lower().translate(SEPARATORS):
        return "differs only by case and . _ -"
    return None


def _key(name: str) -> str:
    return name.lower().translate(SEPARATORS)


def edits_within(a: str, b: str, limit: int = MAX_EDITS) -> int | None:
    """The Levenshtein distance of ``a`` and ``b`` when it is at most ``limit``, else ``None``."""
    if abs(len(a) - len(b)) > limit:
        return None
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        low = max(1, i - limit)
        high = min(len(b), i + limit)
        if low > 1:
            current[low - 1] = limit + 1
        for j in range(low, high + 1):
            cost = 0 if char_a == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        if high < len(b):
            current[high + 1 :] = [limit + 1] * (len(b) - high)
        if min(current) > limit:
            return None
        previous = current
    return previous[-1] if previous[-1] <= limit else None


class _FolderNames:
    """The names under ``users/``, by their case- and separator-free key; listed again when the folder changes."""

    def __init__(self) -> None:
        self.mtime: int | None = -1
        self.names: list[str] = []
        self.by_key: dict[str, list[str]] = {}

    def refresh(self, folder: str) -> None:
        try:
            mtime: int | None = os.stat(folder).st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime == self.mtime:
            return
        names = []
        if mtime is not None:
            with os.scandir(folder) as entries:
                names = [entry.name for entry in entries if SAFE_NAME.match(entry.name)]
        by_key: dict[str, list[str]] = {}
        for name in names:
            by_key.setdefault(_key(name), []).append(name)
        self.names, self.by_key, self.mtime = names, by_key, mtime


def looked_up(raw: str, settings: Settings) -> str:
    """The id the server would look up for ``raw``: checked as ``POST /getcontent`` checks it
    (not empty, not too long), with content id directives cut off when they are on.
    Raises ``ValueError`` saying what is wrong."""
    if not raw.strip(" \t\n\r\x0b\x0c"):
        raise ValueError("contentId: is empty")
    if len(raw) > settings.max_content_id_length:
        raise ValueError(f"contentId: {len(raw)} characters; the limit is {settings.max_content_id_length}")
    if settings.faults.content_id_directives:
        try:
            raw, _ = split_directives(raw, settings.faults.max_delay_seconds)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return raw


class Explainer:
    """Explains content ids against one fixture store; the blocking methods run in a thread."""

    def __init__(self, store: FixtureStore) -> None:
        self.store = store
        self._users = _FolderNames()
        self._lock = threading.Lock()
        self._hints: OrderedDict[str, tuple[float, str | None]] = OrderedDict()  # key -> (when, best near miss)
        self._logged: set[str] = set()
        self._logging_stopped = False
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the whole story

    def explain(self, content_id: ContentId, *, thorough: bool = True) -> Explanation:
        """Every step and the near misses; ``thorough`` also scans names for one or two edits. Blocking."""
        store = self.store
        use_case, subject = content_id.use_case, content_id.subject
        primary = SIDES_FOR[use_case][0]
        found = Explanation(content_id)
        steps = found.steps
        resolution = store.resolve(use_case, subject)
        found.resolution = resolution

        configured = store.settings.users.get(subject)
        target = f"fixtures.users[{subject!r}]"
        if configured is None:
            steps.append(Step("config user", target, False, "not mapped in config"))
        elif getattr(configured, primary) is None:
            steps.append(Step("config user", target, False, f"mapped in config, but with no {primary} image"))
        elif resolution is not None and resolution.level == "user" and not self._from_folder(resolution):
            steps.append(Step("config user", target, True, f"mapped in config: {primary}"))
            return self._with_near_misses(found, thorough)
        else:
            steps.append(Step("config user", target, False, f"the mapped {primary} file is missing"))

        folder = f"{USERS_DIR}/{subject}/"
        if not SAFE_NAME.match(subject):
            steps.append(
                Step("user folder", folder, False, "not looked up: not a plain folder name (A-Z a-z 0-9 . _ @ + = -)")
            )
        elif resolution is not None and resolution.level == "user":
            steps.append(Step("user folder", folder, True, f"has {primary}"))
            return self._with_near_misses(found, thorough)
        elif not (store.root / USERS_DIR / subject).is_dir():
            steps.append(Step("user folder", folder, False, "no such folder"))
        else:
            has = sides_in(store.root / USERS_DIR / subject)
            steps.append(Step("user folder", folder, False, f"no {primary} image (it has: {', '.join(has) or 'none'})"))

        store.refresh_organisations()
        for org in store.organisations():
            target = f"orgs/{org.name}/"
            if subject in org.members:
                how = "an exact member"
            else:
                matched = [p for p, match in zip(org.patterns, org.matchers, strict=False) if match(subject)]
                how = f"a member by pattern {matched[0]!r}" if matched else ""
            if not how:
                counts = f"{len(org.members)} member(s), {len(org.patterns)} pattern(s)"
                steps.append(Step("organisation", target, False, f"not a member ({counts})"))
            elif resolution is not None and resolution.level == "organisation" and resolution.owner == org.name:
                steps.append(Step("organisation", target, True, f"{how}; has {primary}"))
                return self._with_near_misses(found, thorough)
            else:
                steps.append(Step("organisation", target, False, f"{how}, but it has no {primary} image"))

        if store.settings.default_generated:
            steps.append(
                Step("default", "generated", True, "fixtures.default: generated draws a card for this subject")
            )
        elif not store.settings.default_enabled:
            steps.append(Step("default", "default/", False, "off (fixtures.default: false)"))
        elif resolution is not None:
            steps.append(Step("default", "default/", True, f"has {primary}"))
        else:
            steps.append(Step("default", "default/", False, f"no {primary} image"))
        return self._with_near_misses(found, thorough)

    @staticmethod
    def _from_folder(resolution: Resolution) -> bool:
        return any(
            f"{os.sep}{USERS_DIR}{os.sep}{resolution.owner}{os.sep}" in str(path) for _, path in resolution.files
        )

    def _with_near_misses(self, found: Explanation, thorough: bool) -> Explanation:
        if found.resolution is None or found.resolution.level in ("default", "generated", "organisation"):
            found.near_misses = self.near_misses(found.content_id, thorough=thorough)
        return found

    # ------------------------------------------------------------------ near misses

    def near_misses(self, content_id: ContentId, *, thorough: bool) -> list[NearMiss]:
        """What would have answered with the id written a little differently. Blocking."""
        store = self.store
        use_case, subject = content_id.use_case, content_id.subject
        primary = SIDES_FOR[use_case][0]
        misses: list[NearMiss] = []
        store.refresh_organisations()
        with self._lock:
            self._users.refresh(str(store.root / USERS_DIR))
            users = self._users
            alike = [name for name in users.by_key.get(_key(subject), []) if name != subject]
            for name in alike:
                misses.append(NearMiss(f"{USERS_DIR}/{name}/", f"{_likeness(subject, name)}"))
            if thorough:
                for name in users.names:
                    if name != subject and name not in alike:
                        distance = edits_within(subject, name)
                        if distance is not None:
                            misses.append(NearMiss(f"{USERS_DIR}/{name}/", f"{distance} edit(s) apart"))
        for name in store.settings.users:
            why = _likeness(subject, name) or (
                f"{d} edit(s) apart" if thorough and (d := edits_within(subject, name)) else None
            )
            if why:
                misses.append(NearMiss(f"fixtures.users[{name!r}]", why))
        for org in store.organisations():
            for member in org.members:
                why = _likeness(subject, member) or (
                    f"{d} edit(s) apart" if thorough and (d := edits_within(subject, member)) else None
                )
                if why:
                    misses.append(NearMiss(f"orgs/{org.name}/ member {member!r}", why))
        other = UseCase.AUTH if use_case is UseCase.CARD else UseCase.CARD
        elsewhere = store.resolve(other, subject)
        if elsewhere is not None and elsewhere.level not in ("default", "generated"):
            prefix = "AUTH:" if other is UseCase.AUTH else "PROV:"
            sides = ", ".join(key for key, _ in elsewhere.files)
            misses.append(
                NearMiss(
                    f"{prefix}{subject}",
                    f"{elsewhere.label} has {sides} but no {primary}: an image for the other use case",
                )
            )
        return misses

    def with_prefix(self, raw: str) -> list[NearMiss]:
        """For a bare id when bare ids are off: which prefixed id would have answered, and from where. Blocking."""
        misses = []
        for use_case, prefix in ((UseCase.CARD, "PROV:"), (UseCase.AUTH, "AUTH:")):
            found = self.store.resolve(use_case, raw)
            if found is not None and found.level != "default":
                misses.append(NearMiss(f"{prefix}{raw}", f"would answer from {found.label}"))
        return misses

    def hint(self, content_id: ContentId) -> str | None:
        """The best near miss in a few words, for a 404 (cheap near misses only; remembered). Blocking."""
        return self._remembered(content_id.raw, lambda: self.near_misses(content_id, thorough=False))

    def bare_hint(self, raw: str) -> str | None:
        """The same for a bare id when bare ids are off. Blocking."""
        return self._remembered("\0bare:" + raw, lambda: self.with_prefix(raw))

    def _remembered(self, key: str, misses: Callable[[], list[NearMiss]]) -> str | None:
        """Remembered for HINT_SECONDS: a folder made or removed since shows in the next 404 after that."""
        now = time.monotonic()
        with self._lock:
            seen = self._hints.get(key)
            if seen is not None and now - seen[0] < HINT_SECONDS:
                return seen[1]
        found = misses()
        best = str(found[0]) if found else None
        with self._lock:
            self._hints[key] = (now, best)
            if len(self._hints) > HINTS_KEPT:
                self._hints.popitem(last=False)
        return best

    def defaulted(self, content_id: ContentId) -> None:
        """An answer came from the default: the first time for this id, say why in the log, off the
        serving path. Cheap when already said: called on the event loop for every default answer."""
        if content_id.raw in self._logged or self._logging_stopped:
            return
        if len(self._logged) >= DEFAULT_LOG_IDS:  # decided here, on the loop, so no work piles up
            self._logging_stopped = True
            log.info("%d ids fell through to the default: no more of them are logged", DEFAULT_LOG_IDS)
            return
        if len(self._tasks) >= LOG_TASKS:  # a burst of new ids: skip rather than queue thread work
            return
        self._logged.add(content_id.raw)
        task = asyncio.ensure_future(asyncio.to_thread(self._log_default, content_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self, seconds: float = 5.0) -> None:
        """Wait (bounded) for log lines still being worked out, so none outlives the app."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)

    def _log_default(self, content_id: ContentId) -> None:
        hint = self.hint(content_id)
        log.info(
            "%s got the default %s: nothing else answers it%s (content-provider explain %s)",
            content_id.raw,
            "card" if content_id.use_case is UseCase.CARD else "auth image",
            f"; near miss: {hint}" if hint else "",
            content_id.raw,
        )
