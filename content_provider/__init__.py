"""A mock of the content provider that Nexus Hermod fetches card and authentication images from."""

__version__ = "0.1.0"
