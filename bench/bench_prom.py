"""Benchmark the Prometheus source: one refresh of N dcgm-exporter GPUs from a real Prometheus.

A test exporter (tests/prom/exporter.py, in a child process) serves N GPUs × 11 DCGM series plus the four
model servers; Debian's ``prometheus`` scrapes it every 15 s on 127.0.0.1; once every GPU is stored, the
source's ``fetch()`` runs ``--refreshes`` times back to back. Then, in the same run, the baseline the
source avoids: the naive way, one instant query per DCGM metric asking every series with all its labels
(what ``get_current_metric_value`` does), joined by UUID. Medians; the ratio is naive / source.
Prometheus, the exporter and this process share the machine.

    .venv/bin/python bench/bench_prom.py [--gpus 40000] [--refreshes 7]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.queues
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.prom

from aios_tui.config import PrometheusSettings
from aios_tui.sources import _prom_queries as pq
from aios_tui.sources.prometheus import PrometheusSource
from tests.prom.exporter import FleetExporter, big_fleet, default_fleet
from tests.prom.promserver import PromServer, require_prometheus


def naive_fetch(src: PrometheusSource, metrics: list[str]) -> int:
    """Every DCGM metric asked whole, one after another, and joined by UUID: the baseline."""
    client = src._client_or_connect()
    by_uuid: dict[str, dict[str, Any]] = {}
    for name in metrics:
        for item in client.custom_query(name, timeout=60):
            labels = item["metric"]
            by_uuid.setdefault(labels.get("UUID", ""), dict(labels))[name] = pq.sample(item)
    return len(by_uuid)


def serve_exporter(gpus: int, port: multiprocessing.queues.Queue[int]) -> None:
    """The exporter in a process of its own, as it would be on a GPU node: its rendering of ~440,000
    series every scrape must not hold this process's GIL while the source decodes answers."""
    _, endpoints = default_fleet()
    exporter = FleetExporter(big_fleet(gpus), endpoints)
    exporter.start()
    port.put(exporter.port)
    threading.Event().wait()


async def main_async(gpus: int, refreshes: int) -> None:
    binary = require_prometheus()
    ports: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve_exporter, args=(gpus, ports), daemon=True)
    child.start()
    target = f"127.0.0.1:{ports.get(timeout=60)}"
    with tempfile.TemporaryDirectory() as tmp:
        server = PromServer(binary, Path(tmp), [target], scrape_interval=15.0, scrape_timeout=14.0)
        server.start()
        try:
            began = time.monotonic()
            server.wait_for(f"count(DCGM_FI_DEV_GPU_UTIL) == {gpus}", timeout=120)
            print(f"{gpus} GPUs stored after {time.monotonic() - began:.1f} s (scraped every 15 s)")
            settings = PrometheusSettings(enabled=True, url=server.url, timeout=30.0)
            src = PrometheusSource(settings=settings)
            times: list[float] = []
            cpu: list[float] = []
            naive: list[float] = []
            stalls: list[float] = []
            ticking = True

            async def ticker() -> None:  # how late a 10 ms timer wakes: what a user would feel
                while ticking:
                    due = time.perf_counter() + 0.01
                    await asyncio.sleep(0.01)
                    stalls.append(time.perf_counter() - due)

            try:
                tick = asyncio.create_task(ticker())
                for _ in range(refreshes):
                    t, c = time.perf_counter(), time.process_time()
                    data = await src.fetch()
                    times.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                    assert len(data.gpus) == gpus, len(data.gpus)
                ticking = False
                await tick
                names = [pq.GPU_UTIL, *(n for names in pq.GPU_FIELDS.values() for n in names)]
                for _ in range(refreshes):
                    t = time.perf_counter()
                    assert naive_fetch(src, names) == gpus
                    naive.append(time.perf_counter() - t)
            finally:
                await src.close()
        finally:
            server.stop()
            child.terminate()
    med, base = statistics.median(times), statistics.median(naive)
    print(f"source fetch ({len(src._queries())} queries at most, in parallel): median {med:.2f} s, "
          f"min {min(times):.2f}, max {max(times):.2f} (n={refreshes}); this process's CPU per fetch "
          f"(answers decoded, GPUs built) median {statistics.median(cpu):.2f} s")  # fmt: skip
    print(
        f"naive, every series with all labels: median {base:.2f} s (n={refreshes}); ratio {base / med:.1f}x"
    )
    stalls.sort()
    print(f"event loop during the refreshes: worst stall {stalls[-1] * 1000:.0f} ms, "
          f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.0f} ms")  # fmt: skip
    print(f"nodes {len(data.nodes)}, endpoints {len(data.endpoints)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=40_000)
    parser.add_argument("--refreshes", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main_async(args.gpus, args.refreshes))


if __name__ == "__main__":
    main()
