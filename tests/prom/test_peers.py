"""The Prometheus test peers themselves, through plain HTTP: if these fail, the source tests mean nothing."""

from __future__ import annotations

import bisect
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.exposition import generate_latest

from tests.prom.exporter import (
    TFSERVING_LATENCY_BUCKETS_US,
    VLLM_E2E_BUCKETS,
    FleetExporter,
    big_fleet,
    default_fleet,
    gpu_uuid,
)
from tests.prom.promserver import PromServer
from tests.prom.slowproxy import SlowProxy


def value(result: list[Any]) -> float:
    (only,) = result
    return float(only["value"][1])


def bucket_of(bounds: tuple[float, ...], x: float) -> tuple[float, float]:
    i = bisect.bisect_left(bounds, x)
    return (bounds[i - 1] if i else 0.0, bounds[i])


def test_dcgm_series_arrive_with_their_labels(prometheus: PromServer) -> None:
    util = {r["metric"]["UUID"]: r["metric"] for r in prometheus.wait_for("DCGM_FI_DEV_GPU_UTIL")}
    assert sorted(util) == sorted(gpu_uuid(h, g) for h in (0, 1) for g in (0, 1))
    mapped = util[gpu_uuid(0, 0)]
    assert mapped == {
        "__name__": "DCGM_FI_DEV_GPU_UTIL",
        "gpu": "0",
        "UUID": gpu_uuid(0, 0),
        "device": "nvidia0",
        "modelName": "NVIDIA H200",
        "Hostname": "gpu-a",
        "DCGM_FI_DRIVER_VERSION": "580.159.04",
        "container": "vllm",
        "namespace": "ml-prod",
        "pod": "llm-serve-0",
        "instance": prometheus.targets[0],
        "job": "fleet",
    }
    # The newer spelling, and no pod: Prometheus drops the labels dcgm-exporter prints as "".
    b1 = util[gpu_uuid(1, 1)]
    assert (b1["hostname"], b1["gpu"], b1["device"]) == ("gpu-b", "1", "nvidia1")
    assert not {"Hostname", "pod", "namespace", "container"} & b1.keys()
    # Values, and the series that only some GPUs have.
    assert value(prometheus.query(f'DCGM_FI_DEV_GPU_UTIL{{UUID="{gpu_uuid(0, 0)}"}}')) == 87.0
    assert value(prometheus.query("DCGM_FI_DEV_XID_ERRORS > 0")) == 79.0
    assert value(prometheus.query("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS")) == 64.0
    assert value(prometheus.query("DCGM_FI_PROF_GR_ENGINE_ACTIVE")) == 0.81
    assert len(prometheus.query("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL")) == 4


def test_rates_and_latencies_are_the_set_ones(prometheus: PromServer) -> None:
    """Counters grow at the set qps; histogram_quantile lands on the set p50 / p99 (one test: both need
    four scrapes)."""
    prometheus.wait_for_scrapes(4)
    want = {
        "sum(rate(vllm:e2e_request_latency_seconds_count[3s]))": 12.0,
        "sum(rate(vllm:request_success_total[3s]))": 12.0 * 0.95,
        'sum(rate(http_requests_total{status="5xx"}[3s]))': 12.0 * 0.05,
        "sum(rate(nv_inference_request_success[3s])) + sum(rate(nv_inference_request_failure[3s]))": 50.0,
        'sum(rate({__name__=":tensorflow:serving:request_count"}[3s]))': 30.0,
        'sum(rate(:tensorflow:serving:request_count{status="INTERNAL"}[3s]))': 0.3,
        "sum(rate(ts_inference_requests_total[3s]))": 20.0,
        # mean latency from the TorchServe counters (µs per request) is p50
        "sum(rate(ts_inference_latency_microseconds[3s])) / sum(rate(ts_inference_requests_total[3s]))": 15e3,
    }
    got = {q: value(prometheus.query(q)) for q in want}
    for q, v in want.items():
        assert got[q] == pytest.approx(v, rel=0.2), (q, got)

    # Latency: histogram_quantile over the vLLM and TF Serving histograms, Triton's summary.
    vllm = "sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[3s]))"
    tf = "sum by (le) (rate(:tensorflow:serving:request_latency_bucket[3s]))"
    for level, hist, bounds, set_value in (
        (0.99, vllm, VLLM_E2E_BUCKETS, 4.0),
        (0.5, vllm, VLLM_E2E_BUCKETS, 0.65),
        (0.99, tf, TFSERVING_LATENCY_BUCKETS_US, 25e3),
        (0.5, tf, TFSERVING_LATENCY_BUCKETS_US, 5e3),
    ):
        quantile = value(prometheus.query(f"histogram_quantile({level}, {hist})"))
        lo, hi = bucket_of(bounds, set_value)
        assert lo < quantile <= hi, (level, hist, quantile)
        # the default fleet's latencies are ones the exporter can make exact
        assert quantile == pytest.approx(set_value, rel=0.01), (level, hist, quantile)
    triton = value(prometheus.query('nv_inference_request_summary_us{quantile="0.99"}'))
    assert triton == 30e3


