"""Render the README's screenshots from the real app (fixed seed, frozen clock) into screenshots/.

    .venv/bin/python scripts/screenshots.py

Each picture is the console driven by key presses through Textual's Pilot, saved as SVG: nothing is drawn
by hand.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aios_tui.domain import clock
from aios_tui.ui.harness import FakeClock, sim_app

OUT = Path(__file__).resolve().parent.parent / "screenshots"

Steps = Callable[[Any], Awaitable[None]]


async def _nothing(pilot: Any) -> None:
    return None


async def _endpoint_detail(pilot: Any) -> None:
    await pilot.press("4")
    table = pilot.app.main.table()
    table.select_key(next(e.key for e in pilot.app.fleet.endpoints if e.hpa is not None))
    await pilot.press("enter")


async def _scale_plan(pilot: Any) -> None:
    await pilot.press("4")
    table = pilot.app.main.table()
    table.select_key(next(e.key for e in pilot.app.fleet.endpoints if e.hpa is None))
    await pilot.press("s", "end", "ctrl+u", "+", "2")


async def _hot_node(pilot: Any) -> None:
    hot = next(g for g in pilot.app.fleet.gpus if g.throttle.is_thermal)
    pilot.app.main.table("nodes").select_key(hot.node)
    await pilot.press("enter")


async def _drain_plan(pilot: Any) -> None:
    serving = {p.node for p in pilot.app.fleet.pods if p.owner_kind == "ReplicaSet" and p.gpus and p.node}
    training = {p.node for p in pilot.app.fleet.pods if p.owner_kind == "Job" and p.node}
    node = sorted(serving & training or serving)[0]
    pilot.app.main.table("nodes").select_key(node)
    await pilot.press("D", "end", "ctrl+u", "y")


async def _launch_plan(pilot: Any) -> None:
    # 4×8 H100 does not fit now: enter says why and offers what would (another model, fewer workers, a queue).
    await pilot.press("3", "n", "tab", "tab", "ctrl+u", "4", "tab", "tab", *"h100")
    await pilot.pause()
    await pilot.press("enter")


async def _filter_jobs(pilot: Any) -> None:
    await pilot.press("3", "slash", *"queued", "enter")


async def _idle_gpus(pilot: Any) -> None:
    await pilot.press("i")


async def _free_capacity(pilot: Any) -> None:
    await pilot.press("f", "F")  # the most free GPUs first


async def _nodes_to_cordon(pilot: Any) -> None:
    await pilot.press("h")


async def _scale_pool_plan(pilot: Any) -> None:
    # The pools view, sorted by name: the 7th is h100-a (p5.48xlarge); the form shows the plan as it is typed.
    await pilot.press("p", *["down"] * 6, "s")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("end", "ctrl+u", "+", "2")


async def _pods(pilot: Any) -> None:
    await pilot.press("colon", *"pods", "enter")


async def _events(pilot: Any) -> None:
    await pilot.press("v")


async def _drill_down(pilot: Any) -> None:
    # Endpoints › the breaching endpoint › its first replica › that replica's node: the related list below.
    await pilot.press("4")
    pilot.app.main.table().select_key("ml-prod/ranking-dlrm-feed")
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()
    await pilot.press("enter")


async def _logs(pilot: Any) -> None:
    # The breaching endpoint's first replica: its server says the queue is full.
    await pilot.press("4")
    pilot.app.main.table().select_key("ml-prod/ranking-dlrm-feed")
    await pilot.press("l")


async def _queued_job_fix(pilot: Any) -> None:
    # Jobs › the queued job (on top) › s: the pool its what-if names, +N filled in, and what it unblocks.
    await pilot.press("3", "enter")
    await pilot.pause()
    await pilot.press("s")


async def _describe_xid_gpu(pilot: Any) -> None:
    bad = next(g for g in pilot.app.fleet.gpus if g.xid == 79)
    await pilot.press("2")
    pilot.app.main.table().select_key(bad.uuid)
    await pilot.press("d")


SHOTS: list[tuple[str, tuple[int, int], int, Steps]] = [
    ("main-160x50", (160, 50), 200, _nothing),
    ("main-80x24", (80, 24), 200, _nothing),
    ("endpoint-detail-120x40", (120, 40), 200, _endpoint_detail),
    ("node-detail-hot-gpu-120x40", (120, 40), 200, _hot_node),
    ("scale-plan-120x40", (120, 40), 200, _scale_plan),
    ("drain-plan-120x40", (120, 40), 200, _drain_plan),
    ("launch-plan-120x40", (120, 40), 200, _launch_plan),
    ("jobs-filtered-80x24", (80, 24), 200, _filter_jobs),
    ("idle-gpus-120x40", (120, 40), 200, _idle_gpus),
    ("free-capacity-120x40", (120, 40), 200, _free_capacity),
    ("nodes-to-cordon-120x40", (120, 40), 200, _nodes_to_cordon),
    ("scale-pool-plan-120x40", (120, 40), 200, _scale_pool_plan),
    ("pods-120x40", (120, 40), 200, _pods),
    ("events-120x40", (120, 40), 200, _events),
    ("drill-down-node-120x40", (120, 40), 200, _drill_down),
    ("logs-120x40", (120, 40), 200, _logs),
    ("queued-job-fix-120x40", (120, 40), 200, _queued_job_fix),
    ("describe-xid-gpu-120x40", (120, 40), 200, _describe_xid_gpu),
]


async def shoot(name: str, size: tuple[int, int], nodes: int, steps: Steps, audit: Path) -> Path:
    frozen = FakeClock()
    with clock.use(frozen):  # job names and audit lines read the wall clock: the same picture every run
        return await _shoot(name, size, nodes, steps, audit, frozen)


async def _shoot(
    name: str, size: tuple[int, int], nodes: int, steps: Steps, audit: Path, frozen: FakeClock
) -> Path:
    app, _ = sim_app(audit, nodes=nodes, seed=7, clock=frozen)
    async with app.run_test(size=size) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await steps(pilot)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        path = app.save_screenshot(f"{name}.svg", str(OUT))
    return Path(path)


async def main() -> int:
    """Every picture, or only those named on the command line (``pods-120x40``)."""
    OUT.mkdir(exist_ok=True)
    wanted = set(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        for name, size, nodes, steps in SHOTS:
            if wanted and name not in wanted:
                continue
            path = await shoot(name, size, nodes, steps, Path(tmp) / "audit.jsonl")
            print(path.relative_to(OUT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
