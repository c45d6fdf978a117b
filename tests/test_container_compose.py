"""deploy/compose.yaml, run by podman-compose: three replicas of this tree's image and one Redis
(the local redis image; Docker Hub users get ``redis:7``) share one state. A rule set through one
replica fires on another, an upload through one is served by all, and a replica killed loses
nothing: the others keep it all, and the replica started again takes up what changed meanwhile."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from content_provider.client import AdminClient
from content_provider.config.environment import ENV_PREFIX
from content_provider.config.parse import parse_settings
from content_provider.fixtures.generate import card_jpeg
from content_provider.signing import verify_back

from .containers import ROOT, ComposeProject, Container, compose_project, get_content, podman
from .helpers import DOC_CARD
from .test_doc_examples import known_environment

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
TOKEN = "a-token-of-sixteen-characters-or-more"
REPLICAS = 3


def compose_environ(image: str, redis_image: str) -> dict[str, str]:
    """The file's variables as the tests set them: the local images, ports on 127.0.0.1 picked by podman."""
    return {"IMAGE": image, "REDIS_IMAGE": redis_image, "ADMIN_TOKEN": TOKEN, "PORTS": "127.0.0.1:"}


@pytest.fixture(scope="module")
def project(project_image: str, redis_image: str) -> Iterator[ComposeProject]:
    with compose_project(COMPOSE_FILE, compose_environ(project_image, redis_image)) as running:
        for replica in running.containers("content-provider"):
            replica.wait_ready()
        yield running


def replicas(project: ComposeProject) -> list[Container]:
    found = project.containers("content-provider")
    assert len(found) == REPLICAS, found
    return found


def client(replica: Container) -> AdminClient:
    return AdminClient(replica.url, token=TOKEN)


def served_front(replica: Container, content_id: str) -> Any:
    status, body, _ = get_content(replica.url, content_id)
    return body["data"][0]["data"] if status == 200 else status


def test_the_replicas_share_one_redis(project: ComposeProject) -> None:
    for replica in replicas(project):
        with urllib.request.urlopen(f"{replica.url}/healthz", timeout=10) as answer:
            state = json.loads(answer.read())["state"]
        assert state["backend"] == "redis", state
        assert state["reachable"] is True, state
        assert state["namespace"] == "staging", state


def test_a_rule_set_through_replica_1_fires_on_replica_3(project: ComposeProject) -> None:
    first, _, third = replicas(project)
    client(first).add_rule(name="compose-down", match={"id": "PROV:rule-on-three"}, outcome=503)
    assert get_content(third.url, "PROV:rule-on-three")[0] == 503
    assert [rule["name"] for rule in client(third).rules()] == ["compose-down"]


def test_every_replicas_back_verifies_against_one_jwks(project: ComposeProject) -> None:
    """Hermod trusts one key: behind a balancer, the back from any replica must verify against it."""
    first = replicas(project)[0]
    with urllib.request.urlopen(f"{first.url}/.well-known/jwks.json", timeout=10) as answer:
        jwks = json.loads(answer.read())
    for replica in replicas(project):
        status, body, _ = get_content(replica.url, DOC_CARD)
        assert status == 200, body
        [back] = [element["data"] for element in body["data"] if element["key"] == "back"]
        verify_back(back, jwks)  # raises when this replica signs with a key of its own


def test_an_upload_through_one_replica_is_served_by_all(project: ComposeProject) -> None:
    second = replicas(project)[1]
    client(second).put_image("front", card_jpeg("uploaded"), user="compose-upload")
    served = {replica.name: served_front(replica, "PROV:compose-upload") for replica in replicas(project)}
    assert len(set(served.values())) == 1, served
    assert all(isinstance(front, str) for front in served.values()), served


def test_killing_a_replica_loses_nothing(project: ComposeProject) -> None:
    first, second, third = replicas(project)
    client(first).add_rule(name="before-kill", match={"id": "PROV:before-kill"}, outcome=502)
    client(third).put_image("front", card_jpeg("before kill"), user="before-kill")
    podman("kill", second.name)
    assert podman("inspect", "--format", "{{.State.Running}}", second.name).stdout.strip() == "false"
    # the others still answer, with the rule and the upload
    for replica in (first, third):
        assert get_content(replica.url, "PROV:before-kill")[0] == 502
        assert isinstance(served_front(replica, "PROV:before-kill"), int)  # the rule's 502, not the card
        assert "before-kill" in [rule["name"] for rule in client(replica).rules()]
    client(third).delete_rule("before-kill")
    assert isinstance(served_front(first, "PROV:before-kill"), str)  # the upload, through the other replica
    # changes made while it is down
    client(first).add_rule(name="while-down", match={"id": "PROV:while-down"}, outcome=504)
    client(first).put_image("front", card_jpeg("while down"), user="while-down")
    # started again (as a restart policy or an orchestrator would), it takes up all of it
    podman("start", second.name)
    [restarted] = [replica for replica in replicas(project) if replica.name == second.name]
    restarted.wait_ready()
    assert get_content(restarted.url, "PROV:while-down")[0] == 504
    assert served_front(restarted, "PROV:before-kill") == served_front(first, "PROV:before-kill")
    assert served_front(restarted, "PROV:while-down") == served_front(third, "PROV:while-down")
    assert "before-kill" not in [rule["name"] for rule in client(restarted).rules()]


# --------------------------------------------------------------------------- the file itself, without podman


def interpolated(text: str, environ: dict[str, str]) -> Any:
    """The compose file with its ``${NAME:-default}`` and ``${NAME:?message}`` filled in, as compose does."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if name in environ:
            return environ[name]
        assert kind == ":-", f"{COMPOSE_FILE}: ${{{name}}} is required and not set"
        return rest

    return yaml.safe_load(re.sub(r"\$\{([A-Z_]+)(:-|:\?)([^}]*)\}", value, text))


def test_the_compose_file_is_what_the_mock_and_the_containerfile_take() -> None:
    data = interpolated(COMPOSE_FILE.read_text(encoding="utf-8"), {"ADMIN_TOKEN": TOKEN})
    services = data["services"]
    assert services["redis"]["image"] == "redis:7"  # the usual one, for Docker Hub users
    mock = services["content-provider"]
    assert mock["deploy"] == {"mode": "replicated", "replicas": REPLICAS}  # podman-compose needs the mode
    build = mock["build"]
    context = (COMPOSE_FILE.parent / build["context"]).resolve()
    assert context == ROOT
    assert context / build["dockerfile"] == ROOT / "Containerfile"
    assert set(build["args"]) <= set(re.findall(r"^ARG (\w+)", (ROOT / "Containerfile").read_text(), re.MULTILINE))
    environment = {str(k): str(v) for k, v in mock["environment"].items()}
    unknown = {name for name in environment if name.startswith(ENV_PREFIX)} - known_environment()
    assert not unknown, f"nothing reads {unknown}"
    settings = parse_settings({}, ROOT, environment)  # the environment is a valid configuration
    assert settings.state_backend == "redis"
    assert settings.admin_token == TOKEN
    assert mock["ports"] == ["8080-8082:8080"]  # one port per replica


def test_the_compose_file_wants_an_admin_token() -> None:
    with pytest.raises(AssertionError, match="ADMIN_TOKEN"):
        interpolated(COMPOSE_FILE.read_text(encoding="utf-8"), {})
