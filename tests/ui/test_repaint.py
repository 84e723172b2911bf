"""A new snapshot repaints only what changed on screen (issue 14 item 1): the tables the cells that moved,
the header the characters that changed; nothing repaints the whole screen. The bytes this saves are measured
by bench/bench_terminal.py (docs/benchmarks.md); here, which regions are refreshed."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget

from aios_tui.ui.app import AiosApp
from aios_tui.ui.terminal import CroppedChops
from aios_tui.ui.widgets.fleet_table import FleetTable
from aios_tui.ui.widgets.header import FleetHeader
from aios_tui.ui.widgets.lines import changed_spans
from tests.ui.conftest import MakeApp


def strip(*parts: tuple[str, str]) -> Strip:
    return Strip([Segment(text, Style.parse(style) if style else None) for text, style in parts])


def test_changed_spans_split_where_a_gap_costs_more_than_a_cursor_move() -> None:
    old = strip(("h100-a-0001 ", ""), ("55%", "red"), (" " * 20, ""), ("47°C", ""))
    far = strip(("h100-a-0001 ", ""), ("57%", "red"), (" " * 20, ""), ("48°C", ""))
    assert changed_spans(old, far) == [(13, 14), (36, 37)]  # 22 unchanged cells between: two spans
    near = strip(("h100-a-0001 ", ""), ("57%", "red"), (" " * 20, ""), ("47°C", ""))
    assert changed_spans(old, near) == [(13, 14)]
    close = strip(("h100-a-0001 ", "red"), ("55%", "red"), (" " * 20, ""), ("47°C", ""))
    assert changed_spans(old, close) == [(0, 12)]  # eleven runs of one cell, closer than GAP: one span
    assert changed_spans(old, old) == []
    assert changed_spans(strip(("abc", "")), strip(("abcd", ""))) == [(0, 4)]


def test_changed_spans_are_the_cells_that_differ() -> None:
    old = strip(("h100-a-0001 ", ""), ("55%", "red"), ("  47°C", ""))
    assert changed_spans(old, old) == []
    assert changed_spans(old, strip(("h100-a-0001 ", ""), ("57%", "red"), ("  47°C", ""))) == [(13, 14)]
    assert changed_spans(old, strip(("h100-a-0001 ", ""), ("55%", "bold"), ("  47°C", ""))) == [(12, 15)]
    assert changed_spans(old, strip(("h100-a-0001 ", ""), ("55%", "red"), ("  48°C", ""))) == [(18, 19)]
    assert changed_spans(strip(("×5", "")), strip(("×6", ""))) == [(1, 2)]
    assert changed_spans(strip(("abc", "")), strip(("abcd", ""))) == [(0, 4)]  # not the same length: all


async def test_a_new_snapshot_refreshes_spans_not_whole_widgets(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    calls: list[tuple[str, tuple[Region, ...]]] = []

    def recorder(cls: Any) -> Any:
        original = cls.refresh

        def refresh(self: Any, *regions: Region, **kwargs: Any) -> Any:
            calls.append((type(self).__name__, regions))
            return original(self, *regions, **kwargs)

        return refresh

    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        monkeypatch.setattr(FleetTable, "refresh", recorder(FleetTable))
        monkeypatch.setattr(FleetHeader, "refresh", recorder(FleetHeader))
        monkeypatch.setattr(Screen, "refresh", recorder(Screen))
        app.fake_clock.advance(2)  # type: ignore[attr-defined]
        await app.action_refresh()
        await pilot.pause()
        assert calls, "the new snapshot changed nothing on screen"
        whole = [name for name, regions in calls if not regions]
        assert not whole, f"repainted whole widgets: {whole}"
        widths = [r.width for _, regions in calls for r in regions]
        assert max(widths) < 60  # spans of a line, not whole lines of a 60-column pane


async def test_a_table_that_grows_by_a_row_repaints_lines_and_its_title_not_the_whole_pane(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job submitted makes the Jobs pane a row longer: its scrollbar follows, the table repaints the lines
    that moved and the pane its title line, neither of them whole (each was a whole repaint: together the
    third of the bytes a 5,000-node fleet sent); what is written still turns the old screen into the new."""
    from aios_tui.sources.base import LaunchSpec
    from aios_tui.ui.widgets.pane import PaneBox

    app = make_app()
    calls: list[tuple[str, tuple[Region, ...]]] = []
    written: list[str] = []
    widget_refresh = Widget.refresh
    display = AiosApp._display

    def recorded(self: Widget, *regions: Region, **kwargs: Any) -> Any:  # what reaches Textual
        if isinstance(self, (FleetTable, PaneBox)):
            calls.append((f"{type(self).__name__}:{self.kind.name}", regions))
        return widget_refresh(self, *regions, **kwargs)

    def record_display(self: AiosApp, screen: Screen[Any], renderable: Any) -> None:
        if type(renderable) is ChopsUpdate:
            written.append(CroppedChops.of(renderable).render_segments(self.console))
        display(self, screen, renderable)

    def grid() -> list[list[str]]:
        return [list(s.text) for s in app.screen._compositor.render_strips()]

    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        jobs = next(t for t in app.main.tables if t.kind.name == "jobs")
        before_rows = jobs.row_count
        sim = next(iter(app.poller.sources.values()))
        await sim.launch_job(LaunchSpec("research", "one-more", "img", 64, 8, "H100"))  # queues: too big
        before = grid()
        monkeypatch.setattr(Widget, "refresh", recorded)
        monkeypatch.setattr(AiosApp, "_display", record_display)
        await app.action_refresh()
        await pilot.pause()
        assert jobs.row_count == before_rows + 1
        assert jobs.virtual_size.height == before_rows + 2  # the header line and one more row
        mine = [regions for name, regions in calls if name.endswith(":jobs")]
        assert mine and all(regions for regions in mine), [n for n, r in calls if not r]  # none whole
        title = [r for name, regions in calls if name == "PaneBox:jobs" for r in regions]
        assert title and all(r.height == 1 for r in title)
        after = grid()
        assert any("Jobs" in "".join(line) for line in before) and before != after
        for w in written:
            _apply(before, w)
        assert ["".join(r) for r in before] == ["".join(r) for r in after]
        assert f"3 Jobs {before_rows + 1}" in "".join(before[20])  # the title, where the terminal shows it


