"""What a Java client makes of the payload faults: Hermod may well be one.

The README's faults table says what each mode does to a Java client; these run Java's own
``Base64`` decoders and ``ImageIO`` (tests/java/JavaClient.java) on what the mock serves,
so what it says is measured, not guessed.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import MakeClient, faults, get_content

HERE = Path(__file__).resolve().parent
JAVA_MISSING = "no java/javac here (apt-get install default-jdk-headless); ./dev test installs it when run as root"


@pytest.fixture(scope="module")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The Java client compiled once: the command that runs it."""
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip(JAVA_MISSING)
    classes = tmp_path_factory.mktemp("java")
    subprocess.run(["javac", "-d", str(classes), str(HERE / "java" / "JavaClient.java")], check=True, timeout=120)
    return ["java", "-cp", str(classes), "JavaClient"]


async def first_element(make_client: MakeClient, mode: str) -> str:
    client = await make_client(faults=faults(content_id_directives=True))
    content_id = "PROV:alice" if mode == "ok" else f"PROV:alice;fault={mode}"
    response = await get_content(client, content_id)
    assert response.status == 200
    return str((await response.json())["data"][0]["data"])


def java(command: list[str], kind: str, text: str, folder: Path) -> str:
    path = folder / "element.txt"
    path.write_text(text, encoding="ascii")
    done = subprocess.run([*command, kind, str(path)], capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()


async def test_broken_padding_is_refused_by_strict_and_lax_decoders_alike(
    make_client: MakeClient, java_client: list[str], tmp_path: Path
) -> None:
    """A missing "=" alone would be no fault for Java, which never needs the padding."""
    data = await first_element(make_client, "broken_padding")
    for validate in (True, False):
        with pytest.raises(binascii.Error):
            base64.b64decode(data, validate=validate)
    assert java(java_client, "base64", data, tmp_path).splitlines() == [
        "basic refused Input byte array has wrong 4-byte ending unit",
        "mime refused Input byte array has wrong 4-byte ending unit",
    ]


@pytest.mark.parametrize(
    ("mode", "java_sees"),
    [
        ("ok", r"image 1200x757 centre 3d478f"),
        ("exif_rotated", r"image 757x1200 centre 3d478f"),  # ImageIO ignores the EXIF orientation
        ("png_as_jpeg", r"image 1200x757 centre 3d478f"),  # ImageIO goes by the bytes, not the label
        ("truncated_jpeg", r"image 1200x757 centre 808080"),  # read, the missing part grey (a warning only)
        ("damaged_jpeg", r"image error IIOException: Bogus Huffman table definition"),
        ("wrong_aspect", r"image 900x900 centre 3d478f"),
    ],
)
async def test_what_java_imageio_makes_of_each_image_mode(
    make_client: MakeClient, java_client: list[str], tmp_path: Path, mode: str, java_sees: str
) -> None:
    assert java(java_client, "image", await first_element(make_client, mode), tmp_path) == java_sees


async def test_java_imageio_reads_cmyk_with_other_colours(
    make_client: MakeClient, java_client: list[str], tmp_path: Path
) -> None:
    seen = java(java_client, "image", await first_element(make_client, "cmyk_jpeg"), tmp_path)
    assert seen.startswith("image 1200x757 centre ")
    red, green, blue = bytes.fromhex(seen.rsplit(" ", 1)[1])
    assert min(red - 0x3D, green - 0x47, blue - 0x8F) > 0x30  # every channel much lighter than the card's
