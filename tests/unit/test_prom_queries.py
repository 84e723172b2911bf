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
    # Both spellings, each replica once whatever the scrape jobs, summed per endpoint.
    assert pq.render(vllm.metrics["qps"], ["namespace", "service"]) == (
        "sum by (namespace, service) (max without (job) (rate(vllm:e2e_request_latency_seconds_count{}[60s])"
        " or rate(vllm_e2e_request_latency_seconds_count{}[60s])))"
    )
    one = pq.render(vllm.metrics["error_rate"], ["namespace", "app"], {"namespace": "ml", "app": 'a"b'})
    assert 'http_requests_total{handler=~"/v1/.*", status="5xx", namespace="ml", app="a\\"b"}' in one
    assert pq.render(pq.SERVERS["triton"].metrics["mean_ms"], ["namespace", "service"], window=30) == (
        "sum by (namespace, service) (max without (job) (rate(nv_inference_request_duration_us{}[30s])"
        " or rate(nv_inference_request_duration_us_total{}[30s])))"
        " / sum by (namespace, service) (max without (job) (rate(nv_inference_request_success{}[30s])"
        " or rate(nv_inference_request_success_total{}[30s]))) / 1000"
    )
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


def test_low_since_looks_back_three_windows_in_thirty_steps() -> None:
    assert pq.low_since_grid(600) == (1800, 60)
    assert pq.low_since_grid(3) == (9, 1)  # never under a second
    assert pq.low_since_grid(0.2) == (1, 1)
    util = 'DCGM_FI_DEV_GPU_UTIL{pod!=""}'
    low = f"max by (UUID) ({util}) < 5"
    assert pq.low_since_query(600) == (
        f"(max by (UUID) (max_over_time(timestamp({util} >= 5)[1800s:60s])) and on (UUID) ({low}))"
        f" or on (UUID) (0 * ({low}))"
    )


def test_targets_and_their_last_up() -> None:
    assert pq.targets_query(["vllm", "triton"]) == (
        "max by (job, instance) (up) and on (job, instance) group by (job, instance) (last_over_time("
        '{__name__=~"DCGM_FI_DEV_GPU_UTIL|vllm:num_requests_running|vllm_num_requests_running'
        '|nv_inference_request_success|nv_inference_request_success_total"}[600s]))'
    )
    # Instances are literals in the regular expression, and the expression a PromQL string.
    assert pq.up_history_query(["10.0.0.1:9400", "a+b:1", "10.0.0.1:9400"]) == (
        r'up{instance=~"10\\.0\\.0\\.1:9400|a\\+b:1"}[600s]'
    )
    matrix = [
        {
            "metric": {"job": "dcgm", "instance": "a:1"},
            "values": [[10, "1"], [11, "1"], [12, "0"], [13, "0"]],
        },
        {"metric": {"job": "dcgm", "instance": "b:1"}, "values": [[10, "0"]]},  # not up in the lookback
        {"metric": {"job": "dcgm"}, "values": "garbage"},  # malformed: skipped
    ]
    assert pq.last_up(matrix) == {("dcgm", "a:1"): 11.0}


def test_model_server_series_are_told_apart_by_name() -> None:
    servers = ["vllm", "triton", "tfserving", "torchserve"]
    assert pq.server_of("vllm_num_requests_running", servers) == "vllm"
    assert pq.server_of("vllm:num_requests_running", servers) == "vllm"
    assert pq.server_of("nv_inference_request_success_total", servers) == "triton"
    assert pq.server_of(":tensorflow:serving:request_count", servers) == "tfserving"
    assert pq.server_of("vllm:num_requests_running", ["triton"]) == ""
    assert pq.server_of("vllmXnum_requests_running", servers) == ""
    assert pq.endpoint_labels_query(["torchserve"], "app") == (
        'count by (__name__, namespace, app) ({__name__=~"ts_inference_requests_total"})'
    )


def test_malformed_answers_are_skipped_not_fatal() -> None:
    result = [
        {"metric": None},
        "x",
        {"metric": {"UUID": ["a"]}, "value": [1, "1"]},
        {"metric": {"UUID": "g"}},
    ]
    assert pq.by_label(result, "UUID") == {"g": NA}  # type: ignore[arg-type]
    assert all(math.isnan(v) for v in pq.series_values([{"values": [[1, "2", 3], ["x", "1"]]}], 0, 1, 3))
    assert math.isnan(pq.series_values([{"values": None}], 0, 1, 1)[0])
