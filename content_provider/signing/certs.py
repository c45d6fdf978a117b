"""X.509 certificates for development: the signing certificate of the back side's key and the
local TLS CA and server certificate, made by one builder so they cannot drift apart."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

ORGANIZATION = "content-provider mock (development only)"
BACKDATED = datetime.timedelta(minutes=5)  # a certificate made now is valid for a peer whose clock is a little behind


def dev_name(common_name: str) -> x509.Name:
    """A subject (or issuer) that says what made it."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        ]
    )


def key_usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    """A certificate's key usage: signing data (a leaf) or signing certificates (a CA)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_certificate(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: tuple[x509.Name, CertificateIssuerPrivateKeyTypes],
    *,
    days: int | None = None,
    valid: tuple[datetime.datetime, datetime.datetime] | None = None,
    ca: bool = False,
    usage: x509.KeyUsage | None = None,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """A certificate for ``public_key``, signed by ``issuer`` (its name and key; the same as the
    subject's for a self-signed one), valid from a few minutes ago for ``days`` (or ``valid``).

    Basic constraints and ``usage`` are critical; ``extensions`` are not.
    """
    issuer_name, issuer_key = issuer
    if valid is None:
        now = datetime.datetime.now(datetime.UTC)
        valid = (now - BACKDATED, now + datetime.timedelta(days=days or 1))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(usage, critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    algorithm = None if isinstance(issuer_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(issuer_key, algorithm)
