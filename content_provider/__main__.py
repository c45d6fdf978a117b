"""``python -m content_provider``: the command line."""

from __future__ import annotations

import sys

from content_provider.cli import main

sys.exit(main())
