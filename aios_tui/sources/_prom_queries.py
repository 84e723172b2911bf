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
NVIDIA Triton     ``nv_inference_request_success`` / ``_failure``     mean from ``nv_inference_request_
                                                                     duration_us``; the summary ``…_summary_
                                                                     us`` where enabled; ``nv_inference_
                                                                     pending_request_count``
TF Serving        ``:tensorflow:serving:request_count`` by status    histogram ``:tensorflow:serving:request_
                                                                     latency`` (µs); no queue metric
TorchServe        ``ts_inference_requests_total``                    mean from ``ts_inference_latency_
                                                                     microseconds``; p50/p99, errors, queue NA
================  =================================================  ======================================

Both spellings of a name are matched: a server built on prometheus_client and scraped with OpenMetrics
arrives as ``vllm_num_requests_waiting`` (the client escapes ``:``), and its counters gain ``_total``
(``nv_inference_request_success_total``).

**One replica, counted once.** GPUs collapse by ``UUID``. A model server's series have no such key, and the
same replica scraped by two jobs (a ServiceMonitor and a static job, say) gives each series twice, differing
only in ``job``: every figure takes ``max without (job)`` per series before summing over replicas, so two
scrape jobs do not double the QPS. Replicas themselves differ in ``instance`` (and ``pod``) and still add
up. Two jobs that also relabel differently (one adds ``pod``, the other not) are not recognised as one.
"""

from __future__ import annotations

import math
import re
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
    "remap_pending": ("DCGM_FI_DEV_ROW_REMAP_PENDING",),
    "remap_failed": ("DCGM_FI_DEV_ROW_REMAP_FAILURE",),
    "recovery_action": ("DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION",),
    "nvlink_errors": ("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",),
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


SPARSE_FIELDS: Final = frozenset(
    {
        "xid",
        "ecc_uncorrected",
        "ecc_corrected",
        "throttle",
        "remap_pending",
        "remap_failed",
        "recovery_action",
    }
)
"""Readings that are 0 on a healthy GPU: asked ``!= 0``, so that a healthy fleet's answer is empty (a GPU
missing from it reads 0) — seven queries of 40,000 series each become seven of a few. A recovery action of
0 (none) therefore reads as not reported."""
NVLINK_WINDOW: Final = "1h"
"""NVLink errors are the counter now less the counter this long ago (> 0 only): recent errors, not the total
since the driver loaded, which would keep a link repaired long ago on the watch list. A series younger than
that counts its whole total. Two instant selectors, not ``increase()`` over the window, which would read
every sample of the hour of 40,000 series at each refresh."""
XID_LOOKBACK: Final = 6 * 3600.0
XID_STEP: Final = 30.0
"""When an XID was first seen is looked for over the last 6 hours, to 30 s (older ones read 6 hours)."""
XID_ASKED: Final = 20
"""GPUs whose XID time one fetch asks for at most (the rest wait for the next fetch)."""
SLOW_FIELDS: Final = frozenset({"sm_clock", "gr_active"})
"""Readings for the detail view rather than the tables: asked every :data:`SLOW_EVERY` fetches."""
SLOW_EVERY: Final = 4
MEM_TOTAL: Final = "max by (UUID) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)"
"""Framebuffer size, which DCGM gives only as used + free: asked once and again only for new GPUs."""


def gpu_field_query(field: str) -> str:
    """One reading of every GPU (of the GPUs where it is not 0, for :data:`SPARSE_FIELDS`), labelled by
    ``UUID`` alone."""
    if field == "nvlink_errors":
        now = f"max by (UUID) ({GPU_FIELDS[field][0]})"
        then = f"max by (UUID) ({GPU_FIELDS[field][0]} offset {NVLINK_WINDOW})"
        return f"({now} - {then}) > 0 or ({now} > 0 unless {then})"
    query = f"max by (UUID) ({_name_matcher(GPU_FIELDS[field])})"
    return f"{query} != 0" if field in SPARSE_FIELDS else query


def xid_since_query(xids: Iterable[tuple[str, int]]) -> str:
    """For each ``(UUID, XID)``: the first time in :data:`XID_LOOKBACK` its last-XID gauge read that XID
    (to :data:`XID_STEP`), labelled by ``UUID``: when the XID happened, as far as the exporter saw."""
    window = f"[{_duration(XID_LOOKBACK)}:{_duration(XID_STEP)}]"
    parts = []
    for u, x in xids:
        now = f'timestamp({GPU_FIELDS["xid"][0]}{{UUID="{escape(u)}"}} == {int(x)})'
        # The subquery's steps fall on multiples of XID_STEP: an XID newer than the last one is in the
        # current sample only.
        parts.append(f"min by (UUID) (min_over_time({now}{window}) or {now})")
    return " or ".join(parts)


def gpu_history_query(metric: str, uuid: str) -> str:
    """One GPU's reading (a :data:`GPU_HISTORY` key) for a range query."""
    return f'max({GPU_HISTORY[metric]}{{UUID="{escape(uuid)}"}})'


