"""A config mistake names the key and what was wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from content_provider.config.parse import load_settings, parse_settings
from content_provider.config.settings import DEMO_FIXTURES, in_package
from content_provider.core.reader import ConfigError


def parse(data: Any, env: dict[str, str] | None = None) -> Any:
    return parse_settings(data, Path.cwd(), env or {})


def test_empty_config_gives_defaults() -> None:
    settings = parse(None)
    assert settings.port == 8080
    assert settings.host == "127.0.0.1"
    assert settings.fixture_root == DEMO_FIXTURES
    assert settings.algorithm == "RS256"
    assert settings.key_file.name == "rsa-key.pem"


def test_the_demo_set_is_the_checkouts_own_when_run_from_one() -> None:
    assert Path(__file__).resolve().parent.parent / "fixtures" / "images" == DEMO_FIXTURES
    assert not in_package(DEMO_FIXTURES)


@pytest.mark.parametrize(
    ("env", "state"),
    [
        ({"CONTENT_PROVIDER_STATE_DIR": "/srv/cp", "XDG_STATE_HOME": "/x", "HOME": "/h"}, "/srv/cp"),
        ({"XDG_STATE_HOME": "/x", "HOME": "/h"}, "/x/content-provider"),
        ({"XDG_STATE_HOME": "relative/is/ignored", "HOME": "/h"}, "/h/.local/state/content-provider"),
        ({"HOME": "/h"}, "/h/.local/state/content-provider"),
    ],
)
def test_without_a_place_in_config_the_key_goes_to_the_state_folder(env: dict[str, str], state: str) -> None:
    settings = parse(None, env)
    assert settings.state_dir == Path(state)
    assert settings.key_file == Path(state) / "signing" / "rsa-key.pem"
    assert settings.cert_file == Path(state) / "signing" / "rsa-cert.pem"
    assert not (Path(state) / "signing").exists()  # named only: made when the key is


def test_a_config_file_names_the_signing_place_relative_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("signing:\n  directory: .dev-signing\n  algorithm: ES256\n")
    settings = load_settings(path, {"CONTENT_PROVIDER_STATE_DIR": "/srv/cp"})
    assert settings.state_dir is None
    assert settings.key_file == tmp_path / ".dev-signing" / "ec-p256-key.pem"


def test_bundled_config_yaml_loads() -> None:
    settings = load_settings(Path(__file__).parent.parent / "config.yaml", {})
    assert settings.fixture_root == DEMO_FIXTURES
    assert "employee/0001" in settings.users
    assert settings.organisations[0].name == "globex"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"server": {"port": "eighty"}}, "server.port: expected an integer, got 'eighty'"),
        ({"server": {"port": 70000}}, "server.port: must be between 0 and 65535, got 70000"),
        ({"server": {"prot": 80}}, "server.prot: unknown key"),
        ({"sever": {}}, "sever: unknown key"),
        ({"server": []}, "server: expected a mapping, got a list"),
        ({"server": {"base_path": "cp"}}, "server.base_path: must start with '/'"),
        ({"fixtures": {"root": "/does/not/exist"}}, "fixtures.root: '/does/not/exist' is not a folder"),
        ({"fixtures": {"strict": "yes"}}, "fixtures.strict: expected true or false, got 'yes'"),
        (
            {"fixtures": {"bare_ids": "both"}},
            "fixtures.bare_ids: expected one of card, auth, off, got 'both'",
        ),
        (
            {"fixtures": {"users": {"u": {"front": "../../etc/passwd"}}}},
            "fixtures.users.u.front: '../../etc/passwd' is outside",
        ),
        ({"fixtures": {"users": {"u": {"photo": "x.jpg"}}}}, "fixtures.users.u.photo: unknown key"),
        (
            {"fixtures": {"organisations": {"a/b": {}}}},
            "fixtures.organisations.a/b: organisation names are folder names",
        ),
        (
            {"fixtures": {"organisations": {"a": {"members": "bob"}}}},
            "fixtures.organisations.a.members: expected a list",
        ),
        (
            {"fixtures": {"organisations": {"a": {"patterns": ["re:("]}}}},
            "patterns[0]: bad regular expression",
        ),
        ({"cache": {"max_bytes": -1}}, "cache.max_bytes: must be between 0"),
        ({"signing": {"algorithm": "HS256"}}, "signing.algorithm: expected one of RS256"),
        ({"auth": {"username": "a:b", "password": "p"}}, "auth.username: may not contain ':'"),
        ({"logging": {"level": "LOUD"}}, "logging.level: expected one of DEBUG"),
        ([1, 2], "top level: expected a mapping, got a list"),
    ],
)
def test_errors_name_the_key(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert message in str(caught.value)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    env = {
        "CONTENT_PROVIDER_PORT": "9999",
        "CONTENT_PROVIDER_HOST": "::1",
        "CONTENT_PROVIDER_FIXTURES": str(tmp_path),
        "CONTENT_PROVIDER_JWS_ALG": "ES256",
    }
    settings = parse({"server": {"port": 1234, "host": "0.0.0.0"}}, env)
    assert (settings.port, settings.host, settings.fixture_root) == (9999, "::1", tmp_path)
    assert settings.algorithm == "ES256"
    assert settings.key_file.name == "ec-p256-key.pem"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONTENT_PROVIDER_PORT": "x"}, "CONTENT_PROVIDER_PORT: expected a whole number"),
        ({"CONTENT_PROVIDER_PORT": "-1"}, "CONTENT_PROVIDER_PORT: must be between"),
        ({"CONTENT_PROVIDER_JWS_ALG": "none"}, "CONTENT_PROVIDER_JWS_ALG: expected one of"),
        (
            {"CONTENT_PROVIDER_EVENT_LOOP": "trio"},
            "CONTENT_PROVIDER_EVENT_LOOP: expected one of auto, asyncio, uvloop",
        ),
    ],
)
def test_bad_environment_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse({}, env)


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("server:\n  port: [1,\n")
    with pytest.raises(ConfigError, match=r"config.yaml: not valid YAML"):
        load_settings(path, {})


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("fixtures:\n  root: imgs\nsigning:\n  directory: keys\n")
    settings = load_settings(path, {})
    assert settings.fixture_root == tmp_path / "imgs"
    assert settings.key_file == tmp_path / "keys" / "rsa-key.pem"


def test_a_folder_name_with_a_trailing_newline_is_no_folder_name() -> None:
    """The check's "$" matched before a final newline, so ``acme\\n`` passed (#23 item 13)."""
    with pytest.raises(ConfigError, match="organisation names are folder names"):
        parse_settings({"fixtures": {"organisations": {"acme\n": {"members": ["bob"]}}}}, Path.cwd(), {})
