"""Every example in README.md and docs/*.md is run or checked against the code.

- every fenced block names a language the tests know, and every ``python`` block is run
  by some test (tests/test_readme.py, tests/test_plugin.py);
- every ``yaml`` block is a valid configuration;
- every ``sh`` command is checked against the command line: subcommands and flags (by the
  real argument parser), environment variables, routes, files; the blocks that only talk
  to the mock over HTTP are run against a live one, and their ``# -> ...`` comments checked;
- every ``json`` block is a request the mock answers or an answer of the mock's shape;
- the tables of demo ids, ``serve`` flags, ``check`` flags, configuration keys, routes and
  the admin API match the code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from content_provider.app import create_app
from content_provider.cli import _effective_environ, build_parser
from content_provider.config.environment import ENV_PREFIX
from content_provider.config.parse import find_config, parse_settings
from content_provider.config.settings import Settings
from content_provider.core.reader import ConfigError
from content_provider.faults.directives import split_directives

from .docs import LANGUAGES, PYTHON_KINDS, ROOT, Block, blocks, code_spans, read, table
from .helpers import DOC_CARD, MakeClient, get_content

# Programs an ``sh`` example may use besides the project's own, and what they are for.
OTHER_PROGRAMS = {"grep", "keytool", "apt-get", "lint-imports", "printf"}
# A block made only of these, talking to the mock over plain HTTP, is run against a live mock.
CLIENT_PROGRAMS = {"curl", "grep", "keytool", "python3", "for", "do", "done"}
EXPECTED = re.compile(r"#\s*->\s*(.+?)\s*$")


# --------------------------------------------------------------------------- fences and python


def test_every_fence_names_a_language_the_tests_know() -> None:
    unknown = [f"{block} ```{block.language}" for block in blocks() if block.language not in LANGUAGES]
    assert not unknown, f"use one of {LANGUAGES}: {unknown}"


def test_every_python_example_is_run_by_a_test() -> None:
    for block in blocks("python"):
        kinds = [kind for kind, matches in PYTHON_KINDS.items() if matches(block.text)]
        assert len(kinds) == 1, f"{block}: no test runs this example (kinds {kinds}); see tests/docs.py"


# --------------------------------------------------------------------------- yaml and json


@pytest.mark.parametrize("block", blocks("yaml"), ids=str)
def test_yaml_example_is_a_valid_configuration(block: Block) -> None:
    data = yaml.safe_load(block.text)
    if isinstance(data, dict) and "scrape_configs" in data:  # a Prometheus scrape config
        for job in data["scrape_configs"]:
            assert is_route("GET", job["metrics_path"]), f"{block}: no route {job['metrics_path']}"
    else:
        parse_settings(data, ROOT, {})


async def test_json_examples_are_what_the_mock_takes_and_gives(make_client: MakeClient) -> None:
    client = await make_client()
    real = await (await get_content(client, DOC_CARD)).json()
    examples = blocks("json")
    assert examples
    for block in examples:
        example = json.loads(block.text)
        if "contentId" in example:
            response = await client.post("/getcontent", json=example)
            assert response.status == 200, block
        else:
            assert set(example) == set(real) == {"data"}, block
            for shown, served in zip(example["data"], real["data"], strict=True):
                assert set(shown) == set(served), block
                assert all(isinstance(value, str) for value in shown.values()), block
                shown_meta = {k: v for k, v in shown.items() if k != "data"}
                assert shown_meta == {k: v for k, v in served.items() if k != "data"}, block
                assert served["data"].startswith(shown["data"].rstrip(".")[:10]), block


# --------------------------------------------------------------------------- sh


def known_environment() -> set[str]:
    """Every CONTENT_PROVIDER_* variable something in the project reads."""
    names: set[str] = set()
    sources = [*(ROOT / "content_provider").rglob("*.py"), *(ROOT / "tests").glob("*.py"), ROOT / "dev"]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"\bCONTENT_PROVIDER_[A-Z_]*[A-Z]\b", text))
        suffixes = re.findall(r'(?:ENV_PREFIX\s*\+\s*|\benv(?:_int|_bool)?\(environ,\s*)"([A-Z_]+)"', text)
        names |= {ENV_PREFIX + suffix for suffix in suffixes}
    return names


def app_routes() -> list[tuple[str, re.Pattern[str]]]:
    """(method, path pattern) of every route the app has, but the catch-all that answers 404/405."""
    found = []
    for route in create_app(Settings()).router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        if route.method not in ("HEAD", "*"):
            found.append((route.method, re.compile(re.sub(r"\\\{[^}]*\}", "[^/]+", re.escape(path)))))
    return found


ROUTES = app_routes()


def is_route(method: str, path: str) -> bool:
    return any(method == m and pattern.fullmatch(path) for m, pattern in ROUTES)


def subcommand(name: str) -> argparse.ArgumentParser:
    """The parser of one ``content-provider`` subcommand."""
    [subparsers] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser: argparse.ArgumentParser = subparsers.choices[name]
    return parser


def parse_cli(args: list[str], where: str) -> argparse.Namespace:
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(args)
    except SystemExit:
        raise AssertionError(f"{where}: content-provider {shlex.join(args)}: {errors.getvalue()}") from None


def commands(block: Block) -> list[list[str]]:
    """The simple commands of an ``sh`` block: pipes, lists and redirections split off, comments gone."""
    found = []
    for line in block.text.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: list[str] = []
        words = list(lexer)
        for index, word in enumerate(words):
            if word and set(word) <= set(";&|<>"):
                if command:
                    found.append(command)
                command = []
            elif index and words[index - 1] in (">", ">>", "<"):
                continue  # a redirection's file
            else:
                command.append(word)
        if command:
            found.append(command)
    return found


@functools.cache
def script_options(script: str) -> str:
    """What ``python SCRIPT --help`` says: the options the script really takes, wherever it defines them."""
    shown = subprocess.run(
        [sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert shown.returncode == 0, f"{script} --help failed: {shown.stderr[-500:]}"
    return shown.stdout


def takes_option(text: str, flag: str) -> bool:
    """Whether ``text`` (a --help, a script) names the option ``flag`` (``--x`` or ``--x=V``) whole:
    ``--round`` is not ``--rounds``."""
    name = re.escape(flag.split("=", 1)[0])
    return re.search(rf"(?<![\w-]){name}(?![\w-])", text) is not None


def check_command(words: list[str], where: str) -> None:
    """Fail unless the command is one the project (or a named tool) really takes."""
    if words[:1] == ["export"]:  # export NAME=VALUE ...: only assignments
        words = words[1:]
        assert all("=" in word for word in words), f"{where}: export {words}"
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        name = words[0].split("=", 1)[0]
        assert not name.startswith(ENV_PREFIX) or name in known_environment(), f"{where}: nothing reads ${name}"
        words = words[1:]
    if not words:
        return  # export, or assignments alone
    program, args = words[0], words[1:]
    if program in ("for", "done") or program in OTHER_PROGRAMS:
        return
    if program == "do":
        check_command(args, where)
    elif program == "./dev":
        assert args[:1] in (["serve"], ["test"], ["run"]), f"{where}: ./dev has no command {args[:1]}"
        if args[0] == "serve":
            parse_cli(["serve", *args[1:]], where)
        elif args[0] == "run":
            check_command(args[1:], where)
        else:
            for arg in args[1:]:
                if not arg.startswith("-") and ("/" in arg or arg.endswith(".py")):
                    assert (ROOT / arg.split("::")[0]).exists(), f"{where}: ./dev test {arg}: no such file"
    elif program == "content-provider":
        parse_cli(args, where)
    elif program in ("python", "python3"):
        if args[:1] == ["-c"]:
            compile(args[1], where, "exec")
        elif args[:2] == ["-m", "content_provider"]:
            parse_cli(args[2:], where)
        elif args[:3] == ["-m", "pip", "install"] or args == ["-m", "build"]:
            return  # installing or building this package: tests/test_installed.py does both
        else:
            script = ROOT / args[0]
            assert script.is_file(), f"{where}: no script {args[0]}"
            for flag in (arg for arg in args[1:] if arg.startswith("--")):
                assert takes_option(script_options(args[0]), flag), f"{where}: {args[0]} has no {flag}"
    elif program == "bench/run":
        passed_to = "cold.py" if "--cold" in args else "throughput.py"  # bench/run passes the rest to it
        takes = (ROOT / "bench" / "run").read_text() + script_options(f"bench/{passed_to}")
        for flag in (arg for arg in args if arg.startswith("--")):
            assert takes_option(takes, flag), f"{where}: bench/run has no {flag}"
    elif program == "schemathesis":  # the property-based run (docs/contract.md), with schemathesis.toml
        assert args[:1] == ["run"], f"{where}: schemathesis {args[:1]}"
        assert (ROOT / "schemathesis.toml").is_file(), f"{where}: no schemathesis.toml"
        urls = [arg for arg in args if "://" in arg]
        assert len(urls) == 1, f"{where}: schemathesis run needs the document's URL"
        assert urlsplit(urls[0]).path == "/openapi.json", f"{where}: {urls[0]} is not the OpenAPI document"
    elif program == "openssl":
        from .test_signing import OPENSSL_KEY_AND_CERT

        assert shlex.join(words) == OPENSSL_KEY_AND_CERT, f"{where}: not the command tests/test_signing.py runs"
    elif program in ("kubectl", "kind", "minikube") or (program == "podman" and args[:1] in KUBE_PODMAN):
        check_kube_command(program, args, where)
    elif program in ("docker", "podman", "podman-compose"):
        check_container_command(program, args, where)
    elif program == "curl":
        method = "GET"
        for index, arg in enumerate(args):
            if arg in ("-d", "--data"):
                method = "POST" if method == "GET" else method
            if arg == "-X":
                method = args[index + 1]
        urls = [arg for arg in args if "://" in arg or arg.startswith("localhost:")]
        assert urls, f"{where}: curl without a URL"
        for url in urls:
            path = urlsplit(url if "://" in url else f"http://{url}").path
            assert is_route(method, path), f"{where}: the mock has no route {method} {path}"
    else:
        raise AssertionError(f"{where}: unknown program {program!r}; teach tests/test_doc_examples.py about it")


# podman's commands for deploy/kubernetes/ (and the Docker API Testcontainers talks to)
KUBE_PODMAN = (["kube"], ["secret"], ["network"], ["system"])


def check_kube_command(program: str, args: list[str], where: str) -> None:
    """kubectl, kind, minikube and podman's kube, secret, network and service commands as
    docs/containers.md uses them: the files of deploy/kubernetes/, and the names in them."""
    from .test_container_kube import every_document, pod_spec, secret_references

    names = {(d["kind"], d["metadata"]["name"]) for d in every_document()}
    deployments = [d for d in every_document() if d["kind"] == "Deployment"]
    images = {container["image"] for d in deployments for container in pod_spec(d)["containers"]}
    files = [args[i + 1] for i, arg in enumerate(args) if arg in ("-f", "--configmap")]
    files += [arg for arg in args[2:] if arg.endswith(".yaml")] if args[:1] == ["kube"] else []
    for name in files:
        assert name.startswith("deploy/kubernetes/"), f"{where}: {name} is not in deploy/kubernetes/"
        assert (ROOT / name).exists(), f"{where}: no {name}"
    if program in ("kind", "minikube"):
        assert args[:2] in (["load", "docker-image"], ["image", "load"]), f"{where}: {program} {args[:2]}"
        assert args[2] in images, f"{where}: {args[2]} is no image of deploy/kubernetes/"
    elif program == "kubectl":
        assert args[0] in ("apply", "create", "port-forward"), f"{where}: kubectl {args[0]}"
        if args[0] == "apply":
            assert files, f"{where}: kubectl apply names no file"
        elif args[0] == "create":
            assert args[1:3] == ["secret", "generic"], where
            wanted = secret_references().get(args[3])
            assert wanted, f"{where}: the Deployment takes no Secret {args[3]}"
            keys = [arg.split("=")[1] for arg in args if arg.startswith("--from-literal=")]
            keys += [Path(arg.split("=")[-1]).name for arg in args if arg.startswith("--from-file=")]
            assert keys == list(wanted.values()), f"{where}: the Deployment takes {list(wanted.values())}"
        else:
            kind, _, name = args[1].partition("/")
            assert kind == "service", f"{where}: port-forward to the Service"
            assert ("Service", name) in names, f"{where}: no Service {name}"
    elif args[:2] == ["kube", "play"] or args[:2] == ["kube", "down"]:
        assert files, f"{where}: podman {args[:2]} names no file"
        for index, arg in enumerate(args):
            if arg == "--network" and ":alias=" in args[index + 1]:
                alias = args[index + 1].split(":alias=")[1]
                assert ("Service", alias) in names, f"{where}: the alias {alias} is no Service's name"
    elif args[:2] == ["secret", "create"]:
        assert args[2] in secret_references(), f"{where}: the Deployment takes no Secret {args[2]}"
    else:
        assert args[:2] in (["network", "create"], ["system", "service"]), f"{where}: podman {args[:2]}"


# The options of ``docker run`` / ``podman run`` the docs use: those that take a value, and those that do not
RUN_VALUE_OPTIONS = {"-p", "--publish", "-v", "--volume", "-e", "--env", "--name", "--stop-timeout", "--entrypoint"}
RUN_FLAGS = {"--rm", "-d", "--detach"}
COMPOSE_COMMANDS = {"up", "down", "ps", "logs", "build"}


def check_container_command(program: str, args: list[str], where: str) -> None:
    """docker and podman as docs/containers.md uses them: the build of this repository's Containerfile,
    a run of its image (what follows the image is ``serve``'s flags, or with ``--entrypoint`` a command),
    compose with deploy/compose.yaml."""
    if program == "podman-compose" or args[:1] == ["compose"]:
        args = args[1:] if args[:1] == ["compose"] else args
        files = [args[i + 1] for i, arg in enumerate(args) if arg == "-f"]
        assert files, f"{where}: name the compose file with -f"
        assert all((ROOT / name).is_file() for name in files), f"{where}: no compose file {files}"
        assert COMPOSE_COMMANDS & set(args), f"{where}: {program} {shlex.join(args)}: which compose command?"
        return
    command, options = args[0], args[1:]
    if command == "build":
        assert options[-1] == ".", f"{where}: build the repository's root (its Containerfile)"
        declared = set(re.findall(r"^ARG (\w+)", (ROOT / "Containerfile").read_text(), flags=re.MULTILINE))
        for index, option in enumerate(options):
            if option == "--build-arg":
                name = options[index + 1].split("=", 1)[0]
                assert name in declared, f"{where}: the Containerfile has no ARG {name}"
        return
    assert command == "run", f"{where}: {program} {command}: teach tests/test_doc_examples.py about it"
    entrypoint, index = None, 0
    while options[index].startswith("-"):
        option = options[index]
        assert option in RUN_VALUE_OPTIONS | RUN_FLAGS, f"{where}: {program} run {option}: not one the docs use"
        if option in ("-e", "--env"):
            name = options[index + 1].split("=", 1)[0]
            assert not name.startswith(ENV_PREFIX) or name in known_environment(), f"{where}: nothing reads ${name}"
        if option == "--entrypoint":
            entrypoint = options[index + 1]
        index += 1 if option in RUN_FLAGS else 2
    image, rest = options[index], options[index + 1 :]
    assert image == "content-provider", f"{where}: run the image built above (content-provider), not {image}"
    if entrypoint is None:
        parse_cli(["serve", "--host", "0.0.0.0", *rest], where)  # the image's entry point, then the flags
    else:
        assert entrypoint == "content-provider", where
        parse_cli(rest, where)


@pytest.mark.parametrize("block", blocks("sh"), ids=str)
def test_sh_example_is_what_the_command_line_takes(block: Block) -> None:
    found = commands(block)
    assert found, block
    for command in found:
        check_command(command, str(block))


def talks_to_the_mock(block: Block) -> bool:
    """Only HTTP clients, and the mock's address: such a block runs against a live mock."""
    programs = {command[0] for command in commands(block)}
    return programs <= CLIENT_PROGRAMS and ":8080" in block.text and "https://" not in block.text


@pytest.mark.parametrize("block", [b for b in blocks("sh") if talks_to_the_mock(b)], ids=str)
async def test_http_example_runs_against_the_mock(block: Block, make_client: MakeClient, tmp_path: Path) -> None:
    for program in {command[0] for command in commands(block)} - {"for", "do", "done"}:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    client = await make_client()
    base = str(client.make_url("")).rstrip("/")
    address = base.removeprefix("http://")
    script = block.text.replace("http://127.0.0.1:8080", base)
    script = script.replace("localhost:8080", address).replace("127.0.0.1:8080", address)
    result = await asyncio.to_thread(
        subprocess.run,
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{block}: {result.stderr}"
    output = " ".join(result.stdout.split())
    position = 0
    for line in block.text.splitlines():
        expected = EXPECTED.search(line)
        if expected:
            wanted = " ".join(expected.group(1).split())
            found = output.find(wanted, position)
            assert found >= 0, f"{block}: expected {wanted!r} in the output, in order:\n{result.stdout[-2000:]}"
            position = found + len(wanted)


# --------------------------------------------------------------------------- text blocks with content


def test_directive_examples_parse() -> None:
    examples = [
        line.split("#")[0].strip()
        for block in blocks("text", (ROOT / "docs" / "faults.md",))
        for line in block.text.splitlines()
        if re.match(r"^(PROV|AUTH):\S*;", line)
    ]
    assert len(examples) >= 5
    for example in examples:
        lookup, directive = split_directives(example, 3600)
        assert directive is not None, example
        assert ";" not in lookup, example


def test_command_line_synopsis_names_real_flags() -> None:
    [synopsis] = [b for b in blocks("text") if b.text.startswith("content-provider serve")]
    for line in synopsis.text.splitlines():
        words = line.split()
        if words[0] != "content-provider":
            continue
        sub = subcommand(words[1])
        options = set(sub._option_string_actions)
        if words[1] == "generate":
            [kinds] = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
            for kind in kinds.choices.values():
                options |= set(kind._option_string_actions)
        for flag in re.findall(r"--[a-z-]+", line):
            assert flag in options, f"{synopsis}: content-provider {words[1]} has no {flag}"


# --------------------------------------------------------------------------- tables


def served_file(fixture_root: Path, owner: str, subject: str, side: str) -> bytes:
    folder = {"acme": "orgs/acme", "globex": "orgs/globex", "default": "default"}.get(owner, f"users/{subject}")
    return (fixture_root / folder / f"{side}.jpg").read_bytes()


async def test_demo_table_is_what_the_bundled_set_serves(make_client: MakeClient, fixture_root: Path) -> None:
    bundled = parse_settings(yaml.safe_load(read("config.yaml")), ROOT, {ENV_PREFIX + "FIXTURES": str(fixture_root)})
    client = await make_client(users=bundled.users, organisations=bundled.organisations)
    rows = table(read("docs/fixtures.md"), "| content id |")
    assert len(rows) >= 9
    for ids, answers, _why in rows:
        owner = next((name for name in ("acme", "globex", "default") if name in answers), "own")
        for shown in code_spans(ids):
            content_id = shown.replace("<anything>", "x7").replace("<digits>", "42")
            response = await get_content(client, content_id)
            assert response.status == 200, content_id
            elements = (await response.json())["data"]
            keys = [element["key"] for element in elements]
            subject = content_id.split(":", 1)[1]
            if content_id.startswith("AUTH:"):
                assert keys == ["auth_image"], content_id
                side = "auth"
            else:
                assert keys == (["front", "back"] if "front + back" in answers else ["front"]), content_id
                side = "front"
            served = base64.b64decode(elements[0]["data"])
            assert served == served_file(fixture_root, owner, subject, side), f"{content_id}: not {owner}'s {side}"


def test_serve_flag_table_matches_the_parser() -> None:
    serve = subcommand("serve")
    rows = table(read("docs/configuration.md"), "| flag | env | meaning | default |")
    documented = {code_spans(flag)[0].split()[0]: code_spans(env) for flag, env, _meaning, _default in rows}
    assert set(documented) == set(serve._option_string_actions) - {"-h", "--help"}
    for flag, envs in documented.items():
        if flag == "--config":
            assert envs == [ENV_PREFIX + "CONFIG"]
            assert find_config(None, {envs[0]: str(ROOT / "config.yaml")}, ROOT / "docs") == ROOT / "config.yaml"
        elif flag == "--strict":
            assert envs == []
        else:
            args = build_parser().parse_args(["serve", flag, "1"])
            assert envs == [name for name in _effective_environ(args, {}) if name.startswith(ENV_PREFIX)], flag


def test_check_flag_table_matches_the_parser() -> None:
    check = subcommand("check")
    rows = table(read("docs/conformance.md"), "| flag | meaning | default |")
    documented = {span.split()[0] for flag, _meaning, _default in rows for span in code_spans(flag)}
    assert documented == (set(check._option_string_actions) - {"-h", "--help"}) | {"URL"}


def known_config_keys() -> dict[str, set[str]]:
    """Section -> keys, as the configuration reader itself lists them when it meets an unknown one."""

    def known(data: dict[str, Any]) -> set[str]:
        with pytest.raises(ConfigError) as error:
            parse_settings(data, ROOT, {})
        return set(re.search(r"known here: (.*)\)$", str(error.value)).group(1).split(", "))  # type: ignore[union-attr]

    return {section: known({section: {"not-a-key": 1}}) for section in known({"not-a-section": 1})}


def test_configuration_table_lists_every_key() -> None:
    rows = table(read("docs/configuration.md"), "| key | env | flag | meaning | default |")
    documented: dict[str, set[str]] = {}
    for row in rows:
        for span in code_spans(row[0]):
            section, key = span.split(".")[:2]
            documented.setdefault(section, set()).add(key)
    assert documented == known_config_keys()


def documented_routes(page: str, header: str) -> list[tuple[str, str]]:
    found = []
    for row in table(read(page), header):
        for span in code_spans(row[0]):
            method, _, path = span.partition(" ")
            if path.startswith("/"):
                found.append((method, re.sub(r"\{[^}]*\}", "x", path.split("?")[0])))
    return found


def test_admin_api_table_lists_every_admin_route() -> None:
    documented = documented_routes("docs/admin-and-pytest.md", "| method and path | does |")
    for method, path in documented:
        assert is_route(method, path), f"no admin route {method} {path}"
    for method, pattern in ROUTES:
        if pattern.pattern.startswith(re.escape("/__admin/")):
            assert any(m == method and pattern.fullmatch(p) for m, p in documented), f"undocumented {method} {pattern}"


def test_routes_table_names_real_routes() -> None:
    documented = documented_routes("docs/configuration.md", "| method and path | what |")
    assert len(documented) >= 7
    for method, path in documented:
        assert is_route(method, path), f"no route {method} {path}"


def test_every_environment_variable_in_the_docs_is_read() -> None:
    text = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "docs").glob("*.md"))
    text += read("README.md")
    mentioned = set(re.findall(r"\bCONTENT_PROVIDER_[A-Z_]*[A-Z]\b", text))
    assert mentioned
    assert mentioned <= known_environment(), mentioned - known_environment()
