"""Any terminal: ASCII only when asked (every character on screen, borders and footer included), alarms that
read without colour under NO_COLOR, and what an 80×24 screen keeps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment

from aios_tui import cli
from aios_tui.config import Settings
from aios_tui.ui.app import AiosApp
from tests.ui.conftest import MakeApp, screen_text


async def _settle(app: AiosApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


def _segments(app: AiosApp) -> list[Segment]:
    return [seg for strip in app.screen._compositor.render_strips() for seg in strip]


def _non_ascii(text: str) -> str:
    return "".join(sorted({ch for ch in text if not ch.isascii()}))


async def test_ascii_mode_draws_only_ascii_on_every_screen(make_app: MakeApp) -> None:
    app = make_app(settings=Settings(ascii=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        seen = {"main": screen_text(app)}
        await pilot.press("enter")  # a node's detail
        await pilot.pause()
        seen["node detail"] = screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        seen["help"] = screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("4", "s", "end", "ctrl+u", "9")  # the scale plan of the top endpoint
        await pilot.pause()
        seen["scale plan"] = screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("2", "enter")  # a GPU's detail, with its charts
        await pilot.pause()
        seen["gpu detail"] = screen_text(app)
    # Each screen is the one it says (the keys did something), and draws nothing but ASCII.
    assert "NAME" in seen["main"] and "q Quit" in seen["main"]
    assert "aios-tui keys" in seen["help"]
    assert "Scale ml-prod/" in seen["scale plan"] and "+---" in seen["scale plan"]
    assert {name: _non_ascii(text) for name, text in seen.items()} == dict.fromkeys(seen, "")


async def test_without_ascii_the_same_screens_draw_glyphs(make_app: MakeApp) -> None:
    """The check above can fail: the default mode draws the box lines and signs that ASCII mode replaces."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        main = screen_text(app)
        await pilot.press("question_mark")
        await pilot.pause()
        help_text = screen_text(app)
    assert {"°", "✗", "⏎", "│"} <= set(main)
    assert {"█"} <= set(help_text)


def _attrs(app: AiosApp, text: str) -> set[str]:
    """How each segment that reads ``text`` is drawn: "bold", "reverse", "plain" (neither)."""
    out = set()
    for seg in _segments(app):
        if seg.text.strip() == text and seg.style is not None:
            style = seg.style
            out.add("+".join(a for a in ("bold", "reverse") if getattr(style, a)) or "plain")
    return out


