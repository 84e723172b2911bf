"""GPU telemetry (dcgm-exporter) and model-server traffic read from Prometheus' HTTP API.

One fetch asks a handful of instant queries at once, on a small thread pool: one for every GPU's identity
and utilisation; one per other DCGM reading, ``max by (UUID)`` so that at 40,000 GPUs each answer carries
one short label per series, and ``!= 0`` for the readings that are 0 on a healthy GPU (XID, ECC, throttle
reasons) so that those answers are nearly empty; the SM clock, graphics-engine activity and the idle GPUs'
history only every ``SLOW_EVERY`` fetches, and the framebuffer size only when a GPU without one shows up;
per enabled model server one per endpoint figure (see :mod:`aios_tui.sources._prom_queries`); and ``up``
of the scrape targets that serve those series. A query of the core (GPUs, endpoints) failing fails the
fetch with a message that names the query, and the poller keeps the last good data, marked stale; one of
the others (targets, label hints, idle history) failing makes the source partial, with that sentence.

What it gives: a :class:`Gpu` per dcgm-exporter GPU on its node (``Hostname``/``hostname``, or the label
``node_label`` names), allocated to ``namespace/pod`` when the exporter maps GPUs to pods; a :class:`Node`
per host (Kubernetes' own node wins where both exist: the poller merges by name); an :class:`Endpoint` per
``namespace``/endpoint label with traffic (replica counts unknown: Kubernetes' endpoint of the same key
has them); a :class:`SourcePart` per scrape target, a stopped exporter in error with the time it was last
up. Every label value is remote text, cleaned (:func:`aios_tui.domain.text.clean`) before it enters a
domain object; queries still select by the value as stored.

The HTTP side is ``requests`` with its answers streamed: an answer larger than ``max_answer_mb`` is refused
as soon as it is (a 100 MB answer used to be read whole, decoded and kept: a 1.98 GB console), gzip
included (inflated in steps, never past the limit). Every request has the source's timeout, sent to the
server too, and no retries. Errors are said in words: Prometheus' own ``errorType`` and message, the HTTP
status, an HTML page where JSON was expected, and what :func:`describe_error` knows (refused, DNS, TLS,
timeouts). Credentials in the URL become a Basic ``Authorization`` header and never appear in a message.

History for sparklines comes from range queries of the points the poller asks for (``points`` values,
``step`` apart, never over Prometheus' 11,000 points), asked in the background the first time a sparkline
wants them and then at most once per ``step``: :meth:`PrometheusSource.history` never blocks, so a detail
view shows what is cached and fills in on its next redraw.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import gc
import http
import json
import logging
import math
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from aios_tui.config import PrometheusSettings
from aios_tui.domain import NA, Endpoint, Gpu, Metric, Node, SourcePart, SourceState, Throttle, is_na
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.errors import describe_error
from aios_tui.domain.model import short_gpu_model
from aios_tui.domain.text import clean
from aios_tui.sources import _prom_queries as pq
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import SourceData, SourceError

__all__ = ["PrometheusSource"]

log = logging.getLogger("aios_tui.sources.prometheus")

_WORKERS = 6
_ENDPOINT_FIELDS = ("qps", "p50_ms", "p99_ms", "mean_ms", "error_rate", "queue")
_CHUNK = 256 * 1024
"""Bytes read from the socket at a time: the limit is checked after each."""
_OPTIONAL = frozenset({"targets", "endpoint labels", "idle GPUs", "last up", "GPU XID times"})
"""Queries whose failure leaves the source partial rather than failed: they qualify the data, not give it."""
_GPU_QUERIES = frozenset({"GPUs", "idle GPUs"})
"""With the ``GPU …`` readings, what the GPUs are built from."""
_MAX_DOWN_ASKED = 100
"""Down targets whose last ``up`` is asked in one query (the rest say "down", without since when)."""


@dataclass(slots=True)
class _Cached:
    values: list[float]
    at: float
    pending: bool = False


@dataclass(slots=True)
class _Identity:
    """The GPU identity answer, cleaned: a row per GPU, ``(node, index, uuid as stored, uuid as shown,
    model, pod, utilisation)``."""

    host_labels: tuple[str, ...]
    rows: list[tuple[str, int, str, str, str, str, Metric]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    hosts: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Node name as shown → (label, value as stored) that selects its series."""
    uuid_of: dict[str, str] = field(default_factory=dict)
    raw_uuids: dict[str, str] = field(default_factory=dict)
    no_host: int = 0
    malformed: int = 0


