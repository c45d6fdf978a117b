"""The bottom layer: the contract's ids and answers, errors, the config reader, and small shared tools.

Nothing here imports another part of the package.
"""
