"""Settings: the YAML file, the environment and the flags, validated into one frozen
:class:`~content_provider.config.settings.Settings`.
"""
