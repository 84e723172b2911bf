"""PromQL for DCGM GPU metrics and model-server traffic, and the parsing of Prometheus answers. Pure: no I/O.

GPUs come from NVIDIA's dcgm-exporter. One query carries each GPU's identity (``UUID``, ``gpu``,
``modelName``, the host as ``Hostname`` in older exporters or ``hostname`` in newer ones, and ``pod`` /
``namespace`` when the exporter maps GPUs to pods) with its utilisation; every other reading is asked
``max by (UUID)``, so that at 40,000 GPUs the answers carry one short label per series, not a dozen.

Endpoints come from the model servers' own metrics, summed per ``namespace`` and endpoint label (the
Deployment's Service, ``service`` by default). Each server has its own names:

================  =================================================  ======================================
server            requests and errors                                latency, queue
================  =================================================  ======================================
vLLM              ``vllm:e2e_request_latency_seconds_count``,        histogram ``vllm:e2e_request_latency_
                  5xx of ``http_requests_total`` on ``/v1/…``        seconds``; ``vllm:num_requests_waiting``
NVIDIA Triton     ``nv_inference_request_success`` / ``_failure``     summary ``nv_inference_request_summary_
                                                                     us``; ``nv_inference_pending_request_
                                                                     count``
TF Serving        ``:tensorflow:serving:request_count`` by status    histogram ``:tensorflow:serving:request_
                                                                     latency`` (µs); no queue metric
TorchServe        ``ts_inference_requests_total``                    none per model: p50/p99, errors, queue NA
================  =================================================  ======================================
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aios_tui.domain import NA, Metric

#: The one series every dcgm-exporter GPU has; it names the GPU and gives its utilisation.
GPU_UTIL: Final = "DCGM_FI_DEV_GPU_UTIL"
#: Other per-GPU series, by the Gpu field (or detail) they fill. Throttle reasons have two names: DCGM
#: renamed "clock throttle reasons" to "clocks event reasons", as NVML did.
GPU_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "mem_used": ("DCGM_FI_DEV_FB_USED",),
    "temp": ("DCGM_FI_DEV_GPU_TEMP",),
    "power": ("DCGM_FI_DEV_POWER_USAGE",),
    "sm_clock": ("DCGM_FI_DEV_SM_CLOCK",),
    "xid": ("DCGM_FI_DEV_XID_ERRORS",),
    "ecc_uncorrected": ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",),
    "ecc_corrected": ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",),
    "throttle": ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"),
    "gr_active": ("DCGM_FI_PROF_GR_ENGINE_ACTIVE",),
}
HOST_LABELS: Final = ("Hostname", "hostname")
"""Where dcgm-exporter puts the host: older releases say ``Hostname``, newer ones ``hostname``."""
IDLE_UTIL_PCT: Final = 5.0
MAX_POINTS: Final = 11_000
"""Prometheus refuses a range query of more points than this per series."""
#: The sparkline metrics a GPU's history can show, by DCGM series.
GPU_HISTORY: Final[Mapping[str, str]] = {
    "util": GPU_UTIL,
    "mem_used": "DCGM_FI_DEV_FB_USED",
    "temp": "DCGM_FI_DEV_GPU_TEMP",
    "power": "DCGM_FI_DEV_POWER_USAGE",
}


def _name_matcher(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else '{__name__=~"' + "|".join(names) + '"}'


def gpu_identity_query(node_label: str) -> str:
    """Every GPU, its identity labels and its utilisation (duplicates from HA scrapes collapse)."""
    labels = ["UUID", "gpu", "modelName", *HOST_LABELS, "pod", "namespace"]
    if node_label and node_label not in labels:
        labels.append(node_label)
    return f"max by ({', '.join(labels)}) ({GPU_UTIL})"


SPARSE_FIELDS: Final = frozenset({"xid", "ecc_uncorrected", "ecc_corrected", "throttle"})
"""Readings that are 0 on a healthy GPU: asked ``!= 0``, so that a healthy fleet's answer is empty (a GPU
missing from it reads 0) — four queries of 40,000 series each become four of a few."""
SLOW_FIELDS: Final = frozenset({"sm_clock", "gr_active"})
"""Readings for the detail view rather than the tables: asked every :data:`SLOW_EVERY` fetches."""
SLOW_EVERY: Final = 4
MEM_TOTAL: Final = "max by (UUID) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"
"""Framebuffer size, which DCGM gives only as used + free: asked once and again only for new GPUs."""


def gpu_field_query(field: str) -> str:
    """One reading of every GPU (of the GPUs where it is not 0, for :data:`SPARSE_FIELDS`), labelled by
    ``UUID`` alone."""
    query = f"max by (UUID) ({_name_matcher(GPU_FIELDS[field])})"
    return f"{query} != 0" if field in SPARSE_FIELDS else query


def gpu_history_query(metric: str, uuid: str) -> str:
    """One GPU's reading (a :data:`GPU_HISTORY` key) for a range query."""
    return f'max({GPU_HISTORY[metric]}{{UUID="{escape(uuid)}"}})'


