"""Every ratio that issue #24's Goal names, from one run: throughput, the state backends, the cold path.

Runs bench/throughput.py, bench/state_backends.py and bench/cold.py one after another (their own
output is printed as it comes), reads their ratio lines, and ends with one line per goal:

- hot (the mock) / bare aiohttp at 16 and 64 connections, requests/s (>= 0.95) and CPU per
  request (<= 1.05x);
- mock proxy / plain pass-through proxy, requests/s (>= 0.8);
- cold first pass / hot, requests/s (>= 0.25), and the cold p99 (< 20 ms);
- the same ids after a restart / hot, requests/s (>= 0.8);
- Redis with one counted rule / memory (>= 0.7), and with no rules / memory (for reference).

Each ratio is the median of the per-round ratios its script printed. ``--rounds``, ``--seconds``
and ``--event-loop`` go to all three; ``--users``, ``--distinct`` and ``--cold-connections`` to
cold.py; any other argument to throughput.py and state_backends.py. Run it with ``bench/run``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Goal:
    label: str
    pattern: str  # a regex over the scripts' output; group 1 is the figure
    target: str  # as the issue says it
    met: Callable[[float], bool] | None  # None: shown for reference, no goal
    invert: bool = False  # the line gives bare/mock: the goal reads mock/bare


GOALS = [
    *(
        goal
        for n in (16, 64)
        for goal in (
            Goal(
                f"hot / bare aiohttp, {n} connections, req/s",
                rf"mock / bare at {n} connections: ([0-9.]+) of",
                ">= 0.95",
                lambda x: x >= 0.95,
            ),
            Goal(
                f"hot / bare aiohttp, {n} connections, CPU per request",
                rf"mock / bare at {n} connections: .*, ([0-9.]+) by CPU time per request",
                "<= 1.05x",
                lambda x: x <= 1.05,
                invert=True,
            ),
        )
    ),
    *(
        Goal(
            f"mock proxy / plain proxy, {n} connections, req/s",
            rf"mock proxy / plain proxy at {n} connections: ([0-9.]+) of",
            ">= 0.8",
            lambda x: x >= 0.8,
        )
        for n in (16, 64)
    ),
    Goal("cold first pass / hot, req/s", r"^mock: cold/hot ([0-9.]+) of", ">= 0.25", lambda x: x >= 0.25),
    Goal("cold first pass, p99 (ms)", r"^cold p99: ([0-9.]+) ms", "< 20 ms", lambda x: x < 20),
    Goal("after a restart / hot, req/s", r"^mock: after restart/hot ([0-9.]+) of", ">= 0.8", lambda x: x >= 0.8),
    Goal(
        "Redis / memory, one counted rule, req/s",
        r"redis / memory at 64 connections, one counted rule: ([0-9.]+)",
        ">= 0.7",
        lambda x: x >= 0.7,
    ),
    Goal("Redis / memory, no rules, req/s", r"redis / memory at 64 connections, no rules: ([0-9.]+)", "(none)", None),
]


def run(script: str, arguments: list[str]) -> str:
    """Run a bench script, its output passed through as it comes; all it printed."""
    command = [sys.executable, str(BENCH / script), *arguments]
    print(f"$ {' '.join(command[1:])}", flush=True)
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    if process.returncode:
        raise SystemExit(f"{script} failed (exit status {process.returncode})")
    return "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="3")
    parser.add_argument("--seconds", default="5")
    parser.add_argument("--event-loop", default="asyncio", choices=("asyncio", "uvloop"))
    parser.add_argument("--users", default="100000", help="cold.py: users in the generated set")
    parser.add_argument("--distinct", action="store_true", help="cold.py: every file with bytes of its own")
    parser.add_argument("--cold-connections", default="16", help="cold.py's --connections")
    args, rest = parser.parse_known_args()
    common = ["--rounds", args.rounds, "--seconds", args.seconds, "--event-loop", args.event_loop]
    output = run("throughput.py", [*common, *rest])
    output += run("state_backends.py", [*common, *rest])
    cold = ["--rounds", args.rounds, "--seconds", args.seconds, "--users", args.users]
    cold += ["--connections", args.cold_connections, *(["--distinct"] if args.distinct else [])]
    output += run("cold.py", cold)
    print(f"\nissue #24's goal, from this run (medians of the per-round ratios; event loop {args.event_loop}):")
    for goal in GOALS:
        found = re.search(goal.pattern, output, re.MULTILINE)
        if found is None:
            print(f"  {goal.label:<52} not measured (see above)")
            continue
        x = float(found.group(1))
        if goal.invert:
            x = 1 / x
        shown = f"{x:.2f}x" if goal.invert else f"{x:.2f}"
        verdict = "" if goal.met is None else ("met" if goal.met(x) else "NOT met")
        print(f"  {goal.label:<52} {shown:>8}   goal {goal.target:<9} {verdict}")


if __name__ == "__main__":
    main()
