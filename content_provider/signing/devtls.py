"""A local development CA and a server certificate it signs, for serving HTTPS.

Hermod is configured with an https ``content-provider-url``; its Java trust store (or
curl's ``--cacert``) can trust this CA for the mock. The CA is for this machine's tests
only: its key sits next to it, unencrypted, and it can sign anything.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from content_provider.core.fsutil import atomic_write
from content_provider.core.reader import ConfigError
from content_provider.signing.certs import dev_name, key_usage, make_certificate

CA_DAYS = 3650
SERVER_DAYS = 397  # what browsers and many TLS stacks accept for a leaf
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class DevTLSFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _files(directory: Path) -> DevTLSFiles:
    return DevTLSFiles(
        directory / "dev-ca.pem", directory / "dev-ca-key.pem", directory / "server.pem", directory / "server-key.pem"
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_or_make_ca(files: DevTLSFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if files.ca_cert.exists() and files.ca_key.exists():
        certificate = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{files.ca_key}: not the EC key this command makes; move it away to make a new CA")
        return certificate, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = dev_name("content-provider development CA - local testing only")
    certificate = make_certificate(
        name,
        key.public_key(),
        (name, key),
        days=CA_DAYS,
        ca=True,
        usage=key_usage(key_cert_sign=True),
        extensions=[x509.SubjectKeyIdentifier.from_public_key(key.public_key())],
    )
    atomic_write(files.ca_key, _key_pem(key), mode=0o600)
    atomic_write(files.ca_cert, certificate.public_bytes(serialization.Encoding.PEM))
    return certificate, key


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def make_dev_tls(directory: Path, names: list[str]) -> DevTLSFiles:
    """Make (or reuse) the CA, then a new server certificate for ``names`` (host names and IPs)."""
    files = _files(directory)
    ca_cert, ca_key = _load_or_make_ca(files)
    key = ec.generate_private_key(ec.SECP256R1())
    all_names = list(dict.fromkeys([*names, *DEFAULT_NAMES]))
    certificate = make_certificate(
        dev_name(all_names[0]),
        key.public_key(),
        (ca_cert.subject, ca_key),
        days=SERVER_DAYS,
        extensions=[
            _san(all_names),
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
        ],
    )
    atomic_write(files.server_key, _key_pem(key), mode=0o600)
    atomic_write(files.server_cert, certificate.public_bytes(serialization.Encoding.PEM))
    return files


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context; a bad file is a config error naming it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise ConfigError(f"server.tls: {exc.filename} does not exist") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"server.tls: cannot use {cert_file} with {key_file}: {exc}") from None
    return context
