"""GPU telemetry (dcgm-exporter) and model-server traffic read from Prometheus (``prometheus-api-client``).

One fetch asks a handful of instant queries at once, on a small thread pool (the client blocks): one for
every GPU's identity and utilisation; one per other DCGM reading, ``max by (UUID)`` so that at 40,000 GPUs
each answer carries one short label per series, and ``!= 0`` for the readings that are 0 on a healthy GPU
(XID, ECC, throttle reasons) so that those answers are nearly empty; the SM clock, graphics-engine activity
and the GPUs idle for the whole ``idle_window`` only every ``SLOW_EVERY`` fetches, and the framebuffer size
only when a GPU without one shows up; and per enabled model server one per endpoint figure (see
:mod:`aios_tui.sources._prom_queries`). Every request has the source's timeout, sent to the server too, and
no retries: the client's defaults are to wait forever and to retry 5xx answers. Any query failing fails the
fetch with a message that names the query; the poller then keeps the last good data, marked stale.

What it gives: a :class:`Gpu` per dcgm-exporter GPU on its node (``Hostname``/``hostname``, or the label
``node_label`` names), allocated to ``namespace/pod`` when the exporter maps GPUs to pods; a :class:`Node`
per host (Kubernetes' own node wins where both exist: the poller merges by name); an :class:`Endpoint` per
``namespace``/endpoint label with traffic, which fills the figures Kubernetes' endpoint of the same key lacks.

History for sparklines comes from range queries of the points the poller asks for (``points`` values,
``step`` apart, never over Prometheus' 11,000 points), asked in the background the first time a sparkline
wants them and then at most once per ``step``: :meth:`PrometheusSource.history` never blocks, so a detail
view shows what is cached and fills in on its next redraw.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aios_tui.config import PrometheusSettings
from aios_tui.domain import NA, Endpoint, Gpu, Metric, Node, Throttle, is_na
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.errors import describe_error
from aios_tui.domain.model import short_gpu_model
from aios_tui.sources import _prom_queries as pq
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import SourceData, SourceError

__all__ = ["PrometheusSource"]

log = logging.getLogger("aios_tui.sources.prometheus")

_WORKERS = 6
_ENDPOINT_FIELDS = ("qps", "p50_ms", "p99_ms", "error_rate", "queue")


@dataclass(slots=True)
class _Cached:
    values: list[float]
    at: float
    pending: bool = False


class PrometheusSource:
    """DCGM GPU metrics, endpoint traffic and sparkline history from one Prometheus server."""

    kind = "prometheus"

    def __init__(
        self,
        *,
        name: str = "prometheus",
        settings: PrometheusSettings,
        idle_window: float = 600.0,
        qualify: bool = False,
        clock: Callable[[], float] = wall_now,
        env: Mapping[str, str] | None = None,
        connect: Callable[..., Any] | None = None,
    ) -> None:
        self.name = name
        self.interval = settings.interval
        # A fetch is a few queries in parallel, each allowed ``settings.timeout``; leave room for the pool.
        self.timeout = settings.timeout * 2
        self._settings = settings
        self._idle_window = idle_window
        self._clock = clock
        self._names = Qualifier(settings.context) if qualify and settings.context else None
        env = os.environ if env is None else env
        token = env.get(settings.bearer_token_env, "") if settings.bearer_token_env else ""
        if settings.bearer_token_env and not token:
            raise SourceError(f"the environment variable {settings.bearer_token_env} is not set")
        self._url = settings.url.rstrip("/")
        self._shown_url = _without_credentials(self._url)
        self._client: Any = None
        self._connect = connect
        self._headers = {"Authorization": f"Bearer {token}"} if token else None
        self._pool = concurrent.futures.ThreadPoolExecutor(_WORKERS, thread_name_prefix=f"prom:{name}")
        self._lock = threading.Lock()
        self._history: dict[tuple[str, int, float], _Cached] = {}
        self._hosts: dict[str, tuple[str, str]] = {}
        """Node name as shown → (label, value) that selects its series."""
        self._servers: dict[str, str] = {}
        """Endpoint key as shown → the model server whose queries gave it."""
        self._gr_active: Mapping[str, float] = MappingProxyType({})
        self._mem_total: dict[str, float] = {}
        """Framebuffer size per GPU UUID: asked again only when a GPU without one shows up."""
        self._need_mem_total = True
        self._slow: dict[str, dict[str, Metric]] = {}
        """The last answers for the readings asked only every ``SLOW_EVERY`` fetches."""
        self._fetches = 0
        self._need_slow = False
        self._idle: set[str] = set()
        self._closed = False

    # --- Source --------------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        if self._closed:
            raise SourceError("source closed")
        loop = asyncio.get_running_loop()
        now = self._clock()
        jobs = self._queries()
        # At 40,000 GPUs the answers are ~300,000 small dicts and lists, none in a cycle: the cyclic
        # collector's passes over the whole heap that they trigger (the app holds a large snapshot) cost
        # more than the decoding itself (1.3 s → 0.5 s of CPU a fetch). Reference counting frees them.
        paused = gc.isenabled()
        gc.disable()
        try:
            answers = await asyncio.gather(
                *(loop.run_in_executor(self._pool, self._query, what, q) for what, q in jobs.items()),
                return_exceptions=True,
            )
            results: dict[str, list[Any]] = {}
            for what, answer in zip(jobs, answers, strict=True):
                if isinstance(answer, BaseException):
                    raise answer
                results[what] = answer
            # Off the event loop too: building 40,000 GPUs takes ~0.35 s, which would freeze the console.
            data = await loop.run_in_executor(self._pool, self._convert, results, now)
        finally:
            if paused:
                gc.enable()
        return self._names.data(data) if self._names is not None else data

    async def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._client is not None:
            client, self._client = self._client, None
            await asyncio.to_thread(client.close)

    # --- history (HistoryProvider) -------------------------------------------------------------------

    def history(self, kind: str, key: str, metric: str, points: int, step: float) -> Sequence[float]:
        """Cached range-query values for a sparkline; the first call (and one per ``step`` after) asks
        Prometheus in the background. Empty until the first answer arrives, or for what it cannot show."""
        query = self._history_query(kind, key, metric)
        if query is None or self._closed:
            return []
        now = self._clock()
        start, end, step, points = pq.range_grid(now, points, step)
        ck = (query, points, step)
        with self._lock:
            found = self._history.get(ck)
            entry = found if found is not None else self._history.setdefault(ck, _Cached([], 0.0))
            stale = found is None or (not entry.pending and now - entry.at >= step)
            if stale:
                entry.pending = True
        if stale:
            try:
                self._pool.submit(self._load_history, ck, query, start, end, step, points)
            except RuntimeError:  # the pool was shut down by close()
                return []
        return list(entry.values)

    def details(self) -> Mapping[str, float]:
        """Per GPU UUID, DCGM_FI_PROF_GR_ENGINE_ACTIVE (0..1, the fraction of time the graphics engine was
        busy: a truer "is it working" than utilisation) where the exporter has profiling metrics."""
        return self._gr_active

    def _history_query(self, kind: str, key: str, metric: str) -> str | None:
        unq = self._names.unq if self._names is not None else (lambda name: name)
        if kind == "gpu" and metric in pq.GPU_HISTORY:
            return pq.gpu_history_query(metric, unq(key))
        if kind == "node" and metric == "util":
            host = self._hosts.get(key)
            return None if host is None else pq.node_util_query(*host)
        s = self._settings
        if kind == "endpoint" and metric in _ENDPOINT_FIELDS:
            server = pq.SERVERS.get(self._servers.get(key, ""))
            template = server.metrics.get(metric) if server is not None else None
            if template is None:
                return None
            namespace, _, name = unq(key).rpartition("/")
            sel = {"namespace": namespace, s.endpoint_label: name}
            return pq.render(template, ["namespace", s.endpoint_label], sel, s.rate_window)
        return None

    def _load_history(
        self, ck: tuple[str, int, float], query: str, start: float, end: float, step: float, points: int
    ) -> None:
        values: list[float] | None = None
        try:
            result = self._client_or_connect().custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}",
                params={"timeout": f"{self._settings.timeout:g}s"},
                timeout=self._settings.timeout,
            )
            values = pq.series_values(result, start, step, points)
        except Exception as exc:  # the sparkline stays as it was; the next call asks again
            log.debug("source %s: history query failed: %s", self.name, _describe(exc))
        with self._lock:
            entry = self._history.get(ck)
            if entry is not None:
                entry.pending = False
                if values is not None:
                    entry.values, entry.at = values, self._clock()
            if len(self._history) > 256:  # detail views come and go: keep the latest few
                for old in list(self._history)[:-128]:
                    del self._history[old]

    # --- querying ------------------------------------------------------------------------------------

    def _queries(self) -> dict[str, str]:
        """What one fetch asks, by a name used in error messages."""
        s = self._settings
        out = {"GPUs": pq.gpu_identity_query(s.node_label)}
        slow = self._need_slow or self._fetches % pq.SLOW_EVERY == 0
        self._fetches += 1
        out.update(
            (f"GPU {field}", pq.gpu_field_query(field))
            for field in pq.GPU_FIELDS
            if slow or field not in pq.SLOW_FIELDS
        )
        if self._need_mem_total:
            out["GPU memory total"] = pq.MEM_TOTAL
        if self._idle_window > 0 and slow:
            out["idle GPUs"] = pq.idle_query(self._idle_window)
        by = ["namespace", s.endpoint_label]
        for server in s.servers:
            queries = pq.SERVERS[server]
            out.update(
                (f"{server} {m}", pq.render(t, by, window=s.rate_window)) for m, t in queries.metrics.items()
            )
            if queries.model:
                out[f"{server} model"] = pq.render(queries.model, [*by, queries.model_label])
        for i, custom in enumerate(s.queries, start=1):
            out[f"[[prometheus.queries]] #{i} {custom.metric}"] = custom.query
        return out

    def _client_or_connect(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
                client = self._client
        return client

    def _make_client(self) -> Any:
        if self._connect is not None:
            return self._connect(self._url)
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        return PrometheusConnect(
            url=self._url,
            headers=self._headers,
            disable_ssl=not self._settings.verify_tls,
            retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0),
            timeout=self._settings.timeout,
        )

    def _query(self, what: str, query: str) -> list[Any]:
        """One instant query's result list; a :class:`SourceError` naming ``what`` when it fails."""
        try:
            result = self._client_or_connect().custom_query(
                query, params={"timeout": f"{self._settings.timeout:g}s"}, timeout=self._settings.timeout
            )
        except Exception as exc:
            raise SourceError(f"{self._shown_url} ({what} query): {_describe(exc)}") from None
        if not isinstance(result, list):
            raise SourceError(f"{self._shown_url} ({what} query): the answer is not an instant vector")
        return result

    # --- conversion ----------------------------------------------------------------------------------

    def _convert(self, results: Mapping[str, list[Any]], now: float) -> SourceData:
        fields = {f: pq.by_label(results[f"GPU {f}"], "UUID") for f in pq.GPU_FIELDS if f"GPU {f}" in results}
        for slow in pq.SLOW_FIELDS:  # not asked this time: the last answer stands
            fields[slow] = self._slow[slow] = fields.get(slow, self._slow.get(slow, {}))
        if "GPU memory total" in results:
            totals = pq.by_label(results["GPU memory total"], "UUID")
            self._mem_total = {u: float(v) for u, v in totals.items() if not is_na(v)}
        if "idle GPUs" in results:  # asked every SLOW_EVERY fetches, like the slow readings
            self._idle = {item["metric"].get("UUID") for item in results["idle GPUs"]}
        idle = self._idle
        gpus, host_of = self._gpus(results["GPUs"], fields, idle, now)
        # A GPU new since the last answers gets them at the next fetch, not SLOW_EVERY fetches later.
        self._need_mem_total = any(g.uuid not in self._mem_total for g in gpus)
        self._need_slow = any(g.uuid not in fields["sm_clock"] for g in gpus)
        self._gr_active = MappingProxyType(
            {u: float(v) for u, v in fields["gr_active"].items() if not is_na(v)}
        )
        per_node: dict[str, list[Gpu]] = {}
        for g in gpus:
            per_node.setdefault(g.node, []).append(g)
        nodes = tuple(self._node(name, node_gpus) for name, node_gpus in per_node.items())
        endpoints = self._endpoints(results)
        q = self._names.q if self._names is not None else (lambda name: name)
        self._hosts = {q(name): host for name, host in host_of.items()}
        self._servers = {f"{q(e.namespace)}/{e.name}": e.server for e in endpoints}
        return SourceData(nodes=nodes, gpus=tuple(gpus), endpoints=endpoints, context=self._shown_url)

    def _gpus(
        self,
        identity: Sequence[Mapping[str, Any]],
        fields: Mapping[str, Mapping[str, Metric]],
        idle: set[str],
        now: float,
    ) -> tuple[list[Gpu], dict[str, tuple[str, str]]]:
        """One :class:`Gpu` per UUID in the identity answer (the first of HA twins), sorted by node and
        index, and per node the label and value that select its series. Written for speed: it runs over
        every GPU of the fleet at each fetch."""
        used, temp, power, clock = (fields[f] for f in ("mem_used", "temp", "power", "sm_clock"))
        xids, dbe, sbe, masks = (fields[f] for f in ("xid", "ecc_uncorrected", "ecc_corrected", "throttle"))
        mem_total = self._mem_total
        low_since = now - self._idle_window
        host_labels = tuple(h for h in (self._settings.node_label, *pq.HOST_LABELS) if h)
        models: dict[str, str] = {}
        hosts: dict[str, tuple[str, str]] = {}
        na, none, sample = NA, Throttle.NONE, pq.sample
        out: list[Gpu] = []
        seen: set[str] = set()
        for item in identity:
            labels = item["metric"]
            u = labels.get("UUID")
            if not u or u in seen:
                continue
            host_label = next((h for h in host_labels if labels.get(h)), None)
            if host_label is None:
                continue  # a GPU on no host cannot be placed in the fleet
            seen.add(u)
            node = labels[host_label]
            hosts[node] = (host_label, node)
            pod, namespace = labels.get("pod"), labels.get("namespace")
            pod_key = f"{namespace}/{pod}" if pod and namespace else ""
            product = labels.get("modelName", "")
            model = models.get(product)
            if model is None:
                model = models[product] = short_gpu_model(product)
            index = labels.get("gpu", "")
            mask = masks.get(u)  # the sparse readings are absent (0) on a healthy GPU
            out.append(
                Gpu(
                    node=node,
                    index=int(index) if index.isdigit() else len(out),
                    uuid=u,
                    model=model,
                    util=sample(item),
                    mem_used=used.get(u, na),
                    mem_total=mem_total.get(u, na),
                    temp=temp.get(u, na),
                    power=power.get(u, na),
                    sm_clock=clock.get(u, na),
                    xid=_int(xids.get(u)),
                    ecc_uncorrected=_int(dbe.get(u)),
                    ecc_corrected=_int(sbe.get(u)),
                    throttle=none if mask is None else Throttle(_int(mask) & 0xFF),
                    pod=pod_key,
                    low_since=low_since if pod_key and u in idle else na,
                )
            )
        out.sort(key=attrgetter("node", "index"))
        return out, hosts

    def _node(self, name: str, gpus: list[Gpu]) -> Node:
        used = sum(1 for g in gpus if g.pod)
        return Node(
            name=name,
            source=self.name,
            pool="prometheus",
            zone="",
            instance_type="",
            gpu_model=gpus[0].model,
            gpus_total=len(gpus),
            gpus_allocatable=len(gpus),
            gpus_requested=used,
        )

    def _endpoints(self, results: Mapping[str, list[Any]]) -> tuple[Endpoint, ...]:
        s = self._settings
        label = s.endpoint_label
        found: dict[tuple[str, str], dict[str, Any]] = {}

        def each(result: Sequence[Mapping[str, Any]]) -> Any:
            for item in result:
                labels = item.get("metric", {})
                namespace, name = labels.get("namespace", ""), labels.get(label, "")
                if namespace and name:
                    yield found.setdefault((namespace, name), {}), labels, item

        for server in s.servers:
            queries = pq.SERVERS[server]
            for metric in queries.metrics:
                for fields, _, item in each(results[f"{server} {metric}"]):
                    value = pq.sample(item)
                    if not is_na(value):
                        fields[metric] = value
                        fields.setdefault("server", server)
            if queries.model:
                for fields, labels, _ in each(results[f"{server} model"]):
                    if labels.get(queries.model_label):
                        fields.setdefault("model", labels[queries.model_label])
                        fields.setdefault("server", server)
        for i, custom in enumerate(s.queries, start=1):
            for fields, _, item in each(results[f"[[prometheus.queries]] #{i} {custom.metric}"]):
                fields[custom.metric] = pq.sample(item)
        return tuple(
            Endpoint(namespace=namespace, name=name, source=self.name, **fields)
            for (namespace, name), fields in sorted(found.items())
        )


def _int(value: Metric | None) -> int:
    return 0 if value is None or is_na(value) else int(float(value))


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _describe(exc: BaseException) -> str:
    """A short reason: Prometheus' own error text for a refused query, the cause for a failed connection."""
    text = str(exc)
    if type(exc).__name__ == "PrometheusApiClientException":
        # "HTTP Status Code 400 (b'{"status":"error","errorType":"bad_data","error":"…"}')"
        m = re.search(r"HTTP Status Code (\d+) \(b?(['\"])(.*)\2\)$", text, re.S)
        if m:
            try:
                body = json.loads(m[3].encode().decode("unicode_escape"))
                return f"HTTP {m[1]}: {body.get('errorType', '')}: {body.get('error', '')}"
            except (ValueError, AttributeError):
                return f"HTTP {m[1]}"
    name = type(exc).__name__
    if name in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout"):
        if "Connection refused" in text:
            return "connection refused"
        if "timed out" in text.lower() or "Timeout" in name:
            return "timed out"
    return describe_error(exc)
