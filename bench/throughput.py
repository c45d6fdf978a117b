"""Requests/s and latency of the mock next to a bare aiohttp app answering the same bytes.

Every server runs pinned to CPU 0 (wrk on CPU 1), all started at once and loaded one at a
time, in rounds: each round measures every server back to back at each connection count,
so a slow patch of this shared machine hits all of them alike. The figure that counts is
the mock's requests/s over the bare app's, taken per round and reported as the median
(absolute numbers vary run to run). Where installed, nginx serving the same file and
WireMock stubbed with the same answer are measured too, as the references users know.
The mock in ``proxy`` mode in front of the bare app (every answer validated with the
conformance rules, the back verified) is measured beside the bare app alone: the
``proxy / bare`` line is what standing in front of a provider costs (``--no-proxy`` skips it).
The server's CPU time per request and resident memory are printed beside, read from
/proc: unlike requests/s they do not move when the machine lends the CPU elsewhere.
The last line is ``ratio at 64 connections: R``. Run it with ``bench/run``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from procutil import (
    ROOT,
    add_load_arguments,
    cpu_seconds,
    mock_command,
    resident_mb,
    start_listening,
    start_server,
    wrk_load,
)

from content_provider.serving.workers import free_port

CONTENT_ID = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"  # front and back


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    url: str
    runs: dict[int, list[dict[str, float]]] = field(default_factory=dict)
    resident: float = 0.0


async def start_mock(folder: Path, args: argparse.Namespace) -> Server:
    command = mock_command(folder, f"server:\n  event_loop: {args.event_loop}\n")
    process, url = await start_server(command, args.server_cpu)
    return Server("mock", process, url)


async def start_baseline(folder: Path, args: argparse.Namespace) -> Server:
    """The mock of another source tree (``--baseline DIR``), served alike: before/after in one run."""
    loop = args.baseline_event_loop or args.event_loop
    command = mock_command(folder, f"server:\n  event_loop: {loop}\n", "baseline.yaml")
    # -m imports from the working folder first: run the baseline from its own tree
    process, url = await start_server(["env", "-C", str(args.baseline.resolve()), *command], args.server_cpu)
    return Server("baseline mock", process, url)


async def start_proxy(folder: Path, args: argparse.Namespace, upstream: Server) -> Server:
    """The mock in ``proxy`` mode in front of the bare app, every answer validated (CP13 verified too)."""
    yaml = (
        f"server:\n  event_loop: {args.event_loop}\nupstream:\n  url: {upstream.url}\n  trust: {folder / 'jwks.json'}\n"
    )
    process, url = await start_server(mock_command(folder, yaml, "proxy.yaml"), args.server_cpu)
    return Server("mock proxy", process, url)


async def start_plain_proxy(args: argparse.Namespace, upstream: Server) -> Server:
    """bench/plain_proxy.py in front of the bare app: the second hop alone, for the mock proxy to be read against."""
    command = [sys.executable, str(ROOT / "bench" / "plain_proxy.py"), "--upstream", upstream.url]
    process, url = await start_server(command, args.server_cpu)
    return Server("plain proxy", process, url)


async def start_bare(folder: Path, args: argparse.Namespace) -> Server:
    command = [sys.executable, str(ROOT / "bench" / "bare_app.py"), "--body", str(folder / "answer.json")]
    process, url = await start_server([*command, "--event-loop", args.event_loop], args.server_cpu)
    return Server("bare aiohttp", process, url)


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {folder}/nginx-error.log;
pid {folder}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/nginx-body;
    proxy_temp_path {folder}/nginx-proxy;
    fastcgi_temp_path {folder}/nginx-fastcgi;
    uwsgi_temp_path {folder}/nginx-uwsgi;
    scgi_temp_path {folder}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location = /getcontent {{
            alias {folder}/answer.json;
            default_type application/json;
            # nginx serves files to GET only; a POST is redirected inside nginx as a GET
            error_page 405 =200 $uri;
        }}
    }}
}}
"""


