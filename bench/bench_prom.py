"""Benchmark the Prometheus source: one refresh of N dcgm-exporter GPUs from a real Prometheus.

A test exporter (tests/prom/exporter.py, in a child process) serves N GPUs × 11 DCGM series plus the four
model servers; Debian's ``prometheus`` scrapes it every 15 s on 127.0.0.1; once every GPU is stored, the
source's ``fetch()`` runs ``--refreshes`` times, each paired with **the same queries sent directly**:
the queries that refresh asked, on as many threads, with requests (keep-alive, gzip: the source's own
transport), ``json.loads`` and nothing else (no bounded reads, no domain objects). Each pair runs right
after a scrape has been stored, so that neither overlaps Prometheus ingesting the next one (~1 s of its
CPU per 10,000 GPUs), and the pair's order alternates. Medians; the ratio is refresh / direct. Then, in
the same run, the naive way: one instant query per DCGM metric asking every series with all its labels
(what ``get_current_metric_value`` does), joined by UUID; and what the new queries cost, each sent alone.
Prometheus, the exporter and this process share the machine.

    .venv/bin/python bench/bench_prom.py [--gpus 40000] [--refreshes 15]

``--oversized MB`` measures instead the peak memory of one fetch whose first answer is ``MB`` MB (a local
server sends it, chunked), in a fresh process per limit: the default ``max_answer_mb`` against none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.queues
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.prom

from aios_tui.config import PrometheusSettings
from aios_tui.sources import _prom_queries as pq
from aios_tui.sources.base import SourceData
from aios_tui.sources.prometheus import PrometheusSource
from tests.prom.exporter import FleetExporter, big_fleet, default_fleet
from tests.prom.promserver import PromServer, require_prometheus

WORKERS = 6  # the source's pool


_SESSION = requests.Session()  # keep-alive, as the source's: the transport is not what is compared


def direct_query(url: str, query: str, timeout: float = 60.0) -> list[Any]:
    """One instant query as plainly as it can be sent: requests (gzip, keep-alive), json.loads."""
    params = {"query": query, "timeout": f"{timeout:g}s"}
    r = _SESSION.get(f"{url}/api/v1/query", params=params, timeout=timeout)
    result: list[Any] = json.loads(r.content)["data"]["result"]
    return result


OLD_IDLE = "max by (UUID) (max_over_time(DCGM_FI_DEV_GPU_UTIL[600s])) < 5"
"""What told idle GPUs before low_since_query: under 5 % for the whole idle window, or not."""


def _timed(call: Callable[[], object]) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def direct_fetch(pool: ThreadPoolExecutor, url: str, queries: Mapping[str, str]) -> int:
    """The queries of one refresh, sent at once on the pool; the number of series they gave."""
    return sum(len(r) for r in pool.map(lambda q: direct_query(url, q), queries.values()))


def naive_fetch(url: str, metrics: list[str]) -> int:
    """Every DCGM metric asked whole, one after another, and joined by UUID: the baseline of PR 1."""
    by_uuid: dict[str, dict[str, Any]] = {}
    for name in metrics:
        for item in direct_query(url, name):
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


def _recording(src: PrometheusSource) -> tuple[list[dict[str, str]], list[float]]:
    """Record each refresh's queries and the time building its GPUs and nodes took (on its own thread,
    while the endpoints' and targets' queries still run)."""
    asked: list[dict[str, str]] = []
    converting: list[float] = []
    queries, convert = src._queries, src._convert_gpus

    def record_queries() -> dict[str, str]:
        asked.append(queries())
        return asked[-1]

    def timed_convert(*args: Any) -> Any:
        t = time.perf_counter()
        try:
            return convert(*args)
        finally:
            converting.append(time.perf_counter() - t)

    src._queries = record_queries  # type: ignore[method-assign]
    src._convert_gpus = timed_convert  # type: ignore[method-assign]
    return asked, converting


async def main_async(gpus: int, refreshes: int) -> None:
    binary = require_prometheus()
    ports: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve_exporter, args=(gpus, ports), daemon=True)
    child.start()
    target = f"127.0.0.1:{ports.get(timeout=60)}"
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(WORKERS) as pool:
        server = PromServer(binary, Path(tmp), [target], scrape_interval=15.0, scrape_timeout=14.0)
        server.start()
        try:
            began = time.monotonic()
            server.wait_for(f"count(DCGM_FI_DEV_GPU_UTIL) == {gpus}", timeout=180)
            print(f"{gpus} GPUs stored after {time.monotonic() - began:.1f} s (scraped every 15 s)")
            settings = PrometheusSettings(enabled=True, url=server.url, timeout=30.0)
            src = PrometheusSource(settings=settings)
            asked, converting = _recording(src)
            times: list[float] = []
            cpu: list[float] = []
            direct: list[float] = []
            direct_cpu: list[float] = []
            naive: list[float] = []
            stalls: list[float] = []
            ticking = True

            async def ticker() -> None:  # how late a 10 ms timer wakes: what a user would feel
                while ticking:
                    due = time.perf_counter() + 0.01
                    await asyncio.sleep(0.01)
                    stalls.append(time.perf_counter() - due)

            async def refresh() -> SourceData:
                nonlocal ticking
                ticking = True
                tick = asyncio.create_task(ticker())
                t, c = time.perf_counter(), time.process_time()
                data = await src.fetch()
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                ticking = False
                await tick
                assert len(data.gpus) == gpus, len(data.gpus)
                return data

            async def send_directly(queries: Mapping[str, str]) -> None:
                t, c = time.perf_counter(), time.process_time()
                await loop.run_in_executor(None, direct_fetch, pool, server.url, queries)
                direct.append(time.perf_counter() - t)
                direct_cpu.append(time.process_time() - c)

            try:
                data = await src.fetch()  # the first refresh asks everything, and connects: not timed
                direct_fetch(pool, server.url, asked[-1])
                for i in range(refreshes):
                    await loop.run_in_executor(None, server.wait_for_scrapes, 1)
                    await asyncio.sleep(1.0)  # and its aftermath (the head's housekeeping)
                    if i % 2:
                        await send_directly(src._queries())
                        src._fetches -= 1  # the refresh now asks what was just sent
                        data = await refresh()
                    else:
                        data = await refresh()
                        await send_directly(asked[-1])
                names = [pq.GPU_UTIL, *(n for names in pq.GPU_FIELDS.values() for n in names)]
                for _ in range(min(refreshes, 3)):
                    t = time.perf_counter()
                    assert naive_fetch(server.url, names) == gpus
                    naive.append(time.perf_counter() - t)
                sizes = {what: len(json.dumps(direct_query(server.url, q))) for what, q in asked[0].items()}
                span = time.monotonic() - began
                costs = {
                    what: statistics.median(_timed(lambda q=q: direct_query(server.url, q)) for _ in range(5))
                    for what, q in (
                        ("idle GPUs' history (subquery, 3 windows back)", pq.low_since_query(600)),
                        ("before: idle for the whole window", OLD_IDLE),
                        ("scrape targets (up, 10 min back)", pq.targets_query(settings.servers)),
                        ("GPU identity", pq.gpu_identity_query("")),
                    )
                }
            finally:
                await src.close()
        finally:
            server.stop()
            child.terminate()
    med, base = statistics.median(times), statistics.median(direct)
    print(f"refresh ({len(asked[0])} queries the first time, {len(asked[1])} after, in parallel): median "
          f"{med:.2f} s, min {min(times):.2f}, max {max(times):.2f} (n={refreshes}); this process's CPU "
          f"median {statistics.median(cpu):.2f} s, of which building the GPUs and nodes "
          f"{statistics.median(converting):.2f} s (overlapping the last queries)")  # fmt: skip
    print(f"the same queries sent directly (requests, json.loads; {WORKERS} threads): median "
          f"{base:.2f} s, min {min(direct):.2f}, max {max(direct):.2f}; CPU median "
          f"{statistics.median(direct_cpu):.2f} s")  # fmt: skip
    print(f"refresh / direct: ×{med / base:.2f} (medians); per pair: "
          + " ".join(f"{a / b:.2f}" for a, b in zip(times, direct, strict=True)))  # fmt: skip
    print(f"queries per refresh: {len(asked[1])}, first {len(asked[0])}")
    print(f"naive, every series with all labels: median {statistics.median(naive):.2f} s (n={len(naive)})")
    biggest = max(sizes, key=sizes.__getitem__)
    print(f"largest answer: {biggest!r}, {sizes[biggest] / 1e6:.1f} MB of JSON")
    print(f"query costs, sent alone (median of 5; {span / 60:.0f} min of data stored, the lookbacks are "
          f"up to 30 min):")  # fmt: skip
    for what, took in costs.items():
        print(f"  {what}: {took * 1000:.0f} ms")
    stalls.sort()
    print(f"event loop during the refreshes: worst stall {stalls[-1] * 1000:.0f} ms, "
          f"p99 {stalls[int(len(stalls) * 0.99)] * 1000:.0f} ms")  # fmt: skip
    print(f"nodes {len(data.nodes)}, endpoints {len(data.endpoints)}, targets {len(data.parts)}")


# --- oversized answers -------------------------------------------------------------------------------------


def _big_answer(mb: int) -> Iterator[bytes]:
    item = b'{"metric":{"UUID":"GPU-%08d","Hostname":"node-%05d","pod":"train-%06d"},"value":[1,"%d"]},'
    n = mb * 2**20 // len(item % (0, 0, 0, 0))
    yield b'{"status":"success","data":{"resultType":"vector","result":['
    for start in range(0, n, 4096):
        yield b"".join(item % (i, i // 8, i // 8, i % 101) for i in range(start, min(n, start + 4096)))
    yield b'{"metric":{},"value":[1,"1"]}]}}'


def _serve_big(mb: int) -> str:
    """A server on 127.0.0.1 whose answer to the GPU identity query is an ``mb`` MB instant vector,
    chunked, and to any other an empty one; its URL."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Big(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
            empty = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
            body = _big_answer(mb) if query == pq.gpu_identity_query("") else iter([empty])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for piece in body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def oversized_child(url: str, limit_mb: float) -> None:
    """One fetch against ``url`` in this fresh process; prints its outcome and the peak RSS."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = PrometheusSettings(enabled=True, url=url, timeout=120.0, max_answer_mb=limit_mb, servers=())
    src = PrometheusSource(settings=s)
    t = time.perf_counter()
    try:
        asyncio.run(src.fetch())
        outcome = "read and decoded"
    except Exception as exc:
        outcome = f"refused: {str(exc).split('): ', 1)[-1]}"
    finally:
        asyncio.run(src.close())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max_answer_mb = {limit_mb:g}: {outcome} in {time.perf_counter() - t:.1f} s; "
          f"peak RSS {peak:.0f} MB (at start {before:.0f} MB)")  # fmt: skip


def oversized(mb: int) -> None:
    url = _serve_big(mb)
    default = PrometheusSettings().max_answer_mb
    for limit in (default, 4096.0):
        cmd = [sys.executable, __file__, "--oversized-child", url, str(limit)]
        subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=40_000)
    parser.add_argument("--refreshes", type=int, default=9)
    parser.add_argument(
        "--oversized", type=int, metavar="MB", help="measure the memory of an MB-sized answer"
    )
    parser.add_argument("--oversized-child", nargs=2, metavar=("URL", "LIMIT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.oversized_child:
        oversized_child(args.oversized_child[0], float(args.oversized_child[1]))
    elif args.oversized:
        oversized(args.oversized)
    else:
        asyncio.run(main_async(args.gpus, args.refreshes))


if __name__ == "__main__":
    main()
