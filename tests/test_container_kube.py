"""deploy/kubernetes/: valid Kubernetes (its own schemas, offline), and played by ``podman kube play``:
Redis and two replicas of this tree's image start on one network, answer ``/healthz`` and
``/getcontent``, take their config from the ConfigMap and their admin token from the Secret, and
share one state: a rule set through one replica fires on the other.

What the podman run changes in the files, and why (docs/containers.md#kubernetes says the same):

- the images: this tree's image for ``content-provider:latest``, the local Redis image for
  ``redis:7`` (no registry here);
- the Deployments' names get a random prefix (podman's pod names are machine-wide), and so do the
  Secrets' (podman secrets, machine-wide too): podman 4.3 does not take a ``Secret`` from a played
  file (it stores the document itself, which a ``secretKeyRef`` then cannot read), so the test
  makes the podman secrets first, JSON maps of base64 values (the admin token, and the signing
  key and certificate that the docs' openssl command makes), and plays the other documents;
- the Redis Service's name becomes a DNS alias on the test's own network (``--network
  NET:alias=redis``): podman ignores Services, and that alias is what makes ``redis`` in the
  ConfigMap's ``state.redis_url`` reach it, as the Service does in a cluster.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import secrets
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from content_provider.client import AdminClient, AdminError
from content_provider.config.parse import parse_settings
from content_provider.config.settings import SIGNING_CERT_ENV, SIGNING_KEY_ENV
from content_provider.signing.jws import verify_back

from .containers import ROOT, get_content, podman, removed, unique_name, wait_http
from .test_signing import OPENSSL_KEY_AND_CERT, openssl_key_and_cert

KUBE = ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(KUBE.glob("*.yaml"))
# the oldest and the newest Kubernetes whose schemas kubernetes-validate carries
VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
PORT = 8080
DEMO_CARD = "PROV:67d21afb-e830-4fee-a691-00a997ffbe1a"


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def every_document() -> list[dict[str, Any]]:
    return [document for path in MANIFESTS for document in documents(path)]


def the(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in every_document() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} in deploy/kubernetes/"
    return found[0]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def mock_container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(the("Deployment", "content-provider"))["containers"]
    assert len(containers) == 1, containers
    return containers[0]


def secret_references() -> dict[str, dict[str, str]]:
    """Secret name -> {variable: key} of the mock's ``secretKeyRef``s."""
    found: dict[str, dict[str, str]] = {}
    for variable in mock_container()["env"]:
        reference = variable.get("valueFrom", {}).get("secretKeyRef")
        if reference is not None:
            found.setdefault(reference["name"], {})[variable["name"]] = reference["key"]
    return found


def signing_secret_keys() -> list[str]:
    """The keys ``kubectl create secret generic NAME --from-file=A --from-file=B`` gives the files that
    the docs' openssl command makes (the same command tests/test_signing.py runs)."""
    words = OPENSSL_KEY_AND_CERT.split()
    return [words[words.index("-keyout") + 1], words[words.index("-out") + 1]]


def config_text() -> str:
    text: str = the("ConfigMap", "content-provider-config")["data"]["config.yaml"]
    return text


# --------------------------------------------------------------------------- the files, without podman


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "document", every_document(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}" if isinstance(d, dict) else ""
)
def test_every_document_is_valid_kubernetes(document: dict[str, Any], version: str) -> None:
    """Strict: a misspelt field fails too, not only a missing or mistyped one."""
    kubernetes_validate.validate(document, version, strict=True)


