"""The admin API (``/__admin``), its web page (``/ui/``) and the config reload:
what a test or a person uses to steer the mock.
"""
