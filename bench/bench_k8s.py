"""Benchmark the Kubernetes source against the test API server at 5,000 nodes / 150,000 pods.

The server (`tests/k8s/apiserver.py`, real HTTP on 127.0.0.1) runs in a child process, so the figures
for this process are the source's own (the real `kubernetes` client, the lists, the watches, the
conversion). Three parts, in one run:

1. **first full view**: a fresh `KubernetesSource`, from construction to the first complete `SourceData`
   (every kind listed in pages of 500); median of `--runs`;
2. **watch steady state**: the server changes `--rate` pods per second (an annotation, as a kubelet's
   status updates would); the source follows its watches and is fetched every 2 s as the poller does.
   CPU (this process, all threads, % of one core) per 2 s interval, RSS, and API requests per minute;
3. **re-list every 2 s** (the alternative to watching): every kind listed again in pages of 500 every 2 s
   (back to back when a cycle takes longer), same churn; requests per minute and CPU. This is a lower
   bound for a re-listing source: the answers are parsed but not converted;
4. **pages and conversion**: the largest list page of each kind in bytes, against the source's
   ``MAX_PAGE_BYTES``, and the CPU time the converters take per object of each kind (type checks and
   cleaning of every string included), from one more full list.

    .venv/bin/python bench/bench_k8s.py [--nodes 5000] [--pods 150000] [--runs 3] [--window 30]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.k8s

from kubernetes import client, config

from aios_tui.config import KubernetesSettings
from aios_tui.sources._k8s_convert import (
    convert_deployment,
    convert_hpa,
    convert_job,
    convert_node,
    convert_pdb,
    convert_pod,
    convert_replicaset,
    convert_warning_event,
    object_key,
)
from aios_tui.sources.kubernetes import KINDS, MAX_PAGE_BYTES, PAGE_SIZE, WATCH_SECONDS, KubernetesSource
from tests.k8s.apiserver import FakeApiServer, generate_fleet

POLL_INTERVAL = 2.0


# --- the server process ---------------------------------------------------------------------------------


def _churn(
    server: FakeApiServer,
    pods: list[tuple[str, str]],
    rate: float,
    ready: set[tuple[str, str]],
    stop: threading.Event,
) -> None:
    """Flip `rate` pods per second between ready and not ready (as a kubelet's status update would), on a
    fixed schedule; `ready` keeps the keys of the pods made ready."""
    rng = random.Random(1)
    began, n = time.monotonic(), 0
    while not stop.is_set():
        key = rng.choice(pods)
        pod = server.get("pods", *key)
        if pod is not None:
            flag = "False" if key in ready else "True"
            pod["status"]["conditions"] = [{"type": "Ready", "status": flag}]
            server.apply(pod)
            ready.symmetric_difference_update({key})
        n += 1
        stop.wait(max(0.0, began + n / rate - time.monotonic()))


def _serve(conn: Connection, nodes: int, pods: int) -> None:
    """The child: build the fleet, serve it, answer the parent's commands until "stop"."""
    fleet = generate_fleet(nodes, pods)
    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in fleet if o["kind"] == "Pod"]
    server = FakeApiServer(fleet, bookmark_interval=5.0).start()
    path = server.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")
    conn.send(str(path))
    churn_stop = threading.Event()
    ready: set[tuple[str, str]] = set()
    while True:
        command, arg = conn.recv()
        if command == "churn":
            churn_stop.clear()
            threading.Thread(target=_churn, args=(server, keys, arg, ready, churn_stop), daemon=True).start()
            conn.send(None)
        elif command == "calm":
            churn_stop.set()
            time.sleep(0.1)  # the change in flight, if any
            conn.send(len(ready))
        elif command == "slow":
            for kind in KINDS:
                server.slow_lists(kind.name, arg)
            conn.send(None)
        elif command == "requests":
            conn.send((len(server.requests), time.process_time()))
        elif command == "stop":
            churn_stop.set()
            server.stop()
            conn.send(None)
            return


class ServerProcess:
    def __init__(self, nodes: int, pods: int) -> None:
        self._conn, child = mp.Pipe()
        self._process = mp.get_context("fork").Process(target=_serve, args=(child, nodes, pods), daemon=True)
        self._process.start()
        self.kubeconfig = Path(self._conn.recv())

    def ask(self, command: str, arg: Any = None) -> Any:
        self._conn.send((command, arg))
        return self._conn.recv()

    def requests(self) -> int:
        count, _ = self.ask("requests")
        return int(count)

    def stop(self) -> None:
        self.ask("stop")
        self._process.join(10)


