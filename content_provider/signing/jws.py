"""The back side's JWS: a development key and certificate of our own, never the vendor's.

A real content provider signs the back of the card with certificates issued by the
vendor. A mock cannot hold those, so it makes a self-signed development certificate
whose subject says what it is, puts it in the JWS header (``x5c``) and publishes the
public key as a JWKS, so a client can verify what it got.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jws
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey
from joserfc.util import json_b64encode, urlsafe_b64encode

from content_provider.config.settings import (
    ALGORITHMS,
    KEY_TYPES,
    SIGNING_CERT_ENV,
    SIGNING_KEY_ENV,
    STATE_DIR_ENV,
    Settings,
)
from content_provider.core.b64 import b64url_encode
from content_provider.core.diskmap import DiskMap
from content_provider.core.fsutil import atomic_write, create_once
from content_provider.core.lru import ThreadSafeLRU
from content_provider.core.reader import ConfigError
from content_provider.signing.certs import dev_name, key_usage, make_certificate

log = logging.getLogger("content_provider.signing")

SUBJECT_CN = "content-provider DEV signing - NOT issued by Nexus"
CERT_DAYS = 825
SIGNATURES_KEPT = 10_000  # signatures remembered by payload digest: about 0.4 kB each (RSA-2048)
# Key types whose signatures are kept in the persistent cache (cache.directory): a stored signature is
# verified before it is used, which saves time only where verifying costs far less than signing
# (RSA: ~0.03 ms against ~1 ms; ECDSA and EdDSA verify slower than they sign).
PERSISTED_FAMILIES = ("RSA",)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
JoseKey = RSAKey | ECKey | OKPKey


class _EdDSA(JWSAlgModel):
    """RFC 8037's ``EdDSA`` with an Ed25519 key, as joserfc does it, minus its warning that RFC 9864
    deprecates the name: we offer it on purpose, for verifiers that know no other."""

    name = "EdDSA"
    description = "EdDSA (RFC 8037) with an Ed25519 key"
    key_type = "OKP"

    def sign(self, msg: bytes, key: Any) -> bytes:
        private = key.get_op_key("sign")
        if not isinstance(private, ed25519.Ed25519PrivateKey):
            raise TypeError("EdDSA here needs an Ed25519 key")
        return private.sign(msg)

    def verify(self, msg: bytes, sig: bytes, key: Any) -> bool:
        public = key.get_op_key("verify")
        if not isinstance(public, ed25519.Ed25519PublicKey):
            return False
        try:
            public.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


class _Registry(jws.JWSRegistry):
    """joserfc's JWS algorithms, with :class:`_EdDSA` in place of its EdDSA."""

    algorithms = {**jws.JWSRegistry.algorithms, "EdDSA": _EdDSA()}  # noqa: RUF012 (joserfc reads it from the class)


def _registry(algorithms: list[str]) -> jws.JWSRegistry:
    return _Registry(algorithms=algorithms)


def _new_key(family: str) -> PrivateKey:
    if family == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if family == "P-256":
        return ec.generate_private_key(ec.SECP256R1())
    if family == "P-384":
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def _family_of(key: Any) -> str | None:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "P-256", "secp384r1": "P-384"}.get(key.curve.name)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return None


def _new_certificate(
    key: PrivateKey,
    common_name: str = SUBJECT_CN,
    valid: tuple[datetime.datetime, datetime.datetime] | None = None,
) -> x509.Certificate:
    name = dev_name(common_name)
    return make_certificate(
        name, key.public_key(), (name, key), days=CERT_DAYS, valid=valid, usage=key_usage(digital_signature=True)
    )


def _load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"signing.key_file: cannot load {path}: {exc}") from None
    if _family_of(key) is None:
        raise ConfigError(f"signing.key_file: {path} holds an unsupported key type")
    return key  # type: ignore[return-value]


