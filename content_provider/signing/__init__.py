"""Keys and signatures: the back side's JWS, its JWKS and certificate, and the development TLS files."""
