"""Planning time whatever the input: plans refused by their bounds against ordinary plans, same run.

    .venv/bin/python bench/bench_actions.py [--nodes 5000] [--runs 15]

Before bounds were checked first, ``:scale-pool h100-a 100000000`` built 10⁸ hypothetical nodes (over 40 s
and 1.7 GB in the console, 3.6 GB after 60 s headless). Each line here is the median and p90 of ``--runs``
calls of ``Ops.plan`` on the embedded fleet (pinned clock, admin, one snapshot reused: warm), and the same for
ordinary plans as the baseline. A last line times the first drain plan on a fresh snapshot (cold).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import START, FakeClock, machine, median_p90

from aios_tui.domain import clock
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource


def _ops(nodes: int, audit: Path, frozen: FakeClock) -> tuple[Ops, Poller]:
    sim = SimSource(seed=0, nodes=nodes, clock=frozen, start=START)
    poller = Poller([sim], clock=frozen)
    asyncio.run(poller.refresh())
    return Ops(
        {sim.name: sim}, lambda: poller.snapshot, AuditLog(audit), actor=Actor("bench", Role.ADMIN)
    ), poller


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def _time(call: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    samples = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - started)
    med, p90 = median_p90(samples)
    return med, p90, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    frozen = FakeClock()
    with clock.use(frozen), tempfile.TemporaryDirectory() as tmp:
        ops, poller = _ops(args.nodes, Path(tmp) / "audit.jsonl", frozen)
        snap = poller.snapshot
        pool = next(p for p in snap.pools if p.gpu_model == "H100")
        endpoint = next(e for e in snap.endpoints if e.gpus_per_replica)
        busy = max((n for n in snap.nodes if n.schedulable), key=lambda n: n.gpus_requested)
        cases: list[tuple[str, Callable[[], Any]]] = [
            (
                "scale-pool 100000000 (refused by the limits)",
                lambda: ops.plan("scale-pool", pool=pool.name, desired="100000000"),
            ),
            (
                "scale-pool +999999999 (refused by the limits)",
                lambda: ops.plan("scale-pool", pool=pool.name, desired="+999999999"),
            ),
            (
                "launch 10000×8 (refused: larger than the fleet)",
                lambda: ops.plan("launch", workers=10_000, gpus_per_worker=8),
            ),
            (
                "scale 1000000 replicas (refused by the cap)",
                lambda: ops.plan("scale", endpoint=endpoint.key, replicas=10**6),
            ),
            (
                f"baseline: scale-pool +2 (what-if over {len(snap.jobs):,} jobs)",
                lambda: ops.plan("scale-pool", pool=pool.name, desired="+2"),
            ),
            ("baseline: scale +1", lambda: ops.plan("scale", endpoint=endpoint.key, replicas="+1")),
            (
                "baseline: launch 2×8 H100",
                lambda: ops.plan("launch", workers=2, gpus_per_worker=8, gpu_model="H100"),
            ),
            (
                f"baseline: drain {busy.name} (warm)",
                lambda: ops.plan("drain", nodes=[busy.name], allow_empty_dir=True, allow_unmanaged=True),
            ),
        ]
        size = f"{args.nodes:,}-node embedded fleet ({len(snap.gpus):,} GPUs, {len(snap.pods):,} pods)"
        print(f"## Planning time, {size}")
        print(f"{machine()}; {args.runs} runs each; medians and p90 in ms\n")
        print("| plan | median ms | p90 ms | blockers |")
        print("|---|---:|---:|---|")
        for name, call in cases:
            med, p90, plan = _time(call, args.runs)
            why = (
                plan.blockers[0][:70] + ("…" if len(plan.blockers[0]) > 70 else "")
                if plan.blockers
                else "none"
            )
            print(f"| {name} | {ms(med)} | {ms(p90)} | {why} |")
        cold = []
        for _ in range(3):
            fresh, _ = _ops(args.nodes, Path(tmp) / "audit.jsonl", frozen)
            started = time.perf_counter()
            fresh.plan("drain", nodes=[busy.name], allow_empty_dir=True, allow_unmanaged=True)
            cold.append(time.perf_counter() - started)
        med, p90 = median_p90(cold)
        print(f"| baseline: drain {busy.name} on a fresh snapshot (cold, 3 runs) | {ms(med)} | {ms(p90)} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
