"""Text from outside (a content id, a header) shown where it could do harm or cannot be shown:
a terminal, a drawn card, an HTTP header. Written once so every place escapes alike."""

from __future__ import annotations


def printable(text: str, *, drawable: bool = False) -> str:
    """``text`` with what a terminal would act on (escape sequences, control characters) or cannot
    encode (lone surrogates, as a bad byte in ``argv`` becomes) written as Python escapes, e.g.
    ``\\x1b``, ``\\udcff``. ``drawable``: also escape what the bundled font has no glyph for
    (beyond Latin), so a generated card shows ``\\U0001f600`` rather than an empty box."""
    out = []
    for char in text:
        code = ord(char)
        if char.isprintable() and not 0xD800 <= code <= 0xDFFF and not (drawable and code >= 0x250):
            out.append(char)
        else:
            out.append(
                char.encode("unicode_escape").decode("ascii") if code > 0xFF or code < 0x20 else f"\\x{code:02x}"
            )
    return "".join(out)
