"""The keys a back side must verify against (``check --trust``, ``upstream.trust``): a JWKS, one
JWK, or a PEM certificate, checked when loaded so a file that holds no usable key is said at once
rather than as a failed CP13 later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey


def load_trust(path: Path) -> dict[str, Any]:
    """A JWKS of at least one usable public key; ``ValueError`` saying what the file lacks."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith(("{", "[")):
        return _checked_jwks(json.loads(text))
    try:
        certificate = x509.load_pem_x509_certificate(text.encode())
    except ValueError:
        raise ValueError("neither a JWKS (JSON) nor a PEM certificate") from None
    public = certificate.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    key: RSAKey | ECKey | OKPKey
    if isinstance(public, rsa.RSAPublicKey):
        key = RSAKey.import_key(pem)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        key = ECKey.import_key(pem)
    elif isinstance(public, ed25519.Ed25519PublicKey):
        key = OKPKey.import_key(pem)
    else:
        raise ValueError(f"the certificate's key is {type(public).__name__}; a back is signed with RSA, EC or Ed25519")
    return {"keys": [dict(key.as_dict(private=False), kid=key.thumbprint())]}


def _checked_jwks(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ValueError('a JWKS is a JSON object with a "keys" list')
    keys = document.get("keys", [document])
    if not isinstance(keys, list) or not keys:
        raise ValueError(
            'holds no key: a JWKS needs a non-empty "keys" list (e.g. the provider\'s /.well-known/jwks.json)'
        )
    for position, key in enumerate(keys):
        if not isinstance(key, dict) or "kty" not in key:
            raise ValueError(f'key {position + 1}: not a JWK (a JSON object with "kty")')
    try:
        KeySet.import_key_set({"keys": keys})
    except Exception as exc:  # joserfc raises several types for a key it cannot use
        raise ValueError(f"a key cannot be used: {exc}") from None
    return {"keys": keys}
