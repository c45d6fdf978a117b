"""The HTTP side of the contract: the handlers, error rendering, the journal wrapper,
fault delivery, the access log and metrics.
"""