# --- measurements ---------------------------------------------------------------------------------------


def api_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def new_source(kubeconfig: Path) -> KubernetesSource:
    settings = KubernetesSettings(enabled=True, interval=POLL_INTERVAL, timeout=300.0)
    return KubernetesSource(
        name="k8s:bench", api_client_factory=lambda: api_client(kubeconfig), settings=settings
    )


def rss_mb() -> float:
    with Path("/proc/self/status").open() as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_window(seconds: float, work: Callable[[], object]) -> list[float]:
    """Call `work()` every 2 s (back to back when it takes longer) for `seconds`; the CPU of this process
    (all threads) per interval, in % of one core."""
    samples: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        wall, cpu = time.monotonic(), time.process_time()
        work()
        time.sleep(max(0.0, wall + POLL_INTERVAL - time.monotonic()))
        samples.append(100 * (time.process_time() - cpu) / (time.monotonic() - wall))
    return samples


def pages(api: client.ApiClient) -> Iterator[tuple[str, bytes]]:
    """Every list page of every kind the source lists, in pages of `PAGE_SIZE`: (kind, the raw answer)."""
    for kind in KINDS:
        token = ""
        while True:
            query = [("limit", str(PAGE_SIZE))] + ([("continue", token)] if token else [])
            if kind.field_selector:
                query.append(("fieldSelector", kind.field_selector))
            try:
                resp = api.call_api(
                    kind.path(""),
                    "GET",
                    query_params=query,
                    header_params={"Accept": "application/json"},
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _return_http_data_only=True,
                )
            except client.exceptions.ApiException as exc:
                if exc.status == 404:  # a kind the cluster does not serve (PodGroups without their CRD)
                    break
                raise
            data = resp.data
            yield kind.name, data
            token = json.loads(data)["metadata"].get("continue") or ""
            if not token:
                break


def relist(api: client.ApiClient) -> int:
    """List every kind the source lists, in pages of `PAGE_SIZE`; the number of requests made."""
    return sum(1 for _ in pages(api))


_GPU = ("nvidia.com/gpu",)
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "nodes": lambda o: convert_node(o, source="k8s:bench", gpu_names=_GPU, rack_label=""),
    "pods": lambda o: convert_pod(o, source="k8s:bench", gpu_names=_GPU),
    "deployments": lambda o: convert_deployment(o, kind="Deployment", gpu_names=_GPU),
    "statefulsets": lambda o: convert_deployment(o, kind="StatefulSet", gpu_names=_GPU),
    "replicasets": convert_replicaset,
    "jobs": lambda o: convert_job(o, gpu_names=_GPU),
    "poddisruptionbudgets": lambda o: convert_pdb(o, source="k8s:bench"),
    "horizontalpodautoscalers": convert_hpa,
    "events": lambda o: convert_warning_event(o, source="k8s:bench"),
}


def pages_and_conversion(api: client.ApiClient) -> None:
    """Print the largest page of each kind and the converters' CPU time per object (as the source runs
    them on every listed object: its key, then its record)."""
    largest: dict[str, int] = {}
    spent: dict[str, tuple[int, float]] = {}
    for kind, data in pages(api):
        largest[kind] = max(largest.get(kind, 0), len(data))
        objects = json.loads(data)["items"]
        convert = CONVERTERS[kind]
        began = time.process_time()
        for obj in objects:
            object_key(obj)
            convert(obj)
        count, seconds = spent.get(kind, (0, 0.0))
        spent[kind] = (count + len(objects), seconds + time.process_time() - began)
    top = max(largest, key=lambda k: largest[k])
    share = 100 * largest[top] / MAX_PAGE_BYTES
    kinds = ", ".join(f"{k} {v / 2**10:.0f} KiB" for k, v in largest.items())
    print(
        f"largest list page: {largest[top] / 2**20:.2f} MiB ({top}), {share:.1f} % of MAX_PAGE_BYTES "
        f"({MAX_PAGE_BYTES / 2**20:g} MiB); by kind: {kinds}"
    )
    costs = [f"{k} {sec * 1e6 / n:.1f} µs ({n:,})" for k, (n, sec) in spent.items() if n]
    print(f"conversion, CPU per object: {', '.join(costs)}")


