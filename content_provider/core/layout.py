"""The fixture folder's conventions: its folders, the image sides, the file names they take.

::

    users/<subject>/front.jpg back.jpg auth.jpg
    orgs/<name>/front.jpg back.jpg auth.jpg members.txt
    default/front.jpg back.jpg auth.jpg

A back side may also be ``back.jws``: a JWS recorded from a real provider (``upstream.mode:
record``), served verbatim, never re-signed; it wins over a ``back.jpg`` beside it. A recording
keeps each state of a user folder whole in ``answers/<name>/<version>/``, and ``users/<name>`` is
a link to the one served (see fixtures/write.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from content_provider.core.contract import UseCase

# Names of users and organisations that may be folder names (content ids are opaque, so anything
# else is simply not a folder: it may still be mapped in config, match an organisation pattern, or
# fall back to the default), and the names of fault rules: each is also a URL path segment of the
# admin API and text in a header, so it has no "/", no space and no control character.
SAFE_NAME_PATTERN = "[A-Za-z0-9][A-Za-z0-9._@+=-]{0,199}"
SAFE_NAME = re.compile(f"^{SAFE_NAME_PATTERN}\\Z")  # \Z: "$" would let a trailing newline in

USERS_DIR = "users"
ORGS_DIR = "orgs"
DEFAULT_DIR = "default"
MEMBERS_FILE = "members.txt"

SIDES = ("front", "back", "auth")  # the images a folder (or a config mapping) may have
CARD_SIDES = ("front", "back")
SIDES_FOR = {UseCase.CARD: CARD_SIDES, UseCase.AUTH: ("auth",)}  # the first of each is the one a level needs
EXTENSIONS = (".jpg", ".jpeg")  # in this order: a side's .jpg wins over its .jpeg
JWS_EXTENSION = ".jws"  # a back side kept as the JWS it was recorded as
BACK_EXTENSIONS = (JWS_EXTENSION, *EXTENSIONS)
ANSWERS_DIR = "answers"  # a recording's versions of its user folders; never looked at by resolution


def extensions_for(side: str) -> tuple[str, ...]:
    """The file extensions a side may have, the one that wins first."""
    return BACK_EXTENSIONS if side == "back" else EXTENSIONS


def recorded_file(side: str) -> str:
    """The file a recorded side is kept as: a back as the JWS it came as, the others as JPEG."""
    return side + (JWS_EXTENSION if side == "back" else EXTENSIONS[0])


def is_recorded_back(path: str | Path) -> bool:
    """A back side served as it is (a recorded JWS), not signed by the mock (``Path.suffix``'s answer,
    without making a ``Path`` of a string: a cold id asks it of every file)."""
    return os.path.splitext(path)[1] == JWS_EXTENSION


def sides_in(folder: Path) -> list[str]:
    """The sides that ``folder`` has an image for, in the usual order; blocking."""
    return [side for side in SIDES if any((folder / f"{side}{ext}").is_file() for ext in extensions_for(side))]


def is_card_side(side: str) -> bool:
    """Card sides are checked for the card's shape; an authentication image may have any."""
    return side in CARD_SIDES
