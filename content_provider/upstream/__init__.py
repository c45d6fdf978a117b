"""Standing in front of a real content provider: ``upstream.url`` and its modes.

- ``proxy``: every ``POST /getcontent`` goes to the upstream; its answer is passed on byte for byte;
- ``spy``: an id that resolves in our fixtures at user or organisation level is answered from
  them, every other goes to the upstream (the default level is not used);
- ``record``: like ``proxy``, and each answer is written into the fixture folder.

Every upstream answer is checked with the conformance rules (``validate.py``, the same
code as ``content-provider check``), may be shaped by the fault rules (the same delivery as
fixture answers), and upstream trouble is a clear JSON error (``client.py``).

settings.py  the ``upstream:`` section;  client.py  the HTTP session and its errors;
validate.py  live verdicts, remembered per answer digest;  record.py  writing answers as fixtures;
manifest.py  the recording's manifest, a journal appended a line per change;
proxy.py     the handler's path for an id that goes upstream, in every mode.
"""
