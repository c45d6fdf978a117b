"""A conformance report as text for a terminal or JUnit XML for CI."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from content_provider.conformance.rules import Report

# --------------------------------------------------------------------------- output

COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "skip": "\033[90m", "unverified": "\033[33m"}


def summary_lines(report: Report) -> list[str]:
    """The verdict in words, the same counts the JSON and JUnit outputs give."""
    required = report.failed_required()
    recommended = report.failed_recommended()
    unverified = report.not_verified()
    verdict = "OK" if report.ok else "NOT CONFORMANT"
    lines = [
        f"{verdict}{' (--strict)' if report.strict else ''}: {len(required)} required rule(s) failed {required or ''}"
    ]
    if unverified:
        why = ", ".join(f"{rule} ({reason})" for rule, reason in unverified.items())
        fails = "fail under --strict" if report.strict else "--strict fails them"
        lines.append(f"{len(unverified)} required rule(s) not verified: {why}; {fails}")
    lines.append(f"{len(recommended)} recommendation(s) not met {recommended or ''}")
    lines.append(f"exit status {report.exit_status}")
    return [line.rstrip() for line in lines]


def format_text(report: Report, colour: bool = False) -> str:
    where = "fixture folder" if report.source == "fixtures" else "content provider"
    lines = [f"{where}: {report.url}", *report.notes, ""]
    if report.unreachable is not None:
        lines.insert(1, f"NOT REACHED: {report.unreachable}")
    for result in report.results:
        label = result.status.upper()
        if colour:
            label = f"{COLOURS[result.status]}{label}\033[0m"
        kind = "required" if result.required else "recommended"
        where = result.content_id or "(provider)"
        lines.append(f"{label:<{19 if colour else 10}} {result.rule}  {kind:<11}  {where}  {result.title}")
        if result.failed and result.evidence:
            lines.append(f"{'':<10} {'':4}  evidence: {result.evidence}")
        elif result.status in ("skip", "unverified"):
            lines.append(f"{'':<10} {'':4}  {result.checked}")
    return "\n".join([*lines, "", *summary_lines(report)])


def format_junit(report: Report) -> str:
    """JUnit XML: a test case per result; exactly the results that fail the run are ``<failure>``s
    (a recommendation not met is a warning in ``<system-out>`` unless ``strict``)."""
    cases = []
    failures = 0
    for result in report.results:
        name = quoteattr(f"{result.rule} {result.title}" + (f" [{result.content_id}]" if result.content_id else ""))
        inner = ""
        if report.counts_as_failure(result):
            failures += 1
            kind = (
                "required"
                if result.required and result.failed
                else "not verified"
                if result.required
                else "recommendation"
            )
            message = result.evidence if result.failed else result.checked
            inner = f'<failure message={quoteattr(message)} type="{kind}">{escape(result.checked)}</failure>'
        elif result.failed:
            inner = f"<system-out>{escape(f'warning: recommendation not met: {result.evidence}')}</system-out>"
        elif result.status in ("skip", "unverified"):
            inner = f"<skipped message={quoteattr(result.checked)}/>"
        case = f'  <testcase classname="content-provider.conformance" name={name}>'
        cases.append(f"{case}{inner}</testcase>")
    skipped = sum(1 for r in report.results if r.status in ("skip", "unverified") and not report.counts_as_failure(r))
    header = (
        f'<testsuite name="content-provider conformance" tests="{len(report.results)}" '
        f'failures="{failures}" skipped="{skipped}">'
    )
    properties = (
        f'  <properties><property name="exit_status" value="{report.exit_status}"/>'
        f'<property name="strict" value="{str(report.strict).lower()}"/></properties>'
    )
    return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', header, properties, *cases, "</testsuite>"]) + "\n"
