"""What each snapshot costs the poller at steady state, piece by piece, on the embedded fleet.

Per tick (2 s of simulated time, the sim's interval): the source's fetch, the history record, the merge with
the change log (``Poller._next``), and each figure every repaint reads (``poll.poller._WARM``: totals,
verdicts, GPUs by node …), each timed alone on a snapshot nobody has read yet. No UI: ``bench_console.py``
times the console's side, ``bench_terminal.py`` the whole process.

    .venv/bin/python bench/bench_snapshot.py [--nodes 5000] [--ticks 25] [--warmup 5] [--telemetry-period 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aios_tui.poll import Poller
from aios_tui.poll import poller as poll_module
from aios_tui.poll.history import RingHistory
from aios_tui.sources.sim import SimSource


def _timed(times: dict[str, list[float]], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times[label].append(time.perf_counter() - t0)

    return wrapper


async def run(nodes: int, ticks: int, warmup: int, period: float) -> dict[str, list[float]]:
    clock = [1.7e9]
    src = SimSource(nodes=nodes, seed=1, start=clock[0], clock=lambda: clock[0], telemetry_period=period)
    poller = Poller([src], clock=lambda: clock[0])
    times: dict[str, list[float]] = defaultdict(list)
    src.fetch_now = _timed(times, "source fetch", src.fetch_now)  # type: ignore[method-assign]
    record = RingHistory.record
    RingHistory.record = _timed(times, "history record", record)  # type: ignore[method-assign]
    try:
        for i in range(warmup + ticks):
            if i == warmup:
                times.clear()
            clock[0] += src.interval
            await poller._fetch(poller._polled[0])
            t0 = time.perf_counter()
            snapshot = poller._next()
            times["merge and change log"].append(time.perf_counter() - t0)
            for name in poll_module._WARM:
                t0 = time.perf_counter()
                getattr(snapshot, name)
                times[name].append(time.perf_counter() - t0)
            poller._publish(snapshot)
    finally:
        RingHistory.record = record  # type: ignore[method-assign]
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=5000)
    ap.add_argument("--ticks", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--telemetry-period", type=float, default=30.0)
    args = ap.parse_args()
    times = asyncio.run(run(args.nodes, args.ticks, args.warmup, args.telemetry_period))
    print(
        f"{args.nodes:,} nodes, [sim] telemetry_period {args.telemetry_period:g} s, {args.ticks} ticks after "
        f"{args.warmup}\n\n| piece | median | p90 |\n|---|---:|---:|"
    )
    total = 0.0
    for label, samples in times.items():
        med = statistics.median(samples)
        total += med
        p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else med
        print(f"| {label} | {med * 1e3:.1f} ms | {p90 * 1e3:.1f} ms |")
    print(f"| sum of the medians | {total * 1e3:.1f} ms | |")


if __name__ == "__main__":
    main()
