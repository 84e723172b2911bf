"""What the terminal can show, applied to every line Textual draws: ASCII only, and alarms without colour.

Textual passes each rendered line of every widget (borders, scrollbars and the footer included) through the
app's line filters; that is the one place that sees all of it, so a renderer that never heard of ASCII mode
(a sentence from an action plan, a node name with an accent, a border style in CSS) still draws ASCII.
With ``NO_COLOR`` Textual turns every colour to grey (its ``Monochrome`` filter): bold red text comes out dark
grey on near-black, no longer an alarm. :class:`AlarmAttributes` runs first and draws red text bold in
reverse video and yellow text bold, both white, so an alarm still stands out when the colour is gone.

:class:`CroppedChops` is the other end of the pipe: what a partial repaint writes. A widget can ask for a
span of a line to be repainted, and Textual 8.2's ``ChopsUpdate`` crops what it writes at the span's end but
not at its start: a GPU's power figure that changed at column 115 re-sent its row from column 62.
"""

from __future__ import annotations

from functools import lru_cache

from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.console import Console
from rich.control import Control
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.color import Color
from textual.filter import LineFilter
from textual.strip import Strip

from aios_tui.render.glyphs import to_ascii


class AsciiOnly(LineFilter):
    """Every character as ASCII of the same width (:func:`aios_tui.render.glyphs.to_ascii`)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            s if s.control or s.text.isascii() else Segment(to_ascii(s.text), s.style, s.control)
            for s in segments
        ]


# White, so that Textual's grey of it is white: bold reverse red would come out dark grey behind near-black.
_FAIL = Style(color="#ffffff", bold=True, reverse=True)
_WARN = Style(color="#ffffff", bold=True)


def _alarm_of(color: RichColor | None) -> str:
    """``"fail"`` for a red foreground, ``"warn"`` for a yellow or orange one, else ``""``."""
    if color is None or color.is_default:
        return ""
    r, g, b = color.get_truecolor()
    if r < 120 or b > 0.6 * r:
        return ""
    if g < 0.6 * r:
        return "fail"
    return "warn" if b < 0.5 * g else ""


@lru_cache(maxsize=1024)
def alarm_style(style: Style) -> Style:
    """``style`` with the attributes that carry its colour's meaning once the colour is gone."""
    kind = _alarm_of(style.color)
    if kind == "fail":
        return style + (_WARN if style.reverse else _FAIL)
    if kind == "warn":
        return style + _WARN
    return style


class AlarmAttributes(LineFilter):
    """Red text bold reverse, yellow text bold: an alarm that reads without colour."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            s if s.control or s.style is None else Segment(s.text, alarm_style(s.style), s.control)
            for s in segments
        ]


def terminal_filters(*, ascii: bool, no_color: bool) -> list[LineFilter]:
    """The filters to run before Textual's own (which turn colours grey under ``NO_COLOR``)."""
    out: list[LineFilter] = []
    if no_color:
        out.append(AlarmAttributes())
    if ascii:
        out.append(AsciiOnly())
    return out


class CroppedChops(ChopsUpdate):
    """A partial repaint that writes each changed span and nothing before it on the line.

    Textual's own ``render_segments`` (8.2) writes a widget's line from the widget's left edge to the span's
    end. Cropping the start too took the console at steady state from 2.4 to 0.85 kB/s (120×40, 200 nodes:
    one run; docs/benchmarks.md has the medians).
    """

    def render_segments(self, console: Console) -> str:
        out: list[str] = []
        move_to = Control.move_to
        color_system = console._color_system or ColorSystem.TRUECOLOR
        current: _Codes | None = None  # the terminal's colours and attributes: a cursor move keeps them
        for y, x1, x2 in self.spans:
            for end, (x, strip) in zip(self.chop_ends[y], self.chops[y].items(), strict=False):
                if strip is None or x >= x2 or end <= x1:
                    continue
                start = max(x, x1)
                part = strip.crop(start - x, min(end, x2) - x) if start != x or end > x2 else strip
                out.append(move_to(start, y).segment.text)
                current = _render(part, color_system, out, current)
        if current is not None:
            out.append("\x1b[0m")  # nothing after this update inherits a colour
        return "".join(out)  # Textual's "\n" between lines is left out: every span starts with a move

    @classmethod
    def of(cls, update: ChopsUpdate) -> CroppedChops:
        return cls(update.chops, update.spans, update.chop_ends)


_Codes = tuple[int, tuple[str, ...], tuple[str, ...]]
"""A style's attribute bits, foreground codes and background codes."""


@lru_cache(maxsize=4096)
def _codes(style: Style, color_system: ColorSystem) -> _Codes:
    fg = style._color.downgrade(color_system).get_ansi_codes() if style._color is not None else ()
    bg = style._bgcolor.downgrade(color_system).get_ansi_codes(False) if style._bgcolor is not None else ()
    return style._attributes & style._set_attributes, fg, bg


def _render(
    strip: Strip, color_system: ColorSystem, out: list[str], current: _Codes | None = None
) -> _Codes | None:
    """``strip`` as terminal sequences, setting only what changes from one piece of the line to the next:
    the foreground alone where only it changes, everything after a reset where an attribute (bold, reverse)
    changes. ``current`` is what the terminal has set already (the end of the last span: a cursor move keeps
    it); returns what it has set after ``strip``, not reset. Textual's ``Strip.render`` sets and resets the
    whole style around every segment: a row of eight heat cells in one colour was eight codes and eight
    resets, and colour codes were 57 % of what a refresh wrote; carried over from span to span, a span in the
    colours of the one before writes none (half of what a refresh wrote at 120×40 was still colour codes)."""
    for text, style, _ in strip:
        if style is None or style._link:
            if current is not None:
                out.append("\x1b[0m")
                current = None
            out.append(text if style is None else Strip.render_style(style, text, color_system))
            continue
        codes = _codes(style, color_system)
        if codes != current:
            attrs, fg, bg = codes
            if current is not None and current[0] == attrs:
                change = [
                    *(fg or ("39",) if fg != current[1] else ()),
                    *(bg or ("49",) if bg != current[2] else ()),
                ]
                out.append(f"\x1b[{';'.join(change)}m")
            else:
                ansi = style._ansi if style._ansi is not None else Strip.render_ansi(style, color_system)
                out.append(f"\x1b[0;{ansi}m" if current is not None else f"\x1b[{ansi}m" if ansi else "")
            current = codes
        out.append(text)
    return current
