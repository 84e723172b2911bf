"""The one cleaning boundary for text that comes from a remote system.

A container image, an event's message, a node condition, a label, a process name: tenants and remote hosts
write them, and a terminal obeys what they contain. ``ESC[2J`` clears the operator's screen, OSC 0 sets the
window title, OSC 52 writes the clipboard, a right-to-left override (U+202E) makes a name read backwards,
a zero-width space makes two different names look alike. :func:`clean` takes all of that out before a
string enters the domain, and caps its length, so that every output — the console, ``snapshot`` text, plan
text, the action log — shows only what the console itself draws.

Removed: C0 and C1 control characters (a tab or a line break becomes a space, or a line break is kept with
``lines=True``), whole escape sequences (CSI, OSC, DCS, SOS, PM, APC and two-character ones, in their 7-bit
and 8-bit forms), bidirectional overrides, embeddings, isolates and marks, zero-width and other invisible
format characters, and lone surrogates. What is left is cut to ``limit`` characters with an ellipsis.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["LIMIT", "LONG_LIMIT", "clean", "clean_lines", "is_clean"]

LIMIT = 256
"""Characters kept of a name, a label, a reason, an image reference."""
LONG_LIMIT = 4096
"""Characters kept of a message or a command's output (a 5,000-character reason is not for a terminal)."""

# Escape sequences, 7-bit (ESC …) and 8-bit (C1) forms:
#   CSI: ESC [ or 0x9B, parameter and intermediate bytes, one final byte
#   OSC, DCS, SOS, PM, APC: ESC ] P X ^ _ or 0x9D 0x90 0x98 0x9E 0x9F, up to BEL or ST (ESC \ or 0x9C),
#       or to the end of the string when unterminated
#   other sequences (nF, Fp, Fe, Fs): ESC, intermediate bytes, one final byte
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x20-\x3f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_SPACES = re.compile(r"[\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029]")
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
"""Control, format (bidi controls, zero-width characters, soft hyphen …), surrogate, private-use and
unassigned code points."""


def _visible(ch: str) -> bool:
    return unicodedata.category(ch) not in _DROP_CATEGORIES


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def clean(value: object, limit: int = LIMIT) -> str:
    """``value`` as one line a terminal shows as it is: escapes and invisible characters removed, line
    breaks and tabs made spaces, at most ``limit`` characters (the last one an ellipsis when cut)."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    if text.isascii() and text.isprintable():  # the common case: nothing to take out
        return _cut(text, limit)
    text = _ESCAPES.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "".join(ch for ch in text if _visible(ch))
    return _cut(text, limit)


def clean_lines(value: object, limit: int = LONG_LIMIT) -> str:
    """:func:`clean`, keeping line breaks (as ``\\n``): a command's output, a multi-line message."""
    text = value if isinstance(value, str) else "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _cut("\n".join(clean(line, limit) for line in text.split("\n")), limit)


def is_clean(text: str) -> bool:
    """True when :func:`clean` would leave ``text`` as it is (but for its length): for tests and asserts."""
    return all(_visible(ch) and ch not in "\t\n\r\x1b" for ch in text)
