"""Benchmark the embedded simulated fleet: the first fetch (layout included) and steady fetches.

A steady fetch comes 2 s of simulated time after the previous one, as the poller would call it. Each size
runs with each ``[sim] telemetry_period``: 30 s (the default: a GPU is re-read once per 30 s, staggered) and
0 (every GPU re-read at every fetch).
Budgets at 5,000 nodes: first fetch ≤ 2 s, steady fetch ≤ 40 ms median.

    .venv/bin/python bench/bench_sim.py [--runs 5] [--steady 20] [--nodes 500 5000] [--telemetry-period 30 0]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from aios_tui.sources.sim import SimSource


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def bench(nodes: int, runs: int, steady: int, period: float) -> tuple[float, float, float, int, int]:
    """Median first fetch, median and 90th-percentile steady fetch (seconds), and the fleet's sizes."""
    firsts: list[float] = []
    steadies: list[float] = []
    gpus = pods = 0
    for run in range(runs):
        clock = _Clock(1_700_000_000.0)
        began = time.perf_counter()
        src = SimSource(seed=run, nodes=nodes, clock=clock, telemetry_period=period)
        data = src.fetch_now()
        firsts.append(time.perf_counter() - began)
        gpus, pods = len(data.gpus), len(data.pods)
        for _ in range(steady):
            clock.t += 2.0
            began = time.perf_counter()
            src.fetch_now()
            steadies.append(time.perf_counter() - began)
        # Free this fleet (~0.1 s at 5,000 nodes) before the next is timed: the console builds only one.
        del src, data
        gc.collect()
    p90 = statistics.quantiles(steadies, n=10)[-1] if len(steadies) > 1 else steadies[0]
    return statistics.median(firsts), statistics.median(steadies), p90, gpus, pods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fleets built per size (seeds 0..runs-1)")
    parser.add_argument("--steady", type=int, default=20, help="steady fetches per fleet")
    parser.add_argument("--nodes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument(
        "--telemetry-period",
        type=float,
        nargs="+",
        default=[30.0, 0.0],
        metavar="P",
        help="[sim] telemetry_period values, seconds (0: every GPU re-read at every fetch)",
    )
    args = parser.parse_args()
    header = [("nodes", 6), ("period", 7), ("GPUs", 7), ("pods", 8), ("first (median)", 15)]
    header += [("steady (median)", 16), ("steady p90", 11)]
    print(" ".join(f"{name:>{width}}" for name, width in header))
    for nodes in args.nodes:
        for period in args.telemetry_period:
            first, steady, p90, gpus, pods = bench(nodes, args.runs, args.steady, period)
            print(
                f"{nodes:>6} {period:>6g}s {gpus:>7} {pods:>8} {first * 1000:>12.0f} ms"
                f" {steady * 1000:>13.1f} ms {p90 * 1000:>8.1f} ms"
            )


if __name__ == "__main__":
    main()