def test_a_rate_change_shows_in_rate(fleet_exporter: FleetExporter, prometheus: PromServer) -> None:
    fleet_exporter.update_endpoint("ml-prod", "resnet", qps=200.0)
    prometheus.wait_for_scrapes(4)
    assert value(prometheus.query("sum(rate(ts_inference_requests_total[3s]))")) == pytest.approx(
        200, rel=0.2
    )


def test_a_gpu_change_is_visible_within_a_few_scrapes(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    uuid = gpu_uuid(1, 0)
    fleet_exporter.update_gpu(uuid, util=55.0, ecc_dbe=2)
    t0 = time.monotonic()
    prometheus.wait_for(f'DCGM_FI_DEV_GPU_UTIL{{UUID="{uuid}"}} == 55', timeout=5)
    assert time.monotonic() - t0 < 3
    assert value(prometheus.query("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL > 0")) == 2


def test_stop_refuses_queries_and_restart_keeps_the_data(prometheus: PromServer) -> None:
    prometheus.wait_for_scrapes(1)
    before = time.time()
    old = prometheus.query("DCGM_FI_DEV_POWER_USAGE", at=before)
    assert len(old) == 4
    prometheus.stop()
    with pytest.raises(urllib.error.URLError) as info:
        prometheus.query("up")
    assert isinstance(info.value.reason, ConnectionRefusedError)
    prometheus.restart()
    assert prometheus.query("DCGM_FI_DEV_POWER_USAGE", at=before) == old


def test_the_slow_proxy_delays_and_blackholes(prometheus: PromServer) -> None:
    with SlowProxy(prometheus.port) as proxy:
        url = f"{proxy.url}/api/v1/query?query=up"

        def timed(timeout: float = 5) -> float:
            t0 = time.monotonic()
            with urllib.request.urlopen(url, timeout=timeout) as r:
                assert r.status == 200
                r.read()
            return time.monotonic() - t0

        assert timed() < 0.5
        proxy.delay = 0.6
        assert timed() >= 0.6
        proxy.delay = 0.0
        proxy.blackhole = True
        t0 = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            timed(timeout=0.5)
        assert time.monotonic() - t0 >= 0.5
        proxy.blackhole = False
        assert timed() < 0.5


def test_the_fast_path_writes_what_prometheus_client_writes() -> None:
    gpus, endpoints = default_fleet()
    exporter = FleetExporter(gpus + big_fleet(40), endpoints, clock=lambda: 1000.0)

    def samples(text: bytes) -> list[str]:
        return [line for line in text.decode().splitlines() if not line.startswith("#")]

    fast, slow = samples(exporter.render()), samples(generate_latest(exporter.registry))
    assert len(fast) > 500
    assert fast == slow


def test_the_exporter_serves_40000_gpus_in_under_5_seconds() -> None:
    exporter = FleetExporter(big_fleet(40_000))
    exporter.start()
    try:
        t0 = time.perf_counter()
        with urllib.request.urlopen(exporter.url, timeout=30) as r:
            body = r.read()
        took = time.perf_counter() - t0
    finally:
        exporter.stop()
    series = sum(1 for line in body.splitlines() if not line.startswith(b"#"))
    assert series > 400_000
    assert took < 5, f"{series} series in {took:.2f}s"
