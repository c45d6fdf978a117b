"""HTTPS with a local development CA: made by a command, trusted by a client that is given the CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from content_provider.cli import main

from .helpers import DOC_CARD
from .test_cli import serving, write_config


def test_dev_tls_makes_a_ca_and_a_server_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "tls"
    assert main(["dev-tls", "--dir", str(folder), "--host", "mock.test", "--host", "10.0.0.7"], {}) == 0
    assert "curl --cacert" in capsys.readouterr().out
    ca = x509.load_pem_x509_certificate((folder / "dev-ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((folder / "server.pem").read_bytes())
    assert server.issuer == ca.subject
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n) for n in names.get_values_for_type(x509.DNSName)} == {"mock.test", "localhost"}
    assert {str(n) for n in names.get_values_for_type(x509.IPAddress)} == {"10.0.0.7", "127.0.0.1", "::1"}
    assert (folder / "dev-ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert (folder / "server-key.pem").stat().st_mode & 0o777 == 0o600
    ca_before = (folder / "dev-ca.pem").read_bytes()
    assert main(["dev-tls", "--dir", str(folder)], {}) == 0  # the CA is kept, the server certificate renewed
    assert (folder / "dev-ca.pem").read_bytes() == ca_before


async def test_serves_https_that_a_client_trusting_the_ca_accepts(
    tmp_path: Path, fixture_root: Path, signing_dir: Path
) -> None:
    folder = tmp_path / "tls"
    assert main(["dev-tls", "--dir", str(folder)], {}) == 0
    tls = f"server:\n  tls_cert: {folder / 'server.pem'}\n  tls_key: {folder / 'server-key.pem'}\n"
    async with serving(write_config(tmp_path, fixture_root, signing_dir, tls), tmp_path) as server:
        assert server.url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(folder / "dev-ca.pem"))
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD}, ssl=trusted) as response:
                assert response.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.post(f"{server.url}/getcontent", json={"contentId": DOC_CARD})


def test_a_key_that_does_not_match_is_a_clear_error(
    tmp_path: Path, fixture_root: Path, signing_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["dev-tls", "--dir", str(one)], {}) == 0
    assert main(["dev-tls", "--dir", str(two)], {}) == 0
    capsys.readouterr()
    config = write_config(tmp_path, fixture_root, signing_dir)
    args = ["serve", "--config", str(config), "--port", "0"]
    assert main([*args, "--tls-cert", str(one / "server.pem"), "--tls-key", str(two / "server-key.pem")], {}) == 2
    assert "cannot use" in capsys.readouterr().err
    assert main([*args, "--tls-cert", str(one / "server.pem")], {}) == 2
    assert "set both" in capsys.readouterr().err
