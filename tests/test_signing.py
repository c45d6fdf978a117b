"""The back side verifies with the published key and certificate, and fails after tampering."""

from __future__ import annotations

import base64
import datetime
import json
import multiprocessing
import subprocess
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.errors import BadSignatureError, JoseError

from content_provider.config.parse import parse_settings
from content_provider.core.reader import ConfigError
from content_provider.signing.jws import SUBJECT_CN, load_or_create_signer, signer_for, signer_from_pem, verify_back

from .helpers import DOC_CARD, MakeClient, get_content
from .test_cli import serving, write_config


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def fetch_back(client: object) -> str:
    body = await (await get_content(client, DOC_CARD)).json()  # type: ignore[arg-type]
    [back] = [e for e in body["data"] if e["key"] == "back"]
    return str(back["data"])


@pytest.mark.parametrize("algorithm", ["RS256", "PS256", "ES256", "ES384", "Ed25519", "EdDSA"])
async def test_back_verifies_with_published_jwks(make_client: MakeClient, tmp_path: Path, algorithm: str) -> None:
    client = await make_client(algorithm=algorithm, key_file=tmp_path / "key.pem", cert_file=tmp_path / "cert.pem")
    compact = await fetch_back(client)
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    header, payload = verify_back(compact, jwks, [algorithm])
    assert header["alg"] == algorithm
    assert header["kid"] == jwks["keys"][0]["kid"]
    assert payload[:2] == b"\xff\xd8"  # the JPEG itself
    # The certificate in x5c is the one published as PEM, and it says it is not the vendor's.
    pem = await (await client.get("/signing-cert.pem")).read()
    certificate = x509.load_pem_x509_certificate(pem)
    assert base64.b64decode(header["x5c"][0]) == certificate.public_bytes(Encoding.DER)
    assert SUBJECT_CN in certificate.subject.rfc4514_string()


