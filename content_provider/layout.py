"""The fixture folder's conventions: its folders, the image sides, the file names they take.

::

    users/<subject>/front.jpg back.jpg auth.jpg
    orgs/<name>/front.jpg back.jpg auth.jpg members.txt
    default/front.jpg back.jpg auth.jpg
"""

from __future__ import annotations

from pathlib import Path

from .contract import UseCase

USERS_DIR = "users"
ORGS_DIR = "orgs"
DEFAULT_DIR = "default"
MEMBERS_FILE = "members.txt"

SIDES = ("front", "back", "auth")  # the images a folder (or a config mapping) may have
CARD_SIDES = ("front", "back")
SIDES_FOR = {UseCase.CARD: CARD_SIDES, UseCase.AUTH: ("auth",)}  # the first of each is the one a level needs
EXTENSIONS = (".jpg", ".jpeg")  # in this order: a side's .jpg wins over its .jpeg


def sides_in(folder: Path) -> list[str]:
    """The sides that ``folder`` has an image for, in the usual order; blocking."""
    return [side for side in SIDES if any((folder / f"{side}{ext}").is_file() for ext in EXTENSIONS)]


def is_card_side(side: str) -> bool:
    """Card sides are checked for the card's shape; an authentication image may have any."""
    return side in CARD_SIDES
