"""A fleet exporter for the Prometheus tests: NVIDIA dcgm-exporter GPUs and four model servers on one port.

The tests change its state between scrapes (:meth:`FleetExporter.update_gpu`,
:meth:`FleetExporter.update_endpoint`); a real ``prometheus`` scrapes it (see ``promserver.py``).

The series are written as the real exporters write them:

- **dcgm-exporter**: every GPU metric carries ``gpu``, ``UUID``, ``device`` (``nvidia<N>``), ``modelName``,
  the host label (``Hostname`` in older exporters, ``hostname`` in newer ones, chosen per GPU),
  ``DCGM_FI_DRIVER_VERSION`` and the Kubernetes mapping labels ``container``, ``namespace``, ``pod`` (always
  present, ``""`` when the GPU is not mapped). Names are unchanged (``DCGM_FI_DEV_ECC_DBE_VOL_TOTAL`` is the
  counter's real name, no ``_total`` is added). ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` and
  ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` are left out for a GPU whose field is ``None`` (the first is not in the
  default counter set, the second needs profiling support).
- **vLLM**: ``vllm:num_requests_running`` / ``vllm:num_requests_waiting`` gauges, the
  ``vllm:e2e_request_latency_seconds`` histogram (vLLM's own buckets, 0.3 s … 60 s),
  ``vllm:request_success_total{finished_reason="stop"}`` and the API server's ``http_requests_total``
  (``status="2xx"|"5xx"``, as prometheus-fastapi-instrumentator groups them).
- **Triton**: ``nv_inference_request_success``, ``nv_inference_request_failure{reason="BACKEND"}``,
  ``nv_inference_request_duration_us`` (grows by p50 per successful request, so its rate over the success
  rate is the mean ≈ p50) counters, ``nv_inference_pending_request_count`` gauge and the
  ``nv_inference_request_summary_us`` summary (real Triton prints it only with
  ``--metrics-config summary_latencies=true``: ``ServedEndpoint.summary=False`` leaves it out).
- **TF Serving**: ``:tensorflow:serving:request_count{status="OK"|"INTERNAL"}`` and the
  ``:tensorflow:serving:request_latency`` histogram in microseconds (``API="predict"``,
  ``entrypoint="GRPC"``), buckets ``10 × 1.8^i`` µs for i < 33 (6 significant digits) as in TF Serving's
  ``util.cc`` (from memory, not checked against the source).
- **TorchServe**: ``ts_inference_requests_total``, ``ts_inference_latency_microseconds`` (grows by p50 per
  request, so its rate over the request rate is the mean ≈ p50) and ``ts_queue_latency_microseconds``
  (grows by ``queue`` ms per request: an invented but monotone stand-in). TorchServe has no per-model error
  or quantile metric, so neither is exported.

Deviations, on purpose: every model-server series also carries ``namespace`` and ``service`` (Prometheus
would add them by relabelling; the tests scrape with ``honor_labels: true``; an empty ``service`` is printed
``""``, which Prometheus stores as no label: a series the relabelling missed); ``hostname`` for TorchServe is
``<service>-0``; values are printed as prometheus_client prints them (``12.0``, where dcgm-exporter prints
``12``), which Prometheus reads the same; counters are floats and start at ``rate × uptime`` (one hour by
default), as on a server that has been up a while, so ``rate()`` never extrapolates to zero.

**Counters and rates.** Each counter grows continuously at its set rate, integrated piecewise: a change
through :meth:`FleetExporter.update_endpoint` first settles the counters at the old rates, then applies the
new ones. ``rate(x[w])`` is therefore exactly the set rate once the window ``w`` is covered by scrapes (with
a 1 s scrape interval use ``[3s]`` after four scrapes; a window much longer than the scraped span makes
Prometheus extrapolate only half an interval at the start and reads low).

**Latency histograms.** Each second's requests are spread over the buckets by a piecewise-linear CDF through
(0, 0), (p50, 0.5), (p99, 0.99) and (2·p99, 1), then the bucket edges around p50 and p99 are adjusted so
that Prometheus's linear interpolation inside the bucket lands on the set value. Precision a test can
assert: ``histogram_quantile(q, rate(…_bucket[w]))`` is **always inside the bucket that contains the set
value** (or the last finite bound when the value is above it); it is **exact** (float precision) when the
adjustment is possible: p50 and p99 in different buckets, the first bucket (lower bound 0) only as far as
``p ≥ q × upper bound`` allows. :func:`histogram_cdf` returns the cumulative fractions and whether each
quantile is exact, so a test can pick data that is.

**OpenMetrics.** ``FleetExporter(openmetrics=True)`` answers a scraper that asks for OpenMetrics (Prometheus
does, first) as a server built on prometheus_client 0.26 does: every family through the client's own
OpenMetrics writer, which escapes ``:`` in names (``vllm:num_requests_waiting`` arrives as
``vllm_num_requests_waiting``), with each counter's samples named ``<name>_total``
(``nv_inference_request_success_total``), as the client names them in either format.

**Speed.** The DCGM part is written straight to text (:meth:`FleetExporter.render`), the same sample lines
prometheus_client's ``generate_latest`` writes for the same families (the Collector path, :meth:`collect`,
stays available and a test compares the two). 40,000 GPUs (≈ 440,000 series) render in well under the 5 s a
scrape may take; see the module's benchmark in ``test_peers.py``.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as CONTENT_TYPE_OPENMETRICS
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString as _untyped_go

floatToGoString = cast(Callable[[float], str], _untyped_go)

DRIVER_VERSION = "580.159.04"

#: vLLM's ``vllm:e2e_request_latency_seconds`` buckets (seconds).
VLLM_E2E_BUCKETS: tuple[float, ...] = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip
#: TF Serving's ``:tensorflow:serving:request_latency`` buckets (microseconds).
TFSERVING_LATENCY_BUCKETS_US: tuple[float, ...] = tuple(float(f"{10.0 * 1.8**i:.6g}") for i in range(33))

SERVERS = ("vllm", "triton", "tfserving", "torchserve")


@dataclass
class DcgmGpu:
    """One GPU as NVIDIA dcgm-exporter shows it."""

    host: str
    gpu: int
    uuid: str
    model: str = "NVIDIA H200"
    util: float = 0.0  # DCGM_FI_DEV_GPU_UTIL (percent)
    fb_used: float = 0.0  # DCGM_FI_DEV_FB_USED (MiB)
    fb_free: float = 143771.0  # DCGM_FI_DEV_FB_FREE (MiB)
    temp: float = 30.0  # DCGM_FI_DEV_GPU_TEMP (C)
    power: float = 70.0  # DCGM_FI_DEV_POWER_USAGE (W)
    sm_clock: float = 1980.0  # DCGM_FI_DEV_SM_CLOCK (MHz)
    xid: int = 0  # DCGM_FI_DEV_XID_ERRORS (value = last XID code)
    ecc_dbe: int = 0  # DCGM_FI_DEV_ECC_DBE_VOL_TOTAL (uncorrectable, volatile)
    ecc_sbe: int = 0  # DCGM_FI_DEV_ECC_SBE_VOL_TOTAL
    throttle: int | None = None  # DCGM_FI_DEV_CLOCK_THROTTLE_REASONS bitmask (omitted when None)
    gr_active: float | None = None  # DCGM_FI_PROF_GR_ENGINE_ACTIVE ratio 0..1 (omitted when None)
    # GPU health; each omitted when None, as an exporter whose counters file leaves it out
    remap_pending: int | None = None  # DCGM_FI_DEV_ROW_REMAP_PENDING (1: a remap waits for a reset)
    remap_failure: int | None = None  # DCGM_FI_DEV_ROW_REMAP_FAILURE (1: a remap failed)
    nvlink_crc: int | None = None  # DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL (counter)
    recovery_action: int | None = None  # DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION (nvmlGpuRecoveryAction_t)
    pod: str = ""
    namespace: str = ""
    container: str = ""
    hostname_label: str = "Hostname"  # older exporters say "Hostname", newer "hostname"


@dataclass
class ServedEndpoint:
    """One model-serving deployment."""

    server: str  # "vllm" | "triton" | "tfserving" | "torchserve"
    namespace: str
    service: str
    model: str
    qps: float = 10.0
    error_rate: float = 0.0  # fraction 0..1
    p50_ms: float = 20.0
    p99_ms: float = 80.0
    queue: int = 0
    summary: bool = True
    """Triton only: print the latency summary (``--metrics-config summary_latencies=true``)."""


# name, type, help, DcgmGpu attribute; the optional ones are skipped when the attribute is None.
DCGM_METRICS: tuple[tuple[str, str, str, str], ...] = (
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", "sm_clock"),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", "temp"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", "power"),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "util"),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", "fb_free"),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", "fb_used"),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.", "xid"),
    (
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "counter",
        "Total number of single-bit volatile ECC errors.",
        "ecc_sbe",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "counter",
        "Total number of double-bit volatile ECC errors.",
        "ecc_dbe",
    ),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons.", "throttle"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", "gr_active"),
    ("DCGM_FI_DEV_ROW_REMAP_PENDING", "gauge", "Whether remapping of rows is pending.", "remap_pending"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed.", "remap_failure"),
    (
        "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
        "counter",
        "Total number of NVLink flow-control CRC errors.",
        "nvlink_crc",
    ),
    ("DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION", "gauge", "The GPU's recovery action.", "recovery_action"),
)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def dcgm_labels(g: DcgmGpu) -> dict[str, str]:
    """The labels dcgm-exporter puts on every metric of this GPU."""
    return {
        "gpu": str(g.gpu),
        "UUID": g.uuid,
        "device": f"nvidia{g.gpu}",
        "modelName": g.model,
        g.hostname_label: g.host,
        "DCGM_FI_DRIVER_VERSION": DRIVER_VERSION,
        "container": g.container,
        "namespace": g.namespace,
        "pod": g.pod,
    }


def _labelstr(labels: dict[str, str]) -> str:
    # generate_latest's order: sorted label names.
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))


def _render_families(families: Iterable[Metric]) -> str:
    """The text format 0.0.4, as generate_latest writes it but with every family name as it is (a counter
    named ``nv_inference_request_success`` keeps that name in HELP/TYPE, as Triton prints it)."""
    out: list[str] = []
    for m in families:
        mtype = "untyped" if m.type == "unknown" else m.type
        doc = m.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {m.name} {doc}\n# TYPE {m.name} {mtype}\n")
        for s in m.samples:
            labels = "{" + _labelstr(s.labels) + "}" if s.labels else ""
            out.append(f"{s.name}{labels} {floatToGoString(s.value)}\n")
    return "".join(out)


# --- latency distributions ------------------------------------------------------------------------------


def histogram_cdf(bounds: Sequence[float], p50: float, p99: float) -> tuple[list[float], bool, bool]:
    """Cumulative fraction of requests at or below each finite bound, and whether
    ``histogram_quantile`` gives exactly p50 / p99 (see the module docstring). Same unit for all."""
    p99 = max(p99, p50)
    knots = [(0.0, 0.0), (p50, 0.5), (p99, 0.99), (2 * p99 if p99 > 0 else 1.0, 1.0)]

    def g(x: float) -> float:
        for (x0, y0), (x1, y1) in itertools.pairwise(knots):
            if x <= x1:
                return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
        return 1.0

    f = [g(b) for b in bounds]
    edges = [0.0, *bounds]  # edges[i], edges[i + 1] bound bucket i; value at edge j is cdf(j)

    def cdf(j: int) -> float:
        return 0.0 if j == 0 else f[j - 1]

    def fits(j: int, v: float) -> bool:  # may edge j take v and keep f monotone in [0, 1]?
        lo = cdf(j - 1) if j > 0 else 0.0
        hi = f[j] if j < len(f) else 1.0
        return j > 0 and lo <= v <= hi and 0.0 <= v <= 1.0

    fixed: set[int] = {0}
    exact: list[bool] = []
    for p, q in ((p50, 0.5), (p99, 0.99)):
        i = bisect.bisect_left(bounds, p)  # bucket i holds p: edges[i] < p <= edges[i + 1]
        if i >= len(bounds) or i + 1 in fixed:  # above the last bound, or p50's bucket again
            exact.append(False)
            fixed.update((i, i + 1))
            continue
        a, b = edges[i], edges[i + 1]
        x = (p - a) / (b - a)
        ok = False
        if i in fixed:  # the lower edge is 0 or shared with the other quantile's bucket
            lo = cdf(i)
            if x > 0 and q > lo:
                vb = lo + (q - lo) / x
                if fits(i + 1, vb) or (vb <= 1.0 and i + 1 == len(f)):
                    f[i] = min(vb, 1.0)
                    ok = True
        else:
            lo, hi = cdf(i - 1), (f[i + 1] if i + 1 < len(f) else 1.0)
            d = cdf(i + 1) - cdf(i)  # as steep as G, or less where the neighbours demand it
            if x > 0:
                d = min(d, (q - lo) / x)
            if x < 1:
                d = min(d, (hi - q) / (1 - x))
            va, vb = q - x * d, q + (1 - x) * d
            if fits(i, va) and fits(i + 1, vb):
                f[i - 1], f[i] = va, vb
                ok = True
        fixed.update((i, i + 1))
        exact.append(ok)
    for j in range(1, len(f)):  # keep it monotone whatever happened above
        f[j] = max(f[j], f[j - 1])
    return f, exact[0], exact[1]


def _mean(bounds: Sequence[float], cdf: Sequence[float]) -> float:
    total, prev_b, prev_f = 0.0, 0.0, 0.0
    for b, f in zip(bounds, cdf, strict=True):
        total += (f - prev_f) * (prev_b + b) / 2
        prev_b, prev_f = b, f
    return total + (1.0 - prev_f) * prev_b * 1.5


def _rates(ep: ServedEndpoint) -> dict[str, float]:
    """Per-second increments of every counter of this endpoint (keys are private to this module)."""
    ok, err = ep.qps * (1 - ep.error_rate), ep.qps * ep.error_rate
    r: dict[str, float] = {"req": ep.qps, "ok": ok, "err": err}
    if ep.server == "vllm":
        bounds = VLLM_E2E_BUCKETS
        cdf, _, _ = histogram_cdf(bounds, ep.p50_ms / 1e3, ep.p99_ms / 1e3)
        r["sum"] = ep.qps * _mean(bounds, cdf)
    elif ep.server == "tfserving":
        bounds = TFSERVING_LATENCY_BUCKETS_US
        cdf, _, _ = histogram_cdf(bounds, ep.p50_ms * 1e3, ep.p99_ms * 1e3)
        r["sum"] = ep.qps * _mean(bounds, cdf)
    else:
        bounds, cdf = (), []
        r["sum"] = ep.qps * ep.p50_ms * 1e3  # µs: triton summary _sum, torchserve latency
        r["dur"] = ok * ep.p50_ms * 1e3  # µs: triton's duration counter, of successful requests
        r["queue_us"] = ep.qps * ep.queue * 1e3
    for i, frac in enumerate(cdf):
        r[f"le{i}"] = ep.qps * frac
    return r


class _Endpoint:
    def __init__(self, ep: ServedEndpoint, now: float, uptime: float) -> None:
        self.ep = ep
        self.rates = _rates(ep)
        self.acc = {k: v * uptime for k, v in self.rates.items()}
        self.t = now

    def values(self, now: float) -> dict[str, float]:
        dt = now - self.t
        return {k: self.acc[k] + v * dt for k, v in self.rates.items()}

    def change(self, now: float, ep: ServedEndpoint) -> None:
        self.acc, self.t = self.values(now), now
        self.ep = ep
        self.rates = _rates(ep)
        for k in self.rates:
            self.acc.setdefault(k, 0.0)


class _AsClientWrites(Collector):
    """The exporter's families as prometheus_client's own metric classes give them: a counter's samples
    end in ``_total`` (the family name without it)."""

    def __init__(self, exporter: FleetExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        for m in self.exporter.collect():
            if m.type != "counter":
                yield m
                continue
            counter = Metric(m.name, m.documentation, "counter")  # drops a trailing _total from the name
            for sample in m.samples:
                name = sample.name if sample.name.endswith("_total") else f"{counter.name}_total"
                counter.add_sample(name, sample.labels, sample.value)
            yield counter


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class FleetExporter(Collector):
    """dcgm-exporter plus vLLM, Triton, TF Serving and TorchServe metrics on ``127.0.0.1:<port>/metrics``."""

    def __init__(
        self,
        gpus: Iterable[DcgmGpu] = (),
        endpoints: Iterable[ServedEndpoint] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        uptime: float = 3600.0,
        openmetrics: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self.openmetrics = openmetrics
        self._clock = clock
        self._uptime = uptime
        self._gpus: list[DcgmGpu] = []
        self._gpu_index: dict[str, int] = {}
        self._endpoints: dict[tuple[str, str], _Endpoint] = {}
        self.set_gpus(gpus)
        self.set_endpoints(endpoints)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.scrapes = 0  # /metrics requests served
        self.last_render_s = 0.0  # seconds the last /metrics took to render
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # --- state -------------------------------------------------------------------------------------
    def set_gpus(self, gpus: Iterable[DcgmGpu]) -> None:
        new = [dataclasses.replace(g) for g in gpus]
        with self._lock:
            self._gpus = new
            self._gpu_index = {g.uuid: i for i, g in enumerate(new)}

    def set_endpoints(self, endpoints: Iterable[ServedEndpoint]) -> None:
        now = self._clock()
        new: dict[tuple[str, str], _Endpoint] = {}
        for ep in endpoints:
            if ep.server not in SERVERS:
                raise ValueError(f"unknown server {ep.server!r}: one of {SERVERS}")
            new[(ep.namespace, ep.service)] = _Endpoint(dataclasses.replace(ep), now, self._uptime)
        with self._lock:
            self._endpoints = new

    def update_gpu(self, uuid: str, **changes: Any) -> None:
        with self._lock:
            i = self._gpu_index[uuid]
            self._gpus[i] = dataclasses.replace(self._gpus[i], **changes)

    def update_endpoint(self, namespace: str, service: str, **changes: Any) -> None:
        with self._lock:
            e = self._endpoints[(namespace, service)]
            e.change(self._clock(), dataclasses.replace(e.ep, **changes))

    @property
    def gpus(self) -> list[DcgmGpu]:
        with self._lock:
            return [dataclasses.replace(g) for g in self._gpus]

    @property
    def endpoints(self) -> list[ServedEndpoint]:
        with self._lock:
            return [dataclasses.replace(e.ep) for e in self._endpoints.values()]

    # --- exposition --------------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """The Collector path: every family as prometheus_client Metric objects (slow for big fleets)."""
        with self._lock:
            gpus = list(self._gpus)
            families = self._server_families()
        for name, mtype, doc, attr in DCGM_METRICS:
            m = Metric(name, doc, mtype)
            for g in gpus:
                v = getattr(g, attr)
                if v is not None:
                    m.add_sample(name, dcgm_labels(g), float(v))
            if m.samples:
                yield m
        yield from families

    def render(self) -> bytes:
        """What ``/metrics`` serves: the DCGM families written straight to text, then the servers'."""
        with self._lock:
            gpus = list(self._gpus)
            families = self._server_families()
        labels = [_labelstr(dcgm_labels(g)) for g in gpus]
        out: list[str] = []
        fmt = floatToGoString
        for name, mtype, doc, attr in DCGM_METRICS:
            lines = [
                f"{name}{{{ls}}} {fmt(v)}\n"
                for g, ls in zip(gpus, labels, strict=True)
                if (v := getattr(g, attr)) is not None
            ]
            if lines:
                out.append(f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n")
                out.extend(lines)
        out.append(_render_families(families))
        return "".join(out).encode()

    def render_openmetrics(self) -> bytes:
        """What a prometheus_client 0.26 server serves to an OpenMetrics scraper: the same families through
        the client's writer (names escaped, counters' samples ``<name>_total``)."""
        typed = CollectorRegistry(auto_describe=False)
        typed.register(_AsClientWrites(self))
        return cast(bytes, generate_openmetrics(typed))

    def _server_families(self) -> list[Metric]:  # under the lock
        now = self._clock()
        fams: dict[str, Metric] = {}

        def fam(name: str, mtype: str, doc: str) -> Metric:
            if name not in fams:
                fams[name] = Metric(name, doc, mtype)
            return fams[name]

        for e in self._endpoints.values():
            ep, v = e.ep, e.values(now)
            where = {"namespace": ep.namespace, "service": ep.service}
            if ep.server == "vllm":
                lab = {"model_name": ep.model, **where}
                running = round(ep.qps * ep.p50_ms / 1e3)  # Little's law
                fam("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.")
                fams["vllm:num_requests_running"].add_sample("vllm:num_requests_running", lab, running)
                fam("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.")
                fams["vllm:num_requests_waiting"].add_sample("vllm:num_requests_waiting", lab, ep.queue)
                h = "vllm:e2e_request_latency_seconds"
                fam(h, "histogram", "Histogram of e2e request latency in seconds.")
                self._histogram(fams[h], h, lab, VLLM_E2E_BUCKETS, v)
                c = "vllm:request_success_total"
                fam(c, "counter", "Count of successfully processed requests.")
                fams[c].add_sample(c, {**lab, "finished_reason": "stop"}, v["ok"])
                c = "http_requests_total"
                fam(c, "counter", "Total number of requests by method, status and handler.")
                for status, key in (("2xx", "ok"), ("5xx", "err")):
                    fams[c].add_sample(
                        c,
                        {"handler": "/v1/chat/completions", "method": "POST", "status": status, **where},
                        v[key],
                    )
            elif ep.server == "triton":
                lab = {"model": ep.model, "version": "1", **where}
                for name, doc, val, extra in (
                    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes",  # noqa: E501
                     v["ok"], {}),
                    ("nv_inference_request_failure", "Number of failed inference requests, all batch sizes",
                     v["err"], {"reason": "BACKEND"}),
                    ("nv_inference_request_duration_us",
                     "Cumulative inference request duration in microseconds (includes cached requests)",
                     v["dur"], {}),
                ):  # fmt: skip
                    fam(name, "counter", doc).add_sample(name, {**lab, **extra}, val)
                g = "nv_inference_pending_request_count"
                fam(g, "gauge", "Instantaneous number of pending requests awaiting execution per-model.")
                fams[g].add_sample(g, lab, ep.queue)
                s = "nv_inference_request_summary_us"
                if ep.summary:
                    fam(s, "summary", "Summary of inference request duration in microseconds (includes "
                        "cached requests)")  # fmt: skip
                    for q, ms in (("0.5", ep.p50_ms), ("0.99", ep.p99_ms)):
                        fams[s].add_sample(s, {**lab, "quantile": q}, ms * 1e3)
                    fams[s].add_sample(s + "_sum", lab, v["sum"])
                    fams[s].add_sample(s + "_count", lab, v["req"])
            elif ep.server == "tfserving":
                lab = {"model_name": ep.model, **where}
                c = ":tensorflow:serving:request_count"
                fam(c, "counter", "The total number of requests.")
                fams[c].add_sample(c, {**lab, "status": "OK"}, v["ok"])
                fams[c].add_sample(c, {**lab, "status": "INTERNAL"}, v["err"])
                h = ":tensorflow:serving:request_latency"
                fam(
                    h,
                    "histogram",
                    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                )
                hl = {**lab, "API": "predict", "entrypoint": "GRPC"}
                self._histogram(fams[h], h, hl, TFSERVING_LATENCY_BUCKETS_US, v)
            else:  # torchserve
                lab = {
                    "model_name": ep.model,
                    "model_version": "default",
                    "hostname": f"{ep.service}-0",
                    **where,
                }
                for name, doc, val in (
                    ("ts_inference_requests_total", "Total number of inference requests.", v["req"]),
                    ("ts_inference_latency_microseconds", "Cumulative inference duration in microseconds",
                     v["sum"]),
                    ("ts_queue_latency_microseconds", "Cumulative queue duration in microseconds",
                     v["queue_us"]),
                ):  # fmt: skip
                    fam(name, "counter", doc).add_sample(name, lab, val)
        return list(fams.values())

    @staticmethod
    def _histogram(
        m: Metric, name: str, labels: dict[str, str], bounds: Sequence[float], v: dict[str, float]
    ) -> None:
        for i, b in enumerate(bounds):
            m.add_sample(name + "_bucket", {**labels, "le": floatToGoString(b)}, v[f"le{i}"])
        m.add_sample(name + "_bucket", {**labels, "le": "+Inf"}, v["req"])
        m.add_sample(name + "_sum", labels, v["sum"])
        m.add_sample(name + "_count", labels, v["req"])

    # --- HTTP --------------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        t0 = time.perf_counter()
        if self.openmetrics and "application/openmetrics-text" in environ.get("HTTP_ACCEPT", ""):
            body, content_type = self.render_openmetrics(), CONTENT_TYPE_OPENMETRICS
        else:
            body, content_type = self.render(), CONTENT_TYPE_PLAIN_0_0_4
        self.last_render_s = time.perf_counter() - t0
        self.scrapes += 1
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def start(self, sock: socket.socket | None = None) -> None:
        """Serve on a new port on 127.0.0.1, or on ``sock``, a socket already listening (the warm
        Prometheus pool hands one out: its server already scrapes that port)."""
        if self._server is not None:
            return
        if sock is None:
            self._server = make_server("127.0.0.1", 0, self._app, ThreadingWSGIServer, handler_class=_Quiet)
        else:
            server = ThreadingWSGIServer(sock.getsockname(), _Quiet, bind_and_activate=False)
            server.socket.close()
            server.socket = sock
            host, port = sock.getsockname()[:2]
            server.server_address = (host, port)
            server.server_name, server.server_port = host, port
            server.setup_environ()
            server.set_app(self._app)
            self._server = server
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name="fleet-exporter",
        )  # fmt: skip
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the exporter is not started")
        return int(self._server.server_address[1])

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}/metrics"

    def __enter__(self) -> FleetExporter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- fleets ---------------------------------------------------------------------------------------------