def node_util_query(label: str, host: str) -> str:
    """The mean utilisation of a host's GPUs, the host named by ``label`` (``Hostname``, ``hostname`` …)."""
    return f'avg({GPU_UTIL}{{{label}="{escape(host)}"}})'


IDLE_LOOKBACK: Final = 3
"""How far back, in idle windows, :func:`low_since_query` looks for a GPU's last busy moment."""
IDLE_STEPS: Final = 30
"""Points of that lookback it evaluates: the precision of "idle since" is the lookback / 30."""


def low_since_grid(window: float) -> tuple[float, float]:
    """``(lookback, step)`` in seconds of :func:`low_since_query` for an idle window of ``window``."""
    lookback = max(1.0, math.ceil(window * IDLE_LOOKBACK))
    return lookback, max(1.0, math.ceil(lookback / IDLE_STEPS))


def low_since_query(window: float) -> str:
    """Per allocated GPU (``pod`` set) now under 5 %: the last time in the lookback (:func:`low_since_grid`)
    its utilisation was 5 % or more, or 0 when it stayed under 5 % for the whole lookback. One subquery, so
    that "idle for" is measured from the series' history, not assumed to be the window."""
    lookback, step = low_since_grid(window)
    util, pct = f'{GPU_UTIL}{{pod!=""}}', f"{IDLE_UTIL_PCT:g}"
    low = f"max by (UUID) ({util}) < {pct}"
    busy = f"max_over_time(timestamp({util} >= {pct})[{_duration(lookback)}:{_duration(step)}])"
    return f"(max by (UUID) ({busy}) and on (UUID) ({low})) or on (UUID) (0 * ({low}))"


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
    """Endpoint field (qps, p50_ms, p99_ms, mean_ms, error_rate, queue) → PromQL template."""
    model: str = ""
    """Template whose series carry the model name in ``model_label``."""
    model_label: str = ""
    marker: str = ""
    """A regular expression matching the name of one series every replica of this server exports: which
    scrape targets serve it, and which of its series lack the labels an endpoint needs."""


def _vllm(name: str) -> tuple[str, ...]:
    """vLLM's ``vllm:<name>``, and ``vllm_<name>`` as prometheus_client escapes it for OpenMetrics."""
    return f"vllm:{name}", f"vllm_{name}"


def _counter(name: str) -> tuple[str, ...]:
    """A counter as its server names it, and with the ``_total`` prometheus_client adds."""
    return name, f"{name}_total"


def _sel(name: str, extra: str = "") -> str:
    """The series ``name`` with the ``extra`` matchers and the template's own."""
    return f"{name}{{{extra}$and_sel}}" if extra else f"{name}{{$sel}}"


