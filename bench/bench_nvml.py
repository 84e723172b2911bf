"""Benchmark the NVML source: the event loop's worst stall while it polls 8 replayed H200s.

The replay answers from the real capture (tests/fixtures/nvidia-h200/nvml.json) and sleeps each call's
recorded cost, so a fetch with the slow PCIe readings takes ~0.4 s of NVML time for 8 GPUs. A ticker on the
event loop asks to wake every millisecond and records how late it wakes; that lateness is the stall a user
would feel. Fetches run back to back (no interval), which is harsher than the poller.

    .venv/bin/python bench/bench_nvml.py [--gpus 8] [--fetches 20] [--slow-every 5]

With ``--real`` it polls this machine's GPUs through the real ``pynvml`` instead, and also prints what each
NVML function cost (median per call), to compare with the capture's recorded costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.unit

from aios_tui.config import NvmlSettings
from aios_tui.sources.nvml import NvmlSource
from tests.unit.nvml_replay import NvmlReplay

TICK = 0.001


class TimedNvml:
    """The real ``pynvml`` module, with every ``nvml*`` function's wall time recorded by name."""

    def __init__(self) -> None:
        import pynvml

        self._nv = pynvml
        self.costs: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._nv, name)
        if not (name.startswith("nvml") and callable(value)):
            return value

        def timed(*args: Any, _fn: Callable[..., Any] = value, _name: str = name) -> Any:
            began = time.perf_counter()
            try:
                return _fn(*args)
            finally:
                self.costs[_name].append(time.perf_counter() - began)

        return timed


async def bench(nvml: Any, fetches: int, slow_every: int) -> tuple[float, list[float], list[float]]:
    """Worst loop stall (s), and the durations (s) of fetches with and without the slow readings."""
    settings = NvmlSettings(enabled=True, slow_every=slow_every, timeout=60)
    src = NvmlSource(settings=settings, nvml=nvml, host="bench")
    worst = 0.0
    running = True

    async def ticker() -> None:
        nonlocal worst
        while running:
            due = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - due)

    task = asyncio.create_task(ticker())
    slow: list[float] = []
    fast: list[float] = []
    try:
        for i in range(fetches):
            began = time.perf_counter()
            await src.fetch()
            (slow if i % slow_every == 0 else fast).append(time.perf_counter() - began)
    finally:
        running = False
        await task
        await src.close()
    return worst, slow, fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--fetches", type=int, default=20)
    parser.add_argument("--slow-every", type=int, default=NvmlSettings().slow_every)
    parser.add_argument("--real", action="store_true", help="this machine's GPUs through the real pynvml")
    args = parser.parse_args()
    replay = NvmlReplay(phase="load", sample=5, devices=args.gpus, sleep=True)
    nvml: Any = TimedNvml() if args.real else replay
    worst, slow, fast = asyncio.run(bench(nvml, args.fetches, args.slow_every))
    what = "real GPUs" if args.real else f"{args.gpus} replayed H200s"
    print(f"{what}, {args.fetches} fetches, slow readings every {args.slow_every}")
    print(f"fetch with PCIe readings: median {statistics.median(slow) * 1000:.1f} ms (n={len(slow)})")
    if fast:
        print(f"fetch without:            median {statistics.median(fast) * 1000:.1f} ms (n={len(fast)})")
    print(f"event loop worst stall:   {worst * 1000:.2f} ms (a {TICK * 1000:g} ms ticker's lateness)")
    if isinstance(nvml, TimedNvml):
        print("NVML call costs (median, ms; calls):")
        for name, costs in sorted(nvml.costs.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"  {name:50s} {statistics.median(costs) * 1000:9.3f}  {len(costs)}")


if __name__ == "__main__":
    main()