async def test_tampered_back_fails_verification(make_client: MakeClient) -> None:
    client = await make_client()
    header, payload, signature = (await fetch_back(client)).split(".")
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    verify_back(f"{header}.{payload}.{signature}", jwks)  # untouched, it verifies
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[len(raw) // 2] ^= 0xFF
    with pytest.raises(BadSignatureError):
        verify_back(f"{header}.{b64url(bytes(raw))}.{signature}", jwks)
    forged_header = json.loads(base64.urlsafe_b64decode(header + "=="))
    forged_header["cty"] = "image/png"
    with pytest.raises(BadSignatureError):
        verify_back(f"{b64url(json.dumps(forged_header).encode())}.{payload}.{signature}", jwks)


def test_key_is_made_once_and_reused(tmp_path: Path) -> None:
    first = load_or_create_signer("ES256", tmp_path / "k.pem", tmp_path / "c.pem")
    second = load_or_create_signer("ES256", tmp_path / "k.pem", tmp_path / "c.pem")
    assert first.kid == second.kid
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600


def test_key_of_the_wrong_type_is_a_clear_error(tmp_path: Path) -> None:
    load_or_create_signer("ES256", tmp_path / "k.pem", tmp_path / "c.pem")
    with pytest.raises(ConfigError, match=r"signing.key_file: .* holds a P-256 key but signing.algorithm RS256"):
        load_or_create_signer("RS256", tmp_path / "k.pem", tmp_path / "c.pem")


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("not a key")
    with pytest.raises(ConfigError, match=r"signing\.key_file: cannot load"):
        load_or_create_signer("RS256", tmp_path / "k.pem", tmp_path / "c.pem")


async def test_back_with_another_kid_does_not_verify(make_client: MakeClient) -> None:
    client = await make_client()
    header, payload, signature = (await fetch_back(client)).split(".")
    jwks = await (await client.get("/.well-known/jwks.json")).json()
    jwks["keys"][0]["kid"] = "someone-else"
    with pytest.raises(JoseError):
        verify_back(f"{header}.{payload}.{signature}", jwks)


@pytest.mark.parametrize("algorithm", ["EdDSA", "Ed25519"])
async def test_ed25519_backs_under_either_name_verify_with_plain_ed25519(
    make_client: MakeClient, tmp_path: Path, algorithm: str
) -> None:
    """EdDSA (RFC 8037) is the name older verifiers know; the key says crv Ed25519 under both names."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    client = await make_client(algorithm=algorithm, key_file=tmp_path / "key.pem", cert_file=tmp_path / "cert.pem")
    header, payload, signature = (await fetch_back(client)).split(".")
    [key] = (await (await client.get("/.well-known/jwks.json")).json())["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", algorithm)
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == algorithm
    public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4)))
    public.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), f"{header}.{payload}".encode())


def test_the_state_folder_is_made_on_first_use_and_reused(tmp_path: Path) -> None:
    settings = parse_settings({}, tmp_path, {"CONTENT_PROVIDER_STATE_DIR": str(tmp_path / "state")})
    first = signer_for(settings)
    assert first.key_file == tmp_path / "state" / "signing" / "rsa-key.pem"
    assert (tmp_path / "state" / "signing").stat().st_mode & 0o777 == 0o700
    assert signer_for(settings).kid == first.kid


def test_a_state_folder_that_cannot_be_made_names_it_and_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    settings = parse_settings({}, tmp_path, {"CONTENT_PROVIDER_STATE_DIR": str(tmp_path / "file" / "state")})
    with pytest.raises(ConfigError) as caught:
        signer_for(settings)
    assert str(caught.value) == (
        f"cannot make the folder {tmp_path / 'file' / 'state' / 'signing'} for the development signing key "
        "(Not a directory); set CONTENT_PROVIDER_STATE_DIR to a folder you can write, or signing.directory "
        "in a config file"
    )


def _sign_from_shared_folder(folder: str, start: Any, out: Any) -> None:
    start.wait()  # every process finds no key, then makes one at the same moment
    signer = load_or_create_signer("RS256", Path(folder) / "k.pem", Path(folder) / "c.pem")
    out.put((signer.kid, signer.certificate.fingerprint(hashes.SHA256()).hex()))


def test_replicas_sharing_a_state_folder_sign_with_one_key_and_one_certificate(tmp_path: Path) -> None:
    """Replicas (compose, a Kubernetes volume) starting together on one empty state folder: the first key
    and certificate written win and every replica signs with them, so one JWKS verifies every back."""
    context = multiprocessing.get_context("fork")
    replicas = 6
    start, out = context.Barrier(replicas), context.Queue()
    processes = [
        context.Process(target=_sign_from_shared_folder, args=(str(tmp_path), start, out)) for _ in range(replicas)
    ]
    for process in processes:
        process.start()
    seen = [out.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(set(seen)) == 1, seen
    on_disk = load_or_create_signer("RS256", tmp_path / "k.pem", tmp_path / "c.pem")
    assert seen[0][0] == on_disk.kid
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no temporaries left


# --------------------------------------------------------------------------- a key and certificate from the environment

OPENSSL_KEY_AND_CERT = (  # the command docs/containers.md gives for a Kubernetes Secret
    "openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN=content-provider-signing "
    "-keyout signing-key.pem -out signing-cert.pem"
)


def openssl_key_and_cert(folder: Path) -> dict[str, str]:
    subprocess.run(OPENSSL_KEY_AND_CERT.split(), cwd=folder, check=True, capture_output=True)
    return {
        "CONTENT_PROVIDER_SIGNING_KEY": (folder / "signing-key.pem").read_text(),
        "CONTENT_PROVIDER_SIGNING_CERT": (folder / "signing-cert.pem").read_text(),
    }


async def test_replicas_given_one_key_and_certificate_by_environment_sign_alike(
    tmp_path: Path, fixture_root: Path
) -> None:
    """Two serve processes with nothing in common but the two variables (as Kubernetes pods given one
    Secret): each one's back verifies against the other's JWKS, the x5c is the given certificate, and
    nothing is written where the key files would go."""
    given = openssl_key_and_cert(tmp_path)
    certificate = x509.load_pem_x509_certificate(given["CONTENT_PROVIDER_SIGNING_CERT"].encode())
    answers = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, fixture_root, tmp_path / name / "signing")
        async with serving(config, tmp_path / name, env=given) as server, aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/.well-known/jwks.json") as response:
                jwks = await response.json()
            async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}) as response:
                [back] = [e["data"] for e in (await response.json())["data"] if e["key"] == "back"]
        answers.append((jwks, back))
        assert not (tmp_path / name / "signing").exists()  # no development key made
    (jwks_a, back_a), (jwks_b, back_b) = answers
    assert jwks_a == jwks_b
    header, _ = verify_back(back_b, jwks_a)
    verify_back(back_a, jwks_b)
    assert base64.b64decode(header["x5c"][0]) == certificate.public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"CONTENT_PROVIDER_SIGNING_CERT": ""},
            "CONTENT_PROVIDER_SIGNING_KEY is set but CONTENT_PROVIDER_SIGNING_CERT",
        ),
        ({"CONTENT_PROVIDER_SIGNING_KEY": ""}, "CONTENT_PROVIDER_SIGNING_CERT is set but CONTENT_PROVIDER_SIGNING_KEY"),
        ({"CONTENT_PROVIDER_SIGNING_KEY": "not a key"}, "CONTENT_PROVIDER_SIGNING_KEY: not an unencrypted PEM"),
        ({"CONTENT_PROVIDER_SIGNING_CERT": "-----BEGIN CERTIFICATE-----\nAAAA\n"}, "SIGNING_CERT: not a PEM"),
        ({"CONTENT_PROVIDER_JWS_ALG": "ES256"}, "SIGNING_KEY holds a RSA key but signing.algorithm ES256 needs P-256"),
        ("another key", "CONTENT_PROVIDER_SIGNING_CERT: the certificate is for another key"),
        ("expired", "CONTENT_PROVIDER_SIGNING_CERT: the certificate expired on"),
    ],
)
def test_a_key_or_certificate_from_the_environment_that_does_not_fit_is_said(
    tmp_path: Path, change: dict[str, str] | str, message: str
) -> None:
    given = openssl_key_and_cert(tmp_path)
    if change == "another key":
        (tmp_path / "other").mkdir()
        given["CONTENT_PROVIDER_SIGNING_CERT"] = openssl_key_and_cert(tmp_path / "other")[
            "CONTENT_PROVIDER_SIGNING_CERT"
        ]
    elif change == "expired":
        signer = signer_from_pem("RS256", given["CONTENT_PROVIDER_SIGNING_KEY"], given["CONTENT_PROVIDER_SIGNING_CERT"])
        with mock.patch("content_provider.signing.jws.datetime") as clock:
            clock.datetime.now.return_value = signer.certificate.not_valid_after_utc + datetime.timedelta(days=1)
            clock.UTC = datetime.UTC
            with pytest.raises(ConfigError, match=message):
                signer_for(parse_settings({}, tmp_path, given))
        return
    else:
        assert isinstance(change, dict)
        given.update(change)
    with pytest.raises(ConfigError, match=message):
        signer_for(parse_settings({}, tmp_path, given))


def test_the_key_from_the_environment_is_never_shown(tmp_path: Path) -> None:
    given = openssl_key_and_cert(tmp_path)
    settings = parse_settings({}, tmp_path, given)
    assert "PRIVATE KEY" not in repr(settings)
    assert settings.state_dir is None  # nothing to make in the state folder for the key
