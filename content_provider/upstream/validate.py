"""Live validation: every upstream answer checked with the conformance rules, the verdict remembered.

The rules are :func:`content_provider.conformance.answer_rules` (CP01-CP14), the very code
``content-provider check`` runs on each id, so a live verdict and the checker's agree on
the same answer. Decoding images and verifying a JWS takes milliseconds, so it runs in a
thread, and verdicts are remembered per answer digest (SHA-256 of the status, the use
case, the ``Content-Type`` and the body): a hot id costs one hash, never a decode. Answers
that arrive at once with the same digest wait for one check.

CP15-CP17 are about the provider as a whole and CP18 about timing (an answer that does not
arrive within ``upstream.timeout`` is a 504), so they are ``content-provider check``'s alone.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict

from content_provider.conformance.result import Result
from content_provider.conformance.rules import RULES, Options, check_answer
from content_provider.core.lru import LRU

VERDICTS_KEPT = 4096  # each a few hundred bytes: rule ids and evidence strings


@dataclass(frozen=True)
class Verdict:
    """What the rules say of one answer."""

    failed: tuple[str, ...]  # every failed rule, required or recommended, in order
    evidence: Mapping[str, str]  # rule id -> what was wrong, for each failed rule
    unverified: bool  # CP13 could not be checked: no upstream.trust
    results: tuple[Result, ...] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """No required rule failed."""
        return not any(RULES[rule].required for rule in self.failed)

    @property
    def header(self) -> str:
        """``X-Content-Provider-Conformance``: ``pass``, or the failed rule ids (never the evidence)."""
        return " ".join(self.failed) if self.failed else "pass"

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": "pass" if not self.failed else "fail" if not self.ok else "recommendations not met",
            "failed": list(self.failed),
            "evidence": dict(self.evidence),
            "unverified": ["CP13"] if self.unverified else [],
        }


def verdict_of(results: list[Result]) -> Verdict:
    failed = tuple(sorted({r.rule for r in results if r.failed}))
    evidence: dict[str, str] = {}
    for result in results:
        if result.failed:
            evidence[result.rule] = "; ".join(filter(None, (evidence.get(result.rule), result.evidence)))
    unverified = any(r.status == "unverified" for r in results)
    return Verdict(failed, evidence, unverified, tuple(results))


RECENT_BODIES = 32  # answers kept to be compared with the next ones (a few MB at most)


@dataclass
class ValidatorStats:
    checked: int = 0  # answers decoded and checked
    remembered: int = 0  # answers whose verdict was known by its digest


class Validator:
    """Verdicts for upstream answers, each computed once per distinct answer."""

    def __init__(self, options: Options, capacity: int = VERDICTS_KEPT) -> None:
        self.options = options
        self.capacity = capacity
        self.stats = ValidatorStats()
        self._known: LRU[bytes, Verdict] = LRU(capacity)
        self._pending: dict[bytes, asyncio.Future[Verdict]] = {}
        # the last answers digested, by their head, length and a few bytes: (body, digest)
        self._recent: LRU[tuple[bytes, int, bytes], tuple[bytes, bytes]] = LRU(RECENT_BODIES)

    def digest(self, content_id: str, status: int, content_type: str | None, body: bytes) -> bytes:
        """SHA-256 of the answer (status, use case, content type, body). An answer equal, byte for
        byte, to one digested lately gets that digest again: comparing 60 kB costs a tenth of hashing
        them, and the steady state of a proxy is the same few answers over and over."""
        card = not content_id.upper().startswith("AUTH:")  # as the rules themselves tell the use case
        head = f"{status}\0{'card' if card else 'auth'}\0{content_type or ''}\0".encode("utf-8", "replace")
        middle = len(body) // 2
        near = (head, len(body), body[middle : middle + 32] + body[-32:])
        seen = self._recent.get(near)
        if seen is not None and seen[0] == body:
            return seen[1]
        digest = hashlib.sha256(head + body).digest()
        self._recent.put(near, (body, digest))
        return digest

    async def verdict(self, content_id: str, status: int, headers: Mapping[str, str], body: bytes) -> Verdict:
        key = self.digest(content_id, status, headers.get("Content-Type"), body)
        known = self._known.get(key)
        if known is not None:
            self.stats.remembered += 1
            return known
        pending = self._pending.get(key)
        if pending is not None:
            self.stats.remembered += 1
            return await asyncio.shield(pending)
        future = asyncio.ensure_future(self._check(key, content_id, status, CIMultiDict(headers), body))
        self._pending[key] = future
        future.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(future)

    async def _check(self, key: bytes, content_id: str, status: int, headers: CIMultiDict[str], body: bytes) -> Verdict:
        results = await asyncio.to_thread(check_answer, content_id, status, headers, body, self.options)
        self.stats.checked += 1
        verdict = verdict_of(results)
        self._known.put(key, verdict)
        return verdict
