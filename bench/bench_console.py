"""Benchmark the console against its budgets (DESIGN.md §7) on the embedded fleet.

    .venv/bin/python bench/bench_console.py --nodes 500 5000

Four parts, each printed as a Markdown table (``--only`` picks some):

``ticks``     in-process, headless (``App.run_test(size=(160, 50))``), app built with ``live=False`` and a
              fake clock. Each tick advances the clock by the sim's interval, then times separately
              *fetch* (``await poller.refresh()``: the source's cost, with the poller's record and merge),
              *console* (post ``FleetUpdated`` as the poller worker does, let every widget handle its
              messages, then paint the screen: the compositor renders the changed lines), and *widgets*
              (``MainScreen.update_snapshot`` alone on a fresh copy of the snapshot, no paint: header,
              tables and pane titles) and *tables* (the four ``FleetTable.update_snapshot`` alone). Three
              views: all four panes (the grid at 160×50), the Nodes pane zoomed and the GPUs pane zoomed; each
              with Python's cyclic GC as is and with ``gc.freeze()`` after the first snapshot.
``baseline``  Textual's stock DataTable loading the same Nodes / GPUs rows (cells rendered beforehand,
              not timed), then painting: what a tick would cost with it (clear + add_rows + paint).
``startup``   a real ``aios-tui --sim-nodes N`` under a 160×50 pseudo-terminal: seconds from exec to the
              first frame (first cursor-addressed write after the alternate screen is entered) and to the
              first frame with data (the header's ``Nodes <ready>/<total>`` written).
``process``   the same process left alone: RSS (VmRSS) 20 s after exec, then CPU (utime+stime) over the
              next 30 s at the default intervals, with no input.

Timings are medians and 90th percentiles over repeated runs; the machine is shared, so compare ratios
measured in the same run rather than absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from _util import FakeClock, build_app, compile_app, machine, median_p90, ms, run_console
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import DataTable

from aios_tui.domain import FleetSnapshot
from aios_tui.poll import Poller
from aios_tui.render.kinds import PANES as KINDS
from aios_tui.render.table import RowCtx
from aios_tui.sources.sim import SimSource
from aios_tui.ui.messages import FleetUpdated

SIZE = (160, 50)
VIEWS = {"grid": "all four panes", "nodes": "Nodes pane zoomed", "gpus": "GPUs pane zoomed"}
GC_MODES = {"default": "GC as is", "freeze": "gc.freeze() after first snapshot"}
EXE = Path(sys.executable).with_name("aios-tui")


async def _paint(app: App[Any], pilot: Pilot[Any]) -> None:
    """Let every widget handle what is queued, then draw the screen now (not at the next 60 Hz tick)."""
    await pilot._wait_for_screen()
    app.screen._on_timer_update()


# --- ticks ------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TickTimes:
    fetch: list[float] = dataclasses.field(default_factory=list)
    console: list[float] = dataclasses.field(default_factory=list)
    widgets: list[float] = dataclasses.field(default_factory=list)
    tables: list[float] = dataclasses.field(default_factory=list)


async def _ticks(nodes: int, ticks: int, warmup: int, gc_mode: str) -> tuple[dict[str, TickTimes], str]:
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as audit_dir:
        app, poller = build_app(nodes, seed=1, clock=clock, audit_dir=Path(audit_dir))
        interval = min(s.interval for s in poller.sources.values())
        out: dict[str, TickTimes] = {}
        async with app.run_test(size=SIZE) as pilot:
            while app.fleet is None:
                await pilot.pause(0.02)
            await _paint(app, pilot)
            snap = app.fleet
            sizes = f"{len(snap.nodes):,} nodes, {len(snap.gpus):,} GPUs, {len(snap.pods):,} pods"
            gc.collect()
            if gc_mode == "freeze":
                gc.freeze()
            else:
                gc.unfreeze()  # whatever the app may have frozen goes back under the collector
            for view in VIEWS:
                if view != "grid":
                    app.main.show_pane(view)
                    if not app.main.has_class("-zoom"):
                        app.main.action_zoom()
                await _paint(app, pilot)
                times = out[view] = TickTimes()
                for i in range(warmup + ticks):
                    clock.t += interval
                    t0 = time.perf_counter()
                    snap = await poller.refresh()
                    t1 = time.perf_counter()
                    app.post_message(FleetUpdated(snap))
                    await _paint(app, pilot)
                    t2 = time.perf_counter()
                    fresh = dataclasses.replace(snap)  # no cached totals or indexes yet, as a new snapshot
                    t3 = time.perf_counter()
                    app.main.update_snapshot(fresh, clock.t)
                    t4 = time.perf_counter()
                    fresh = dataclasses.replace(snap)
                    t5 = time.perf_counter()
                    for table in app.main.tables:  # the four tables alone: no header, no pane titles
                        table.update_snapshot(fresh, clock.t)
                    t6 = time.perf_counter()
                    await _paint(app, pilot)
                    if i >= warmup:
                        times.fetch.append(t1 - t0)
                        times.console.append(t2 - t1)
                        times.widgets.append(t4 - t3)
                        times.tables.append(t6 - t5)
        gc.unfreeze()
    return out, sizes


def bench_ticks(sizes: Sequence[int], ticks: int, warmup: int) -> dict[tuple[int, str, str], TickTimes]:
    results: dict[tuple[int, str, str], TickTimes] = {}
    per = f"{ticks} ticks per view after {warmup} warm-up, terminal {SIZE[0]}×{SIZE[1]}"
    print(f"\n### Refresh tick ({per})\n")
    print(
        "| nodes | fleet | GC | view | fetch median | console median | console p90 | widgets median"
        " | tables median |"
    )
    print("|---:|---|---|---|---:|---:|---:|---:|---:|")
    for nodes in sizes:
        for gc_mode, gc_label in GC_MODES.items():
            per_view, fleet = asyncio.run(_ticks(nodes, ticks, warmup, gc_mode))
            for view, t in per_view.items():
                results[nodes, gc_mode, view] = t
                f, _ = median_p90(t.fetch)
                c, c90 = median_p90(t.console)
                w, _ = median_p90(t.widgets)
                tb, _ = median_p90(t.tables)
                print(
                    f"| {nodes:,} | {fleet} | {gc_label} | {VIEWS[view]} | {ms(f)} ms | {ms(c)} ms"
                    f" | {ms(c90)} ms | {ms(w)} ms | {ms(tb)} ms |",
                    flush=True,
                )
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        grows = f"fleet grows {large / small:.0f}×"
        print(f"\nConsole tick cost at {large:,} vs {small:,} nodes (GC as is; {grows}):\n")
        print("| view | ratio of medians |")
        print("|---|---:|")
        for view, label in VIEWS.items():
            a = median_p90(results[small, "default", view].console)[0]
            b = median_p90(results[large, "default", view].console)[0]
            print(f"| {label} | {b / a:.2f}× |")
    return results


# --- baseline: Textual's DataTable ------------------------------------------------------------------------


class _TableApp(App[None]):
    CSS: ClassVar[str] = "DataTable { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield DataTable[Any]()


async def _snapshot(nodes: int) -> FleetSnapshot:
    clock = FakeClock()
    poller = Poller([SimSource(seed=1, nodes=nodes, clock=clock)], clock=clock)
    return await poller.refresh()


async def _baseline(nodes: int, runs: int) -> dict[str, tuple[int, list[float]]]:
    snap = await _snapshot(nodes)
    ctx = RowCtx(snapshot=snap, now=snap.timestamp)
    out: dict[str, tuple[int, list[float]]] = {}
    for name in ("nodes", "gpus"):
        kind = KINDS[name]
        rows = [[col.cell(obj, ctx) for col in kind.columns] for obj in kind.rows(snap)]
        app = _TableApp()
        times: list[float] = []
        out[name] = (len(rows), times)
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(DataTable)
            table.add_columns(*(col.title for col in kind.columns))
            await _paint(app, pilot)
            for _ in range(runs):
                t0 = time.perf_counter()
                table.clear()
                table.add_rows(rows)
                await _paint(app, pilot)
                times.append(time.perf_counter() - t0)
    return out


def bench_baseline(
    sizes: Sequence[int], runs: int, ticks: dict[tuple[int, str, str], TickTimes] | None
) -> None:
    print(f"\n### Baseline: Textual DataTable, clear + add_rows + paint ({runs} runs)\n")
    print(
        "| nodes | pane | rows | DataTable median | FleetTable tick median (zoomed, same run)"
        " | DataTable ÷ FleetTable |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    medians: dict[tuple[int, str], float] = {}
    for nodes in sizes:
        per_kind = asyncio.run(_baseline(nodes, runs))
        for name, (rows, times) in per_kind.items():
            m, _ = median_p90(times)
            medians[nodes, name] = m
            ours = median_p90(ticks[nodes, "default", name].console)[0] if ticks else None
            cmp = f"{ms(ours)} ms | {m / ours:.0f}×" if ours else "– | –"
            print(f"| {nodes:,} | {KINDS[name].title} | {rows:,} | {ms(m)} ms | {cmp} |", flush=True)
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        ratios = ", ".join(
            f"{KINDS[n].title} {medians[large, n] / medians[small, n]:.1f}×" for n in ("nodes", "gpus")
        )
        print(f"\nDataTable cost at {large:,} vs {small:,} nodes: {ratios}.")


# --- a real process ---------------------------------------------------------------------------------------


def bench_startup(sizes: Sequence[int], runs: int) -> None:
    print(f"\n### Startup of `aios-tui --sim-nodes N` under a {SIZE[0]}×{SIZE[1]} pty ({runs} runs)\n")
    print("| nodes | first frame median | p90 | first frame with data median | p90 |")
    print("|---:|---:|---:|---:|---:|")
    for nodes in sizes:
        first: list[float] = []
        data: list[float] = []
        for seed in range(runs):
            run = run_console(EXE, nodes, seed=seed, size=SIZE)
            if run.first_frame is None or run.first_data_frame is None:
                print(f"| {nodes:,} | run {seed} failed: {'; '.join(run.notes) or 'no frame seen'} | | | |")
                continue
            first.append(run.first_frame)
            data.append(run.first_data_frame)
        if first:
            f, f90 = median_p90(first)
            d, d90 = median_p90(data)
            print(f"| {nodes:,} | {f:.2f} s | {f90:.2f} s | {d:.2f} s | {d90:.2f} s |", flush=True)


def bench_process(sizes: Sequence[int], rss_at: float, cpu_window: float) -> None:
    when = f"RSS at {rss_at:g} s, CPU over the next {cpu_window:g} s"
    print(f"\n### Memory and idle CPU (one process per size; {when})\n")
    print("| nodes | RSS | CPU while idle (% of one core) | first frame with data |")
    print("|---:|---:|---:|---:|")
    for nodes in sizes:
        run = run_console(EXE, nodes, size=SIZE, rss_at=rss_at, cpu_window=cpu_window)
        rss = f"{run.rss_mb:.0f} MB" if run.rss_mb is not None else "–"
        cpu = f"{run.cpu_pct:.1f} %" if run.cpu_pct is not None else "–"
        data = f"{run.first_data_frame:.2f} s" if run.first_data_frame is not None else "–"
        notes = f" ({'; '.join(run.notes)})" if run.notes else ""
        print(f"| {nodes:,} | {rss} | {cpu}{notes} | {data} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--ticks", type=int, default=20, help="timed ticks per view")
    parser.add_argument("--warmup", type=int, default=3, help="untimed ticks before each view")
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=3)
    parser.add_argument("--rss-at", type=float, default=20.0, help="seconds after exec")
    parser.add_argument("--cpu-window", type=float, default=30.0, help="seconds of idle CPU measured")
    parts = ("ticks", "baseline", "startup", "process")
    parser.add_argument("--only", nargs="+", choices=parts, default=list(parts))
    args = parser.parse_args()
    print(f"## aios-tui console benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"\nMachine: {machine()}. Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    if {"startup", "process"} & set(args.only):
        said = compile_app()
        print(f"\n{said[0].upper()}{said[1:]}.")
    began = time.perf_counter()
    ticks = bench_ticks(args.nodes, args.ticks, args.warmup) if "ticks" in args.only else None
    if "baseline" in args.only:
        bench_baseline(args.nodes, args.baseline_runs, ticks)
    if "startup" in args.only:
        bench_startup(args.nodes, args.startup_runs)
    if "process" in args.only:
        bench_process(args.nodes, args.rss_at, args.cpu_window)
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