_MOVE_OR_STYLE = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[[0-9;]*m")
_MOVE_OR_SGR = re.compile(r"\x1b\[(\d+);(\d+)H|\x1b\[([0-9;]*)m|\n")
_SgrState = tuple[frozenset[int], str, str]
_DEFAULT: _SgrState = (frozenset(), "", "")


def _sgr(state: _SgrState, params: str) -> _SgrState:
    """The terminal's attributes, foreground and background after ``ESC [ params m``."""
    attrs, fg, bg = set(state[0]), state[1], state[2]
    codes = [int(c) if c else 0 for c in params.split(";")]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            attrs, fg, bg = set(), "", ""
        elif c in (38, 48):  # 38;5;n or 38;2;r;g;b
            n = 3 if codes[i + 1] == 5 else 5
            value = ";".join(map(str, codes[i : i + n]))
            fg, bg = (value, bg) if c == 38 else (fg, value)
            i += n - 1
        elif 30 <= c <= 37 or 90 <= c <= 97:
            fg = str(c)
        elif 40 <= c <= 47 or 100 <= c <= 107:
            bg = str(c)
        elif c == 39:
            fg = ""
        elif c == 49:
            bg = ""
        elif 1 <= c <= 9:
            attrs.add(c)
        else:
            raise AssertionError(f"unexpected SGR code {c} in {params!r}")
        i += 1
    return frozenset(attrs), fg, bg


def _painted(written: str) -> tuple[dict[tuple[int, int], tuple[str, _SgrState]], _SgrState]:
    """Each cell ``written`` draws, with the colours it is drawn in, and the colours left set at the end."""
    cells: dict[tuple[int, int], tuple[str, _SgrState]] = {}
    state, y, x, pos = _DEFAULT, 0, 0, 0
    for m in [*_MOVE_OR_SGR.finditer(written), None]:
        for ch in written[pos : m.start() if m else len(written)]:
            cells[y, x] = (ch, state)
            x += 1
        if m is None:
            break
        if m.group(1):
            y, x = int(m.group(1)) - 1, int(m.group(2)) - 1
        elif m.group(3) is not None:
            state = _sgr(state, m.group(3))
        else:  # Textual writes a line break between lines
            y, x = y + 1, 0
        pos = m.end()
    return cells, state


def _apply(screen: list[list[str]], written: str) -> int:
    """Play cursor moves and text (styles skipped) onto a grid of characters, as a terminal would; the
    number of characters written."""
    y = x = count = 0
    pos = 0
    for m in _MOVE_OR_STYLE.finditer(written):
        for ch in written[pos : m.start()]:
            screen[y][x] = ch
            x += 1
            count += 1
        if m.group(1):
            y, x = int(m.group(1)) - 1, int(m.group(2)) - 1
        pos = m.end()
    for ch in written[pos:]:
        screen[y][x] = ch
        x += 1
        count += 1
    return count


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
async def test_what_a_refresh_writes_turns_the_old_screen_into_the_new(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    """The bytes a partial repaint writes (cropped at both ends of each changed span: ``CroppedChops``),
    played onto the screen as it was, give the screen as it is now, and are a small part of it. Fails when a
    widget refreshes a region off by a cell (the header once added its padding twice: the clock's changed
    digit landed one cell to the right) or when the start of a span is not written."""
    app = make_app()
    written: list[str] = []
    textuals: list[str] = []  # what Textual's own renderer would have written
    original = AiosApp._display

    def display(self: AiosApp, screen: Screen[Any], renderable: Any) -> None:
        if type(renderable) is ChopsUpdate:
            written.append(CroppedChops.of(renderable).render_segments(self.console))
            textuals.append(renderable.render_segments(self.console))
        original(self, screen, renderable)

    def grid() -> list[list[str]]:
        return [list(s.text) for s in app.screen._compositor.render_strips()]

    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        before = grid()
        monkeypatch.setattr(AiosApp, "_display", display)
        app.fake_clock.advance(2)  # type: ignore[attr-defined]
        await app.action_refresh()
        app._tick()  # the header clock moves on a second too
        await pilot.pause()
        after = grid()
        assert before != after, "nothing changed on screen: the test proves nothing"
        count = sum(_apply(before, w) for w in written)
        assert ["".join(r) for r in before] == ["".join(r) for r in after]
        assert 0 < count < size[0] * size[1] // 8  # the changed cells, not the screen
        assert sum(map(len, written)) < sum(map(len, textuals)) / 2
        # The colours too: each cell written as Textual's own renderer writes it, though the colours are
        # carried from one span to the next (the terminal keeps them over a cursor move), and none is left
        # set once an update is written.
        for ours, theirs in zip(written, textuals, strict=True):
            painted, state = _painted(ours)
            assert state == _DEFAULT
            reference, _ = _painted(theirs)
            assert painted and all(reference[cell] == got for cell, got in painted.items())


async def test_the_first_frame_after_a_resize_is_laid_out_for_the_new_size(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resize paints the new layout at once: the header's lines at the new width (its clock at the right
    edge) and, under 120 columns, the tab bar instead of the four-pane grid. The header repainted itself
    after the layout and the layout classes changed after it, so the first frame showed the old ones."""
    app = make_app()
    frames: list[list[str]] = []
    original = AiosApp._display

    def display(self: AiosApp, screen: Screen[Any], renderable: Any) -> None:
        if type(renderable) is LayoutUpdate:
            frames.append(["".join(s.text for s in line) for line in renderable.strips])
        original(self, screen, renderable)

    async with app.run_test(size=(120, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        monkeypatch.setattr(AiosApp, "_display", display)
        for size, grid in (((100, 34), False), ((130, 44), True)):
            frames.clear()
            await pilot.resize_terminal(*size)
            await pilot.pause()
            assert frames, "a resize painted no full frame"
            first = frames[0]
            assert len(first) == size[1] and len(first[0]) == size[0]
            assert re.search(r"\d\d:\d\d:\d\d UTC $", first[0]), first[0]  # the clock at the new right edge
            assert first[2].lstrip().startswith("╭─ 1 Nodes" if grid else "1 Nodes"), first[2]


def test_a_span_sets_its_colours_where_they_change_not_around_every_piece() -> None:
    """A colour set once for the pieces that share it, only the part that changes where the attributes
    stay (a foreground, a background), a reset where an attribute goes (bold is not carried over)."""
    from rich.color import ColorSystem

    from aios_tui.ui.terminal import _render

    red, bold = Style.parse("red on black"), Style.parse("bold white on black")
    out: list[str] = []
    _render(
        strip(("▇", "red on black"), ("█", "red on black"), ("88%", "bold white on black"), (" x", "")),
        ColorSystem.STANDARD,
        out,
    )
    assert "".join(out) == "\x1b[31;40m▇█\x1b[0;1;37;40m88%\x1b[0m x"
    out = []
    _render(Strip([Segment("a", red), Segment("b", bold), Segment("c", red)]), ColorSystem.STANDARD, out)
    assert "".join(out) == "\x1b[31;40ma\x1b[0;1;37;40mb\x1b[0;31;40mc"  # bold is reset, not carried
    out = []
    _render(
        strip(("▇", "green on black"), ("88%", "white on black"), ("!", "white")), ColorSystem.STANDARD, out
    )
    assert "".join(out) == "\x1b[32;40m▇\x1b[37m88%\x1b[49m!"  # only what changes, left set
    # The next span starts where this one left the terminal: the same colours cost nothing, others a change.
    first: list[str] = []
    left = _render(strip(("12", "red on black")), ColorSystem.STANDARD, first)
    more: list[str] = []
    assert _render(strip(("34", "red on black")), ColorSystem.STANDARD, more, left) == left
    assert "".join(first) == "\x1b[31;40m12" and "".join(more) == "34"
    more = []
    _render(strip(("5", "green on black")), ColorSystem.STANDARD, more, left)
    assert "".join(more) == "\x1b[32m5"


async def test_the_blank_lines_below_a_short_table_are_not_repainted(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 200×60 the Endpoints pane is taller than its rows: each refresh re-sent its blank lines, the third
    of what the console wrote at that size (bench_terminal: 36 % re-sent bytes)."""
    app = make_app()
    regions: list[Region] = []
    original = FleetTable.refresh

    def refresh(self: FleetTable, *r: Region, **kwargs: Any) -> Any:
        if self.kind.name == "endpoints":
            regions.extend(r)
        return original(self, *r, **kwargs)

    async with app.run_test(size=(200, 60)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = next(t for t in app.main.tables if t.kind.name == "endpoints")
        rows = table.row_count
        assert rows + 1 < table.scrollable_content_region.height, "the pane is not taller than its rows"
        monkeypatch.setattr(FleetTable, "refresh", refresh)
        for _ in range(3):
            app.fake_clock.advance(2)  # type: ignore[attr-defined]
            await app.action_refresh()
            await pilot.pause()
        assert regions, "no endpoint changed in three refreshes: the test proves nothing"
        assert max(r.bottom for r in regions) <= rows + 1  # the header line, then the rows
