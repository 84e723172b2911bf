"""Small text pictures: heat cells, bars and sparklines, each with an ASCII fallback."""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text

from aios_tui.domain import Gpu, Health, is_na

BLOCKS = "▁▂▃▄▅▆▇█"
ASCII_BLOCKS = "_.-=+*#@"

OK_STYLE = "green"
WARN_STYLE = "yellow"
FAIL_STYLE = "bold red"
DIM_STYLE = "dim"


def util_style(pct: float) -> str:
    """Green for busy GPUs, yellow for lukewarm, dim for idle: on a GPU fleet, idle is the waste."""
    if pct >= 60:
        return OK_STYLE
    if pct >= 20:
        return WARN_STYLE
    return "bright_black"


def temp_style(celsius: float) -> str:
    if celsius >= 85:
        return FAIL_STYLE
    if celsius >= 75:
        return WARN_STYLE
    return ""


HEALTH_STYLE = {Health.OK: OK_STYLE, Health.WARN: WARN_STYLE, Health.FAIL: FAIL_STYLE}


def heat_cells(gpus: Iterable[Gpu], *, ascii: bool = False) -> Text:
    """One character per GPU: its utilisation as a block when allocated, ``·`` when free, ``✗`` when failed,
    ``▪`` when allocated but without a reading (a source with no telemetry, or a node that stopped
    reporting)."""
    blocks = ASCII_BLOCKS if ascii else BLOCKS
    out = Text()
    for g in gpus:
        health = g.health
        if health is Health.FAIL:
            out.append("X" if ascii else "✗", FAIL_STYLE)
        elif not g.pod:
            out.append("." if ascii else "·", DIM_STYLE)
        elif is_na(g.util):
            out.append("o" if ascii else "▪", "cyan")
        else:
            u = float(g.util)
            ch = blocks[min(len(blocks) - 1, int(u / 100 * len(blocks)))]
            out.append(ch, WARN_STYLE if health is Health.WARN else util_style(u))
    return out


def bar(pct: float, width: int, *, ascii: bool = False, style: str | None = None) -> Text:
    """A horizontal bar of ``width`` cells filled to ``pct`` percent, with eighth-cell resolution."""
    if is_na(pct):
        return Text("N/A".ljust(width), DIM_STYLE)
    pct = max(0.0, min(100.0, float(pct)))
    style = style or util_style(pct)
    if ascii:
        filled = round(pct / 100 * width)
        return Text.assemble(("#" * filled, style), ("." * (width - filled), DIM_STYLE))
    eighths = round(pct / 100 * width * 8)
    full, part = divmod(eighths, 8)
    s = "█" * full + (" ▏▎▍▌▋▊▉"[part] if part else "")
    return Text.assemble((s, style), (" " * (width - len(s)), ""))


def sparkline(
    values: Iterable[float],
    width: int,
    *,
    ascii: bool = False,
    lo: float | None = None,
    hi: float | None = None,
) -> str:
    """The last ``width`` values as a one-line chart; NaN shows as a blank. Scale is [lo, hi], by default
    0 (or the least value, when one is negative) to the greatest: a chart of its own min–max would draw a
    1 %-busy GPU that wobbles to 2 % as if it ran flat out. Give ``hi`` for a fixed scale (100 for a
    percentage); values outside [lo, hi] are drawn at the edge."""
    vals = list(values)[-width:]
    finite = [v for v in vals if not math.isnan(v)]
    if not finite:
        return " " * width
    lo = min(0.0, *finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = hi - lo
    blocks = ASCII_BLOCKS if ascii else BLOCKS
    top = len(blocks) - 1
    chars = []
    for v in vals:
        if math.isnan(v):
            chars.append(" ")
        elif span <= 0:  # every value the same: at the bottom when that is the scale's floor
            chars.append(blocks[0])
        else:
            chars.append(blocks[max(0, min(top, round((v - lo) / span * top)))])
    return "".join(chars).rjust(width)


# --- ASCII for every character drawn ----------------------------------------------------------------------
#
# The renderers pick ASCII words where they know the mode (``->``, ``...``); what they do not know of (box
# borders, scrollbars, the footer, a sentence from an action plan, a node name with an accent) goes through
# ``to_ascii`` at the last step, one character for one so that no column moves.

_ASCII_FOR = {
    **dict.fromkeys("…⋯", "~"),
    **dict.fromkeys("→⇒⟶", ">"),
    **dict.fromkeys("←⇐⟵", "<"),
    **dict.fromkeys("↑▲△", "^"),
    **dict.fromkeys("↓▼▽", "v"),
    **dict.fromkeys("›»▶▸⏵", ">"),
    **dict.fromkeys("‹«◀◂", "<"),
    **dict.fromkeys("—–−‐‑‒―", "-"),
    **dict.fromkeys("·•∙⋅", "."),
    **dict.fromkeys("●◆■▪◼", "*"),
    **dict.fromkeys("○◯◌□", "o"),
    **dict.fromkeys("◐◑◒◓", "~"),
    **dict.fromkeys("✗✘✕✖", "X"),
    **dict.fromkeys("✓✔", "v"),
    **dict.fromkeys("⚠", "!"),
    **dict.fromkeys("⏎↵", "<"),
    **dict.fromkeys("“”„″", '"'),
    **dict.fromkeys("‘’‚′", "'"),
    **dict.fromkeys("\u00a0\u2007\u2009\u202f", " "),
    "×": "x",
    "°": " ",
    "≥": ">",
    "≤": "<",
    "≈": "~",
    "±": "+",
    "µ": "u",
    "ρ": "p",
    **dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789", strict=True)),
    # Blocks: the renderers draw their charts in ASCII themselves; what is left is Textual's frames ("thick":
    # ▄ █ ▀, "tall": ▁ ▊ ▎ ▔) and scrollbars, drawn here as the "ascii" border type would.
    **dict.fromkeys("▁▂", "_"),
    **dict.fromkeys("▃▄▀▔", "-"),
    **dict.fromkeys("▅▆▇░▒▓", "#"),
    **dict.fromkeys("█▏▎▍▌▋▊▉▐▕", "|"),
}
_HORIZONTAL = set("─━┄┅┈┉╌╍═╴╶╸╺╼╾")
_VERTICAL = set("│┃┆┇┊┋╎╏║╵╷╹╻╽╿")


def ascii_char(ch: str) -> str:
    """One character as ASCII of the same width: a box line as ``-``, ``|`` or ``+``, a known sign as its
    nearest ASCII look-alike, anything else as ``?`` (``??`` for a wide one, nothing for a combining mark)."""
    if ch.isascii():
        return ch
    if ch in _ASCII_FOR:
        return _ASCII_FOR[ch]
    if "\u2500" <= ch <= "\u257f":
        return "-" if ch in _HORIZONTAL else "|" if ch in _VERTICAL else "+"
    width = cell_len(ch)
    base = unicodedata.normalize("NFKD", ch)[:1]  # é -> e
    if width == 1 and base.isascii() and base.isprintable():
        return base
    return "?" * width


def to_ascii(text: str) -> str:
    """``text`` with every non-ASCII character replaced by :func:`ascii_char`; the cell width is kept."""
    if text.isascii():
        return text
    return text.translate({ord(ch): _cached_ascii_char(ch) for ch in set(text) if not ch.isascii()})


_cached_ascii_char = functools.lru_cache(maxsize=4096)(ascii_char)