async def start_nginx(folder: Path, args: argparse.Namespace) -> Server | None:
    nginx = shutil.which("nginx", path="/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin")
    if nginx is None:
        return None
    port = free_port("127.0.0.1")
    conf = folder / "nginx.conf"
    conf.write_text(NGINX_CONF.format(folder=folder, port=port), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    process = await start_listening([nginx, "-c", str(conf), "-p", str(folder)], f"{url}/getcontent", args.server_cpu)
    return Server("nginx", process, url)


def wiremock_jar() -> Path | None:
    """The standalone jar of the npm package ``wiremock`` (npm install -g wiremock)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("java") is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False).stdout.strip()
    jars = sorted(Path(root, "wiremock", "build").glob("wiremock-standalone-*.jar")) if root else []
    return jars[-1] if jars else None


async def start_wiremock(folder: Path, args: argparse.Namespace) -> Server | None:
    jar = wiremock_jar()
    if jar is None:
        return None
    home = folder / "wiremock"
    (home / "mappings").mkdir(parents=True)
    (home / "__files").mkdir()
    shutil.copy(folder / "answer.json", home / "__files" / "answer.json")
    stub = {
        "request": {"method": "POST", "url": "/getcontent"},
        "response": {"status": 200, "bodyFileName": "answer.json", "headers": {"Content-Type": "application/json"}},
    }
    (home / "mappings" / "getcontent.json").write_text(json.dumps(stub), encoding="utf-8")
    port = free_port("127.0.0.1")
    command = ["java", "-jar", str(jar), "--port", str(port), "--bind-address", "127.0.0.1"]
    command += ["--root-dir", str(home), "--disable-banner"]
    url = f"http://127.0.0.1:{port}"
    process = await start_listening(command, f"{url}/getcontent", args.server_cpu, seconds=120)
    return Server("WireMock", process, url)


async def measure(server: Server, connections: int, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    pid = server.process.pid
    before = cpu_seconds(pid)
    figures = await wrk_load(server.url, connections, args.seconds, args.client_cpu, folder, CONTENT_ID)
    figures["cpu_us"] = (cpu_seconds(pid) - before) / (figures["rps"] * args.seconds) * 1e6
    return figures


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    add_load_arguments(parser, rounds=3, seconds=5.0, warmup=3.0)
    parser.add_argument("--no-references", action="store_true", help="skip nginx and WireMock even when installed")
    parser.add_argument("--no-proxy", action="store_true", help="skip the mock in proxy mode in front of the bare app")
    parser.add_argument("--baseline", type=Path, help="a source tree of another version: its mock measured alongside")
    parser.add_argument(
        "--baseline-event-loop",
        choices=("asyncio", "uvloop"),
        help="the baseline mock's event loop (default: --event-loop); with --baseline . it compares the loops",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk (bench/run does it)")
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            servers.append(await start_mock(folder, args))
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{servers[0].url}/getcontent", json={"contentId": CONTENT_ID}) as response:
                    body = await response.read()
                async with session.get(f"{servers[0].url}/.well-known/jwks.json") as response:
                    (folder / "jwks.json").write_bytes(await response.read())
            (folder / "answer.json").write_bytes(body)
            servers.insert(0, await start_bare(folder, args))
            if args.baseline is not None:
                servers.append(await start_baseline(folder, args))
            if not args.no_proxy:  # in front of the bare app, which answers the mock's own bytes
                servers.append(await start_proxy(folder, args, servers[0]))
                servers.append(await start_plain_proxy(args, servers[0]))
            if not args.no_references:
                for start in (start_nginx, start_wiremock):
                    reference = await start(folder, args)
                    if reference is not None:
                        servers.append(reference)
            for server in servers:  # the interpreter (or the JIT) settles under load first
                for connections in args.connections:
                    await wrk_load(server.url, connections, args.warmup, args.client_cpu, folder, CONTENT_ID)
            for _ in range(args.rounds):
                for connections in args.connections:
                    for server in servers:
                        server.runs.setdefault(connections, []).append(await measure(server, connections, args, folder))
            for server in servers:
                server.resident = resident_mb(server.process.pid)
        finally:
            for server in servers:
                server.process.terminate()
                with contextlib.suppress(ProcessLookupError):
                    await server.process.wait()
    report(servers, body, args)


def print_ratio(
    label: str, connections: int, top: list[dict[str, float]], bottom: list[dict[str, float]], second: str
) -> None:
    """One line of ratios taken round by round: requests/s, then the p99 or the CPU per request."""
    pairs = list(zip(top, bottom, strict=True))
    each = ", ".join(f"{a['rps'] / b['rps']:.2f}" for a, b in pairs)
    other = statistics.median(a[second] / b[second] for a, b in pairs)
    said = "the p99" if second == "p99" else "the CPU per request"
    print(
        f"{label} at {connections} connections: {statistics.median(a['rps'] / b['rps'] for a, b in pairs):.2f} "
        f"of the requests/s (rounds: {each}), {other:.2f}x {said}"
    )


def report(servers: list[Server], body: bytes, args: argparse.Namespace) -> None:
    names = ", ".join(s.name for s in servers)
    print(f"answer: {len(body)} bytes ({CONTENT_ID}); event loop {args.event_loop}; servers: {names}")
    print(f"{args.rounds} rounds x {args.seconds:g} s per server and connection count; medians of the rounds")
    print(f"{'server':<14}{'conns':>6}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'CPU us/req':>11}{'RSS MB':>8}")
    for server in servers:
        for connections, runs in server.runs.items():
            rps, p50, p99 = median(runs, "rps"), median(runs, "p50") * 1000, median(runs, "p99") * 1000
            cpu = median(runs, "cpu_us")
            print(
                f"{server.name:<14}{connections:>6}{rps:>9.0f}{p50:>8.1f}{p99:>8.1f}{cpu:>11.0f}{server.resident:>8.0f}"
            )
    bare, mock = servers[0], servers[1]
    ratios = {}
    for connections in args.connections:
        pairs = list(zip(mock.runs[connections], bare.runs[connections], strict=True))
        ratios[connections] = statistics.median(m["rps"] / b["rps"] for m, b in pairs)
        p99 = statistics.median(m["p99"] / b["p99"] for m, b in pairs)
        cpu = statistics.median(b["cpu_us"] / m["cpu_us"] for m, b in pairs)
        each = ", ".join(f"{m['rps'] / b['rps']:.2f}" for m, b in pairs)
        print(
            f"mock / bare at {connections} connections: {ratios[connections]:.2f} of the requests/s "
            f"(rounds: {each}), {p99:.2f}x the p99, {cpu:.2f} by CPU time per request"
        )
    named = {server.name: server for server in servers}
    # each line: (numerator, denominator, label, the second figure: "p99" or "cpu_us")
    for over, under, label, second in (
        ("baseline mock", None, "mock / baseline mock", "cpu_us"),
        ("mock proxy", "bare aiohttp", "proxy (mock validating in front of bare) / bare alone", "p99"),
        ("mock proxy", "plain proxy", "mock proxy / plain proxy", "cpu_us"),
    ):
        top, bottom = (mock, named.get(over)) if under is None else (named.get(over), named.get(under))
        if top is None or bottom is None:
            continue
        for connections in args.connections:
            print_ratio(label, connections, top.runs[connections], bottom.runs[connections], second)
    if 64 in ratios:
        print(f"ratio at 64 connections: {ratios[64]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
