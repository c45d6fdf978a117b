"""A conformance report as text for a terminal or JUnit XML for CI."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from content_provider.conformance.rules import Report

# --------------------------------------------------------------------------- output

COLOURS = {"pass": "\033[32m", "fail": "\033[31m", "skip": "\033[90m", "unverified": "\033[33m"}


def format_text(report: Report, colour: bool = False) -> str:
    lines = [f"content provider: {report.url}", ""]
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
    failed_required = sorted({r.rule for r in report.results if r.failed and r.required})
    failed_recommended = sorted({r.rule for r in report.results if r.failed and not r.required})
    lines.append("")
    verdict = "OK" if report.ok else "NOT CONFORMANT"
    lines.append(f"{verdict}: {len(failed_required)} required rule(s) failed {failed_required or ''}".rstrip())
    lines.append(f"{len(failed_recommended)} recommendation(s) not met {failed_recommended or ''}".rstrip())
    return "\n".join(lines)


def format_junit(report: Report) -> str:
    cases = []
    for result in report.results:
        name = quoteattr(f"{result.rule} {result.title}" + (f" [{result.content_id}]" if result.content_id else ""))
        inner = ""
        if result.failed:
            kind = "required" if result.required else "recommendation"
            inner = f'<failure message={quoteattr(result.evidence)} type="{kind}">{escape(result.checked)}</failure>'
        elif result.status in ("skip", "unverified"):
            inner = f"<skipped message={quoteattr(result.checked)}/>"
        case = f'  <testcase classname="content-provider.conformance" name={name}>'
        cases.append(f"{case}{inner}</testcase>")
    failures = sum(1 for r in report.results if r.failed)
    skipped = sum(1 for r in report.results if r.status in ("skip", "unverified"))
    header = (
        f'<testsuite name="content-provider conformance" tests="{len(report.results)}" '
        f'failures="{failures}" skipped="{skipped}">'
    )
    return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>', header, *cases, "</testsuite>"]) + "\n"
