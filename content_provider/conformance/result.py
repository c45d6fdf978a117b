"""One rule's result on one answer: what the report, the verdicts and the HTML report's cards
hold. A leaf of its own, so the modules that record results and those that draw them need not
import each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    rule: str
    title: str
    required: bool
    status: str  # pass | fail | skip | unverified
    content_id: str | None
    checked: str
    evidence: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "fail"
