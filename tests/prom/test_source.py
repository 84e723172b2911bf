"""The Prometheus source against a real Prometheus (Debian's package) scraping the test fleet exporter."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from aios_tui.config import ConfigError, KubernetesSettings, PrometheusSettings, PromQuerySettings, Settings
from aios_tui.domain import NA, FleetSnapshot, Health, SourceState, Throttle
from aios_tui.domain.health import Need
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.kubernetes import sources_from_settings
from aios_tui.sources.prometheus import PrometheusSource
from tests.k8s.apiserver import FakeApiServer, fixture_scene, other_cluster
from tests.prom.exporter import DcgmGpu, FleetExporter
from tests.prom.promserver import PromServer
from tests.prom.slowproxy import SlowProxy

T = TypeVar("T")
H100 = "ip-10-0-1-11.ec2.internal"  # a node of the captured Kubernetes scene (tests/fixtures/kubernetes)


def settings(prom: PromServer, **kw: object) -> PrometheusSettings:
    # Scrapes every second and tests of seconds: rates over 4 s rather than the default minute.
    base: dict[str, object] = {
        "enabled": True,
        "url": prom.url,
        "timeout": 2.0,
        "interval": 1.0,
        "rate_window": 4.0,
    }
    base.update(kw)
    return PrometheusSettings(**base)


async def eventually(fetch: Callable[[], Awaitable[T]], ok: Callable[[T], bool], within: float = 20.0) -> T:
    """Fetch until ``ok`` holds (Prometheus needs a scrape or two, and rate() two samples); the last answer
    when it never does, for the test's asserts to explain."""
    deadline = time.monotonic() + within
    while True:
        got = await fetch()
        if ok(got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


async def history_until(
    src: PrometheusSource, args: tuple[str, str, str, int, float], ok: Callable[[list[float]], bool]
) -> list[float]:
    """A sparkline's values once the background range query has answered (and ``ok`` holds)."""

    async def ask() -> list[float]:
        return list(src.history(*args))

    return await eventually(ask, ok)


def known(values: list[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


def gpus_fleet() -> list[DcgmGpu]:
    return [
        DcgmGpu(host="old-host", gpu=0, uuid="GPU-old-0", util=91.0, fb_used=70_000, fb_free=73_771,
                temp=61, power=650.5, sm_clock=1980, hostname_label="Hostname", pod="llm-serve-0",
                namespace="ml-prod"),
        DcgmGpu(host="old-host", gpu=1, uuid="GPU-old-1", util=0.0, temp=35, xid=79, ecc_dbe=2, ecc_sbe=5),
        DcgmGpu(host="new-host", gpu=0, uuid="GPU-new-0", util=50.0, temp=90, throttle=0x40 | 0x04,
                hostname_label="hostname", model="NVIDIA H100 80GB HBM3", fb_free=81_559, gr_active=0.42),
    ]  # fmt: skip


async def test_gpus_and_nodes_from_dcgm_with_either_host_label(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(gpus_fleet())
    fleet_exporter.set_endpoints([])
    src = PrometheusSource(settings=settings(prometheus, servers=()))
    try:
        data = await eventually(src.fetch, lambda d: len(d.gpus) == 3 and d.gpus[0].sm_clock is not NA)
    finally:
        await src.close()
    by_uuid = {g.uuid: g for g in data.gpus}
    busy, broken, hot = by_uuid["GPU-old-0"], by_uuid["GPU-old-1"], by_uuid["GPU-new-0"]
    assert (busy.node, busy.index, busy.model, busy.pod) == ("old-host", 0, "H200", "ml-prod/llm-serve-0")
    assert (busy.util, busy.mem_used, busy.mem_total, busy.temp, busy.power, busy.sm_clock) == (
        91.0, 70_000, 143_771, 61, 650.5, 1980,
    )  # fmt: skip
    assert busy.health is Health.OK and busy.throttle is Throttle.NONE
    assert (broken.xid, broken.ecc_uncorrected, broken.ecc_corrected, broken.pod) == (79, 2, 5, "")
    assert broken.health is Health.FAIL
    assert (hot.node, hot.model) == ("new-host", "H100")  # the newer exporter's "hostname"
    assert hot.throttle == Throttle.HW_THERMAL | Throttle.SW_POWER_CAP and hot.health is Health.WARN
    assert src.details() == {"GPU-new-0": 0.42}
    nodes = {n.name: n for n in data.nodes}
    assert set(nodes) == {"old-host", "new-host"}
    assert (nodes["old-host"].gpus_total, nodes["old-host"].gpus_requested) == (2, 1)
    assert nodes["new-host"].gpu_model == "H100"


async def test_endpoint_traffic_from_each_model_server(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    # The fixture's fleet (tests.prom.exporter.default_fleet): one endpoint per server, counters that grew
    # at a steady rate since the exporter started, latencies chosen so that the quantiles are exact.
    prometheus.wait_for_scrapes(5)  # rate() over 4 s needs that many samples
    src = PrometheusSource(settings=settings(prometheus))

    def complete(d: SourceData) -> bool:
        return len(d.endpoints) == 4 and all(e.qps is not NA for e in d.endpoints)

    try:
        data = await eventually(src.fetch, complete, within=30)
    finally:
        await src.close()
    eps = {e.key: e for e in data.endpoints}
    assert set(eps) == {"ml-prod/llm-serve", "ml-prod/ranker", "ml-prod/wide-deep", "ml-prod/resnet"}
    llm, ranker, wide, resnet = (eps[f"ml-prod/{n}"] for n in ("llm-serve", "ranker", "wide-deep", "resnet"))
    assert [(e.server, e.model) for e in (llm, ranker, wide, resnet)] == [
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct"), ("triton", "ranker-onnx"), ("tfserving", "wide_deep"),
        ("torchserve", "resnet50"),
    ]  # fmt: skip
    for e, qps in ((llm, 12.0), (ranker, 50.0), (wide, 30.0), (resnet, 20.0)):
        assert e.qps == pytest.approx(qps, rel=0.2), e.key
    for e, errors in ((llm, 0.05), (ranker, 0.02), (wide, 0.01)):
        assert e.error_rate == pytest.approx(errors, rel=0.2), e.key
    assert (llm.p50_ms, llm.p99_ms) == (pytest.approx(650.0), pytest.approx(4000.0))  # vLLM's histogram
    assert (ranker.p50_ms, ranker.p99_ms) == (8.0, 30.0)  # Triton's summary
    assert (wide.p50_ms, wide.p99_ms) == (
        pytest.approx(5.0),
        pytest.approx(25.0),
    )  # TF Serving's histogram (µs)
    assert (llm.queue, ranker.queue, wide.queue) == (3, 1, NA)
    # Means from the servers' duration counters, where they have them.
    assert (ranker.mean_ms, resnet.mean_ms) == (pytest.approx(8.0), pytest.approx(15.0))
    assert (llm.mean_ms, wide.mean_ms) == (NA, NA)
    # TorchServe has no per-model quantiles, errors or queue: unknown, not zero.
    assert (resnet.p50_ms, resnet.p99_ms, resnet.error_rate, resnet.queue) == (NA, NA, NA, NA)
    # Prometheus sees traffic, not Deployments: replica counts unknown, not 0 of 0.
    assert {(e.replicas_known, e.replicas_desired, e.replicas_ready) for e in eps.values()} == {(False, 0, 0)}


async def test_custom_promql_wins_over_the_preset(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    custom = PromQuerySettings(
        metric="p99_ms", query="max by (namespace, service) (vllm:num_requests_waiting) * 100"
    )
    prometheus.wait_for_scrapes(5)
    src = PrometheusSource(settings=settings(prometheus, servers=("vllm",), queries=(custom,)))
    try:
        data = await eventually(src.fetch, lambda d: len(d.endpoints) == 1 and d.endpoints[0].p99_ms == 300)
    finally:
        await src.close()
    (llm,) = data.endpoints
    assert (llm.key, llm.p99_ms, llm.p50_ms) == ("ml-prod/llm-serve", 300.0, pytest.approx(650.0))


async def test_a_bad_custom_query_names_itself(prometheus: PromServer) -> None:
    bad = PromQuerySettings(metric="qps", query="sum(rate(x[1m])")
    src = PrometheusSource(settings=settings(prometheus, queries=(bad,)))
    try:
        with pytest.raises(SourceError) as info:
            await src.fetch()
    finally:
        await src.close()
    # Prometheus' own errorType and message, after the HTTP status in words.
    assert str(info.value) == (
        f"{prometheus.url} ([[prometheus.queries]] #1 qps query): HTTP 400 bad request: bad_data: "
        'invalid parameter "query": 1:16: parse error: unclosed left parenthesis'
    )


async def test_stopped_mid_run_the_data_goes_stale_and_comes_back(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(gpus_fleet())
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-new-0"}')  # the fixture's first GPUs are gone
    src = PrometheusSource(settings=settings(prometheus, servers=()))
    poller = Poller([src])
    try:
        snap = await eventually(poller.refresh, lambda s: len(s.gpus) == 3)
        prometheus.stop()
        snap = await poller.refresh()
        (health,) = snap.sources
        assert health.state is SourceState.STALE and len(snap.gpus) == 3  # last good data kept
        assert "connection refused" in health.error and prometheus.url in health.error
        prometheus.restart()
        snap = await eventually(poller.refresh, lambda s: s.sources[0].state is SourceState.OK)
        assert snap.sources[0].state is SourceState.OK and len(snap.gpus) == 3
    finally:
        await poller.stop()


async def test_a_slow_server_is_abandoned_at_the_timeout(prometheus: PromServer) -> None:
    with SlowProxy(prometheus.port) as proxy:
        proxy.delay = 5.0
        src = PrometheusSource(settings=settings(prometheus, url=proxy.url, timeout=0.5, servers=()))
        poller = Poller([src])
        began = time.monotonic()
        try:
            snap = await poller.refresh()
        finally:
            await poller.stop()
        took = time.monotonic() - began
        (health,) = snap.sources
        assert health.state is SourceState.ERROR
        assert "timed out" in health.error
        assert took < 3.0  # the source's own timeout, not the server's 5 s


async def test_history_comes_from_range_queries_sized_to_the_sparkline(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(gpus_fleet())
    src = PrometheusSource(settings=settings(prometheus, servers=("vllm",)))
    try:
        await eventually(src.fetch, lambda d: len(d.gpus) == 3 and bool(d.endpoints))
        assert src.history("gpu", "GPU-old-0", "util", 30, 1.0) == []  # asked in the background
        util = await history_until(src, ("gpu", "GPU-old-0", "util", 30, 1.0), lambda v: len(known(v)) >= 3)
        assert len(util) == 30 and set(known(util)) == {91.0}
        node = await history_until(src, ("node", "old-host", "util", 30, 1.0), lambda v: bool(known(v)))
        assert set(known(node)) == {45.5}
        qps = await history_until(
            src, ("endpoint", "ml-prod/llm-serve", "qps", 30, 1.0), lambda v: bool(known(v))
        )
        assert any(x == pytest.approx(12, rel=0.3) for x in known(qps))
        # Far more points than Prometheus allows in one answer: asked on a coarser grid, not refused.
        wide = await history_until(src, ("gpu", "GPU-old-0", "temp", 50_000, 1.0), lambda v: bool(known(v)))
        assert len(wide) == 11_000
        assert src.history("gpu", "GPU-old-0", "no-such-metric", 30, 1.0) == []
        assert src.history("endpoint", "ml-prod/unknown", "qps", 30, 1.0) == []
    finally:
        await src.close()


async def test_idle_since_is_read_from_the_series_history(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    stuck = DcgmGpu(host="h", gpu=0, uuid="GPU-stuck", util=1.0, pod="stuck-0", namespace="ml-train")
    quits = DcgmGpu(host="h", gpu=1, uuid="GPU-quits", util=80.0, pod="done-0", namespace="ml-train")
    busy = DcgmGpu(host="h", gpu=2, uuid="GPU-busy", util=80.0, pod="ok-0", namespace="ml-train")
    free = DcgmGpu(host="h", gpu=3, uuid="GPU-free", util=0.0)
    fleet_exporter.set_gpus([stuck, quits, busy, free])
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-quits"} == 80')
    prometheus.wait_for_scrapes(2)
    fleet_exporter.update_gpu("GPU-quits", util=1.0)
    went_idle = time.time()
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-quits"} < 5')
    await asyncio.sleep(6.0)  # idle for twice the window: the window alone would say "since 3 s ago"
    # An idle window of 3 s: the source looks back 9 s, in 1 s steps.
    src = PrometheusSource(settings=settings(prometheus, servers=()), idle_window=3.0, clock=time.time)
    try:
        asked = time.time()
        data = await src.fetch()  # the first fetch reads the history
        again = await src.fetch()  # the next ones keep it
    finally:
        await src.close()
    low = {g.uuid: g.low_since for g in data.gpus}
    assert low["GPU-busy"] is NA and low["GPU-free"] is NA  # busy; and free GPUs are not "allocated but idle"
    # Went under 5 % between its last busy step and the scrape after the change: within 2 s of it.
    assert went_idle < low["GPU-quits"] < went_idle + 2.0
    # Idle for the whole lookback: since its start at least.
    assert asked - 9.0 <= low["GPU-stuck"] <= time.time() - 9.0
    assert {g.uuid: g.low_since for g in again.gpus} == low


async def test_no_secret_in_errors_or_logs(prometheus: PromServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # the kubernetes client sets it to WARNING
    token, password = "tok-3f9a8e7d", "pw-71c2b0"
    closed = f"http://admin:{password}@127.0.0.1:9"  # nothing listens on the discard port
    s = PrometheusSettings(enabled=True, url=closed, timeout=1.0, bearer_token_env="PROM_TOKEN")
    src = PrometheusSource(settings=s, env={"PROM_TOKEN": token})
    poller = Poller([src])
    try:
        snap = await poller.refresh()
        src.history("gpu", "GPU-x", "util", 10, 1.0)
        await asyncio.sleep(0.5)
    finally:
        await poller.stop()
    error = snap.sources[0].error
    assert error == "http://127.0.0.1:9 (GPUs query): connection refused", error
    shown = error + caplog.text
    assert token not in shown and password not in shown
    with pytest.raises(
        ConfigError, match=r"\[prometheus\] bearer_token_env: the environment variable UNSET_X"
    ):
        build_sources(Settings(prometheus=PrometheusSettings(enabled=True, bearer_token_env="UNSET_X_4821")))


# --- joined with Kubernetes ---------------------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    with FakeApiServer(fixture_scene()) as server:
        yield server.write_kubeconfig(tmp_path / "kubeconfig", context="prod-eu")


def k8s_gpus() -> list[DcgmGpu]:
    return [
        DcgmGpu(host=H100, gpu=i, uuid=f"GPU-h100-{i}", util=10.0 * i, model="NVIDIA H100 80GB HBM3",
                pod="llm-serve-0" if i < 2 else "", namespace="ml-prod" if i < 2 else "")
        for i in range(8)
    ]  # fmt: skip


async def test_joined_with_kubernetes_one_row_shows_both(
    cluster: Path, fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(k8s_gpus())  # the endpoints stay the fixture's: ml-prod/llm-serve on vLLM
    prometheus.wait_for_scrapes(5)
    k8s = sources_from_settings(KubernetesSettings(enabled=True, kubeconfig=cluster, timeout=5.0), env={})
    poller = Poller([*k8s, PrometheusSource(settings=settings(prometheus, servers=("vllm",)))])
    try:
        snap = await eventually(
            poller.refresh,
            lambda s: (
                sum(g.measured for g in s.gpus) == 8 and s.endpoint_by_key["ml-prod/llm-serve"].qps is not NA
            ),
            within=30,
        )
    finally:
        await poller.stop()
    node = snap.node_by_name[H100]
    assert node.source.startswith("k8s:")  # Kubernetes' node, with its pool, taints and allocations …
    gpus = snap.gpus_by_node[H100]  # … and DCGM's GPUs in the places of the GPUs Kubernetes counts
    assert [(g.index, g.uuid, g.util) for g in gpus] == [(i, f"GPU-h100-{i}", 10.0 * i) for i in range(8)]
    assert [g.pod for g in gpus[:2]] == ["ml-prod/llm-serve-0"] * 2
    llm = snap.endpoint_by_key["ml-prod/llm-serve"]
    assert llm.source.startswith("k8s:") and llm.replicas_desired > 0 and llm.replicas_known  # its replicas …
    assert llm.qps == pytest.approx(12.0, rel=0.2)  # … with Prometheus' traffic


async def test_several_contexts_qualify_prometheus_names_too(
    tmp_path: Path, fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(k8s_gpus())  # the endpoints stay the fixture's: ml-prod/llm-serve on vLLM
    with FakeApiServer(fixture_scene()) as us, FakeApiServer(other_cluster(fixture_scene())) as eu:
        path = tmp_path / "kubeconfig"
        us.write_kubeconfig(path, context="prod-us")
        eu.write_kubeconfig(path, context="prod-eu")
        k8s = KubernetesSettings(enabled=True, kubeconfig=path, contexts=("prod-us", "prod-eu"), timeout=5.0)
        with pytest.raises(ConfigError, match=r"\[prometheus\] context: several Kubernetes contexts"):
            build_sources(Settings(kubernetes=k8s, prometheus=settings(prometheus)))
        sources = build_sources(Settings(kubernetes=k8s, prometheus=settings(prometheus, context="prod-eu")))
        poller = Poller(sources)
        try:
            snap = await eventually(
                poller.refresh,
                lambda s: (
                    sum(g.measured for g in s.gpus) == 8
                    and s.endpoint_by_key["prod-eu/ml-prod/llm-serve"].qps is not NA
                ),
                within=30,
            )
            prom = poller.sources["prometheus"]
            assert isinstance(prom, PrometheusSource)
            history = await history_until(
                prom, ("node", f"prod-eu/{H100}", "util", 20, 1.0), lambda v: bool(known(v))
            )
        finally:
            await poller.stop()
    measured = [g for g in snap.gpus if g.measured and not g.lost]
    assert {g.node for g in measured} == {f"prod-eu/{H100}"} and len(measured) == 8
    assert [g.pod for g in measured[:2]] == ["prod-eu/ml-prod/llm-serve-0"] * 2
    assert snap.endpoint_by_key["prod-us/ml-prod/llm-serve"].qps is NA
    assert set(known(history)) == {35.0}


async def test_gpu_health_from_dcgm_row_remap_recovery_nvlink_and_the_xids_time(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_gpus(
        [
            DcgmGpu(host="h", gpu=0, uuid="GPU-h-0", remap_pending=1, recovery_action=1, nvlink_crc=0),
            DcgmGpu(host="h", gpu=1, uuid="GPU-h-1", remap_failure=1, remap_pending=0, recovery_action=0),
            DcgmGpu(host="h", gpu=2, uuid="GPU-h-2", nvlink_crc=1000, recovery_action=2),
            DcgmGpu(host="h", gpu=3, uuid="GPU-h-3"),
        ]
    )
    fleet_exporter.set_endpoints([])
    prometheus.wait_for_scrapes(2)
    fleet_exporter.update_gpu("GPU-h-3", xid=79)
    fleet_exporter.update_gpu("GPU-h-2", nvlink_crc=1040)
    src = PrometheusSource(settings=settings(prometheus, servers=()))
    try:
        data = await eventually(
            src.fetch, lambda d: len(d.gpus) == 4 and d.gpus[3].xid_at > 0 and d.gpus[2].nvlink_errors == 1040
        )
    finally:
        await src.close()
    g0, g1, g2, g3 = data.gpus
    assert (g0.remap_pending, g0.remap_failed, g0.recovery_action, g0.nvlink_errors) == (
        True,
        False,
        "reset",
        0,
    )
    assert (g1.remap_pending, g1.remap_failed, g1.recovery_action) == (False, True, "")  # 0: none, not asked
    assert g2.recovery_action == "reboot"
    # The errors of the last hour: a series younger than that counts them all (an older one, its total
    # less the total an hour ago, which a test of seconds cannot show).
    assert g2.nvlink_errors == 1040
    assert (g3.xid, g3.recovery_action, g3.nvlink_errors) == (79, "", 0)
    # When the XID happened: the first sample that read 79, to the query's 30 s step.
    [series] = prometheus.query('DCGM_FI_DEV_XID_ERRORS{UUID="GPU-h-3"}[10m]')
    seen = min(float(t) for t, v in series["values"] if v == "79")
    assert seen <= g3.xid_at < seen + 30.0
    # The node's verdict: a failed remap asks for the board to be replaced, the worst of its needs.
    verdict = FleetSnapshot(timestamp=seen, nodes=data.nodes, gpus=data.gpus).verdicts["h"]
    assert verdict.need is Need.RMA and verdict.gpus == (0, 1, 2, 3)
