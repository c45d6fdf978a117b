"""A conformance report in the format asked for: the one place the formats are named."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

from content_provider.conformance.html import Produced, format_html
from content_provider.conformance.report import format_junit, format_text
from content_provider.conformance.rules import Report

FORMATS = ("text", "json", "junit", "html")


def render(report: Report, fmt: str, produced: Produced, *, colour: bool = False) -> str:
    """``report`` as ``fmt`` (one of :data:`FORMATS`), ending in a newline; ``colour``: for a terminal (text)."""
    if fmt == "json":
        return json.dumps(report.as_json(), indent=2) + "\n"
    if fmt == "junit":
        return format_junit(report)
    if fmt == "html":
        return format_html(report, produced)
    return format_text(report, colour=colour) + "\n"


def command_line(argv: Sequence[str], program: str = "content-provider") -> str:
    """The command line as a report shows it, the password's value hidden (also abbreviated: ``--pass``)."""
    words = [program]
    hide = False
    for word in argv:
        flag, equals, _ = word.partition("=")
        if hide:
            word, hide = "***", False
        elif len(flag) >= 3 and "--password".startswith(flag):
            word, hide = (f"{flag}=***", False) if equals else (word, True)
        words.append(word)
    return shlex.join(words)