def _load_certificate(path: Path, key: PrivateKey, key_file: Path) -> x509.Certificate | None:
    """The certificate in ``path`` for ``key``; ``None`` when there is none, or it is for another key or
    expired (both said: a new one is issued for the same key)."""
    if not path.exists():
        return None
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"signing.cert_file: cannot load {path}: {exc}") from None
    problem = _certificate_problem(certificate, key)
    if problem is not None:
        log.warning("certificate %s %s (the key: %s); issuing a new one", path, problem, key_file)
        return None
    return certificate


def _certificate_problem(certificate: x509.Certificate, key: PrivateKey) -> str | None:
    """Why ``certificate`` cannot go with ``key`` in a back's header: not its certificate, or expired."""
    if certificate.public_key() != key.public_key():
        return "is for another key"
    if certificate.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        return f"expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
    return None


class _Persisted:
    """Where a signer keeps its signatures across restarts, once it is told (:meth:`Signer.keep_signatures_in`)."""

    disk: DiskMap | None = None


@dataclass(frozen=True)
class Signer:
    """Signs payloads as compact JWS and describes its public key."""

    algorithm: str
    jose_key: JoseKey
    certificate: x509.Certificate
    key_file: Path
    cert_file: Path

    @property
    def kid(self) -> str:
        return str(self.jose_key.thumbprint())

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def header(self) -> dict[str, Any]:
        """The protected header (assumed: the vendor's exact header is not public)."""
        return {**self._header, "x5c": list(self._header["x5c"])}

    @functools.cached_property
    def _header(self) -> dict[str, Any]:
        """Made once: the key and certificate never change (a thumbprint and a hash each time cost a cold back)."""
        der = self.certificate_der
        return {
            "alg": self.algorithm,
            "kid": self.kid,
            "x5c": [base64.b64encode(der).decode("ascii")],
            "x5t#S256": b64url_encode(hashlib.sha256(der).digest()),
            "cty": "image/jpeg",
        }

    @functools.cached_property
    def _registry(self) -> jws.JWSRegistry:
        return _registry([self.algorithm])

    @functools.cached_property
    def _header_segment(self) -> bytes:
        """The protected header as it goes into every JWS, encoded once (as joserfc encodes it)."""
        return json_b64encode(self._header)

    @functools.cached_property
    def _signatures(self) -> ThreadSafeLRU[bytes, bytes]:
        """Signatures by the SHA-256 of their payload; shared by the build threads."""
        return ThreadSafeLRU(SIGNATURES_KEPT)

    @functools.cached_property
    def _persisted(self) -> _Persisted:
        return _Persisted()

    @functools.cached_property
    def _disk_prefix(self) -> bytes:
        """What a persistent entry's key starts with: the key's id and the algorithm, then the payload digest."""
        return f"{self.kid}\0{self.algorithm}\0".encode()

    def keep_signatures_in(self, disk: DiskMap) -> bool:
        """Look signatures up in ``disk`` (each verified before use) and keep new ones there; whether it
        will (only for the key types of ``PERSISTED_FAMILIES``)."""
        if KEY_TYPES[self.algorithm] not in PERSISTED_FAMILIES:
            return False
        self._persisted.disk = disk
        return True

    def _from_disk(self, digest: bytes, signing_input: bytes) -> bytes | None:
        """The persistent cache's signature of ``signing_input``, if it has one that verifies with our key."""
        disk = self._persisted.disk
        if disk is None:
            return None
        key = self._disk_prefix + digest
        stored = disk.peek(key)
        if stored is None:
            return None
        try:
            good = self._registry.get_alg(self.algorithm).verify(signing_input, stored, self.jose_key)
        except Exception:  # a hostile value may upset the verifier in ways of its own
            good = False
        if not good:
            disk.reject(key, "a signature that does not verify with the current key")
            return None
        disk.hit()
        return stored

    def sign(self, payload: bytes, **header: Any) -> str:
        """Compact JWS of ``payload``; ``header`` overrides members of the protected header.

        With our own header, as :meth:`sign_compact` makes it. Thread-safe: cold ids are signed in
        worker threads.
        """
        if header:
            protected = {**self._header, **header}
            return jws.serialize_compact(protected, payload, self.jose_key, registry=self._registry)
        return self.sign_compact(payload).decode("ascii")

    def sign_compact(self, payload: bytes, digest: bytes | None = None) -> bytes:
        """Compact JWS of ``payload`` with our own header, as ASCII bytes (base64url and two dots, so
        an answer copies it as it is); ``digest``: the payload's SHA-256, when the caller has it.

        joserfc's algorithm signs an input made as joserfc's serialize_compact makes it, minus
        encoding the same header each time; and a payload signed before (many users share one back
        image) gets its signature again, without a private-key operation: RS256 and EdDSA would
        give the same bytes, and an ES256 signature stays as valid as a fresh one. A signature an
        earlier run kept in the persistent cache is used once it verifies with this key.
        """
        signing_input = self._header_segment + b"." + urlsafe_b64encode(payload)
        if digest is None:
            digest = hashlib.sha256(payload).digest()
        signature = self._signatures.peek(digest)
        if signature is None:
            signature = self._from_disk(digest, signing_input)
            if signature is None:
                signature = self._registry.get_alg(self.algorithm).sign(signing_input, self.jose_key)
                disk = self._persisted.disk
                if disk is not None:
                    disk.put(self._disk_prefix + digest, signature)
            self._signatures.put(digest, signature)
        return signing_input + b"." + urlsafe_b64encode(signature)

    def sign_as(self, purpose: str, payload: bytes) -> str:
        """Sign as a broken provider would: ``wrong-kid``, ``untrusted`` or ``expired``."""
        if purpose == "wrong-kid":
            return self.sign(payload, kid="wrong-kid")
        return stand_in_signer(self.algorithm, purpose).sign(payload)

    def jwks(self) -> dict[str, Any]:
        public = dict(self.jose_key.as_dict(private=False))
        public.update(
            kid=self.kid,
            use="sig",
            alg=self.algorithm,
            x5c=[base64.b64encode(self.certificate_der).decode("ascii")],
        )
        return {"keys": [public]}


