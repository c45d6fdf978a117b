"""Conformance: the contract's rules as checks, run by ``content-provider check`` against a provider,
by the store on fixtures and by upstream validation on live answers.
"""