def gpu_uuid(host_index: int, gpu: int) -> str:
    """A stable, well-formed UUID for GPU ``gpu`` of host number ``host_index``."""
    return f"GPU-{host_index:08x}-{gpu:04x}-4000-8000-{host_index * 16 + gpu:012x}"


def default_fleet() -> tuple[list[DcgmGpu], list[ServedEndpoint]]:
    """The ``fleet_exporter`` fixture's fleet: 2 hosts × 2 H200; ``gpu-a`` says ``Hostname``, ``gpu-b``
    ``hostname``; gpu-a's GPU 0 runs pod ml-prod/llm-serve-0; one endpoint per server type in ml-prod.
    Every latency is chosen so that both quantiles are exact (see :func:`histogram_cdf`)."""
    gpus = [
        DcgmGpu(host="gpu-a", gpu=0, uuid=gpu_uuid(0, 0), util=87.0, fb_used=120000.0, fb_free=23771.0,
                temp=64.0, power=610.0, gr_active=0.81, pod="llm-serve-0", namespace="ml-prod",
                container="vllm"),
        DcgmGpu(host="gpu-a", gpu=1, uuid=gpu_uuid(0, 1)),
        DcgmGpu(host="gpu-b", gpu=0, uuid=gpu_uuid(1, 0), hostname_label="hostname", util=12.0, temp=41.0),
        DcgmGpu(host="gpu-b", gpu=1, uuid=gpu_uuid(1, 1), hostname_label="hostname", xid=79, throttle=0x40),
    ]  # fmt: skip
    endpoints = [
        ServedEndpoint("vllm", "ml-prod", "llm-serve", "meta-llama/Llama-3.1-8B-Instruct",
                       qps=12.0, error_rate=0.05, p50_ms=650.0, p99_ms=4000.0, queue=3),
        ServedEndpoint("triton", "ml-prod", "ranker", "ranker-onnx", qps=50.0, error_rate=0.02,
                       p50_ms=8.0, p99_ms=30.0, queue=1),
        ServedEndpoint("tfserving", "ml-prod", "wide-deep", "wide_deep", qps=30.0, error_rate=0.01,
                       p50_ms=5.0, p99_ms=25.0),
        ServedEndpoint("torchserve", "ml-prod", "resnet", "resnet50", qps=20.0, p50_ms=15.0, p99_ms=60.0,
                       queue=2),
    ]  # fmt: skip
    return gpus, endpoints