SIGNER: web.AppKey[Signer] = web.AppKey("signer")


def _jose_key(key: PrivateKey) -> JoseKey:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    family = _family_of(key)
    if family == "RSA":
        return RSAKey.import_key(pem)
    if family == "Ed25519":
        return OKPKey.import_key(pem)
    return ECKey.import_key(pem)


@functools.cache
def stand_in_signer(algorithm: str, purpose: str) -> Signer:
    """A throw-away key, in memory only, with a self-signed certificate nobody trusts.

    ``expired`` gives a certificate that expired in 2020. Used by the JWS fault modes.
    """
    key = _new_key(KEY_TYPES[algorithm])
    valid = None
    if purpose == "expired":
        valid = (
            datetime.datetime(2019, 1, 1, tzinfo=datetime.UTC),
            datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        )
    certificate = _new_certificate(key, f"content-provider {purpose} stand-in", valid)
    memory = Path(f"(memory: {purpose})")
    return Signer(algorithm, _jose_key(key), certificate, memory, memory)


def signer_for(settings: Settings) -> Signer:
    """The signer ``settings`` name; the state folder is made first when the key lives there."""
    hint = ""
    if settings.state_dir is not None:
        hint = f"; set {STATE_DIR_ENV} to a folder you can write, or signing.directory in a config file"
        for folder in sorted({settings.key_file.parent, settings.cert_file.parent}):
            if not folder.is_relative_to(settings.state_dir):
                continue  # a file named in the config file: made where it says, as before
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot make the folder {folder} for the development signing key ({exc.strerror}){hint}"
                ) from None
    if settings.key_pem is not None and settings.cert_pem is not None:
        return signer_from_pem(settings.algorithm, settings.key_pem, settings.cert_pem)
    return load_or_create_signer(settings.algorithm, settings.key_file, settings.cert_file, hint=hint)


