"""Fault injection as data: the rules and their parsing, the engine that plans a request's
faults, directives, broken payloads.

Nothing here touches a socket: :mod:`content_provider.http.delivery` carries a plan out on the wire.
"""
