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
