"""content-provider: a mock of the content provider that Nexus Hermod fetches card and
authentication images from.

The stable API is what this module exports (``__all__``), the command line, the HTTP routes,
the pytest fixtures ``content_provider`` and ``content_provider_server`` (registered by the
``pytest11`` entry point, :mod:`content_provider.pytest_plugin`) and the Testcontainers module's
:class:`content_provider.testing.ContentProviderContainer` (the ``testcontainers`` extra). Every
other module is internal and may change between versions; docs/architecture.md shows how they
are layered.
"""

from content_provider.app import create_app
from content_provider.client import AdminClient, AdminError, AsyncAdminClient
from content_provider.config.parse import load_settings, parse_settings
from content_provider.config.settings import Settings
from content_provider.core.reader import ConfigError
from content_provider.core.version import __version__

__all__ = [
    "AdminClient",
    "AdminError",
    "AsyncAdminClient",
    "ConfigError",
    "Settings",
    "__version__",
    "create_app",
    "load_settings",
    "parse_settings",
]
