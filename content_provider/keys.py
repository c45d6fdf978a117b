"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from .config import Settings
from .faults import FaultEngine
from .signing import Signer
from .store import FixtureStore

SETTINGS = web.AppKey("settings", Settings)
SIGNER = web.AppKey("signer", Signer)
STORE = web.AppKey("store", FixtureStore)
FAULTS = web.AppKey("faults", FaultEngine)
CONFIG_ENV = web.AppKey("config_env", dict[str, str])

# Filled in by the handler, read by the access log.
CONTENT_ID = web.RequestKey("content_id", str)
RESOLVED = web.RequestKey("resolved", str)
AUTH_USER = web.RequestKey("auth_user", str)
FAULT = web.RequestKey("fault", str)
CONNECTION_FAULT = web.RequestKey("connection_fault", str)