def node_util_query(label: str, host: str) -> str:
    """The mean utilisation of a host's GPUs, the host named by ``label`` (``Hostname``, ``hostname`` …)."""
    return f'avg({GPU_UTIL}{{{label}="{escape(host)}"}})'


def idle_query(window: float) -> str:
    """The GPUs whose utilisation stayed under 5 % for the whole window (seconds)."""
    return f"max by (UUID) (max_over_time({GPU_UTIL}[{_duration(window)}])) < {IDLE_UTIL_PCT:g}"


def _duration(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


# --- model servers ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerQueries:
    """PromQL templates of one model server (:class:`string.Template`): ``$by`` is the grouping
    (``namespace, service``); ``$sel`` the extra label matchers alone and ``$and_sel`` the same after other
    matchers (empty, or ``namespace="ml", service="llm"`` for one endpoint's history); ``$window`` the range
    of ``rate()``."""

    server: str
    metrics: Mapping[str, str]
    """Endpoint field (qps, p50_ms, p99_ms, error_rate, queue) → PromQL template."""
    model: str = ""
    """Template whose series carry the model name in ``model_label``."""
    model_label: str = ""


def _quantile(q: float, bucket: str, scale: str) -> str:
    return f"histogram_quantile({q:g}, sum by ($by, le) (rate({bucket}{{$sel}}[$window]))){scale}"


_VLLM_HTTP = 'http_requests_total{handler=~"/v1/.*"$and_sel'
_TRITON_ALL = '{__name__=~"nv_inference_request_(success|failure)"$and_sel}'
_TF = ":tensorflow:serving:request_count"

SERVERS: Final[Mapping[str, ServerQueries]] = {
    "vllm": ServerQueries(
        "vllm",
        {
            "qps": "sum by ($by) (rate(vllm:e2e_request_latency_seconds_count{$sel}[$window]))",
            "p50_ms": _quantile(0.5, "vllm:e2e_request_latency_seconds_bucket", " * 1000"),
            "p99_ms": _quantile(0.99, "vllm:e2e_request_latency_seconds_bucket", " * 1000"),
            "error_rate": (
                f'sum by ($by) (rate({_VLLM_HTTP}, status="5xx"}}[$window]))'
                f" / sum by ($by) (rate({_VLLM_HTTP}}}[$window]))"
            ),
            "queue": "sum by ($by) (vllm:num_requests_waiting{$sel})",
        },
        model="count by ($by, model_name) (vllm:num_requests_running{$sel})",
        model_label="model_name",
    ),
    "triton": ServerQueries(
        "triton",
        {
            "qps": f"sum by ($by) (rate({_TRITON_ALL}[$window]))",
            "p50_ms": 'max by ($by) (nv_inference_request_summary_us{quantile="0.5"$and_sel}) / 1000',
            "p99_ms": 'max by ($by) (nv_inference_request_summary_us{quantile="0.99"$and_sel}) / 1000',
            "error_rate": (
                "(sum by ($by) (rate(nv_inference_request_failure{$sel}[$window]))"
                " or 0 * sum by ($by) (rate(nv_inference_request_success{$sel}[$window])))"
                f" / sum by ($by) (rate({_TRITON_ALL}[$window]))"
            ),
            "queue": "sum by ($by) (nv_inference_pending_request_count{$sel})",
        },
        model="count by ($by, model) (nv_inference_request_success{$sel})",
        model_label="model",
    ),
    "tfserving": ServerQueries(
        "tfserving",
        {
            "qps": f"sum by ($by) (rate({_TF}{{$sel}}[$window]))",
            "p50_ms": _quantile(0.5, ":tensorflow:serving:request_latency_bucket", " / 1000"),
            "p99_ms": _quantile(0.99, ":tensorflow:serving:request_latency_bucket", " / 1000"),
            "error_rate": (
                f'(sum by ($by) (rate({_TF}{{status!="OK"$and_sel}}[$window]))'
                f" or 0 * sum by ($by) (rate({_TF}{{$sel}}[$window])))"
                f" / sum by ($by) (rate({_TF}{{$sel}}[$window]))"
            ),
        },
        model=f"count by ($by, model_name) ({_TF}{{$sel}})",
        model_label="model_name",
    ),
    "torchserve": ServerQueries(
        "torchserve",
        {"qps": "sum by ($by) (rate(ts_inference_requests_total{$sel}[$window]))"},
        model="count by ($by, model_name) (ts_inference_requests_total{$sel})",
        model_label="model_name",
    ),
}


def render(
    template: str, by: Sequence[str], sel: Mapping[str, str] | None = None, window: float = 60.0
) -> str:
    """A template with its grouping, label matchers and ``rate()`` window (seconds) filled in."""
    matchers = ", ".join(f'{k}="{escape(v)}"' for k, v in (sel or {}).items())
    return string.Template(template).substitute(
        by=", ".join(by), sel=matchers, and_sel=f", {matchers}" if matchers else "", window=_duration(window)
    )


def escape(value: str) -> str:
    """``value`` as the inside of a PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


# --- answers ----------------------------------------------------------------------------------------------


def sample(item: Mapping[str, Any]) -> Metric:
    """The value of one instant-vector element; NaN and ±Inf (no traffic, an empty histogram) read as NA."""
    try:
        value = float(item["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return NA
    return value if math.isfinite(value) else NA


def by_label(result: Iterable[Mapping[str, Any]], label: str) -> dict[str, Metric]:
    """Values keyed by one label (series without it are skipped; the first series of a key wins)."""
    out: dict[str, Metric] = {}
    for item in result:
        key = item.get("metric", {}).get(label)
        if key and key not in out:
            out[key] = sample(item)
    return out


def series_values(result: Sequence[Mapping[str, Any]], start: float, step: float, points: int) -> list[float]:
    """A range query's one series as ``points`` floats on the grid ``start + i·step``; NaN where it has no
    sample (and an empty answer is all NaN)."""
    out = [math.nan] * points
    if not result:
        return out
    for t, v in result[0].get("values", ()):
        i = round((float(t) - start) / step)
        if 0 <= i < points:
            try:
                value = float(v)
            except ValueError:
                continue
            out[i] = value if math.isfinite(value) else math.nan
    return out


def range_grid(now: float, points: int, step: float) -> tuple[float, float, float, int]:
    """``(start, end, step, points)`` for a range query ending at ``now``: at least a 1 s step, at most
    :data:`MAX_POINTS` points (the step grows to cover the same span when more were asked)."""
    points = max(1, points)
    step = max(1.0, step)
    if points > MAX_POINTS:
        step = math.ceil(step * (points - 1) / (MAX_POINTS - 1))
        points = MAX_POINTS
    end = math.floor(now / step) * step
    return end - (points - 1) * step, end, step, points
