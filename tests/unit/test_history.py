"""The history ring reads again only the objects a source rebuilt (the same object means the same reading),
and gives the same series as reading every object each time."""

from __future__ import annotations

import math
from dataclasses import replace

from aios_tui.domain import NA, Gpu
from aios_tui.poll.history import RingHistory
from aios_tui.sources.base import SourceData


def fleet(n: int) -> list[Gpu]:
    return [
        Gpu(f"n{i // 8}", i % 8, f"GPU-{i}", "H100", util=float(i), temp=40.0, power=300.0) for i in range(n)
    ]


def series(h: RingHistory, gpus: list[Gpu]) -> dict[str, list[list[float]]]:
    out = {}
    for g in gpus:
        out[g.uuid] = [
            [-1.0 if math.isnan(v) else v for v in h.series("gpu", g.uuid, m, 10)] for m in ("util", "temp")
        ]
    return out


def test_patched_points_equal_points_read_in_full() -> None:
    gpus = fleet(700)  # compared in blocks of 256: three
    steps = [list(gpus)]
    for k in range(1, 4):
        nxt = list(steps[-1])
        for i in range(k, 700, 9):  # a few re-read, one reading lost
            nxt[i] = replace(nxt[i], util=float(100 - i % 100), temp=NA if i == k else 50.0 + k)
        steps.append(nxt)
    nxt = list(steps[-1])
    for i in (255, 256, 690, 699):  # a block's edges, the last block alone
        nxt[i] = replace(nxt[i], util=3.0, temp=60.0)
    steps.append(nxt)
    steps.append([*steps[-1][8:], *steps[-1][:8]])  # a node moved to the end: same objects, new order
    steps.append(fleet(692))  # a node went away
    patched, full = RingHistory(10), RingHistory(10)
    for step in steps:
        patched.record(SourceData(gpus=tuple(step)))
        full.record(SourceData(gpus=tuple(replace(g) for g in step)))  # every object new: read in full
    assert series(patched, gpus) == series(full, gpus)
    temps = series(patched, gpus)
    assert temps["GPU-1"][1][:3] == [40.0, -1.0, -1.0]  # a lost reading is NaN, until read again
    assert temps["GPU-10"][1][:3] == [40.0, 51.0, 51.0]
    assert temps["GPU-256"][1][:5] == [40.0, 40.0, 40.0, 40.0, 60.0]  # only the step at a block edge