class _Answer(Exception):
    """A query's answer could not be used; the message says why in words."""


class _Http:
    """Prometheus' HTTP API: one base URL, a pooled session, bounded and timed reads."""

    def __init__(self, url: str, *, token: str, verify_tls: bool, timeout: float, max_mb: float) -> None:
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            port = 0
        if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:  # the settings check it
            raise SourceError("[prometheus] url: expected http://host:port or https://host:port")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = f"{host}:{port}" if port else host
        self.base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        """The URL without credentials: safe to show."""
        self.headers = {"Accept-Encoding": "gzip", "Accept": "application/json"}
        self.credentials = ""
        """What the server was given to log in, for a 401's message."""
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
            self.credentials = "the bearer token"
        elif parts.username is not None:
            self.credentials = "the URL's user and password"
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        self.timeout = timeout
        self.max_mb = max_mb
        self.max_bytes = int(max_mb * 2**20)
        import requests
        import urllib3

        if not verify_tls:  # chosen in the settings: a warning per request would be printed over the console
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        # One session for the pool's threads: its connection pool (10 connections) is thread-safe, and it
        # keeps what requests gives (proxies from the environment, REQUESTS_CA_BUNDLE) without retries.
        self._session = requests.Session()
        self._verify = verify_tls
        self._session.headers.update(self.headers)

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, params: Mapping[str, str]) -> Any:
        """The ``data`` of a successful answer; :class:`_Answer` with the reason in words otherwise."""
        import requests
        import urllib3

        deadline = time.monotonic() + self.timeout
        try:
            response = self._session.get(
                f"{self.base}{path}",
                params={**params, "timeout": f"{self.timeout:g}s"},  # Prometheus stops evaluating then too
                stream=True,
                timeout=(self.timeout, self.timeout),
                # Per request: a session's verify=False loses to $REQUESTS_CA_BUNDLE (requests#3829).
                verify=self._verify,
            )
        except requests.Timeout:
            raise _Answer(f"timed out after {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise _Answer(describe_error(exc, timeout=self.timeout)) from None
        try:
            body = self._read(response, deadline)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Answer(describe_error(exc, timeout=self.timeout)) from None
        finally:
            response.close()
        return self._decode(response.status_code, body)

    def _read(self, response: Any, deadline: float) -> bytes:
        """The body, inflated, refused as soon as it is larger than the limit (never read whole first)."""
        limit = self.max_bytes
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise _Answer(self._too_big())
        encoding = response.headers.get("Content-Encoding", "").lower()
        if encoding not in ("", "identity", "gzip"):
            raise _Answer(f"the answer came with Content-Encoding {clean(encoding, 40)!r}, not gzip")
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if encoding == "gzip" else None
        parts: list[bytes] = []
        size = 0
        raw = response.raw
        while chunk := raw.read(_CHUNK, decode_content=False):
            if inflate is not None:
                try:
                    chunk = inflate.decompress(chunk, limit + 1 - size)
                except zlib.error as exc:
                    raise _Answer(f"the gzip answer is corrupt ({exc})") from None
                if inflate.unconsumed_tail:  # more output than the limit allows
                    raise _Answer(self._too_big())
            size += len(chunk)
            if size > limit:
                raise _Answer(self._too_big())
            parts.append(chunk)
            if time.monotonic() > deadline:
                raise _Answer(f"timed out after {self.timeout:g}s (the answer was still arriving)")
        return b"".join(parts)

    def _too_big(self) -> str:
        mb = f"{self.max_mb:g} MB"
        return f"the answer is over {mb} ([prometheus] max_answer_mb): narrow the query or raise the limit"

    def _decode(self, status: int, body: bytes) -> Any:
        doc: Any = None
        problem = ""
        try:
            doc = json.loads(body)
        except ValueError as exc:  # HTML from a proxy, truncated JSON, not UTF-8
            problem = describe_error(exc)
        if status != http.HTTPStatus.OK:
            raise _Answer(self._http_error(status, doc, body))
        if problem:
            raise _Answer(problem)
        if not isinstance(doc, dict) or doc.get("status") != "success" or "data" not in doc:
            raise _Answer(_api_error(doc) or "the answer is not a Prometheus API answer")
        return doc["data"]

    def _http_error(self, status: int, doc: Any, body: bytes) -> str:
        try:
            phrase = http.HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "error"
        said = f"HTTP {status} {phrase}"
        if status == http.HTTPStatus.UNAUTHORIZED:
            said += (
                f": {self.credentials} refused"
                if self.credentials
                else ": the server wants credentials "
                "([prometheus] bearer_token_env, or user:password in the URL)"
            )
        elif status == http.HTTPStatus.FORBIDDEN:
            said += ": these credentials may not read this server" if self.credentials else ""
        elif status == http.HTTPStatus.NOT_FOUND:
            said += ": is the URL Prometheus' own (its API is under /api/v1)?"
        api = _api_error(doc)
        if api:
            return f"{said}: {api}"
        if body.lstrip()[:1] == b"<":
            return f"{said}: an HTML page came back, not Prometheus' JSON (a proxy or a login page?)"
        text = clean(body[:200].decode("utf-8", "replace"), 100).strip()
        return f"{said}: {text}" if text and status not in (401, 403, 404) else said


def _api_error(doc: Any) -> str:
    """``bad_data: 1:15: parse error …`` from Prometheus' error envelope, or ""."""
    if isinstance(doc, dict) and doc.get("status") == "error":
        kind, error = clean(doc.get("errorType", ""), 40), clean(doc.get("error", ""), 300)
        return ": ".join(p for p in (kind, error) if p) or "error"
    return ""


class PrometheusSource:
    """DCGM GPU metrics, endpoint traffic, scrape-target health and sparkline history from one Prometheus."""

    kind = "prometheus"
    keeps_lost = True
    """Telemetry: a GPU it no longer sees may only be unreadable (its exporter stopped), not gone."""

    def __init__(
        self,
        *,
        name: str = "prometheus",
        settings: PrometheusSettings,
        idle_window: float = 600.0,
        qualify: bool = False,
        clock: Callable[[], float] = wall_now,
        env: Mapping[str, str] | None = None,
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
        self._http = _Http(
            settings.url,
            token=token,
            verify_tls=settings.verify_tls,
            timeout=settings.timeout,
            max_mb=settings.max_answer_mb,
        )
        self._shown_url = self._http.base
        self._pool = concurrent.futures.ThreadPoolExecutor(_WORKERS, thread_name_prefix=f"prom:{name}")
        self._builder = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"prom:{name}:build")
        self._lock = threading.Lock()
        self._history: dict[tuple[str, int, float], _Cached] = {}
        self._hosts: dict[str, tuple[str, str]] = {}
        """Node name as shown → (label, value as stored) that selects its series."""
        self._endpoint_sel: dict[str, tuple[str, str, str]] = {}
        """Endpoint key as shown → (model server, namespace, name as stored) of the queries that gave it."""
        self._gr_active: Mapping[str, float] = MappingProxyType({})
        self._gr_from: object = None
        self._mem_total: dict[str, float] = {}
        """Framebuffer size per GPU UUID: asked again only when a GPU without one shows up."""
        self._need_mem_total = True
        self._slow: dict[str, dict[str, Metric]] = {}
        """The last answers for the readings asked only every ``SLOW_EVERY`` fetches."""
        self._fetches = 0
        self._need_slow = False
        self._low: dict[str, float] = {}
        """Since when each allocated GPU under 5 % has been so (uuid as stored)."""
        self._seen: set[str] = set()
        """The GPUs (uuid as stored) of the last fetch."""
        self._uuid_of: dict[str, str] = {}
        """GPU uuid as stored → as shown, for the GPUs of the last fetch."""
        self._raw_uuids: dict[str, str] = {}
        """GPU uuid as shown → as stored, where cleaning changed it (for its history)."""
        self._need_history = False
        """An idle GPU's history is unknown: the next fetch asks for it."""
        self._down_since: dict[tuple[str, str], float] = {}
        """Per down scrape target (job, instance as stored): when it was last up (0: not in the lookback)."""
        self._xid_at: dict[str, tuple[int, float]] = {}
        """Per GPU (uuid as stored): its XID and when it was first seen (:func:`pq.xid_since_query`)."""
        self._xid_unknown: dict[str, int] = {}
        """GPUs whose XID's time the next fetch asks for, with that XID."""
        self._xid_asked: dict[str, int] = {}
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
            asked = {what: loop.run_in_executor(self._pool, self._query, what, q) for what, q in jobs.items()}
            # The GPUs are built (off the event loop: 40,000 take ~0.2 s) as soon as their answers are in,
            # while the endpoints' and targets' queries still run: measured, that overlap is what brings
            # a refresh within 1.2× of sending the same queries and decoding them (docs/benchmarks.md).
            gpu_asked = [what for what in jobs if what in _GPU_QUERIES or what.startswith("GPU ")]
            results = await self._gather(asked, gpu_asked)
            building = loop.run_in_executor(self._builder, self._convert_gpus, results, now)
            try:
                results.update(await self._gather(asked, [w for w in jobs if w not in results]))
            finally:
                gpus = await building
            down = self._unknown_down(results.get("targets"))
            if down:  # a target seen down for the first time: when was it last up?
                query = pq.up_history_query(instance for _, instance in down)
                try:
                    results["last up"] = await loop.run_in_executor(self._pool, self._query, "last up", query)
                except SourceError as exc:
                    results["last up"] = exc
            data = self._assemble(gpus, results, now)
        finally:
            if paused:
                gc.enable()
        return self._names.data(data) if self._names is not None else data

    @staticmethod
    async def _gather(asked: Mapping[str, asyncio.Future[Any]], names: Sequence[str]) -> dict[str, Any]:
        """The answers to ``names``; the first failure of a query the data needs is raised (after every
        one has ended: none is left unobserved), the others' are kept as answers."""
        answers = await asyncio.gather(*(asked[n] for n in names), return_exceptions=True)
        got = dict(zip(names, answers, strict=True))
        failed = next(
            (a for n, a in got.items() if isinstance(a, BaseException) and n not in _OPTIONAL), None
        )
        if failed is not None:
            await asyncio.gather(*asked.values(), return_exceptions=True)
            raise failed
        return got

    async def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._builder.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._http.close)

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
            uuid = unq(key)
            return pq.gpu_history_query(metric, self._raw_uuids.get(uuid, uuid))
        if kind == "node" and metric == "util":
            host = self._hosts.get(key)
            return None if host is None else pq.node_util_query(*host)
        s = self._settings
        if kind == "endpoint" and metric in _ENDPOINT_FIELDS:
            server, namespace, name = self._endpoint_sel.get(key, ("", "", ""))
            queries = pq.SERVERS.get(server)
            template = queries.metrics.get(metric) if queries is not None else None
            if template is None:
                return None
            sel = {"namespace": namespace, s.endpoint_label: name}
            return pq.render(template, ["namespace", s.endpoint_label], sel, s.rate_window)
        return None

    def _load_history(
        self, ck: tuple[str, int, float], query: str, start: float, end: float, step: float, points: int
    ) -> None:
        values: list[float] | None = None
        try:
            params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
            data = self._http.get("/api/v1/query_range", params)
            result = data.get("result") if isinstance(data, dict) else None
            values = pq.series_values(result if isinstance(result, list) else [], start, step, points)
        except (_Answer, TypeError, ValueError, AttributeError) as exc:  # the next call asks again
            log.debug("source %s: history query failed: %s", self.name, exc)
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
        slow = self._need_slow or self._need_history or self._fetches % pq.SLOW_EVERY == 0
        self._fetches += 1
        out.update(
            (f"GPU {field}", pq.gpu_field_query(field))
            for field in pq.GPU_FIELDS
            if slow or field not in pq.SLOW_FIELDS
        )
        if self._need_mem_total:
            out["GPU memory total"] = pq.MEM_TOTAL
        self._xid_asked = dict(list(self._xid_unknown.items())[: pq.XID_ASKED])
        if self._xid_asked:
            out["GPU XID times"] = pq.xid_since_query(self._xid_asked.items())
        if self._idle_window > 0 and slow:
            out["idle GPUs"] = pq.low_since_query(self._idle_window)
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
        out["targets"] = pq.targets_query(s.servers)
        if s.servers:
            out["endpoint labels"] = pq.endpoint_labels_query(s.servers, s.endpoint_label)
        return out

    def _query(self, what: str, query: str) -> Any:
        """One instant query's result; a :class:`SourceError` naming ``what`` when it fails. The answers
        for one reading of every GPU are indexed by UUID here, on the pool, while others still arrive."""
        try:
            data = self._http.get("/api/v1/query", {"query": query})
        except _Answer as exc:
            data, reason = None, str(exc)
        else:
            reason = "the answer is not a list of series"
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list):
            # Raised outside the handler, so that it wraps nothing: the message is already in words, and
            # what it would wrap (urllib3's, the socket's) would be looked through and shown instead.
            raise SourceError(f"{self._shown_url} ({what} query): {reason}")
        if what == "GPUs":
            return self._identity(result)
        if what == "GPU memory total" or (what.startswith("GPU ") and what[4:] in pq.GPU_FIELDS):
            return pq.by_label(result, "UUID")
        return result

    def _unknown_down(self, targets: object) -> list[tuple[str, str]]:
        """Targets down in this answer whose last ``up`` is not known (at most :data:`_MAX_DOWN_ASKED`)."""
        if not isinstance(targets, list):
            return []
        down = []
        for item in targets:
            key = _target_key(item)
            if key is not None and pq.sample(item) == 0 and key not in self._down_since:
                down.append(key)
        return down[:_MAX_DOWN_ASKED]

    # --- conversion ----------------------------------------------------------------------------------

    def _convert_gpus(self, results: Mapping[str, Any], now: float) -> tuple[Any, ...]:
        """GPUs and nodes from the DCGM answers: ``(gpus, nodes, hosts, problems)``."""
        fields: dict[str, dict[str, Metric]] = {
            f: results[f"GPU {f}"] for f in pq.GPU_FIELDS if f"GPU {f}" in results
        }
        for slow in pq.SLOW_FIELDS:  # not asked this time: the last answer stands
            fields[slow] = self._slow[slow] = fields.get(slow, self._slow.get(slow, {}))
        if "GPU memory total" in results:
            totals = results["GPU memory total"]
            self._mem_total = {u: float(v) for u, v in totals.items() if not is_na(v)}
        problems: list[str] = []
        xid_times = results.get("GPU XID times")
        if isinstance(xid_times, list):
            for u, at in pq.by_label(xid_times, "UUID").items():
                if u in self._xid_asked and not is_na(at):
                    self._xid_at[u] = (self._xid_asked[u], float(at))
        low_answer = results.get("idle GPUs")
        if isinstance(low_answer, BaseException):
            problems.append(f"idle GPUs' history not read: {_reason(low_answer)}")
        ident: _Identity = results["GPUs"]
        gpus, skipped = self._gpus(ident, fields, low_answer, now)
        hosts = ident.hosts
        problems.extend(skipped)
        # A GPU new since the last answers gets them at the next fetch, not SLOW_EVERY fetches later.
        self._need_mem_total = not self._seen <= self._mem_total.keys()
        self._need_slow = not self._seen <= fields["sm_clock"].keys()
        if fields["gr_active"] is not self._gr_from:
            self._gr_from = fields["gr_active"]
            self._gr_active = MappingProxyType(
                {clean(u): float(v) for u, v in fields["gr_active"].items() if not is_na(v)}
            )
        per_node: dict[str, list[Gpu]] = {}
        for g in gpus:
            per_node.setdefault(g.node, []).append(g)
        nodes = tuple(self._node(name, node_gpus) for name, node_gpus in per_node.items())
        return tuple(gpus), nodes, hosts, problems

    def _assemble(self, gpu_part: tuple[Any, ...], results: Mapping[str, Any], now: float) -> SourceData:
        gpus, nodes, hosts, problems = gpu_part
        endpoints = self._endpoints(results)
        problems = [*problems, *self._label_hints(results.get("endpoint labels"))]
        parts, down = self._targets(results.get("targets"), results.get("last up"), now)
        q = self._names.q if self._names is not None else (lambda name: name)
        self._hosts = {q(name): host for name, host in hosts.items()}
        return SourceData(
            nodes=nodes,
            gpus=gpus,
            endpoints=endpoints,
            context=self._shown_url,
            problems=(*down, *problems),
            parts=parts,
        )

    def _identity(self, result: Sequence[Mapping[str, Any]]) -> _Identity:
        """Each GPU of the identity answer (the first of HA twins) with its labels cleaned, sorted by node
        and index. On the pool as soon as the answer is in, while the readings' queries still run."""
        host_labels = tuple(h for h in (self._settings.node_label, *pq.HOST_LABELS) if h)
        models: dict[str, str] = {}
        node_of: dict[str, str] = {}
        pod_of: dict[str, str] = {}
        # Each label value is cleaned once: hosts and pods repeat within a fetch, uuids across fetches.
        uuid_was = self._uuid_of
        out = _Identity(host_labels)
        seen, rows, uuid_of, sample = out.seen, out.rows, out.uuid_of, pq.sample
        for item in result:
            try:
                labels = item["metric"]
                u = labels.get("UUID")
                if not u or u in seen:
                    continue
                for host_label in host_labels:
                    raw_node = labels.get(host_label)
                    if raw_node:
                        break
                else:
                    out.no_host += 1  # a GPU on no host cannot be placed in the fleet
                    continue
                node = node_of.get(raw_node)
                if node is None:
                    node = node_of[raw_node] = clean(raw_node)
                    out.hosts[node] = (host_label, raw_node)
                pod, namespace = labels.get("pod"), labels.get("namespace")
                if pod and namespace:
                    pod_key = pod_of.get(pod)
                    if pod_key is None or not pod_key.startswith(namespace):  # rare: a name in two
                        pod_key = pod_of[pod] = f"{clean(namespace)}/{clean(pod)}"
                else:
                    pod_key = ""
                product = labels.get("modelName", "")
                model = models.get(product)
                if model is None:
                    model = models[product] = short_gpu_model(clean(product))
                uuid = uuid_was.get(u) or clean(u)
                if uuid is not u and uuid != u:
                    out.raw_uuids[uuid] = u
                index = labels.get("gpu", "")
                rows.append(
                    (node, int(index) if index.isdigit() and len(index) < 6 else len(rows), u, uuid, model,
                     pod_key, sample(item))
                )  # fmt: skip
                seen.add(u)
                uuid_of[u] = uuid
            except (AttributeError, KeyError, TypeError, ValueError):
                out.malformed += 1
        rows.sort(key=itemgetter(0, 1))
        return out

    def _gpus(
        self,
        ident: _Identity,
        fields: Mapping[str, Mapping[str, Metric]],
        low_answer: object,
        now: float,
    ) -> tuple[list[Gpu], list[str]]:
        """One :class:`Gpu` per GPU of :meth:`_identity`, with its readings; sentences for the series
        skipped. Written for speed: it runs over every GPU of the fleet at each fetch (40,000: ~0.15 s, of
        which 0.1 s is building the frozen Gpu objects themselves)."""
        used, temp, power, clock = (fields[f] for f in ("mem_used", "temp", "power", "sm_clock"))
        xids, dbe, sbe, masks = (fields[f] for f in ("xid", "ecc_uncorrected", "ecc_corrected", "throttle"))
        pending, failed, recovery, nvlink = (
            fields.get(f, {}) for f in ("remap_pending", "remap_failed", "recovery_action", "nvlink_errors")
        )
        xid_was = self._xid_at
        xid_at: dict[str, tuple[int, float]] = {}
        xid_unknown: dict[str, int] = {}
        mem_total = self._mem_total
        low_before = self._low_from_history(low_answer, now) if isinstance(low_answer, list) else self._low
        low_now: dict[str, float] = {}
        # A GPU read before and not idle then has gone idle since (its history is asked only when new).
        seen_before, low_earlier, asked = self._seen, self._low, low_answer is not None  # even if it failed
        need_history = False
        idle_pct, na, none = pq.IDLE_UTIL_PCT, NA, Throttle.NONE
        out: list[Gpu] = []
        for node, index, u, uuid, model, pod_key, util in ident.rows:
            low_since: Metric = na
            if pod_key and util is not na and util < idle_pct:  # type: ignore[operator]
                since = low_before.get(u)
                if since is None and (asked or (u in seen_before and u not in low_earlier)):
                    since = now  # gone under 5 % since the last fetch (or history has nothing)
                if since is not None:
                    low_since = low_now[u] = since
                else:
                    need_history = True
            mask = masks.get(u)  # the sparse readings are absent (0) on a healthy GPU
            xid = _int(xids[u]) if u in xids else 0
            seen_at = 0.0
            if xid:
                known = xid_was.get(u)
                if known is not None and known[0] == xid:
                    xid_at[u], seen_at = known, known[1]
                else:
                    xid_unknown[u] = xid  # asked at the next fetch
            out.append(
                Gpu(
                    node=node,
                    index=index,
                    uuid=uuid,
                    model=model,
                    util=util,
                    mem_used=used.get(u, na),
                    mem_total=mem_total.get(u, na),
                    temp=temp.get(u, na),
                    power=power.get(u, na),
                    sm_clock=clock.get(u, na),
                    xid=xid,
                    ecc_uncorrected=_int(dbe[u]) if u in dbe else 0,
                    ecc_corrected=_int(sbe[u]) if u in sbe else 0,
                    throttle=none if mask is None else Throttle(_int(mask) & 0xFF),
                    pod=pod_key,
                    low_since=low_since,
                    xid_at=seen_at,
                    recovery_action=_RECOVERY.get(_int(recovery[u]), "reboot") if u in recovery else "",
                    remap_pending=u in pending,
                    remap_failed=u in failed,
                    nvlink_errors=round(float(nvlink[u])) if u in nvlink and not is_na(nvlink[u]) else 0,
                )
            )
        self._low, self._seen, self._need_history = low_now, ident.seen, need_history
        self._xid_at, self._xid_unknown = xid_at, xid_unknown
        self._uuid_of, self._raw_uuids = ident.uuid_of, ident.raw_uuids
        skipped = []
        if ident.no_host:
            skipped.append(
                f"{ident.no_host} GPU series have no host label ({', '.join(ident.host_labels)}): set "
                "[prometheus] node_label to the label that names the node"
            )
        if ident.malformed:
            skipped.append(f"{ident.malformed} malformed GPU series skipped")
        return out, skipped

    def _low_from_history(self, answer: Sequence[Mapping[str, Any]], now: float) -> dict[str, float]:
        """Since when each allocated GPU now under 5 % has been so, from :func:`pq.low_since_query`'s
        answer: just after its last busy moment in the lookback, else (idle all the lookback) the earlier
        of the lookback's start and what this source saw before."""
        lookback, step = pq.low_since_grid(self._idle_window)
        earliest = now - lookback
        out: dict[str, float] = {}
        for item in answer:
            labels = item.get("metric") if isinstance(item, dict) else None
            u = labels.get("UUID") if isinstance(labels, dict) else None
            busy = pq.sample(item)
            if not u or busy is NA:
                continue
            if busy > 0:  # type: ignore[operator]
                out[u] = min(float(busy) + step, now)  # type: ignore[arg-type]
            else:
                out[u] = min(self._low.get(u, earliest), earliest)
        return out

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

    def _endpoints(self, results: Mapping[str, Any]) -> tuple[Endpoint, ...]:
        s = self._settings
        label = s.endpoint_label
        found: dict[tuple[str, str], dict[str, Any]] = {}
        shown: dict[str, str] = {}

        def each(result: Sequence[Mapping[str, Any]]) -> Any:
            for item in result:
                labels = item.get("metric") if isinstance(item, dict) else None
                if not isinstance(labels, dict):
                    continue
                namespace, name = labels.get("namespace", ""), labels.get(label, "")
                if namespace and name and isinstance(namespace, str) and isinstance(name, str):
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
                    model = labels.get(queries.model_label)
                    if model:
                        if model not in shown:
                            shown[model] = clean(model)
                        fields.setdefault("model", shown[model])
                        fields.setdefault("server", server)
        for i, custom in enumerate(s.queries, start=1):
            for fields, _, item in each(results[f"[[prometheus.queries]] #{i} {custom.metric}"]):
                fields[custom.metric] = pq.sample(item)
        q = self._names.q if self._names is not None else (lambda name: name)
        out = []
        self._endpoint_sel = {}
        for (namespace, name), fields in sorted(found.items()):
            e = Endpoint(
                namespace=clean(namespace),
                name=clean(name),
                source=self.name,
                replicas_known=False,  # Prometheus sees traffic, not the Deployment: 0/0 means unknown
                **fields,
            )
            self._endpoint_sel[f"{q(e.namespace)}/{e.name}"] = (e.server, namespace, name)
            out.append(e)
        return tuple(out)

    def _label_hints(self, answer: object) -> list[str]:
        """Sentences for model-server series that give no endpoint because a label is missing."""
        if isinstance(answer, BaseException):
            return [f"model-server labels not checked: {_reason(answer)}"]
        if not isinstance(answer, list):
            return []
        label, servers = self._settings.endpoint_label, self._settings.servers
        missing: dict[tuple[str, str], int] = {}
        for item in answer:
            labels = item.get("metric") if isinstance(item, dict) else None
            if not isinstance(labels, dict):
                continue
            server = pq.server_of(str(labels.get("__name__", "")), servers)
            count = pq.sample(item)
            for needed in ("namespace", label):
                if server and not labels.get(needed) and not is_na(count):
                    missing[server, needed] = missing.get((server, needed), 0) + int(count)  # type: ignore[arg-type]
        out = []
        for (server, needed), n in sorted(missing.items()):
            fix = (
                "add it by relabelling the scrape job"
                if needed == "namespace"
                else "set [prometheus] endpoint_label to the label that names the endpoint"
            )
            out.append(f"{n} {server} series have no {needed!r} label, so no endpoint: {fix}")
        return out

    def _targets(
        self, answer: object, last_up: object, now: float
    ) -> tuple[tuple[SourcePart, ...], list[str]]:
        """A part per scrape target serving dcgm-exporter or model-server series, and a sentence naming
        the ones down, with the time each was last up."""
        if isinstance(answer, BaseException):
            return (), [f"scrape targets not checked: {_reason(answer)}"]
        if not isinstance(answer, list):
            return (), []
        if isinstance(last_up, list):  # asked for the targets down without a known time (0: not lately)
            times = pq.last_up(last_up)
            self._down_since.update((k, times.get(k, 0.0)) for k in self._unknown_down(answer))
        parts: list[SourcePart] = []
        down: list[str] = []
        still_down: dict[tuple[str, str], float] = {}
        for item in answer:
            key = _target_key(item)
            if key is None:
                continue
            name = f"{clean(key[1])} ({clean(key[0])})"
            if pq.sample(item) == 1:
                parts.append(SourcePart(name, SourceState.OK, last_ok=now))
                continue
            since = self._down_since.get(key, 0.0)
            still_down[key] = since
            error = f"down since {_hms(since)}" if since else "down (not up in the last 10 minutes)"
            parts.append(SourcePart(name, SourceState.ERROR, last_ok=since, error=error))
            down.append(f"{name} {error}")
        self._down_since = still_down
        parts.sort(key=attrgetter("name"))
        if not down:
            return tuple(parts), []
        down.sort()
        listed = ", ".join(down[:3]) + (f" and {len(down) - 3} more" if len(down) > 3 else "")
        return tuple(parts), [f"{len(down)} of {len(parts)} scrape targets down: {listed}"]


def _target_key(item: object) -> tuple[str, str] | None:
    labels = item.get("metric") if isinstance(item, dict) else None
    if not isinstance(labels, dict):
        return None
    job, instance = labels.get("job"), labels.get("instance")
    return (job, instance) if isinstance(job, str) and isinstance(instance, str) else None


def _hms(t: float) -> str:
    """A time of day in UTC (the time zone named, so that it reads the same everywhere)."""
    return time.strftime("%H:%M:%S UTC", time.gmtime(t))


def _reason(exc: BaseException) -> str:
    """The words of a failed query without the URL (the source's context shows it)."""
    text = str(exc)
    return text.split("): ", 1)[1] if "): " in text else text


_RECOVERY = {1: "reset", 2: "reboot", 3: "drain_p2p", 4: "drain_and_reset"}
"""DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION, NVML's ``nvmlGpuRecoveryAction_t`` (0, none, is not asked); later
values (IMEX domain, bus reset, system reboot) read as a node reboot."""


def _int(value: Metric | None) -> int:
    if value is None or is_na(value):
        return 0
    number = float(value)
    return int(number) if math.isfinite(number) else 0
