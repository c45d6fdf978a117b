"""Command line: ``content-provider serve | check | check-fixtures | explain | generate | warm | dev-tls``.

``main(argv, environ)`` returns an exit code and touches no global state beyond
logging, so tests call it directly. A little over 500 lines: the parser and each command's
few lines of glue; the work lives in the layers below (serving/run.py, conformance/, fixtures/).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from content_provider.config.environment import ENV_PREFIX
from content_provider.config.parse import find_config, load_settings
from content_provider.config.settings import Settings, in_package
from content_provider.config.upstream import check_url
from content_provider.config.worker_role import WorkerRole
from content_provider.conformance.checker import DEMO_IDS, check
from content_provider.conformance.formats import FORMATS, command_line, render
from content_provider.conformance.html import Produced
from content_provider.conformance.rules import MAX_IMAGE_BYTES, Report
from content_provider.conformance.trust import load_trust
from content_provider.core.contract import BARE_IDS_OFF, parse_content_id
from content_provider.core.fsutil import atomic_write
from content_provider.core.layout import ORGS_DIR, USERS_DIR
from content_provider.core.reader import ConfigError
from content_provider.core.text import printable
from content_provider.core.version import __version__
from content_provider.fixtures.answers import FixtureError
from content_provider.fixtures.explain import Explainer, looked_up
from content_provider.fixtures.generate import write_demo, write_images, write_members
from content_provider.fixtures.persist import warm
from content_provider.fixtures.review import review_folder
from content_provider.fixtures.store import FixtureStore
from content_provider.fixtures.write import is_folder_name
from content_provider.serving.run import run_loop, serve, writable_fixtures
from content_provider.serving.workers import supervise
from content_provider.signing.devtls import make_dev_tls
from content_provider.signing.jws import signer_for

log = logging.getLogger("content_provider")

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_CONFIG = 2

DEFAULT_TIMEOUT = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="content-provider",
        description="A mock of the content provider that Nexus Hermod fetches card and auth images from.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", help=f"YAML config (default: ${ENV_PREFIX}CONFIG, then ./config.yaml)")
        sub.add_argument("--fixtures", help="fixture folder (overrides fixtures.root)")

    serve = commands.add_parser("serve", help="serve POST /getcontent from the fixture folder")
    with_config(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    serve.add_argument("--strict", action="store_true", default=None, help="a bad fixture is fatal")
    serve.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain)")
    serve.add_argument("--tls-key", help="the certificate's PEM private key")
    serve.add_argument("--workers", type=int, help="processes serving the port (default 1; see docs/performance.md)")
    serve.add_argument(
        "--allowed-host",
        action="append",
        metavar="NAME",
        help="another name the admin API, web page and /metrics answer to (server.allowed_hosts; repeat; * is unsafe)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        metavar="URL",
        help="another origin whose pages may use the admin API (server.allowed_origins; repeat)",
    )
    serve.add_argument("--upstream", metavar="URL", help="a real content provider to stand in front of (upstream.url)")
    serve.add_argument("--upstream-mode", metavar="MODE", help="proxy, spy or record (upstream.mode; default proxy)")
    serve.add_argument("--upstream-trust", metavar="FILE", help="JWKS or PEM the upstream's back must verify against")

    tls = commands.add_parser("dev-tls", help="make a local development CA and an HTTPS server certificate")
    tls.add_argument("--dir", default=".dev-tls", help="where to write them (default .dev-tls)")
    tls.add_argument("--host", action="append", default=[], help="a host name or IP for the certificate (repeat)")

    check = commands.add_parser("check-fixtures", help="decode every fixture and report problems")
    with_config(check)

    explain = commands.add_parser("explain", help="why a content id gets the images it gets, and near misses")
    explain.add_argument("content_id", metavar="ID", help="a content id as Hermod sends it, e.g. PROV:jane.doe")
    with_config(explain)

    warming = commands.add_parser(
        "warm", help="check every image and sign every back into the persistent cache, ahead of a load test"
    )
    with_config(warming)

    conformance = commands.add_parser(
        "check",
        help="check a content provider against the contract (or, with --fixtures, the mock's own fixtures)",
    )
    conformance.add_argument(
        "url", nargs="?", help="the provider's content-provider-url (POST URL/getcontent is called)"
    )
    conformance.add_argument(
        "--fixtures",
        metavar="DIR",
        help="check this fixture folder instead of a URL: every owner's answer, built in-process (no server)",
    )
    conformance.add_argument(
        "--config",
        help=f"with --fixtures: the YAML config for them (default: ${ENV_PREFIX}CONFIG, then ./config.yaml)",
    )
    conformance.add_argument("--user", help="basic-auth user name, as Hermod would send")
    conformance.add_argument("--password", help="basic-auth password (or $CONTENT_PROVIDER_CHECK_PASSWORD)")
    conformance.add_argument(
        "--content-id", action="append", dest="content_ids", metavar="ID", help="an id to check (repeat)"
    )
    conformance.add_argument("--trust", help="JWKS (JSON) or PEM certificate that must verify the back side")
    conformance.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for a terminal (default), json for scripts, junit (JUnit XML) for a CI test report, "
        "html (one self-contained page: the cards as the phone shows them, the failures marked on them)",
    )
    conformance.add_argument(
        "--output", metavar="FILE", help="write the report to FILE (written whole or not at all) instead of stdout"
    )
    conformance.add_argument("--timeout", type=float, help="seconds per request (default 10)")
    conformance.add_argument(
        "--strict",
        action="store_true",
        help="fail too on required rules left unverified (CP13 without --trust, CP15 without --user) "
        "and on recommendations not met",
    )
    conformance.add_argument(
        "--max-image-bytes",
        type=int,
        default=MAX_IMAGE_BYTES,
        metavar="N",
        help=f"CP10: an image larger than N bytes fails (default {MAX_IMAGE_BYTES}, 2 MiB)",
    )

    generate = commands.add_parser("generate", help="make fixture images with Pillow")
    kinds = generate.add_subparsers(dest="kind", required=True, metavar="KIND")
    demo = kinds.add_parser("demo", help="(re)make the bundled demo set")
    user = kinds.add_parser("user", help="images for one content id subject: users/SUBJECT/")
    user.add_argument("subject", help="the content id without PROV:/AUTH:, e.g. a UUID")
    org = kinds.add_parser("org", help="images and members for an organisation: orgs/NAME/")
    org.add_argument("name")
    org.add_argument("--member", action="append", default=[], help="an id or pattern (repeat)")
    for sub in (demo, user, org):
        with_config(sub)
    for sub in (user, org):
        sub.add_argument("--label", help="text written on the image (default: the name)")
        sub.add_argument("--no-front", dest="front", action="store_false", help="no card front")
        sub.add_argument("--back", action="store_true", help="also a card back")
        sub.add_argument("--auth", action="store_true", help="also an authentication image")
    return parser


def _effective_environ(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment with command-line flags folded in, as the config sees it."""
    env = dict(environ)
    if getattr(args, "fixtures", None):
        env[ENV_PREFIX + "FIXTURES"] = str(Path(args.fixtures).resolve())
    if getattr(args, "host", None):
        env[ENV_PREFIX + "HOST"] = args.host
    if getattr(args, "port", None) is not None:
        env[ENV_PREFIX + "PORT"] = str(args.port)
    if getattr(args, "workers", None) is not None:
        env[ENV_PREFIX + "WORKERS"] = str(args.workers)
    if getattr(args, "strict", None):  # through the environment, so a config reload keeps it
        env[ENV_PREFIX + "STRICT"] = "true"
    if getattr(args, "allowed_host", None):  # a list: the flags replace the file's and the environment's
        env[ENV_PREFIX + "ALLOWED_HOSTS"] = ",".join(args.allowed_host)
    if getattr(args, "allowed_origin", None):
        env[ENV_PREFIX + "ALLOWED_ORIGINS"] = ",".join(args.allowed_origin)
    if getattr(args, "upstream", None):
        env[ENV_PREFIX + "UPSTREAM_URL"] = args.upstream
    if getattr(args, "upstream_mode", None):
        env[ENV_PREFIX + "UPSTREAM_MODE"] = args.upstream_mode
    for flag, name in (("tls_cert", "TLS_CERT"), ("tls_key", "TLS_KEY"), ("upstream_trust", "UPSTREAM_TRUST")):
        if getattr(args, flag, None):
            env[ENV_PREFIX + name] = str(Path(getattr(args, flag)).resolve())
    return env


