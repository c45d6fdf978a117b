"""Conformance: the contract's rules as checks, run by ``content-provider check`` against a provider,
by the store on fixtures and by upstream validation on live answers.
"""

from content_provider.conformance.checker import check
from content_provider.conformance.result import Result
from content_provider.conformance.rules import Options, Report

__all__ = ["Options", "Report", "Result", "check"]  # the library use in docs/conformance.md
