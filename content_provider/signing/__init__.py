"""Keys and signatures: the back side's JWS, its JWKS and certificate, and the development TLS files."""

from content_provider.signing.jws import verify_back

__all__ = ["verify_back"]  # what docs/signing.md shows a Hermod-side check with