def signer_from_pem(algorithm: str, key_pem: str, cert_pem: str) -> Signer:
    """The signer of a key and certificate given as PEM text (``CONTENT_PROVIDER_SIGNING_KEY`` and
    ``_CERT``, e.g. from a Kubernetes Secret). Nothing is made or written: what does not fit is an error."""
    try:
        loaded = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{SIGNING_KEY_ENV}: not an unencrypted PEM private key ({exc})") from None
    family, key_family = KEY_TYPES[algorithm], _family_of(loaded)
    if key_family != family:
        raise ConfigError(
            f"{SIGNING_KEY_ENV} holds a {key_family or 'unsupported'} key but signing.algorithm "
            f"{algorithm} needs {family}"
        )
    key: PrivateKey = loaded  # type: ignore[assignment]
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ConfigError(f"{SIGNING_CERT_ENV}: not a PEM certificate ({exc})") from None
    problem = _certificate_problem(certificate, key)
    if problem is not None:
        raise ConfigError(f"{SIGNING_CERT_ENV}: the certificate {problem}; issue one for the key in {SIGNING_KEY_ENV}")
    return Signer(algorithm, _jose_key(key), certificate, Path(f"${SIGNING_KEY_ENV}"), Path(f"${SIGNING_CERT_ENV}"))


def load_or_create_signer(algorithm: str, key_file: Path, cert_file: Path, *, hint: str = "") -> Signer:
    """Load the development key and certificate, making them on first use.

    A key of the wrong type for ``algorithm`` is an error, not silently replaced; an
    expired or missing certificate is re-issued for the same key. ``hint`` ends the
    message when a file cannot be written.
    """
    family = KEY_TYPES[algorithm]
    key = None if not key_file.exists() else _load_key(key_file)
    if key is None:
        key = _new_key(family)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            made = create_once(key_file, pem, mode=0o600)
        except OSError as exc:
            raise ConfigError(f"signing.key_file: cannot write {key_file}: {exc}{hint}") from None
        if made:
            log.warning("made a new development signing key (%s) at %s", family, key_file)
        else:  # another process sharing the folder made it meanwhile: sign with that one, like it does
            key = _load_key(key_file)
    if _family_of(key) != family:
        raise ConfigError(
            f"signing.key_file: {key_file} holds a {_family_of(key)} key but signing.algorithm "
            f"{algorithm} needs {family}; point key_file elsewhere or remove the file"
        )

    certificate = _load_certificate(cert_file, key, key_file)
    if certificate is None:
        replacing = cert_file.exists()  # for another key, or expired
        certificate = _new_certificate(key)
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        try:
            if replacing:
                atomic_write(cert_file, pem)
            elif not create_once(cert_file, pem):  # made meanwhile by another process: use that one
                certificate = _load_certificate(cert_file, key, key_file) or certificate
        except OSError as exc:
            raise ConfigError(f"signing.cert_file: cannot write {cert_file}: {exc}{hint}") from None

    return Signer(algorithm, _jose_key(key), certificate, key_file, cert_file)


def verifying_registry(algorithms: list[str] | None = None) -> jws.JWSRegistry:
    """A joserfc registry for checking back sides.

    joserfc's defaults refuse a header over 512 bytes and a payload over 128 kB, and a
    back side carries a certificate in ``x5c`` and a whole JPEG, so limits are raised.
    """
    registry = _registry(algorithms or list(ALGORITHMS))
    registry.max_header_length = 64 * 1024
    registry.max_payload_length = 64 * 1024 * 1024
    registry.max_signature_length = 4 * 1024
    return registry


def verify_back(
    compact: str, jwks: dict[str, Any], algorithms: list[str] | None = None
) -> tuple[dict[str, Any], bytes]:
    """Verify a back side against a JWKS; its protected header and payload (the JPEG).

    Raises ``joserfc.errors.JoseError`` (e.g. ``BadSignatureError``) when it does not verify.
    """
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    registry = verifying_registry(algorithms)
    verified = jws.deserialize_compact(compact, keys, registry=registry)
    return dict(verified.headers()), verified.payload