class FlagError(Exception):
    """A flag's value is wrong: said as the flag, not as the config key it stands for."""


def _check_flags(args: argparse.Namespace) -> None:
    """The values of the flags that stand for config keys, checked as flags before the config is read."""
    fixtures = getattr(args, "fixtures", None)
    if fixtures and not Path(fixtures).is_dir():
        raise FlagError(f"--fixtures {fixtures}: not a folder")
    upstream = getattr(args, "upstream", None)
    if upstream:
        try:
            check_url("--upstream", upstream, credentials="upstream.username and upstream.password")
        except ConfigError as exc:
            raise FlagError(str(exc)) from None
    for flag in ("tls_cert", "tls_key", "upstream_trust"):
        value = getattr(args, flag, None)
        if value and not Path(value).is_file():
            raise FlagError(f"--{flag.replace('_', '-')} {value}: not a file")


def _settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    env = _effective_environ(args, environ)
    return load_settings(find_config(args.config, env, Path.cwd()), env)


def _configure_logging(level: str, environ: Mapping[str, str]) -> None:
    role = WorkerRole.from_environ(environ)
    worker = f"worker {role.index} " if role is not None else ""
    logging.basicConfig(
        level=getattr(logging, level),
        format=f"%(asctime)s {worker}%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    root = settings.fixture_root
    if in_package(root):
        raise ConfigError(
            f"generate: no fixture folder chosen, and the demo set inside the installed package ({root}) is never "
            f"written to; say where to write with --fixtures DIR (or fixtures.root in a config file, or "
            f"{ENV_PREFIX}FIXTURES)"
        )
    if args.kind == "demo":
        written = write_demo(root)
    elif args.kind == "user":
        label = args.label or args.subject
        written = write_images(root, USERS_DIR, args.subject, label, front=args.front, back=args.back, auth=args.auth)
    else:
        label = args.label or args.name
        written = write_images(root, ORGS_DIR, args.name, label, front=args.front, back=args.back, auth=args.auth)
        if args.member:
            written.append(write_members(root / ORGS_DIR / args.name, args.member))
    for path in written:
        print(path)
    return EXIT_OK


def _check(settings: Settings) -> int:
    signer = signer_for(settings)
    store = FixtureStore(settings, signer)
    files = sum(1 for _ in store.fixture_files())
    problems = store.check_all()
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{files} fixture image(s) checked in {settings.fixture_root}, {len(problems)} problem(s)")
    return EXIT_PROBLEMS if problems else EXIT_OK


WARM_REDRAW_SECONDS = 0.1  # the progress bar on a terminal is drawn at most this often
WARM_BAR = 30  # characters of the bar


def _warm(settings: Settings) -> int:
    """Fill the persistent cache for the whole fixture tree: a bar on a terminal, a line per tenth elsewhere."""
    if settings.cache_dir is None:
        raise ConfigError("cache.persistent is false: there is no persistent cache to warm")
    store = FixtureStore(settings, signer_for(settings))
    persistent = store.open_persistent()
    if persistent is None:
        raise ConfigError(f"cache.directory: cannot make {settings.cache_dir} (the log says why)")
    tty = sys.stderr.isatty()
    drawn = [0.0, -1]  # when the bar was drawn, the last tenth said

    def progress(done: int, total: int, problems: int) -> None:
        if tty:
            now = time.monotonic()
            if now - drawn[0] < WARM_REDRAW_SECONDS and done < total:
                return
            drawn[0] = now
            filled = WARM_BAR * done // total
            bar = "#" * filled + "-" * (WARM_BAR - filled)
            print(f"\r\033[Kwarm [{bar}] {done}/{total} images", end="", file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)
        elif done * 10 // total > drawn[1] or done == total:
            drawn[1] = done * 10 // total
            print(f"warm: {done}/{total} images ({done * 100 // total}%)", file=sys.stderr, flush=True)

    files, problems = warm(store.resolver, store.checks, store.signer, progress)
    persistent.save(raising=True)
    print(persistent.summary())
    said = f", {problems} problem(s): content-provider check-fixtures lists them" if problems else ""
    print(f"{files} fixture image(s) in {settings.fixture_root} warmed{said}")
    return EXIT_OK


def _shown(text: str) -> str:
    """Lines for the terminal: what an id holds (escape sequences, bad bytes) is shown, not acted on."""
    return "\n".join(printable(line) for line in text.split("\n"))


def _explain(settings: Settings, raw: str) -> int:
    """Exit 0 when something answers the id, 1 when nothing does (Hermod would get 404)."""
    try:
        raw = looked_up(raw, settings)
    except ValueError as exc:
        print(f"content-provider: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    explainer = Explainer(FixtureStore(settings, signer_for(settings)).resolver)
    content_id = parse_content_id(raw, settings.bare_ids)
    if content_id is None:
        print(_shown(f"{raw}: {BARE_IDS_OFF}; nothing answers (404)"))
        misses = explainer.with_prefix(raw)
        if misses:
            print(_shown("near misses:\n" + "\n".join(f"  {miss}" for miss in misses)))
        return EXIT_PROBLEMS
    explanation = explainer.explain(content_id)
    print(_shown(explanation.text()))
    return EXIT_OK if explanation.resolution is not None else EXIT_PROBLEMS


def _provider_url(given: str) -> str:
    """The base URL ``check`` calls ``{url}/getcontent`` on; ``ConfigError`` saying what to write instead."""
    if "://" not in given:
        raise ConfigError(f"URL: {given!r} has no scheme; write http://{given} (or https://)")
    url = check_url("URL", given, credentials="--user and --password")
    if url.endswith("/getcontent"):
        raise ConfigError(
            f"URL: give the provider's base URL, without /getcontent (the checker adds it): "
            f"content-provider check {url.removesuffix('/getcontent')}"
        )
    return url


def _check_output(args: argparse.Namespace) -> None:
    """``--output``'s folder exists, before the run rather than after it."""
    if args.output is not None and not Path(args.output).resolve().parent.is_dir():
        raise FlagError(f"--output {args.output}: no such folder")


def _provider_report(args: argparse.Namespace, environ: Mapping[str, str]) -> Report | int:
    """``check URL``: the report, or the exit status of a usage mistake (said on stderr)."""
    try:
        url = _provider_url(args.url)
    except ConfigError as exc:
        print(f"content-provider check: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    password = args.password or environ.get(ENV_PREFIX + "CHECK_PASSWORD")
    if (args.user is None) != (password is None):
        raise FlagError("give both --user and --password, or neither")
    trust = None
    if args.trust:
        try:
            trust = load_trust(Path(args.trust))
        except (OSError, ValueError) as exc:
            raise FlagError(f"--trust {args.trust}: {exc}") from None
    tty = sys.stderr.isatty()

    def progress(text: str) -> None:
        if tty:
            print(f"\r\033[K{text} ...", end="", file=sys.stderr, flush=True)

    report = asyncio.run(
        check(
            url,
            args.content_ids or DEMO_IDS,
            user=args.user,
            password=password,
            trust=trust,
            timeout=DEFAULT_TIMEOUT if args.timeout is None else args.timeout,
            max_image_bytes=args.max_image_bytes,
            progress=progress,
            strict=args.strict,
        )
    )
    if tty:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return report


def _fixture_report(args: argparse.Namespace, environ: Mapping[str, str]) -> Report:
    """``check --fixtures DIR``: the mock's own answers, built in-process (fixtures/review.py)."""
    for flag in ("user", "password", "trust", "timeout"):
        if getattr(args, flag) is not None:
            raise FlagError(f"--{flag} is for checking a provider's URL; --fixtures makes no request")
    _check_flags(args)
    settings = _settings(args, environ)
    _configure_logging(settings.log_level, environ)
    return review_folder(settings, args.content_ids or (), strict=args.strict, max_image_bytes=args.max_image_bytes)


def _conformance(args: argparse.Namespace, environ: Mapping[str, str], argv: Sequence[str]) -> int:
    """``check``: a provider at a URL, or the mock's own fixtures; the report in the format asked for."""
    started = time.monotonic()
    if (args.url is None) == (args.fixtures is None):
        raise FlagError("give the provider's URL, or --fixtures DIR to check the mock's own fixtures (not both)")
    if args.config is not None and args.fixtures is None:
        raise FlagError("--config is for --fixtures: a provider's URL is checked without a config")
    _check_output(args)
    if args.url is not None:
        made = _provider_report(args, environ)
        if isinstance(made, int):
            return made
        report = made
    else:
        report = _fixture_report(args, environ)
    to_file = args.output is not None
    produced = Produced(command_line(argv), seconds=time.monotonic() - started)
    text = render(report, args.format, produced, colour=not to_file and sys.stdout.isatty())
    if to_file:
        atomic_write(Path(args.output), text.encode("utf-8"))
        print(f"content-provider check: report written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return report.exit_status


def _dev_tls(args: argparse.Namespace) -> int:
    files = make_dev_tls(Path(args.dir).resolve(), args.host)
    print(f"CA certificate (trust this):  {files.ca_cert}")
    print(f"CA key (keep private):        {files.ca_key}")
    print(f"server certificate:           {files.server_cert}")
    print(f"server key:                   {files.server_key}")
    print(f"serve:  content-provider serve --tls-cert {files.server_cert} --tls-key {files.server_key}")
    print(f"curl:   curl --cacert {files.ca_cert} https://localhost:8080/healthz")
    return EXIT_OK


# What main() says of each error a command raises, and the exit status it gives (first match wins).
FAILURES: tuple[tuple[type[Exception], str, int], ...] = (
    (FlagError, "", EXIT_CONFIG),
    (ConfigError, "config error: ", EXIT_CONFIG),
    (FixtureError, "", EXIT_PROBLEMS),
    (OSError, "", EXIT_CONFIG),
)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        if args.command == "check":
            return _conformance(args, env, sys.argv[1:] if argv is None else argv)
        return _command(args, env, argv)
    except KeyboardInterrupt:
        return EXIT_OK
    except tuple(kind for kind, _, _ in FAILURES) as exc:
        prefix, status = next((prefix, status) for kind, prefix, status in FAILURES if isinstance(exc, kind))
        print(f"content-provider: {prefix}{exc}", file=sys.stderr)
        return status


def _command(args: argparse.Namespace, env: Mapping[str, str], argv: Sequence[str] | None) -> int:
    """Every command but ``check``; :func:`main` turns what it raises into one line and an exit status."""
    if args.command == "dev-tls":
        try:
            return _dev_tls(args)
        except (ConfigError, ValueError) as exc:  # a folder or key it cannot use: said as itself
            raise FlagError(str(exc)) from None
    if args.command == "generate" and args.fixtures:
        try:  # generate starts a fixture folder of one's own
            Path(args.fixtures).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FlagError(f"--fixtures {args.fixtures}: cannot make the folder: {exc.strerror}") from None
    _check_flags(args)
    settings = _settings(args, env)
    _configure_logging(settings.log_level, env)
    if args.command == "generate":
        if args.kind == "user" or args.kind == "org":
            name = args.subject if args.kind == "user" else args.name
            if not is_folder_name(name):
                raise FlagError(f"{name!r} is not a folder name (letters, digits, . _ @ + = -)")
        return _generate(args, settings)
    if args.command == "check-fixtures":
        return _check(settings)
    if args.command == "warm":
        return _warm(settings)
    if args.command == "explain":
        return _explain(settings, args.content_id)
    served_env = _effective_environ(args, env)
    with writable_fixtures(settings) as copy:
        worker_env = dict(env)
        if copy is not None:  # the workers, and a reload, serve the same copy
            settings = settings.replace(fixture_root=copy)
            served_env[ENV_PREFIX + "FIXTURES"] = worker_env[ENV_PREFIX + "FIXTURES"] = str(copy)
        if settings.workers > 1 and WorkerRole.from_environ(env) is None:
            signer_for(settings)  # once, not N times
            scheme = "https" if settings.tls_cert else "http"
            command = list(sys.argv[1:] if argv is None else argv)
            return supervise(
                command,
                worker_env,
                settings.workers,
                settings.host,
                settings.port,
                scheme,
                settings.base_path,
                settings.redis_url,
            )
        run_loop(serve(settings, served_env), settings.event_loop)
    return EXIT_OK