def big_fleet(n_gpus: int, gpus_per_host: int = 8) -> list[DcgmGpu]:
    """``n_gpus`` GPUs, 8 per host, every other host mapped to a pod: for the scale benchmark."""
    out = []
    for i in range(n_gpus):
        h, g = divmod(i, gpus_per_host)
        mapped = h % 2 == 0
        out.append(
            DcgmGpu(
                host=f"node-{h:05d}", gpu=g, uuid=gpu_uuid(h, g), util=float(i % 101),
                fb_used=float(i % 143771), temp=30.0 + i % 50, power=70.0 + i % 600,
                gr_active=(i % 100) / 100, throttle=0 if i % 3 else 4,
                pod=f"train-{h // 4:04d}-{h % 4}" if mapped else "", namespace="ml-train" if mapped else "",
                container="trainer" if mapped else "", hostname_label="hostname" if h % 2 else "Hostname",
            )
        )  # fmt: skip
    return out


def _check_exact() -> None:  # import-time sanity: the default fleet's quantiles are exact
    for ep in default_fleet()[1]:
        if ep.server == "vllm":
            _, e50, e99 = histogram_cdf(VLLM_E2E_BUCKETS, ep.p50_ms / 1e3, ep.p99_ms / 1e3)
        elif ep.server == "tfserving":
            _, e50, e99 = histogram_cdf(TFSERVING_LATENCY_BUCKETS_US, ep.p50_ms * 1e3, ep.p99_ms * 1e3)
        else:
            continue
        assert e50 and e99, ep
    assert not math.isnan(_mean(VLLM_E2E_BUCKETS, [1.0] * len(VLLM_E2E_BUCKETS)))


_check_exact()
