"""Sparklines that tell the truth: percentages on 0–100 %, the rest on 0..max, and how far back they reach."""

from __future__ import annotations

import io
import math

from rich.console import Console

from aios_tui.domain import Endpoint, FleetSnapshot, Gpu
from aios_tui.poll.history import Series
from aios_tui.render.detail import endpoint_detail, gpu_detail
from aios_tui.render.glyphs import BLOCKS, sparkline


def _plain(renderable: object) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_a_fixed_scale_draws_one_percent_at_the_bottom_and_a_hundred_full() -> None:
    assert sparkline([1.0, 2.0, 1.0], 3, lo=0, hi=100) == BLOCKS[0] * 3
    assert sparkline([100.0, 50.0, 0.0], 3, lo=0, hi=100) == BLOCKS[-1] + BLOCKS[4] + BLOCKS[0]
    assert sparkline([120.0, -5.0], 2, lo=0, hi=100) == BLOCKS[-1] + BLOCKS[0]  # outside: at the edge


def test_by_default_the_scale_starts_at_zero() -> None:
    # Its own min-max would draw 20 → 21 ms as bottom → top.
    assert sparkline([20.0, 21.0], 2) == BLOCKS[-1] * 2
    assert sparkline([0.0, 0.0], 2) == BLOCKS[0] * 2
    assert sparkline([-10.0, 10.0], 2) == BLOCKS[0] + BLOCKS[-1]
    assert sparkline([math.nan, 4.0], 3) == "  " + BLOCKS[-1]


def _chart_line(text: str, label: str) -> str:
    """The chart's line (the fields above may use the same label)."""
    return [line for line in text.splitlines() if line.startswith(label)][-1]


def test_the_detail_draws_percentages_on_their_whole_range_with_a_time_axis() -> None:
    gpu = Gpu("n1", 0, "GPU-1", "H100", util=1.0, mem_used=800.0, mem_total=80_000.0, pod="p")
    series = {
        "util": Series([1.0, 2.0, 1.0, 1.0] * 3, step=60.0),
        "mem_used": Series([800.0] * 12, step=60.0),
        "temp": Series([30.0, 60.0, 30.0, 60.0] * 3, step=60.0),
        "power": Series([], step=60.0),
    }
    text = _plain(
        gpu_detail(
            gpu, FleetSnapshot(timestamp=0.0, gpus=(gpu,)), 0.0, lambda _k, _o, m: series[m], 80, False
        )
    )
    assert BLOCKS[0] * 12 in _chart_line(text, "Util ")  # 1 % busy: at the bottom, not drawn full
    assert BLOCKS[0] * 12 in _chart_line(text, "Memory ")  # 1 % of the memory
    assert (BLOCKS[4] + BLOCKS[-1]) * 6 in _chart_line(text, "Temp ")  # 0..max: 30 °C is half of 60
    (axis,) = [line for line in text.splitlines() if "now" in line]
    assert axis.split() == ["−11m", "now"]
    assert axis.index("−11m") == _chart_line(text, "Util ").index(BLOCKS[0])  # under the first point


def test_error_rate_is_drawn_on_zero_to_one_and_no_step_means_no_axis() -> None:
    ep = Endpoint("ns", "e", "t", p99_ms=20.0, p99_slo_ms=32.0)
    values = {"error_rate": [0.001, 0.002, 0.001]}
    text = _plain(
        endpoint_detail(
            ep,
            FleetSnapshot(timestamp=0.0, endpoints=(ep,)),
            0.0,
            lambda _k, _o, m: values.get(m, []),
            80,
            False,
        )
    )
    assert BLOCKS[0] * 3 in _chart_line(text, "Errors")  # 0.2 % errors sit at the bottom
    assert "now" not in text  # a plain list carries no step: no axis rather than a wrong one