def test_the_documents_fit_together_and_the_image() -> None:
    """What no schema sees: names that refer to each other, the image's port, user and config path."""
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in every_document())
    assert kinds == [
        ("ConfigMap", "content-provider-config"),
        ("Deployment", "content-provider"),
        ("Deployment", "redis"),
        ("Secret", "content-provider-admin"),
        ("Service", "content-provider"),
        ("Service", "redis"),
    ]
    containerfile = (ROOT / "Containerfile").read_text()
    mock = the("Deployment", "content-provider")
    assert mock["spec"]["replicas"] == 2
    spec = pod_spec(mock)
    assert f"EXPOSE {PORT}" in containerfile
    assert "USER 10001:10001" in containerfile
    assert spec["securityContext"]["runAsUser"] == 10001
    container = mock_container()
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": PORT}, probe
    assert set(container["resources"]) == {"requests", "limits"}
    # the ConfigMap as /config, where the image reads ./config.yaml (its WORKDIR)
    assert "WORKDIR /config" in containerfile
    [mount] = container["volumeMounts"]
    [volume] = spec["volumes"]
    assert mount == {"name": volume["name"], "mountPath": "/config", "readOnly": True}
    assert volume["configMap"]["name"] == "content-provider-config"
    # the admin Secret holds the key the Deployment takes; the signing one (a private key) is the
    # user's to make, from the files the docs' openssl command makes
    references = secret_references()
    assert set(references) == {"content-provider-admin", "content-provider-signing"}
    admin = references["content-provider-admin"]
    assert list(admin) == ["CONTENT_PROVIDER_ADMIN_TOKEN"]
    token = the("Secret", "content-provider-admin")["stringData"][admin["CONTENT_PROVIDER_ADMIN_TOKEN"]]
    assert not [d for d in every_document() if d["kind"] == "Secret" and d["metadata"]["name"].endswith("signing")]
    signing = references["content-provider-signing"]
    assert list(signing) == [SIGNING_KEY_ENV, SIGNING_CERT_ENV]
    assert list(signing.values()) == signing_secret_keys()
    # each Service selects its Deployment's pods, on the port they serve
    for name, port in (("content-provider", PORT), ("redis", 6379)):
        service, deployment = the("Service", name), the("Deployment", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items(), name
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [port], name
    # the config is a valid configuration whose Redis is the Service, and which lets the Service's
    # name through to the admin API
    settings = parse_settings(yaml.safe_load(config_text()), ROOT, {"CONTENT_PROVIDER_ADMIN_TOKEN": token})
    assert settings.state_backend == "redis"
    redis_url = urlsplit(settings.redis_url or "")
    assert (redis_url.hostname, redis_url.port) == ("redis", 6379)
    assert "content-provider" in settings.allowed_hosts


def test_no_container_publishes_a_port() -> None:
    """podman kube play publishes every ``containerPort`` on all of the host's addresses, where two
    replicas collide; Kubernetes needs none (the Services target the ports by number)."""
    for name in ("content-provider", "redis"):
        for container in pod_spec(the("Deployment", name))["containers"]:
            assert "ports" not in container, name


# --------------------------------------------------------------------------- played by podman


@dataclass(frozen=True)
class Replica:
    """One pod of the played Deployment, reached at its address on the test's network."""

    container: str
    url: str

    def logs(self) -> str:
        done = podman("logs", self.container, check=False)
        return done.stdout + done.stderr


@dataclass(frozen=True)
class Played:
    network: str
    token: str
    replicas: list[Replica]


def for_podman(path: Path, prefix: str, images: dict[str, str]) -> list[dict[str, Any]]:
    """The documents of ``path`` as this test plays them (the module's docstring says why)."""
    played = []
    for document in documents(path):
        if document["kind"] == "Secret":
            continue
        document = copy.deepcopy(document)
        if document["kind"] == "Deployment":
            document["metadata"]["name"] = f"{prefix}-{document['metadata']['name']}"
            for container in pod_spec(document)["containers"]:
                container["image"] = images[container["image"]]
                for variable in container.get("env", []):
                    reference = variable.get("valueFrom", {}).get("secretKeyRef")
                    if reference is not None:
                        reference["name"] = f"{prefix}-{reference['name']}"
        played.append(document)
    return played


def address(container: str, network: str) -> str:
    found = podman("inspect", "--format", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', container)
    return found.stdout.strip()


@pytest.fixture(scope="module")
def played(project_image: str, redis_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Played]:
    prefix = unique_name("cp-kube")
    folder = tmp_path_factory.mktemp("kube")
    images = {mock_container()["image"]: project_image}
    [redis] = pod_spec(the("Deployment", "redis"))["containers"]
    images[redis["image"]] = redis_image
    token = secrets.token_hex(16)
    values = {"CONTENT_PROVIDER_ADMIN_TOKEN": token, **openssl_key_and_cert(folder)}
    files = {}
    for name in ("redis.yaml", "content-provider.yaml"):
        files[name] = folder / name
        files[name].write_text(yaml.safe_dump_all(for_podman(KUBE / name, prefix, images)))
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(removed("network", prefix))
        podman("network", "create", prefix)
        for secret, keys in secret_references().items():
            # podman's form of a Secret: a JSON map of base64 values
            data = {key: base64.b64encode(values[variable].encode()).decode() for variable, key in keys.items()}
            cleanup.enter_context(removed("secret", f"{prefix}-{secret}"))
            podman("secret", "create", f"{prefix}-{secret}", "-", input=json.dumps(data))
        try:
            podman("kube", "play", "--network", f"{prefix}:alias=redis", str(files["redis.yaml"]))
            podman(
                "kube", "play", "--network", prefix, "--configmap", str(KUBE / "configmap.yaml"),
                str(files["content-provider.yaml"]),
            )  # fmt: skip
            deployment = f"{prefix}-content-provider"
            pods = podman("pod", "ps", "--filter", f"name=^{deployment}-pod-", "--format", "{{.Name}}").stdout.split()
            replicas = []
            for pod in sorted(pods):
                container = f"{pod}-{mock_container()['name']}"
                replicas.append(Replica(container, f"http://{address(container, prefix)}:{PORT}"))
            for replica in replicas:
                try:
                    wait_http(f"{replica.url}/healthz", 60)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{replica.container}'s log:\n{replica.logs()[-3000:]}") from None
            yield Played(prefix, token, replicas)
        finally:
            for path in files.values():
                podman("kube", "down", str(path), check=False, timeout=120)


def healthz(replica: Replica) -> dict[str, Any]:
    with urllib.request.urlopen(f"{replica.url}/healthz", timeout=10) as answer:
        body: dict[str, Any] = json.loads(answer.read())
    return body


def test_podman_plays_the_deployment_as_two_pods(played: Played) -> None:
    """podman 4.3 makes a pod for each of ``replicas`` (name-pod-0, name-pod-1); 4.4 and later make one."""
    version = podman("version", "--format", "{{.Client.Version}}").stdout.strip()
    assert len(played.replicas) == 2, f"podman {version} made {len(played.replicas)} pods of replicas: 2"


def test_each_replica_serves_the_contract_from_the_configmap_and_redis(played: Played) -> None:
    expected_namespace = yaml.safe_load(config_text())["state"]["namespace"]
    for replica in played.replicas:
        health = healthz(replica)
        assert health["status"] == "ok", health
        # redis, not the default memory: the ConfigMap was read; reachable: the alias stood for the Service
        assert health["state"]["backend"] == "redis", health
        assert health["state"]["reachable"] is True, health
        assert health["state"]["namespace"] == expected_namespace, health
        status, body, _ = get_content(replica.url, DEMO_CARD)
        assert status == 200, body
        assert [element["key"] for element in body["data"]] == ["front", "back"]
        user = podman("exec", replica.container, "id", "-u").stdout.strip()
        assert user == "10001"
        memory = podman("inspect", "--format", "{{.HostConfig.Memory}}", replica.container).stdout.strip()
        assert int(memory) == 512 * 1024 * 1024  # the limit of resources.limits.memory


def test_the_admin_api_takes_the_token_of_the_secret(played: Played) -> None:
    replica = played.replicas[0]
    with pytest.raises(AdminError) as refused:
        AdminClient(replica.url).rules()  # from the host: not loopback to the pod, so a token is needed
    assert refused.value.status == 401
    with pytest.raises(AdminError) as wrong:
        AdminClient(replica.url, token="not-the-token-of-the-secret").rules()
    assert wrong.value.status == 401
    assert isinstance(AdminClient(replica.url, token=played.token).rules(), list)


def test_the_replicas_sign_with_the_key_of_the_secret(played: Played) -> None:
    """Each replica's back verifies against the other's JWKS: one key and certificate for both, so a
    verifier that fetched either's may take backs from any (each made its own before)."""
    first, second = played.replicas
    keys = []
    for replica in played.replicas:
        with urllib.request.urlopen(f"{replica.url}/.well-known/jwks.json", timeout=10) as answer:
            keys.append(json.loads(answer.read()))
    assert keys[0] == keys[1]
    for replica, other in ((first, keys[1]), (second, keys[0])):
        status, body, _ = get_content(replica.url, DEMO_CARD)
        assert status == 200, body
        header, payload = verify_back(body["data"][1]["data"], other)
        assert payload[:2] == b"\xff\xd8", replica  # a JPEG
        assert header["kid"] == other["keys"][0]["kid"]


def test_a_rule_set_through_one_replica_fires_on_the_other(played: Played) -> None:
    first, second = played.replicas
    admin = AdminClient(first.url, token=played.token)
    admin.add_rule(name="kube-down", match={"id": "PROV:bob"}, outcome=503)
    try:
        status, body, _ = get_content(second.url, "PROV:bob")
        assert status == 503, body
        assert get_content(second.url, "PROV:alice")[0] == 200
        # the journal is shared too: the second replica's answers, read through the first
        assert admin.request_count(content_id="PROV:bob") >= 1
    finally:
        admin.delete_rule("kube-down")
    assert get_content(second.url, "PROV:bob")[0] == 200


def test_everything_played_is_removed_at_the_end(project_image: str, redis_image: str, tmp_path: Path) -> None:
    """A play of its own, taken down as the fixture does: no pod, secret or network of it is left."""
    prefix = unique_name("cp-kube")
    path = tmp_path / "redis.yaml"
    [redis] = pod_spec(the("Deployment", "redis"))["containers"]
    path.write_text(yaml.safe_dump_all(for_podman(KUBE / "redis.yaml", prefix, {redis["image"]: redis_image})))
    with removed("network", prefix), removed("secret", f"{prefix}-secret"):
        podman("network", "create", prefix)
        podman("secret", "create", f"{prefix}-secret", "-", input="{}")
        try:
            podman("kube", "play", "--network", prefix, str(path))
            assert podman("pod", "exists", f"{prefix}-redis-pod-0", check=False).returncode == 0
        finally:
            podman("kube", "down", str(path), check=False, timeout=120)
        assert podman("pod", "exists", f"{prefix}-redis-pod-0", check=False).returncode != 0
    assert podman("network", "exists", prefix, check=False).returncode != 0
    assert prefix not in podman("secret", "ls", "--format", "{{.Name}}").stdout
    assert prefix not in podman("ps", "--all", "--format", "{{.Names}}").stdout
