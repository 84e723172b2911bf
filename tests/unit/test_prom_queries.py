"""The pure half of the Prometheus source: PromQL text, range grids, and reading answers."""

from __future__ import annotations

import math

import pytest

from aios_tui.domain import NA
from aios_tui.sources import _prom_queries as pq


@pytest.mark.parametrize(
    ("points", "step", "want_points", "want_step"),
    [
        (120, 15.0, 120, 15.0),
        (60, 0.2, 60, 1.0),  # Prometheus' finest useful step here is a second
        (0, 15.0, 1, 15.0),
        (11_000, 1.0, 11_000, 1.0),
        (20_000, 1.0, 11_000, 2.0),  # same span (~5.5 h), coarser step
        (100_000, 15.0, 11_000, 137.0),
    ],
)
def test_range_grid_never_asks_more_than_prometheus_allows(
    points: int, step: float, want_points: int, want_step: float
) -> None:
    start, end, got_step, got_points = pq.range_grid(1_000_000.0, points, step)
    assert (got_points, got_step) == (want_points, want_step)
    assert got_points <= pq.MAX_POINTS
    assert end <= 1_000_000.0 and end % got_step == 0  # aligned, so two redraws ask the same grid
    assert end - start == pytest.approx((got_points - 1) * got_step)
    assert end - start >= (max(points, 1) - 1) * max(step, 1.0)  # never a shorter span than asked


def test_series_values_lands_samples_on_the_grid_and_nan_elsewhere() -> None:
    result = [{"metric": {}, "values": [[100, "1"], [130, "3.5"], [145, "NaN"], [999, "7"]]}]
    assert [v if not math.isnan(v) else None for v in pq.series_values(result, 100, 15, 4)] == [
        1.0,
        None,
        3.5,
        None,
    ]
    assert all(math.isnan(v) for v in pq.series_values([], 0, 15, 3))


def test_samples_and_labels() -> None:
    assert pq.sample({"value": [1, "42.5"]}) == 42.5
    assert pq.sample({"value": [1, "NaN"]}) is NA  # histogram_quantile over no traffic
    assert pq.sample({"value": [1, "+Inf"]}) is NA
    assert pq.sample({}) is NA
    result = [
        {"metric": {"UUID": "GPU-a"}, "value": [1, "1"]},
        {"metric": {"UUID": "GPU-a"}, "value": [1, "2"]},  # an HA twin: the first wins
        {"metric": {}, "value": [1, "3"]},
    ]
    assert pq.by_label(result, "UUID") == {"GPU-a": 1.0}


def test_rendered_queries_group_and_select() -> None:
    vllm = pq.SERVERS["vllm"]
    assert pq.render(vllm.metrics["qps"], ["namespace", "service"]) == (
        "sum by (namespace, service) (rate(vllm:e2e_request_latency_seconds_count{}[60s]))"
    )
    one = pq.render(vllm.metrics["error_rate"], ["namespace", "app"], {"namespace": "ml", "app": 'a"b'})
    assert 'http_requests_total{handler=~"/v1/.*", namespace="ml", app="a\\"b", status="5xx"}' in one
    assert pq.gpu_identity_query("") == (
        "max by (UUID, gpu, modelName, Hostname, hostname, pod, namespace) (DCGM_FI_DEV_GPU_UTIL)"
    )
    assert pq.gpu_identity_query("kubernetes_node").endswith(
        "namespace, kubernetes_node) (DCGM_FI_DEV_GPU_UTIL)"
    )
    assert pq.gpu_field_query("throttle") == (
        'max by (UUID) ({__name__=~"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS|DCGM_FI_DEV_CLOCKS_EVENT_REASONS"})'
        " != 0"
    )
    assert pq.gpu_field_query("temp") == "max by (UUID) (DCGM_FI_DEV_GPU_TEMP)"
    assert pq.idle_query(600) == "max by (UUID) (max_over_time(DCGM_FI_DEV_GPU_UTIL[600s])) < 5"
    assert pq.idle_query(0.2) == "max by (UUID) (max_over_time(DCGM_FI_DEV_GPU_UTIL[1s])) < 5"
