"""Benchmark the NVML source: the event loop's worst stall while it polls 8 replayed H200s.

The replay answers from the real capture (tests/fixtures/nvidia-h200/nvml.json) and sleeps each call's
recorded cost, so a fetch with the slow PCIe readings takes ~0.4 s of NVML time for 8 GPUs. A ticker on the
event loop asks to wake every millisecond and records how late it wakes; that lateness is the stall a user
would feel. Fetches run back to back (no interval), which is harsher than the poller.

    .venv/bin/python bench/bench_nvml.py [--gpus 8] [--fetches 20] [--slow-every 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.unit

from aios_tui.config import NvmlSettings
from aios_tui.sources.nvml import NvmlSource
from tests.unit.nvml_replay import NvmlReplay

TICK = 0.001


async def bench(gpus: int, fetches: int, slow_every: int) -> tuple[float, list[float], list[float]]:
    """Worst loop stall (s), and the durations (s) of fetches with and without the slow readings."""
    src = NvmlSource(
        settings=NvmlSettings(enabled=True, slow_every=slow_every, timeout=60),
        nvml=NvmlReplay(phase="load", sample=5, devices=gpus, sleep=True),
        host="bench",
    )
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
    args = parser.parse_args()
    worst, slow, fast = asyncio.run(bench(args.gpus, args.fetches, args.slow_every))
    print(f"{args.gpus} GPUs, {args.fetches} fetches, slow readings every {args.slow_every}")
    print(f"fetch with PCIe readings: median {statistics.median(slow) * 1000:.1f} ms (n={len(slow)})")
    if fast:
        print(f"fetch without:            median {statistics.median(fast) * 1000:.1f} ms (n={len(fast)})")
    print(f"event loop worst stall:   {worst * 1000:.2f} ms (a {TICK * 1000:g} ms ticker's lateness)")


if __name__ == "__main__":
    main()