def first_view(server: ServerProcess) -> tuple[KubernetesSource, float, int, float]:
    """A fresh source fetched once: the source, seconds to its first complete data, the API requests it
    made, and the server's CPU seconds meanwhile."""
    requests, server_cpu = server.ask("requests")
    began = time.perf_counter()
    source = new_source(server.kubeconfig)
    data = source.fetch_now()
    while source.loading:  # the first view streams in: partial data until every first list is in
        data = source.fetch_now()
    seconds = time.perf_counter() - began
    requests_after, server_cpu_after = server.ask("requests")
    print(
        f"first full view: {seconds:.2f} s, {requests_after - requests} requests, server CPU "
        f"{server_cpu_after - server_cpu:.1f} s; {len(data.nodes):,} nodes, {len(data.gpus):,} GPUs, "
        f"{len(data.pods):,} pods, {len(data.endpoints):,} endpoints, {len(data.jobs):,} jobs"
    )
    return source, seconds, requests_after - requests, server_cpu_after - server_cpu


# --- 5: the first view against a plain paginated list, each in a fresh process --------------------------


def _peak_mb() -> float:
    with Path("/proc/self/status").open() as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _fresh(work: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run `work` in a forked child whose peak RSS starts at its RSS now; its figures and its peak RSS
    above that start (``peak_mb``)."""
    parent, child = mp.Pipe()

    def run() -> None:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        start = rss_mb()
        try:
            result = work()
        except BaseException as exc:
            child.send(repr(exc))
            raise
        result["peak_mb"] = _peak_mb() - start
        child.send(result)

    process = mp.get_context("fork").Process(target=run, daemon=True)
    process.start()
    if not parent.poll(900):
        raise SystemExit("a measurement took over 15 minutes")
    result = parent.recv()
    process.join(30)
    if isinstance(result, str):
        raise SystemExit(f"a measurement failed: {result}")
    return dict(result)


def plain_list(kubeconfig: Path) -> dict[str, float]:
    """Every kind the source lists, each in its own thread (as the source does: the fastest plain listing),
    in pages of `PAGE_SIZE`, with requests and json.loads, every object kept as parsed (the raw objects):
    seconds to the last page."""
    import requests

    api = api_client(kubeconfig)
    host, token = api.configuration.host, api.configuration.auth_settings()["BearerToken"]["value"]
    kept: list[list[Any]] = []

    def one(kind: Any) -> None:
        session = requests.Session()
        session.headers.update({"Authorization": token, "Accept": "application/json"})
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        if kind.field_selector:
            params["fieldSelector"] = kind.field_selector
        while True:
            resp = session.get(host + kind.path(""), params=params, timeout=60)
            if resp.status_code == 404:  # a kind the cluster does not serve (PodGroups without their CRD)
                return
            page = json.loads(resp.content)
            kept.append(page["items"])
            more = page["metadata"].get("continue")
            if not more:
                break
            params["continue"] = more

    began = time.perf_counter()
    threads = [threading.Thread(target=one, args=(kind,)) for kind in KINDS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"seconds": time.perf_counter() - began, "objects": sum(map(len, kept))}


def source_first_view(kubeconfig: Path) -> dict[str, float]:
    """A fresh source with the default ``timeout`` (10 s), fetched every `POLL_INTERVAL` as the poller
    would: seconds to its first data (nodes), and to its first complete data."""
    settings = KubernetesSettings(enabled=True, interval=POLL_INTERVAL)
    began = time.perf_counter()
    source = KubernetesSource(
        name="k8s:bench", api_client_factory=lambda: api_client(kubeconfig), settings=settings
    )
    first = float("nan")
    while True:
        data = source.fetch_now()
        if data.nodes and first != first:
            first = time.perf_counter() - began
        if not source.loading:
            break
    seconds = time.perf_counter() - began
    pods = len(data.pods)
    source.close_now()
    return {"seconds": seconds, "first_nodes": first, "pods": pods}


def against_plain_list(server: ServerProcess, page_delay: float, runs: int) -> None:
    """Part 5: a plain list and the source's first view, alternately, `runs` times each, every list page
    answered `page_delay` s late by the server."""
    server.ask("slow", page_delay)
    plain: list[dict[str, float]] = []
    ours: list[dict[str, float]] = []
    for _ in range(runs):
        plain.append(_fresh(lambda: plain_list(server.kubeconfig)))
        ours.append(_fresh(lambda: source_first_view(server.kubeconfig)))
    server.ask("slow", 0.0)
    p_s = statistics.median(r["seconds"] for r in plain)
    o_s = statistics.median(r["seconds"] for r in ours)
    p_mb = statistics.median(r["peak_mb"] for r in plain)
    o_mb = statistics.median(r["peak_mb"] for r in ours)
    nodes_at = statistics.median(r["first_nodes"] for r in ours)
    print(
        f"first view against a plain list ({page_delay:g} s per page at the server, medians of {runs}, "
        f"fresh processes): plain requests+json.loads {p_s:.2f} s, peak +{p_mb:.0f} MB "
        f"({int(plain[0]['objects']):,} raw objects kept); source {o_s:.2f} s "
        f"(nodes shown after {nodes_at:.2f} s), peak +{o_mb:.0f} MB; "
        f"time ×{o_s / p_s:.2f}, memory ×{o_mb / p_mb:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=3, help="first full views measured")
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each steady-state window")
    parser.add_argument("--rate", type=float, default=100.0, help="pod changes per second")
    parser.add_argument(
        "--page-delay",
        type=float,
        default=0.25,
        help="part 5: seconds the server takes per list page (a real one: 0.2-0.28 s per 500 pods)",
    )
    parser.add_argument("--compare-runs", type=int, default=3, help="part 5: runs of each")
    parser.add_argument("--only-first-view", action="store_true", help="part 5 alone")
    args = parser.parse_args()

    began = time.monotonic()
    server = ServerProcess(args.nodes, args.pods)
    print(f"server up with {args.nodes:,} nodes / {args.pods:,} pods in {time.monotonic() - began:.1f} s")
    against_plain_list(server, args.page_delay, args.compare_runs)
    if args.only_first_view:
        server.stop()
        return

    # 1 and 2: the first source's first view, then its steady state (RSS as a fresh console's)
    source, seconds, list_requests, server_cpu = first_view(server)
    firsts, server_cpus = [seconds], [server_cpu]
    rss_first = rss_mb()
    server.ask("churn", args.rate)
    time.sleep(4.0)  # the watches are open and the first changes have arrived
    before = server.requests()
    watch_cpu = cpu_window(args.window, source.fetch_now)
    watch_rpm = (server.requests() - before) * 60 / args.window
    watch_rss = rss_mb()
    ready = server.ask("calm")  # the churn stops: how soon does the source show the server's state?
    calm, lag = time.monotonic(), float("nan")
    while time.monotonic() - calm < 30:
        if sum(p.ready for p in source.fetch_now().pods) == ready:
            lag = time.monotonic() - calm
            break
        time.sleep(0.05)
    source.close_now()
    for _ in range(args.runs - 1):
        source, seconds, _, server_cpu = first_view(server)
        firsts.append(seconds)
        server_cpus.append(server_cpu)
        source.close_now()

    # 3: re-listing instead, under the same churn
    server.ask("churn", args.rate)
    api = api_client(server.kubeconfig)
    cycles: list[float] = []
    pages: list[int] = []

    def one_relist() -> None:
        start = time.perf_counter()
        pages.append(relist(api))
        cycles.append(time.perf_counter() - start)

    before, wall = server.requests(), time.monotonic()
    relist_cpu = cpu_window(args.window, one_relist)
    relist_rpm = (server.requests() - before) * 60 / (time.monotonic() - wall)
    server.ask("calm")
    print()
    pages_and_conversion(api)
    server.stop()

    watch_median, relist_median = statistics.median(watch_cpu), statistics.median(relist_cpu)
    renewals = len(KINDS) * 60 / WATCH_SECONDS
    print()
    print(
        f"first full view: median {statistics.median(firsts):.2f} s over {args.runs} runs "
        f"(min {min(firsts):.2f}, max {max(firsts):.2f}); {list_requests} API requests; "
        f"server CPU median {statistics.median(server_cpus):.1f} s"
    )
    print(
        f"watch, {args.rate:g} pod changes/s, fetched every 2 s: CPU median {watch_median:.1f} % of one core "
        f"(max {max(watch_cpu):.1f} %); RSS {rss_first:.0f} MB after the first view, {watch_rss:.0f} MB "
        f"after {args.window:g} s; {watch_rpm:.1f} API requests/min"
    )
    print(f"the source showed the server's {ready:,} ready pods {lag:.2f} s after the last change")
    print(
        f"watch renewals: {len(KINDS)} watches, each renewed every {WATCH_SECONDS:g} s: "
        f"{renewals:.2f} requests/min"
    )
    print(
        f"re-list every 2 s: a full re-list takes {statistics.median(cycles):.2f} s "
        f"(median of {len(cycles)}); CPU median {relist_median:.1f} %, {relist_rpm:.0f} API requests/min "
        f"(at one cycle of {pages[0]} pages per 2 s, as intended: {pages[0] * 30} requests/min)"
    )
    print(
        f"ratios re-list / watch: requests/min ×{relist_rpm / max(watch_rpm, renewals):.0f} "
        f"(against the renewals), CPU ×{relist_median / max(watch_median, 1e-9):.1f}"
    )


if __name__ == "__main__":
    main()