def _any(names: Sequence[str], extra: str = "", fn: str = "") -> str:
    """The series of every spelling in ``names`` (through ``fn(…[$window])`` if given), each once: ``or``
    rather than a ``__name__`` regex, which fails once rate() drops the names (two spellings of one series
    while a server changes its exposition: "vector cannot contain metrics with the same labelset")."""
    return " or ".join(f"{fn}({_sel(n, extra)}[$window])" if fn else _sel(n, extra) for n in names)


def _per_replica(expr: str) -> str:
    """``expr`` once per replica: the same series scraped by two jobs (a ServiceMonitor and a static job,
    say) differ only in ``job``, and would count twice in a sum."""
    return f"max without (job) ({expr})"


def _rate(names: Sequence[str], extra: str = "") -> str:
    return f"sum by ($by) ({_per_replica(_any(names, extra, 'rate'))})"


def _gauge(names: Sequence[str]) -> str:
    return f"sum by ($by) ({_per_replica(_any(names))})"


def _quantile(q: float, buckets: Sequence[str], scale: str) -> str:
    return f"histogram_quantile({q:g}, sum by ($by, le) ({_per_replica(_any(buckets, fn='rate'))})){scale}"


def _share(part: str, whole: str) -> str:
    """``part / whole``, 0 rather than nothing where ``whole`` has traffic and ``part`` no series (a counter
    of errors appears with the first error)."""
    return f"({part} or 0 * {whole}) / {whole}"