async def test_no_color_alarms_are_bold_reverse(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        assert app.no_color
        # A hot GPU (90 °C), a failed GPU mark, the header alarm: bold reverse; a normal temperature plain.
        hot, failed, cordon, normal = (_attrs(app, t) for t in ("90°C", "✗", "3 to cordon", "64°C"))
        await pilot.press("4", "down")  # off the cursor row, which draws its own colours
        await pilot.pause()
        p99, errors, breach, ok_p99 = (_attrs(app, t) for t in ("502", "18%", "BREACH 0s", "50"))
        # Textual's own NO_COLOR handling is still on: what reaches the terminal has no hue.
        colors = {seg.style.color.triplet for seg in _segments(app) if seg.style and seg.style.color}
    assert (hot, failed, cordon) == ({"bold+reverse"},) * 3
    assert (p99, errors, breach) == ({"bold+reverse"},) * 3
    assert normal == ok_p99 == {"plain"}
    assert colors and all(c is not None and c.red == c.green == c.blue for c in colors)


async def test_in_colour_alarms_are_not_reversed(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: in colour the same cells are bold red, not reversed."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        assert _attrs(app, "90°C") == {"bold"}


async def test_80x24_footer_keeps_quit_on_the_main_screen_and_views(make_app: MakeApp) -> None:
    footers = {}
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await _settle(app, pilot)
        for key in ("1", "2", "3", "4", "i", "h", "p", "e"):  # the four panes, then four views
            await pilot.press(key)
            await pilot.pause()
            footers[key] = screen_text(app).splitlines()[-1]
            if key in "ihpe":
                await pilot.press("escape")
                await pilot.pause()
    assert {k: "q Quit" in line for k, line in footers.items()} == dict.fromkeys(footers, True)


async def test_too_small_leaves_only_its_message(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(70, 20)) as pilot:
        await _settle(app, pilot)
        lines = [line.strip() for line in screen_text(app).splitlines()]
    assert [line for line in lines if line] == [
        "aios-tui needs a terminal of at least 80×24.",
        "This one is 70×20.",
        "Enlarge the window (or use a smaller font); q quits.",
    ]


# --- 80×24 snapshots per mode (the default mode's is tests/ui/test_snapshots.py::test_main_80x24) ---------


async def _loaded(pilot: Any) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _settings_for(env: dict[str, str], tmp_path: Path) -> Settings:
    """The settings the command line makes in this environment (no settings file)."""
    env = {**env, "XDG_CONFIG_HOME": str(tmp_path / "no-config")}
    return cli.settings_from_args(cli.build_parser().parse_args([]), env=env)


def test_main_80x24_no_color(snap_compare: Any, make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_loaded)


def test_main_80x24_ascii(snap_compare: Any, make_app: MakeApp) -> None:
    assert snap_compare(make_app(settings=Settings(ascii=True)), terminal_size=(80, 24), run_before=_loaded)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"TERM": "linux", "LANG": "en_US.UTF-8"}, id="term-linux"),
        pytest.param({"TERM": "xterm", "LANG": "C"}, id="lang-c"),
    ],
)
def test_main_80x24_linux_console_and_c_locale(
    snap_compare: Any, make_app: MakeApp, tmp_path: Path, env: dict[str, str]
) -> None:
    """TERM=linux and LANG=C get ASCII by themselves: the same picture as ``ascii = true``."""
    settings = _settings_for(env, tmp_path)
    assert settings.ascii
    assert snap_compare(make_app(settings=settings), terminal_size=(80, 24), run_before=_loaded)


async def test_low_bandwidth_repaints_every_ten_seconds_shows_minutes_and_r_repaints_now(
    tmp_path: Path, pinned_clock: Any
) -> None:
    """``--low-bandwidth``: a live console keeps the snapshot it painted while newer ones arrive (the poller
    fetches every 0.1 s here), until ``ctrl+r``; the clock has no seconds (they change the screen each
    second)."""
    from aios_tui.ops import Actor, AuditLog, Ops, Role
    from aios_tui.poll import Poller
    from aios_tui.sources.sim import SimSource
    from aios_tui.ui.harness import START

    settings = cli.settings_from_args(cli.build_parser().parse_args(["--low-bandwidth"]), env={})
    assert settings.low_bandwidth
    sim = SimSource(seed=7, nodes=40, interval=0.1, clock=pinned_clock, start=START)
    poller = Poller([sim], clock=pinned_clock)
    ops = Ops(
        {sim.name: sim},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "a.jsonl"),
        actor=Actor("t", Role.OPERATOR),
    )
    app = AiosApp(poller, ops, settings, live=True, clock=pinned_clock)
    assert app.repaint_interval == 10.0
    async with app.run_test(size=(120, 40)) as pilot:
        while app.fleet is None:
            await pilot.pause(0.05)
        painted = app.fleet
        await pilot.pause(1.0)  # ten fetches later
        assert poller.snapshot is not painted and app.fleet is painted
        first_line = screen_text(app).splitlines()[0]
        assert re.search(r" \d\d:\d\d UTC", first_line) and not re.search(r":\d\d:\d\d UTC", first_line)
        await pilot.press("ctrl+r")
        for _ in range(40):
            if app.fleet is not painted:
                break
            await pilot.pause(0.05)
        assert app.fleet is not painted