def _re_escape(text: str) -> str:
    """``text`` as a literal in an RE2 regular expression."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def _marker(names: Sequence[str]) -> str:
    return "|".join(_re_escape(n) for n in names)


_V1 = 'handler=~"/v1/.*"'
_HTTP = ("http_requests_total",)
_TRITON_OK = _counter("nv_inference_request_success")
_TRITON_REQUESTS = (
    f"{_rate(_TRITON_OK)} + ({_rate(_counter('nv_inference_request_failure'))} or 0 * {_rate(_TRITON_OK)})"
)
_TF = _counter(":tensorflow:serving:request_count")
_TS = ("ts_inference_requests_total",)

SERVERS: Final[Mapping[str, ServerQueries]] = {
    "vllm": ServerQueries(
        "vllm",
        {
            "qps": _rate(_vllm("e2e_request_latency_seconds_count")),
            "p50_ms": _quantile(0.5, _vllm("e2e_request_latency_seconds_bucket"), " * 1000"),
            "p99_ms": _quantile(0.99, _vllm("e2e_request_latency_seconds_bucket"), " * 1000"),
            "error_rate": _share(_rate(_HTTP, f'{_V1}, status="5xx"'), _rate(_HTTP, _V1)),
            "queue": _gauge(_vllm("num_requests_waiting")),
        },
        model=f"count by ($by, model_name) ({_any(_vllm('num_requests_running'))})",
        model_label="model_name",
        marker=_marker(_vllm("num_requests_running")),
    ),
    "triton": ServerQueries(
        "triton",
        {
            "qps": _TRITON_REQUESTS,
            # Only with --metrics-config summary_latencies=true; by default Triton gives mean_ms alone.
            "p50_ms": 'max by ($by) (nv_inference_request_summary_us{quantile="0.5"$and_sel}) / 1000',
            "p99_ms": 'max by ($by) (nv_inference_request_summary_us{quantile="0.99"$and_sel}) / 1000',
            "mean_ms": (
                f"{_rate(_counter('nv_inference_request_duration_us'))} / {_rate(_TRITON_OK)} / 1000"
            ),
            "error_rate": _share(_rate(_counter("nv_inference_request_failure")), f"({_TRITON_REQUESTS})"),
            "queue": _gauge(("nv_inference_pending_request_count",)),
        },
        model=f"count by ($by, model) ({_any(_TRITON_OK)})",
        model_label="model",
        marker=_marker(_TRITON_OK),
    ),
    "tfserving": ServerQueries(
        "tfserving",
        {
            "qps": _rate(_TF),
            "p50_ms": _quantile(0.5, (":tensorflow:serving:request_latency_bucket",), " / 1000"),
            "p99_ms": _quantile(0.99, (":tensorflow:serving:request_latency_bucket",), " / 1000"),
            "error_rate": _share(_rate(_TF, 'status!="OK"'), _rate(_TF)),
        },
        model=f"count by ($by, model_name) ({_any(_TF)})",
        model_label="model_name",
        marker=_marker(_TF),
    ),
    "torchserve": ServerQueries(
        "torchserve",
        {
            "qps": _rate(_TS),
            "mean_ms": f"{_rate(_counter('ts_inference_latency_microseconds'))} / {_rate(_TS)} / 1000",
        },
        model=f"count by ($by, model_name) ({_any(_TS)})",
        model_label="model_name",
        marker=_marker(_TS),
    ),
}


def endpoint_labels_query(servers: Sequence[str], label: str) -> str:
    """How many series of each server's marker there are per ``namespace`` and endpoint ``label`` (an
    empty value: the series lacks the label, and gives no endpoint)."""
    names = "|".join(SERVERS[s].marker for s in servers)
    return f'count by (__name__, namespace, {label}) ({{__name__=~"{names}"}})'


def server_of(name: str, servers: Sequence[str]) -> str:
    """The server (of ``servers``) whose marker the series name ``name`` is, or ""."""
    return next((s for s in servers if re.fullmatch(SERVERS[s].marker, name)), "")


# --- scrape targets ---------------------------------------------------------------------------------------

TARGET_LOOKBACK: Final = 600.0
"""Seconds a scrape target that stopped is still listed (down) after its last series; later the poller's
"no longer reported" stands for it."""


def targets_query(servers: Sequence[str], lookback: float = TARGET_LOOKBACK) -> str:
    """``up`` (1 or 0) of every scrape target that served dcgm-exporter's or a model server's series in
    the last ``lookback`` seconds."""
    names = "|".join([GPU_UTIL, *(SERVERS[s].marker for s in servers)])
    served = f'group by (job, instance) (last_over_time({{__name__=~"{names}"}}[{_duration(lookback)}]))'
    return f"max by (job, instance) (up) and on (job, instance) {served}"


def up_history_query(instances: Iterable[str], lookback: float = TARGET_LOOKBACK) -> str:
    """``up`` of the targets at ``instances`` over the last ``lookback`` seconds (a range vector: raw
    samples), to find when each was last up."""
    regex = "|".join(_re_escape(i) for i in sorted(set(instances)))
    return f'up{{instance=~"{escape(regex)}"}}[{_duration(lookback)}]'


def last_up(result: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], float]:
    """Per ``(job, instance)`` the time of the last sample of ``up`` that was 1, from a range vector."""
    out: dict[tuple[str, str], float] = {}
    for item in result:
        try:
            labels = item["metric"]
            times = [float(t) for t, v in item["values"] if v == "1"]
            key = (str(labels.get("job", "")), str(labels.get("instance", "")))
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        if times:
            out[key] = max(times)
    return out


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
    """Values keyed by one label (series without it, or malformed, are skipped; the first series of a key
    wins)."""
    out: dict[str, Metric] = {}
    for item in result:
        try:
            key = item["metric"].get(label)
        except (AttributeError, KeyError, TypeError):
            continue
        if key and isinstance(key, str) and key not in out:
            out[key] = sample(item)
    return out


def series_values(result: Sequence[Mapping[str, Any]], start: float, step: float, points: int) -> list[float]:
    """A range query's one series as ``points`` floats on the grid ``start + i·step``; NaN where it has no
    sample (and an empty answer is all NaN)."""
    out = [math.nan] * points
    if not result:
        return out
    try:
        values = list(result[0]["values"])
    except (KeyError, TypeError):
        return out
    for pair in values:
        try:
            t, v = pair
            i = round((float(t) - start) / step)
            value = float(v)
        except (TypeError, ValueError, OverflowError):
            continue
        if 0 <= i < points:
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
