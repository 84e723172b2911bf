"""Kubernetes: one cluster (one kubeconfig context) as a source, read through lists and watches.

The official ``kubernetes`` client is blocking, so everything it does runs in threads, and every call
carries an explicit ``_request_timeout`` (the client's own default is to wait forever). Reading follows
client-go's informers: each resource kind is listed once, in pages of 500 (``limit`` + ``continue``),
then watched from the list's ``resourceVersion`` with bookmarks. A watch that ends or drops resumes from
the last version seen; a ``410 Gone`` (the version was compacted away) re-lists; a failure to reconnect
backs off, doubling up to a cap, and the error is what :meth:`KubernetesSource.fetch` raises until the
watch is back, so the poller marks the source stale with its last good data.

Watches cannot tell a quiet cluster from a hung server (a partition without RST, a wedged process): each
fetch therefore asks ``/readyz`` within the timeout, and raises when it gets no answer, so the source is
stale at the next fetch rather than when the watches time out. The first list of a big cluster streams
in page by page (fetch gives what came so far, with a "still listing" problem) and has no deadline while
its pages keep coming.

Objects are converted to records when they arrive (``_k8s_convert``), so ``fetch()`` only joins records
(pods to nodes, ReplicaSets to Deployments, HPAs to endpoints) and reuses every domain object whose inputs
did not change; with nothing new since the last fetch it returns the same :class:`SourceData`.

What the API server sends is untrusted. Every read is size-bounded (:data:`MAX_PAGE_BYTES` for one answer,
:data:`MAX_EVENT_BYTES` for one watch event), checked as it streams in, never after: an answer over the
limit fails that list or watch with a sentence naming it and the limit. An object of the wrong shape is
skipped and counted (``_k8s_convert.MalformedObject``), on the first list and on watch events alike: the
source then reports "1 pod skipped: …" in :attr:`SourceData.problems` (partial, not failed) and shows the
rest, with the last good version of an object whose update was malformed. Strings are cleaned where they
are read, in ``_k8s_convert``.

Permissions come from SelfSubjectAccessReviews made in the background once the first lists are in, cached
per verb/resource/namespace and refreshed every few minutes: :meth:`KubernetesSource.permission` answers
from that cache, and until a review has answered says "checking permissions…" (on an event loop it never
waits; elsewhere it waits up to ``timeout`` for the answer). A kind the user may not list (403: the built-in
``view`` role and nodes) is said in words in ``problems`` ("cannot list nodes: forbidden (RBAC: user …
may not list nodes at cluster scope)") and the rest is shown: without nodes, the nodes the pods name, their
capacity unknown. No token is ever logged or put in an error message.

A launch is all or nothing on the cluster, not only in the plan: consoles planning at the same moment plan
the same free nodes, and pinned concurrent launches left partly bound gangs holding GPUs on a real control
plane. So a launch goes to Kueue when configured, to the cluster's own gang scheduling (PodGroups, not
pinned) where it is served, and otherwise reserves its nodes in a Lease with a compare-and-swap before its
Job exists, re-planning or queueing (a suspended Job, released when it fits) when they are taken
(docs/actions.md, "Gangs that cannot collide").
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, ParamSpec
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aios_tui.alloc.placement import GangRequest, Placement, place_gang
from aios_tui.config import KubernetesSettings
from aios_tui.domain import FleetSnapshot, Gpu, Node, Pod, PodPhase
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.errors import redact
from aios_tui.domain.model import gpu_slot
from aios_tui.domain.text import clean
from aios_tui.sources._k8s_convert import (
    GPU_PRODUCT_LABEL,
    KUEUE_QUEUE_LABEL,
    QUEUED_ANNOTATION,
    RESERVED_ANNOTATION,
    ZONE_LABEL,
    EndpointRec,
    HpaRec,
    JobRec,
    MalformedObject,
    NodeRec,
    PdbRec,
    PodGroupRec,
    PodRec,
    Requirement,
    build_endpoint,
    build_job,
    build_pdb,
    convert_deployment,
    convert_event,
    convert_hpa,
    convert_job,
    convert_node,
    convert_pdb,
    convert_pod,
    convert_podgroup,
    convert_replicaset,
    matches,
    object_key,
    parse_selector,
    pdb_of_message,
)
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import EvictionBlocked, LaunchSpec, SourceData, SourceError, backoff_delay

__all__ = ["KubernetesSource", "api_client_factory", "kubeconfig_contexts", "sources_from_settings"]

log = logging.getLogger("aios_tui.sources.kubernetes")

_P = ParamSpec("_P")

PAGE_SIZE: Final = 500
WATCH_SECONDS: Final = 240.0
"""Each watch asks the server to end it after this long (``timeoutSeconds``); it then resumes."""
WATCH_SILENCE_S: Final = 120.0
"""A watch that sends nothing for this long (plus ``timeout``) is dropped and resumed. A real kube-apiserver
sends a BOOKMARK on every watch that allows them about once a minute (its watch cache's bookmark frequency),
so this is two missed bookmarks: a connection a middlebox forgot, not a quiet kind. A hung server is found
sooner, by the probe (:data:`PROBE_PATH`)."""
PROBE_PATH: Final = "/readyz"
"""What each fetch asks the server, bounded by the source's timeout, to know that it still answers: the
watches alone cannot tell a quiet cluster from a hung server. ``/readyz`` is readable by every user (the
built-in ``system:public-info-viewer`` role), costs the server no storage read, and fails (500) when the
server cannot reach etcd, when what it serves is no longer current either."""
PERMISSION_REFRESH_S: Final = 300.0
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "aios-tui"}
MAX_PAGE_BYTES: Final = 64 * 2**20
"""The most read of one answer (a list page of ``PAGE_SIZE`` objects, a GET, an action's answer). A page
reaches 64 MiB only if its 500 objects average 128 KiB: the pods captured from a real kube-apiserver
(tests/fixtures/kubernetes) average 4.5 KiB, and a heavy production pod (managedFields, a
last-applied-configuration annotation, dozens of env vars) stays around 30 KiB. bench/bench_k8s.py prints
the largest page of a 5,000-node / 150,000-pod fleet against it."""
MAX_EVENT_BYTES: Final = 16 * 2**20
"""The most read of one watch event (one object, one line): over ten times the 1.5 MiB etcd stores of one
object by default (its ``--max-request-bytes``), JSON being larger than the protobuf etcd holds."""
MAX_ERROR_BYTES: Final = 2**20
"""The most read of an error answer: a ``Status`` is a few hundred bytes."""
_CHUNK: Final = 2**16
_JSON: Final = "application/json"
_MERGE: Final = "application/merge-patch+json"
_STRATEGIC: Final = "application/strategic-merge-patch+json"


@dataclass(frozen=True, slots=True)
class _Kind:
    """A resource the source lists and watches."""

    name: str
    api: str
    """``/api/v1`` or ``/apis/<group>/<version>``."""
    namespaced: bool = True
    required: bool = False
    """Without it the view is wrong (pods): its errors fail the fetch even when it is forbidden. Nodes are
    not: a user who may not list them (the built-in ``view`` role) still sees the nodes its pods name."""
    field_selector: str = ""
    """Only these objects are listed and watched (the server filters)."""
    optional: bool = False
    """Listed and watched only where the server serves it (discovery, asked once): an alpha API."""

    def path(self, namespace: str) -> str:
        if self.namespaced and namespace:
            return f"{self.api}/namespaces/{_seg(namespace)}/{self.name}"
        return f"{self.api}/{self.name}"


NODES = _Kind("nodes", "/api/v1", namespaced=False)
PODS = _Kind("pods", "/api/v1", required=True)
DEPLOYMENTS = _Kind("deployments", "/apis/apps/v1")
STATEFULSETS = _Kind("statefulsets", "/apis/apps/v1")
REPLICASETS = _Kind("replicasets", "/apis/apps/v1")
JOBS = _Kind("jobs", "/apis/batch/v1")
PDBS = _Kind("poddisruptionbudgets", "/apis/policy/v1")
HPAS = _Kind("horizontalpodautoscalers", "/apis/autoscaling/v2")
EVENTS = _Kind("events", "/api/v1", field_selector="reason=FailedScheduling")
"""Only the scheduler's refusals: why a pod (and so a gang) waits. Other events churn and say less."""
GANG_API: Final = "/apis/scheduling.k8s.io/v1alpha2"
"""Kubernetes' own gang scheduling (alpha since 1.35; Workload and PodGroup in v1alpha2 since 1.36)."""
PODGROUPS = _Kind("podgroups", GANG_API, optional=True)
"""Where the cluster schedules gangs itself: whether each gang is placed (``PodGroupScheduled``)."""
KINDS: Final = (NODES, PODS, DEPLOYMENTS, STATEFULSETS, REPLICASETS, JOBS, PDBS, HPAS, EVENTS, PODGROUPS)

_Scope = tuple[str, str]
"""(kind name, namespace) of one list-and-watch: namespace "" means all namespaces."""


class _Gone(SourceError):
    """410 Gone: the resourceVersion is too old (compacted); list again."""


class _Forbidden(SourceError):
    """403 on a list or watch."""


class _TooBig(SourceError):
    """An answer or a watch event over its size limit."""


class GangQueued(SourceError):
    """A launch's Job was created suspended because its gang does not fit now: it holds no GPU, and the
    release loop starts it, whole, when it fits."""


_NOUNS: Final = {
    "nodes": "node",
    "pods": "pod",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "events": "FailedScheduling event",
    "podgroups": "PodGroup",
}
_NO_NAME: Final = "(unnamed)"
"""The key under which objects without a readable name are counted: one per such object in a list, and one
for all such watch events (their updates cannot be matched, so they stay counted until the next list)."""


@dataclass(frozen=True, slots=True)
class _Skipped:
    """Why an object was skipped, and whether its last good version is still shown."""

    reason: str
    kept: bool = False


@dataclass(frozen=True, slots=True)
class _Review:
    """One SelfSubjectAccessReview question."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""

    @property
    def asks(self) -> str:
        """``patch on deployments/scale in ml-prod``, ``patch on nodes``: the question in words."""
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = (
            f" in {self.namespace}" if self.namespace else "" if self.resource == "nodes" else " cluster-wide"
        )
        return f"{self.verb} on {what}{where}"

    def denial(self, action: str, target: str | None, source: str) -> str:
        """Why not, in words: "you may not cordon nodes in k8s:rig: RBAC denies patch on nodes"."""
        if action in ("cordon", "uncordon", "drain"):
            what = "nodes"
        elif action == "launch" and not target:
            what = "jobs"
        else:
            what = target or ""
        return f"you may not {action} {what} in {source}: RBAC denies {self.asks}".replace("  ", " ")


# --- kubeconfig -------------------------------------------------------------------------------------------


def _kubeconfig_path(settings: KubernetesSettings, env: Mapping[str, str]) -> str | None:
    """The kubeconfig file to read, or None for the in-cluster service account."""
    if settings.kubeconfig is not None:
        return os.fspath(settings.kubeconfig)
    first = next((p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p), "")
    if first:
        return first
    default = Path.home() / ".kube" / "config"
    return os.fspath(default) if default.is_file() else None


def kubeconfig_contexts(path: str) -> tuple[list[str], str]:
    """The context names in a kubeconfig file and its current context. Raises :class:`SourceError`."""
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, ValueError) as exc:
        raise SourceError(f"cannot read kubeconfig {path}: {redact(str(exc))}") from None
    names = [str(c.get("name", "")) for c in contexts or ()]
    return names, str((current or {}).get("name", ""))


def api_client_factory(path: str | None, context: str | None = None) -> Callable[[], Any]:
    """A factory of ``ApiClient`` for one kubeconfig context (``path`` None: the in-cluster service
    account), without retries: a failed call is reported and the source's own back-off decides."""

    def make() -> Any:
        cfg = k8s_client.Configuration()
        try:
            if path is None:
                k8s_config.load_incluster_config(client_configuration=cfg)
            else:
                k8s_config.load_kube_config(
                    config_file=path, context=context, client_configuration=cfg, persist_config=False
                )
        except (ConfigException, OSError, ValueError) as exc:
            where = "the in-cluster service account" if path is None else f"kubeconfig {path}"
            raise SourceError(f"cannot use {where}: {redact(str(exc))}") from None
        cfg.retries = 0
        # One connection per watch, plus lists, reviews and actions: more than the default of 5 per CPU.
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize, 64)
        cfg.debug = False  # http.client's debug output would print the Authorization header
        return k8s_client.ApiClient(configuration=cfg)

    return make


def sources_from_settings(
    settings: KubernetesSettings,
    *,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = wall_now,
) -> list[KubernetesSource]:
    """One source per configured context (the current one when none is), named ``k8s:<context>``.

    Raises :class:`SourceError` when the kubeconfig cannot be read or names no such context.
    """
    env = os.environ if env is None else env
    path = _kubeconfig_path(settings, env)
    if path is None:
        return [
            KubernetesSource(
                name="k8s:in-cluster",
                api_client_factory=api_client_factory(None),
                settings=settings,
                clock=clock,
                context="in-cluster",
            )
        ]
    names, current = kubeconfig_contexts(path)
    wanted = list(dict.fromkeys(settings.contexts)) or ([current] if current else [])
    if not wanted:
        raise SourceError(f"kubeconfig {path} has no current context; name one with --context")
    missing = [c for c in wanted if c not in names]
    if missing:
        known = ", ".join(names) or "none"
        raise SourceError(f"kubeconfig {path} has no context {', '.join(missing)} (it has {known})")
    return [
        KubernetesSource(
            name=f"k8s:{ctx}",
            api_client_factory=api_client_factory(path, ctx),
            settings=settings,
            clock=clock,
            context=ctx,
            qualify=len(wanted) > 1,
        )
        for ctx in wanted
    ]


# --- the source ---------------------------------------------------------------------------------------------


class KubernetesSource:
    """One cluster. ``api_client_factory`` makes the ``kubernetes.client.ApiClient`` (called once, at
    construction); ``settings`` is the ``[kubernetes]`` section. Threads start at the first fetch.

    ``retry_base``/``retry_max`` bound the back-off between reconnections; ``watch_seconds`` is how long
    each watch runs before it is renewed; tests shorten them. ``max_page_bytes``/``max_event_bytes`` bound
    one answer and one watch event (tests lower them).
    """

    kind = "kubernetes"

    def __init__(
        self,
        *,
        name: str,
        api_client_factory: Callable[[], Any],
        settings: KubernetesSettings,
        clock: Callable[[], float] = wall_now,
        context: str = "",
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        watch_seconds: float = WATCH_SECONDS,
        permission_refresh_s: float = PERMISSION_REFRESH_S,
        qualify: bool = False,
        max_page_bytes: int = MAX_PAGE_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        self.name = name
        self._names = Qualifier(context or name) if qualify else None
        """With several contexts in one view, namespaces and node names carry the context (_k8s_qualify)."""
        self.interval = settings.interval
        self.timeout = settings.timeout
        self.max_backoff = max(2 * settings.interval, 5.0)
        """The poller's back-off cap for this source: a failing fetch costs one bounded ``GET /readyz``, so
        it is tried again soon and a server back from a hang is shown fresh within seconds."""
        self.read_only = settings.read_only or context in settings.read_only_contexts
        self._settings = settings
        self._clock = clock
        self._gpu_names = tuple(settings.gpu_resource_names)
        try:
            self._job_selector = parse_selector(settings.job_label_selector)
            self._endpoint_selector = parse_selector(settings.endpoint_label_selector)
        except ValueError as exc:
            raise SourceError(f"[kubernetes] label selector: {exc}") from None
        self._api = api_client_factory()
        host = str(getattr(self._api.configuration, "host", ""))
        self._context = f"{context or name} ({host})" if host else (context or name)
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._watch_seconds = watch_seconds
        self._permission_refresh_s = permission_refresh_s
        self._max_page_bytes = max_page_bytes
        self._max_event_bytes = max_event_bytes
        namespaces = tuple(dict.fromkeys(settings.namespaces)) or ("",)
        self._scopes: tuple[_Scope, ...] = tuple(
            (k.name, ns) for k in KINDS for ns in (namespaces if k.namespaced else ("",))
        )
        self._kinds = {k.name: k for k in KINDS}

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stores: dict[_Scope, dict[str, Any]] = {s: {} for s in self._scopes}
        self._skipped: dict[_Scope, dict[str, _Skipped]] = {s: {} for s in self._scopes}
        """Malformed objects by key, per scope: counted in ``problems`` until fixed, deleted or re-listed."""
        self._synced: set[_Scope] = set()
        self._errors: dict[_Scope, str] = {}
        self._version = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: set[Any] = set()
        self.relists = 0
        """Lists made after the first, because a watch's version was gone (410): for tests and benches."""
        self._listed: dict[_Scope, int] = {}
        """Objects received so far by each first list still coming in (its store fills page by page)."""
        self._remaining: dict[_Scope, int] = {}
        """What the last page of such a list said was left (``remainingItemCount``), when it said."""
        self._down = ""
        """Why the last probe failed; "" when the server answered it."""

        self._build_lock = threading.Lock()
        self._built_version = -1
        self._data: SourceData | None = None
        self._node_cache: dict[str, tuple[Node, int, Node]] = {}
        self._gpu_cache: dict[tuple[str, int], Gpu] = {}
        self._endpoint_cache: dict[str, tuple[EndpointRec, Any, Any]] = {}

        self._reviews: dict[_Review, tuple[bool, float]] = {}
        self._review_wanted: set[_Review] = set()
        self._review_wake = threading.Event()
        self._review_error = ""
        """Why the last access review failed ("" once one answers): said while a permission is unknown."""
        self._denied: dict[_Scope, str] = {}
        """Kinds the user may not list (403), each with its sentence for ``problems``."""
        self._gang_api: bool | None = None
        """Whether the cluster serves PodGroups (:meth:`gang_scheduling`); None until asked."""
        self._evicted_from: tuple[int, dict[str, frozenset[str]]] = (-1, {})
        """For the store version it was made at: the namespaces of the pods a drain evicts, by node."""

    # --- the Source protocol --------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        return await asyncio.to_thread(self.fetch_now)

    def fetch_now(self) -> SourceData:
        """The cluster as the watches last saw it, once the server has answered :data:`PROBE_PATH`.

        Waits for the first lists up to ``interval`` (at most 0.45 × ``timeout``); a first list still going
        then gives what has arrived so far, with "still listing pods: 12,000 so far" in ``problems``. A list
        has no deadline of its own while its pages keep coming: only a page that does not come within
        ``timeout`` fails it. Raises :class:`SourceError` while a list, a watch or the probe is failing (the
        message says which and why), so the poller shows the last good data, stale.
        """
        self._start()
        # A little under the poller's own limit, so that the reason, not a bare timeout, is reported.
        budget = 0.9 * self.timeout
        started = time.monotonic()
        deadline = started + min(budget / 2, self.interval)  # the other half for the probe
        with self._changed:
            while len(self._synced) < len(self._scopes) and not self._blocking_errors():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            errors = self._blocking_errors()
            if errors:
                (kind, ns), message = errors[0]
                where = f"{kind} in {ns}" if ns else kind
                raise SourceError(f"{where}: {message}")
            listing = self._listing_sentences()
            if listing and not self._synced and not any(self._listed.values()):
                pending = sorted({k for k, _ in self._scopes if (k, _) not in self._synced})
                raise SourceError(
                    f"still listing {', '.join(pending)}: nothing received yet (it goes on in the background)"
                )
            version = self._version
            stores = skipped = None
            if version != self._built_version:
                stores = {s: dict(d) for s, d in self._stores.items()}
                skipped = {s: dict(d) for s, d in self._skipped.items() if d}
        self._probe(max(0.1, budget - (time.monotonic() - started)))
        with self._build_lock:
            if stores is None and self._data is not None:
                data = self._data
            else:
                assert stores is not None and skipped is not None
                data = self._build(stores, skipped)
                if self._names is not None:
                    data = self._names.data(data)
                self._data, self._built_version = data, version
        return dataclasses.replace(data, problems=(*data.problems, *listing)) if listing else data

    @property
    def loading(self) -> bool:
        """True while a first list is still coming in (and nothing failed): ``snapshot`` waits for it."""
        with self._lock:
            return len(self._synced) < len(self._scopes) and not self._errors and not self._stop.is_set()

    def _listing_sentences(self) -> tuple[str, ...]:
        """One sentence per kind whose first list is still coming in (call with the lock held)."""
        counts: dict[str, tuple[int, int]] = {}
        for scope in self._scopes:
            if scope not in self._synced:
                got, left = counts.get(scope[0], (0, 0))
                counts[scope[0]] = (got + self._listed.get(scope, 0), left + self._remaining.get(scope, 0))
        return tuple(
            f"still listing {kind}: "
            + (f"{got:,} so far" + (f" of about {got + left:,}" if left else "") if got else "nothing yet")
            for kind, (got, left) in counts.items()
        )

    def _probe(self, budget: float) -> None:
        """Ask the server :data:`PROBE_PATH` within ``budget`` seconds; :class:`SourceError` when it does not
        answer (a hung server, a partition) or says it is not ready. An answer after a failure resumes every
        open watch (from its last version: nothing missed, nothing twice), since a connection that lived
        through the outage may be one the server has forgotten."""
        failed = ""
        try:
            _read(self._request("GET", PROBE_PATH, timeout=budget), MAX_ERROR_BYTES)
        except ApiException as exc:
            if exc.status >= 500:  # 401/403/404: it answered, and the lists say what is wrong
                failed = f"the API server is not ready (GET {PROBE_PATH}: {exc.status})"
        except _TooBig:
            pass  # it answered
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
                cause, urllib3.exceptions.NewConnectionError
            ):
                within = f"{round(budget, 1):g}s"
                failed = f"no answer from the API server within {within} (GET {PROBE_PATH}): hung or cut off"
            else:
                failed = str(self._error(exc, f"GET {PROBE_PATH}"))
        with self._lock:
            was, self._down = self._down, failed
            streams = list(self._streams) if was and not failed else []
        if was and not failed:
            log.info("%s: the API server answers again; resuming %d watches", self.name, len(streams))
        for resp in streams:
            _shutdown(resp)
        if failed:
            raise SourceError(failed)

    def _unq(self, name: str) -> str:
        return self._names.unq(name) if self._names is not None else name

    async def close(self) -> None:
        await asyncio.to_thread(self.close_now)

    def close_now(self) -> None:
        """Stop every thread and close the connections."""
        self._stop.set()
        self._review_wake.set()
        with self._changed:
            self._changed.notify_all()
            streams = list(self._streams)
        for resp in streams:
            _shutdown(resp)
        deadline = time.monotonic() + 2.0
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._api.close()

    # --- permissions ----------------------------------------------------------------------------------------

    def permission(self, action: str, target: str | None = None, *, wait: float | None = None) -> str | None:
        """None when the access reviews allow ``action`` on ``target``; else why not: read-only, RBAC's denial
        ("you may not cordon nodes in k8s:rig: RBAC denies patch on nodes"), or, while a review has not
        answered, a sentence beginning "checking permissions…": an unknown permission is never taken as
        allowed, nor as denied (:meth:`permission_known` tells the two apart).

        ``wait``: how long to wait for a review not answered yet. By default not at all on a thread running
        an event loop (the console asks while it draws its footer), and up to ``timeout`` elsewhere (a
        script, a test, a worker thread), so that a caller that can block gets the answer. A question not
        asked yet is asked at once, in the background."""
        if self.read_only:
            return f"{self.name} is read-only (kubernetes read_only in the settings)"
        reviews = self._reviews_for(action, self._unq(target) if target else target)
        if not reviews:
            return None
        if wait is None:
            wait = 0.0 if _on_event_loop() else self.timeout
        deadline = time.monotonic() + wait
        with self._changed:
            if any(r not in self._reviews for r in reviews):
                self._review_wanted.update(r for r in reviews if r not in self._reviews)
                self._review_wake.set()
                while any(r not in self._reviews for r in reviews) and not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            answers = [(review, self._reviews.get(review)) for review in reviews]
            failed = self._review_error
        if action == "launch" and target is None:  # any namespace it may launch in will do
            if any(got is not None and got[0] for _, got in answers):
                return None
            if all(got is not None for _, got in answers):
                return answers[0][0].denial(action, target, self.name)
        for review, got in answers:
            if got is not None and not got[0]:
                return review.denial(action, target, self.name)
        unknown = next((review for review, got in answers if got is None), None)
        if unknown is None:
            return None
        if failed:
            return f"checking permissions… (the access review in {self.name} failed: {failed}; it is retried)"
        return (
            f"checking permissions… ({self.name} has not answered the access review for {unknown.asks} yet)"
        )

    def permission_known(self, action: str, target: str | None = None) -> bool:
        """Whether :meth:`permission` answers from access reviews already made ("checking permissions…"
        otherwise). Never blocks."""
        said = self.permission(action, target, wait=0.0)
        return said is None or not said.startswith("checking permissions")

    def _reviews_for(self, action: str, target: str | None) -> list[_Review]:
        ns, _, name = (target or "").rpartition("/")
        if action in ("scale", "redeploy"):
            if not target:
                return []
            resource = "statefulsets" if self._endpoint_kind(ns, name) == "StatefulSet" else "deployments"
            return [_Review("patch", "apps", resource, "scale" if action == "scale" else "", ns)]
        if action in ("cordon", "uncordon"):
            return [_Review("patch", "", "nodes")]
        if action == "drain":
            if not target:
                return [_Review("patch", "", "nodes"), _Review("create", "", "pods", "eviction")]
            # Evictions in the namespaces of its pods, not cluster-wide: a user allowed to evict in those
            # only may drain the node.
            evictions = [_Review("create", "", "pods", "eviction", ns) for ns in self._evictable(target)]
            return [_Review("patch", "", "nodes"), *evictions]
        if action == "launch":
            if target:
                return [_Review("create", "batch", "jobs", "", ns)]
            return [_Review("create", "batch", "jobs", "", n) for n in self._settings.namespaces or ("",)]
        return []

    def _evictable(self, node: str) -> list[str]:
        """The namespaces of the pods a drain of ``node`` evicts (not DaemonSets'), sorted; indexed once per
        store version, as the console asks for every key it draws."""
        with self._lock:
            version, index = self._evicted_from
            if version != self._version:
                by_node: dict[str, set[str]] = {}
                for (kind, _), store in self._stores.items():
                    if kind == "pods":
                        for rec in store.values():
                            pod = rec.pod
                            if pod.node and pod.owner_kind != "DaemonSet":
                                by_node.setdefault(pod.node, set()).add(pod.namespace)
                index = {n: frozenset(namespaces) for n, namespaces in by_node.items()}
                self._evicted_from = (self._version, index)
        return sorted(index.get(node, ()))

    def _wanted_reviews(self) -> set[_Review]:
        """What the console will ask about: the actions on every endpoint, on nodes, and launching."""
        wanted = {_Review("patch", "", "nodes"), _Review("create", "", "pods", "eviction")}
        wanted.update(self._reviews_for("launch", None))
        with self._lock:
            endpoints = [
                rec
                for (kind, _), store in self._stores.items()
                if kind in ("deployments", "statefulsets")
                for rec in store.values()
            ]
            wanted |= self._review_wanted
        for rec in endpoints:
            resource = "statefulsets" if rec.kind == "StatefulSet" else "deployments"
            wanted.add(_Review("patch", "apps", resource, "scale", rec.namespace))
            wanted.add(_Review("patch", "apps", resource, "", rec.namespace))
        return wanted

    def _review_loop(self) -> None:
        while not self._stop.is_set():
            self._review_wake.clear()  # before looking: a question asked meanwhile wakes the next wait
            now = time.monotonic()
            with self._lock:
                known = dict(self._reviews)
                asked = set(self._review_wanted)
            # What someone waits for first, then the rest the console will ask about.
            due = sorted(
                (
                    r
                    for r in self._wanted_reviews()
                    if r not in known or now - known[r][1] >= self._permission_refresh_s
                ),
                key=lambda r: r not in asked,
            )
            failed = False
            tried: set[_Review] = set()
            while not self._stop.is_set():
                with self._lock:  # a question asked meanwhile (a key pressed) goes before the round's rest
                    waiting = [r for r in self._review_wanted if r not in tried]
                pick = waiting or [r for r in due if r not in tried]
                if not pick:
                    break
                review = pick[0]
                tried.add(review)
                try:
                    allowed = self._review(review)
                except SourceError as exc:
                    log.debug("%s: access review %s failed: %s", self.name, review, exc)
                    failed = True
                    with self._changed:
                        self._review_error = str(exc)
                        self._changed.notify_all()
                    continue
                with self._changed:
                    self._reviews[review] = (allowed, time.monotonic())
                    self._review_wanted.discard(review)
                    self._review_error = ""
                    self._changed.notify_all()  # a permission() waiting for it
            # After a failure, try again soon: a key press may be waiting on "checking permissions…".
            self._review_wake.wait(min(self._permission_refresh_s, self._retry_max if failed else 60.0))

    def _review(self, review: _Review) -> bool:
        attributes = {"verb": review.verb, "group": review.group, "resource": review.resource}
        if review.subresource:
            attributes["subresource"] = review.subresource
        if review.namespace:
            attributes["namespace"] = review.namespace
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        status = answer.get("status")
        return isinstance(status, dict) and status.get("allowed") is True

    # --- actions --------------------------------------------------------------------------------------------

    async def scale_endpoint(self, namespace: str, name: str, replicas: int) -> None:
        await self._act(self._scale, self._unq(namespace), name, replicas)

    async def redeploy_endpoint(self, namespace: str, name: str, image: str | None = None) -> None:
        await self._act(self._redeploy, self._unq(namespace), name, image)

    async def set_cordon(self, node: str, cordoned: bool) -> None:
        await self._act(self._cordon, self._unq(node), cordoned)

    async def evict_pod(self, namespace: str, name: str) -> None:
        await self._act(self._evict, self._unq(namespace), name, False)

    async def evict_pod_dry_run(self, namespace: str, name: str) -> None:
        """Ask the server whether it would evict the pod now (``dryRun=All``): raises as :meth:`evict_pod`
        would, changes nothing."""
        await self._act(self._evict, self._unq(namespace), name, True)

    async def launch_job(self, spec: LaunchSpec) -> None:
        await self._act(self._launch, self._names.spec(spec) if self._names is not None else spec)

    def gang_scheduling(self) -> bool:
        """Whether the cluster schedules gangs itself: discovery shows ``podgroups`` in :data:`GANG_API`.
        Asked once per source and cached; a 404 means the API is not served (the feature gates are off).
        Raises :class:`SourceError` when the server cannot say (it is then asked again next time)."""
        with self._lock:
            known = self._gang_api
        if known is not None:
            return known
        try:
            answer = self._call("GET", GANG_API, raw_errors=True)
        except ApiException as exc:
            if exc.status not in (403, 404):
                raise self._error(exc, f"GET {GANG_API}") from None
            answer = {}
        resources = answer.get("resources")
        served = isinstance(resources, list) and any(
            isinstance(r, dict) and r.get("name") == "podgroups" for r in resources
        )
        with self._lock:
            self._gang_api = served
        return served

    def gang_guarantee(self, workers: int) -> str:
        """How this cluster keeps a launch of ``workers`` ranks all or nothing, for the plan (from what is
        known now: this never waits on the server)."""
        if self._settings.kueue_queue:
            return f"Kueue (queue {self._settings.kueue_queue}) admits it whole"
        with self._lock:
            gang = self._gang_api is True
        if gang and workers > 1:
            return "the cluster's gang scheduling (a PodGroup) binds it whole; not pinned: model, zone only"
        return (
            f"GPUs reserved first (Lease {self.LEASE}, compare-and-swap), re-planned if the nodes were "
            "taken, then ranks pinned and released together; queued, suspended, if nothing fits"
        )

    def queues_jobs(self) -> bool:
        """Always: with ``kueue_queue`` set a job is created suspended and Kueue admits it whole; where the
        cluster schedules gangs itself (:meth:`gang_scheduling`) the PodGroup waits whole; otherwise the
        Job is created suspended and the release loop (:meth:`_release_loop`) starts it when it fits."""
        return True

    async def _act(self, fn: Callable[_P, None], *args: _P.args, **kwargs: _P.kwargs) -> None:
        await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    def _endpoint_path(self, namespace: str, name: str) -> str:
        resource = "statefulsets" if self._endpoint_kind(namespace, name) == "StatefulSet" else "deployments"
        return f"/apis/apps/v1/namespaces/{_seg(namespace)}/{resource}/{_seg(name)}"

    def _scale(self, namespace: str, name: str, replicas: int) -> None:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ValueError(f"replicas must be a whole number of at least 0, got {replicas!r}")
        path = self._endpoint_path(namespace, name) + "/scale"
        self._call("PATCH", path, body={"spec": {"replicas": replicas}}, content_type=_MERGE)

    def _redeploy(self, namespace: str, name: str, image: str | None) -> None:
        """A rolling restart as ``kubectl rollout restart`` makes it (the restartedAt annotation on the pod
        template), with the GPU container's image replaced when ``image`` is given."""
        path = self._endpoint_path(namespace, name)
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        template: dict[str, Any] = {"metadata": {"annotations": {RESTARTED_AT: now}}}
        if image is not None:
            if not image.strip():
                raise ValueError("image must not be empty")
            current: Any = self._call("GET", path)
            for key in ("spec", "template", "spec", "containers"):
                current = current.get(key) if isinstance(current, dict) else None
            containers = current or []
            if not isinstance(containers, list) or not all(isinstance(c, dict) for c in containers):
                raise SourceError(f"{namespace}/{name}: the API server sent a malformed container list")
            target = self._gpu_container(namespace, name, containers)
            # The whole list, so that a merge patch (which replaces lists) and a strategic one agree.
            template["spec"] = {
                "containers": [{**c, "image": image} if c.get("name") == target else c for c in containers]
            }
        self._call("PATCH", path, body={"spec": {"template": template}}, content_type=_STRATEGIC)

    def _gpu_container(self, namespace: str, name: str, containers: Sequence[Mapping[str, Any]]) -> str:
        with self._lock:
            rec = self._find(("deployments", "statefulsets"), f"{namespace}/{name}")
        if rec is not None and rec.container:
            return str(rec.container)
        if not containers:
            raise SourceError(f"{namespace}/{name} has no containers")
        return str(containers[0].get("name", ""))

    def _cordon(self, node: str, cordoned: bool) -> None:
        # What kubectl sends: true to cordon, null (the field removed) to uncordon.
        body = {"spec": {"unschedulable": True if cordoned else None}}
        self._call("PATCH", f"/api/v1/nodes/{_seg(node)}", body=body, content_type=_STRATEGIC)

    def _evict(self, namespace: str, name: str, dry_run: bool) -> None:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        query = [("dryRun", "All")] if dry_run else []
        path = f"/api/v1/namespaces/{_seg(namespace)}/pods/{_seg(name)}/eviction"
        try:
            self._call("POST", path, query=query, body=body, raw_errors=True)
        except ApiException as exc:
            message, causes = _status_message(exc)
            if exc.status == 429:
                pdb = next((pdb_of_message(namespace, c) for c in causes if pdb_of_message(namespace, c)), "")
                detail = f" ({'; '.join(causes)})" if causes else ""
                raise EvictionBlocked(f"{message}{detail}", pdb=pdb) from None
            if exc.status == 500:
                raise SourceError(
                    f"cannot evict {namespace}/{name}: misconfigured PodDisruptionBudget "
                    f"(the server said: {message})"
                ) from None
            if exc.status == 404:
                raise SourceError(f"pod {namespace}/{name} not found (already gone)") from None
            raise self._error(exc, f"evict {namespace}/{name}") from None

    def _launch(self, spec: LaunchSpec) -> None:
        if spec.workers < 1 or spec.gpus_per_worker < 1:
            raise ValueError(
                "a job needs at least 1 worker and 1 GPU per worker, "
                f"got {spec.workers}×{spec.gpus_per_worker}"
            )
        if spec.placement and len(spec.placement) != spec.workers:
            raise ValueError(f"placement names {len(spec.placement)} nodes for {spec.workers} workers")
        if spec.priority and not spec.priority_class:
            raise ValueError(
                f"priority {spec.priority} cannot reach a Kubernetes Job: give the PriorityClass's name"
            )
        if spec.priority_class:
            # The Job is accepted whatever the name; only its pods are refused, one FailedCreate event at a
            # time. So look first (a 403 means this user may not read cluster-scoped objects: go on).
            try:
                self._call(
                    "GET",
                    f"/apis/scheduling.k8s.io/v1/priorityclasses/{_seg(spec.priority_class)}",
                    raw_errors=True,
                )
            except ApiException as exc:
                if exc.status == 404:
                    raise SourceError(
                        f"no PriorityClass named {spec.priority_class} on this cluster "
                        "(kubectl get priorityclasses); nothing was created"
                    ) from None
                if exc.status != 403:
                    raise self._error(exc, f"read PriorityClass {spec.priority_class}") from None
        path = f"/apis/batch/v1/namespaces/{_seg(spec.namespace)}/jobs"
        if not self._pins(spec):
            self._call("POST", path, body=self.job_manifest(spec))
            return
        placed = self._reserve(spec)
        key = f"{spec.namespace}/{spec.name}"
        if isinstance(placed, str):
            # Queued, visible: a suspended Job has no pods, so it holds nothing (not even a reservation).
            manifest = self.job_manifest(spec)
            need = spec.workers * spec.gpus_per_worker
            held = (
                f"{need} GPUs ({spec.workers}×{spec.gpus_per_worker}) not free now ({placed}); "
                "it starts, whole, when they are"
            )
            manifest["metadata"]["annotations"] = {QUEUED_ANNOTATION: held}
            manifest["spec"]["suspend"] = True
            pod_spec = manifest["spec"]["template"]["spec"]
            pod_spec.pop("affinity", None)  # released onto whatever fits then (:meth:`_release_loop`)
            product = self._product(spec)
            if product:  # the model planned, kept for the release: its ranks then get their nodes
                pod_spec["nodeSelector"] = {GPU_PRODUCT_LABEL: product}
            self._call("POST", path, body=manifest)
            if not spec.placement:
                return  # launched to be queued: it is
            raise GangQueued(
                f"job {key} was created suspended, not started: {held}; it holds no GPU meanwhile"
            )
        manifest = self.job_manifest(dataclasses.replace(spec, placement=placed))
        manifest["metadata"]["annotations"] = {RESERVED_ANNOTATION: ",".join(placed)}
        try:
            job = self._call("POST", path, body=manifest)
        except SourceError:
            self._unreserve(spec)
            raise
        self._pin_ranks(
            dataclasses.replace(spec, placement=placed), str((job.get("metadata") or {}).get("uid") or "")
        )

    def _gang(self, spec: LaunchSpec) -> bool:
        """Whether the cluster's own gang scheduling takes this job whole: an Indexed Job of more than one
        rank (parallelism = completions) gets a PodGroup from the Job controller (``WorkloadWithJob``)."""
        return spec.workers > 1 and not self._settings.kueue_queue and self.gang_scheduling()

    def _pins(self, spec: LaunchSpec) -> bool:
        """Whether the launch pins ranks to nodes itself (a reservation, gated pods, then release): without
        Kueue or the cluster's gang scheduling. A launch with no placement (queued) is placed when it fits."""
        return not self._settings.kueue_queue and not self._gang(spec)

    RANK_GATE: Final = "aios-tui.dev/rank-placement"
    """The scheduling gate a pinned launch's pods are created with: the scheduler leaves them alone until
    each has its rank's node (Kubernetes lets a gated pod's nodeSelector be added to, its gates removed)."""
    PIN_WAIT_S: Final = 30.0
    """How long a pinned launch waits for the Job controller to create every rank's pod."""

    LEASE: Final = "aios-tui-gang-reservations"
    """The Lease (``coordination.k8s.io/v1``) in the job's namespace whose annotation :data:`RESERVATIONS`
    holds every reservation of gated or released gangs, updated with resourceVersion preconditions."""
    RESERVATIONS: Final = "aios-tui.dev/reservations"
    RESERVE_TRIES: Final = 50
    """Compare-and-swap attempts before a launch gives up: each 409 means another launch reserved first."""

    def _reserve(self, spec: LaunchSpec, *, queued: bool = False) -> tuple[str, ...] | str:
        """Reserve the gang's GPUs against every other launch before its Job exists: the nodes reserved
        (the planned ones, or a new placement of the same shape, GPU model and zone when those are no
        longer free), or why the gang does not fit now (nothing reserved).

        The reservations live in one Lease per namespace (:attr:`LEASE`, its annotation
        :attr:`RESERVATIONS`): read it, drop what is finished or gone, check the plan against the nodes'
        free GPUs less every reservation, and write the Lease back with this one added and the
        resourceVersion read as precondition. A launch that wrote in between makes the write fail (409):
        read again and re-plan. So of two launches that planned the same nodes, one gets them. ``queued``:
        the Job exists, queued; one already reserved (by another console's release) is left to it."""
        key = f"{spec.namespace}/{spec.name}"
        for _ in range(self.RESERVE_TRIES):
            lease, table = self._lease(spec.namespace)
            if lease is None:
                continue  # just created (or another launch created it first): read it
            table = self._live_reservations(spec.namespace, table)
            if key in table:  # a live reservation of this name: another console's release, or a twin launch
                return "another console is releasing it" if queued else f"{key} is reserved by another launch"
            placed = self._fit(spec, table)
            if isinstance(placed, str):
                return placed
            table[key] = {"nodes": list(placed), "gpus": spec.gpus_per_worker, "at": round(self._clock())}
            if self._write_lease(spec.namespace, lease, table):
                return placed
        raise SourceError(
            f"job {key} was not created: {self.RESERVE_TRIES} other launches reserved GPUs while this one "
            "tried to; launch it again"
        )

    def _release_loop(self) -> None:
        """Every ``interval``: start, whole, the Jobs aios-tui launches left suspended because their gang did
        not fit (:data:`QUEUED_ANNOTATION`), oldest first, each once it fits (:meth:`_release`). Every console
        runs it; the reservations Lease makes sure that one of them releases each Job, once."""
        while not self._stop.wait(self.interval):
            with self._lock:
                queued = sorted(
                    (
                        rec
                        for (kind, _), store in self._stores.items()
                        if kind == "jobs"
                        for rec in store.values()
                        if rec.held and rec.suspended and not (rec.complete or rec.failed)
                    ),
                    key=lambda rec: (rec.created, rec.key),
                )
            for rec in queued:
                if self._stop.is_set():
                    return
                try:
                    self._release(rec)
                except SourceError as exc:
                    log.warning("%s: could not release queued job %s: %s", self.name, rec.key, exc)

    def _release(self, rec: JobRec) -> None:
        """Reserve a queued Job's gang (same shape and GPU model, anywhere it fits), then resume it and pin
        its gated pods; nothing when it does not fit yet or another console reserved it first."""
        spec = LaunchSpec(rec.namespace, rec.name, rec.image, rec.workers, rec.gpus_per_worker, rec.gpu_model)
        placed = self._reserve(spec, queued=True)
        if isinstance(placed, str):
            return
        marks = {RESERVED_ANNOTATION: ",".join(placed), QUEUED_ANNOTATION: None}
        path = f"/apis/batch/v1/namespaces/{_seg(rec.namespace)}/jobs/{_seg(rec.name)}"
        try:
            job = self._call(
                "PATCH",
                path,
                body={"metadata": {"annotations": marks}, "spec": {"suspend": False}},
                content_type=_MERGE,
            )
        except SourceError:
            self._unreserve(spec)
            raise
        log.info("%s: queued job %s fits now on %s: released", self.name, rec.key, ", ".join(placed))
        self._pin_ranks(
            dataclasses.replace(spec, placement=placed), str((job.get("metadata") or {}).get("uid") or "")
        )

    def _unreserve(self, spec: LaunchSpec) -> None:
        """Drop this launch's reservation (its Job could not be created); best effort, logged."""
        key = f"{spec.namespace}/{spec.name}"
        try:
            for _ in range(self.RESERVE_TRIES):
                lease, table = self._lease(spec.namespace)
                if lease is None or key not in table:
                    return
                del table[key]
                if self._write_lease(spec.namespace, lease, table):
                    return
        except SourceError as exc:
            log.warning("%s: could not drop the reservation of %s: %s", self.name, key, exc)

    def _lease_path(self, namespace: str) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{_seg(namespace)}/leases"

    def _lease(self, namespace: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The reservations Lease and its table; (None, {}) when it was missing and has just been made."""
        path = self._lease_path(namespace)
        try:
            lease = self._call("GET", f"{path}/{self.LEASE}", raw_errors=True)
        except ApiException as exc:
            if exc.status != 404:
                raise self._error(exc, f"read Lease {namespace}/{self.LEASE}") from None
            body = {"metadata": {"name": self.LEASE, "annotations": {self.RESERVATIONS: "{}"}}, "spec": {}}
            try:
                self._call("POST", path, body=body, raw_errors=True)
            except ApiException as exc2:
                if exc2.status != 409:  # 409: another launch made it first
                    raise self._error(exc2, f"create Lease {namespace}/{self.LEASE}") from None
            return None, {}
        meta = lease.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        raw = annotations.get(self.RESERVATIONS) if isinstance(annotations, dict) else None
        try:
            table = json.loads(raw) if isinstance(raw, str) else {}
        except (ValueError, RecursionError):
            table = {}
        if not isinstance(table, dict):
            table = {}
        return lease, {k: v for k, v in table.items() if _entry_nodes(v) is not None}

    def _write_lease(self, namespace: str, lease: dict[str, Any], table: Mapping[str, Any]) -> bool:
        """Write ``table`` into ``lease`` unless it changed since it was read: False on 409."""
        meta = dict(lease.get("metadata") or {})  # resourceVersion kept: the precondition
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            self.RESERVATIONS: json.dumps(table, sort_keys=True),
        }
        try:
            self._call(
                "PUT",
                f"{self._lease_path(namespace)}/{self.LEASE}",
                body={**lease, "metadata": meta},
                raw_errors=True,
            )
        except ApiException as exc:
            if exc.status == 409:
                return False  # another launch reserved in between: read again, re-plan
            raise self._error(exc, f"update Lease {namespace}/{self.LEASE}") from None
        return True

    RESERVATION_GRACE_S: Final = 300.0
    """A reservation whose Job does not exist is kept this long (by the reading console's clock) after it
    was made: the Job is created right after its reservation, and consoles' clocks may differ."""

    def _live_reservations(self, namespace: str, table: Mapping[str, Any]) -> dict[str, Any]:
        """``table`` less the reservations of Jobs that finished, or that were never made or deleted."""
        live: dict[str, Any] = {}
        for key, entry in table.items():
            with self._lock:
                rec = self._find(("jobs",), key)
            if rec is not None and (rec.complete or rec.failed):
                continue
            if rec is None:
                at = entry.get("at")
                if isinstance(at, int | float) and self._clock() - at < self.RESERVATION_GRACE_S:
                    live[key] = entry
                    continue
                path = f"/apis/batch/v1/namespaces/{_seg(namespace)}/jobs/{_seg(key.partition('/')[2])}"
                try:
                    job = self._call("GET", path, raw_errors=True)
                except ApiException as exc:
                    if exc.status == 404:
                        continue
                    raise self._error(exc, f"read job {key}") from None
                if (job.get("status") or {}).get("completionTime") or _job_failed(job):
                    continue
            live[key] = entry
        return live

    def _fit(self, spec: LaunchSpec, table: Mapping[str, Any]) -> tuple[str, ...] | str:
        """The planned nodes when they still have room, counting every reservation in ``table`` instead of
        its Job's pods; else a new placement of the same shape, GPU model and zone; else why none fits."""
        with self._lock:
            stores = {s: dict(d) for s, d in self._stores.items() if s[0] in ("nodes", "pods", "jobs")}
        nodes = _nodes_less(stores, table)
        free = {n.name: n.gpus_allocatable - n.gpus_requested for n in nodes if n.schedulable}
        want: dict[str, int] = {}
        for node in spec.placement:
            want[node] = want.get(node, 0) + spec.gpus_per_worker
        if want and all(free.get(node, 0) >= gpus for node, gpus in want.items()):
            return spec.placement
        planned = {n.name: n for n in nodes}.get(spec.placement[0]) if spec.placement else None
        request = GangRequest(
            workers=spec.workers,
            gpus_per_worker=spec.gpus_per_worker,
            gpu_model=spec.gpu_model or (planned.gpu_model if planned is not None else ""),
            zone=spec.zone,
            priority=spec.priority,
            name=f"{spec.namespace}/{spec.name}",
        )
        placed = place_gang(FleetSnapshot(timestamp=0.0, nodes=tuple(nodes)), request)
        return placed.nodes if isinstance(placed, Placement) else placed.reason

    def _pin_ranks(self, spec: LaunchSpec, uid: str) -> None:
        """Rank i to the i-th planned node, all ranks released together.

        One pod template serves every index of a Job, so its node affinity can only name the set of planned
        nodes: the scheduler would then put any rank on any of them, and with workers that take part of a
        node, more of them on one node than planned. So the pods are created gated (:attr:`RANK_GATE`);
        once the Job controller has made all of them, each gets ``nodeSelector`` hostname = its rank's
        planned node and loses the gate, one PATCH each. Pods that never appear (no Job controller, a quota)
        leave the Job gated, holding no GPU, and the launch fails saying so.
        """
        ns = _seg(spec.namespace)
        index_key = "batch.kubernetes.io/job-completion-index"  # a label since 1.28; the annotation before
        deadline = time.monotonic() + self.PIN_WAIT_S
        while True:
            listed = self._call(
                "GET", f"/api/v1/namespaces/{ns}/pods", query=[("labelSelector", f"job-name={spec.name}")]
            )
            gated: dict[int, dict[str, Any]] = {}
            for pod in listed.get("items") or []:
                meta = pod.get("metadata") or {}
                if uid and not any(o.get("uid") == uid for o in meta.get("ownerReferences") or []):
                    continue  # a pod of an earlier Job of the same name
                index = (meta.get("labels") or {}).get(index_key) or (meta.get("annotations") or {}).get(
                    index_key
                )
                if isinstance(index, str) and index.isdigit() and int(index) < spec.workers:
                    gated.setdefault(int(index), pod)
            if len(gated) == spec.workers:
                break
            if time.monotonic() >= deadline:
                raise SourceError(
                    f"job {spec.namespace}/{spec.name} was created, but only {len(gated)} of {spec.workers} "
                    f"pods appeared within {self.PIN_WAIT_S:g}s; they wait, gated ({self.RANK_GATE}), "
                    "holding no GPU: delete the job, or check its events (FailedCreate)"
                )
            if self._stop.wait(0.2):
                raise SourceError(f"job {spec.namespace}/{spec.name}: the console closed while its pods came")
        for index in sorted(gated):
            pod = gated[index]
            gates = [
                g for g in pod.get("spec", {}).get("schedulingGates") or [] if g.get("name") != self.RANK_GATE
            ]
            body = {
                "spec": {"nodeSelector": {HOSTNAME_LABEL: spec.placement[index]}, "schedulingGates": gates}
            }
            name = _seg(str(pod["metadata"]["name"]))
            self._call("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}", body=body, content_type=_MERGE)

    def priority_classes(self) -> Mapping[str, int] | None:
        """None: PriorityClasses are not watched, so a launch names its class (``--priority-class``)."""
        return None

    def job_manifest(self, spec: LaunchSpec) -> dict[str, Any]:
        """The Indexed Job that runs ``spec``: handed to Kueue's queue (the job created suspended, Kueue
        admits it) when ``kueue_queue`` is set; to the cluster's gang scheduling when it has it (only the
        plan's GPU model and zone as nodeSelector: :meth:`_gang`); else pinned to ``spec.placement`` (the
        nodes :meth:`_reserve` reserved: their set in node affinity, each rank's own node set on its gated
        pod by :meth:`_pin_ranks`). ``priorityClassName`` when the spec names a class."""
        gpu = self._gpu_names[0] if self._gpu_names else "nvidia.com/gpu"
        labels = {**MANAGED_BY, **_equality_labels(self._job_selector)}
        pod_labels = {**MANAGED_BY, "job-name": spec.name}
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "trainer",
                    "image": spec.image,
                    "resources": {
                        "requests": {gpu: str(spec.gpus_per_worker)},
                        "limits": {gpu: str(spec.gpus_per_worker)},
                    },
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                }
            ],
            "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
        }
        if spec.priority_class:
            pod_spec["priorityClassName"] = spec.priority_class
        if self._gang(spec):
            # The scheduler places the PodGroup whole or not at all: pinning ranks would send every launch
            # planned from the same view to the same nodes. Only the plan's GPU model (and zone) bind it.
            product = self._product(spec)
            selector = {GPU_PRODUCT_LABEL: product} if product else {}
            if spec.zone:
                selector[ZONE_LABEL] = spec.zone
            if selector:
                pod_spec["nodeSelector"] = selector
        elif self._pins(spec):
            pod_spec["schedulingGates"] = [{"name": self.RANK_GATE}]  # released by _pin_ranks, rank by rank
        job_spec: dict[str, Any] = {
            "completionMode": "Indexed",
            "completions": spec.workers,
            "parallelism": spec.workers,
            "backoffLimit": 0,
        }
        queue = self._settings.kueue_queue
        if queue:
            labels[KUEUE_QUEUE_LABEL] = queue
            job_spec["suspend"] = True
        elif self._pins(spec) and spec.placement:
            nodes = list(dict.fromkeys(spec.placement))
            affinity: dict[str, Any] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": nodes}]}
                        ]
                    }
                }
            }
            if self._whole_nodes(nodes, spec.gpus_per_worker):
                affinity["podAntiAffinity"] = {
                    "requiredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "labelSelector": {"matchLabels": {"job-name": spec.name}},
                            "topologyKey": HOSTNAME_LABEL,
                        }
                    ]
                }
            pod_spec["affinity"] = affinity
        job_spec["template"] = {"metadata": {"labels": pod_labels}, "spec": pod_spec}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
            "spec": job_spec,
        }

    def _product(self, spec: LaunchSpec) -> str:
        """The GPU product label value (``nvidia.com/gpu.product``) of the planned nodes, or, unplaced, of a
        node of the GPU model asked for; "" when unknown."""
        with self._lock:
            if spec.placement:
                rec = self._find(("nodes",), spec.placement[0])
            else:
                rec = next(
                    (
                        r
                        for (kind, _), store in self._stores.items()
                        if kind == "nodes" and spec.gpu_model
                        for r in store.values()
                        if r.node.gpu_model == spec.gpu_model
                    ),
                    None,
                )
        return str(rec.node.labels.get(GPU_PRODUCT_LABEL, "")) if rec is not None else ""

    def _whole_nodes(self, nodes: Sequence[str], gpus_per_worker: int) -> bool:
        """Whether each worker takes a whole node (then one pod per node, by anti-affinity)."""
        with self._lock:
            sizes = [
                rec.node.gpus_allocatable for n in nodes if (rec := self._find(("nodes",), n)) is not None
            ]
        return bool(sizes) and all(gpus_per_worker >= s for s in sizes)

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = _JSON,
        timeout: float | tuple[float, float] | None = None,
    ) -> Any:
        """One call; the raw urllib3 response of a 2xx answer, its body not read yet. Raises ApiException
        (its body read up to :data:`MAX_ERROR_BYTES`) and urllib3's errors as they come.

        The request goes straight to the client's connection pool, with the client's configuration and
        authentication (``update_params_for_auth``: tokens, exec plugins and their refresh), rather than
        through ``call_api``: the client reads every error answer whole before raising."""
        api = self._api
        headers = {**api.default_headers, "Accept": _JSON}
        if api.cookie:
            headers["Cookie"] = api.cookie
        params = list(query)
        api.update_params_for_auth(headers, params, ["BearerToken"])
        url = f"{api.configuration.host}{path}" + (f"?{urlencode(params)}" if params else "")
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = json.dumps(body).encode()
        limit = self.timeout if timeout is None else timeout
        resp = api.rest_client.pool_manager.request(
            method,
            url,
            body=payload,
            headers=headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=limit[0], read=limit[1])
            if isinstance(limit, tuple)
            else urllib3.Timeout(total=limit),
        )
        if not 200 <= resp.status <= 299:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.headers = resp.headers
            try:
                exc.body = _read(resp, MAX_ERROR_BYTES).decode("utf-8", errors="replace")
            except _TooBig:
                exc.body = None  # too long to be a Status: the status code alone says what happened
            raise exc
        return resp

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = _JSON,
        raw_errors: bool = False,
        what: str = "",
    ) -> dict[str, Any]:
        """One call; its JSON answer, read up to ``max_page_bytes``. Raises :class:`SourceError` (ApiException
        too when ``raw_errors``). ``what`` names the answer in the error when it is too big."""
        where = f"{method} {path}"
        try:
            resp = self._request(method, path, query=query, body=body, content_type=content_type)
            data = _read(resp, self._max_page_bytes)
        except ApiException as exc:
            if raw_errors:
                raise
            raise self._error(exc, where) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._error(exc, where) from None
        except _TooBig:
            raise _TooBig(
                f"{what or 'the answer'} is larger than {_size(self._max_page_bytes)}, the most aios-tui "
                f"reads of one API response ({where}); it was not read"
            ) from None
        try:
            decoded = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            raise SourceError(f"{where}: the API server answered with something that is not JSON") from None
        return decoded if isinstance(decoded, dict) else {}

    def _error(self, exc: Exception, what: str) -> SourceError:
        """A clear, secret-free :class:`SourceError` for a failed call (410 gives :class:`_Gone`)."""
        if isinstance(exc, ApiException):
            message, _ = _status_message(exc)
            if exc.status == 401:
                return SourceError(
                    f"credentials expired or invalid (401 Unauthorized) for {self.name}; "
                    "renew them in the kubeconfig and retry"
                )
            if exc.status == 403:
                return _Forbidden(_forbidden_sentence(message, what))
            if exc.status == 410:
                raise _Gone(message)
            reason = clean(str(exc.reason or ""), 80)  # the status line's words: the server's, not ours
            return SourceError(f"{what}: {exc.status} {reason}: {message}".replace(" : ", ": "))
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        host = str(getattr(self._api.configuration, "host", "the API server"))
        reason = clean(redact(" ".join(str(exc).split())))
        # NewConnectionError derives from ConnectTimeoutError (urllib3 keeps it so): test it first.
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            return SourceError(
                f"cannot reach {host}: {'connection refused' if 'refused' in reason else reason}"
            )
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            return SourceError(f"{what}: no answer from the API server within {self.timeout:g}s")
        return SourceError(f"cannot reach {host}: {reason}")

    # --- lists and watches ----------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._stop.is_set():
                return
            for scope in self._scopes:
                self._threads.append(
                    threading.Thread(
                        target=self._informer, args=scope, name=f"{self.name}:{scope[0]}", daemon=True
                    )
                )
            self._threads.append(
                threading.Thread(target=self._reviews_when_synced, name=f"{self.name}:rbac", daemon=True)
            )
            if not self.read_only and not self._settings.kueue_queue:
                self._threads.append(
                    threading.Thread(target=self._release_loop, name=f"{self.name}:release", daemon=True)
                )
        for t in self._threads:
            t.start()

    def _reviews_when_synced(self) -> None:
        """Start the access reviews once the first lists are in (then every endpoint is asked about in one
        round), or after ``timeout`` while a big list still streams in: the rest are asked on the next
        round, or at once when someone asks."""
        deadline = time.monotonic() + self.timeout
        with self._changed:
            while len(self._synced) < len(self._scopes) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
        self._review_loop()

    def _informer(self, kind_name: str, namespace: str) -> None:
        """List, then watch from the list's version, forever: the loop of one resource kind."""
        kind = self._kinds[kind_name]
        scope = (kind_name, namespace)
        version = ""
        failures = 0
        while not self._stop.is_set():
            try:
                if kind.optional and not self.gang_scheduling():
                    with self._changed:  # not served here: nothing to list, ever (asked once)
                        self._synced.add(scope)
                        self._errors.pop(scope, None)
                        self._version += 1
                        self._changed.notify_all()
                    return
                if not version:
                    version = self._list(kind, namespace)
                started, was = time.monotonic(), version
                version = self._watch(kind, namespace, version)
                if version == was and time.monotonic() - started < 1.0:
                    # Closed at once with nothing in it: do not hammer whatever keeps closing it.
                    failures += 1
                    if self._stop.wait(backoff_delay(self._retry_base, failures - 1, self._retry_max)):
                        return
                else:
                    failures = 0
            except _Gone:
                log.info("%s: %s: resourceVersion expired, listing again", self.name, kind_name)
                with self._lock:
                    self.relists += 1
                version = ""
            except Exception as exc:
                if self._stop.is_set():
                    return
                failures += 1
                error = exc if isinstance(exc, SourceError) else self._safe_error(exc, kind.path(namespace))
                delay = backoff_delay(self._retry_base, failures - 1, self._retry_max)
                if isinstance(error, _Forbidden) and not kind.required:
                    # Not allowed to see this kind: show the rest, and ask again now and then.
                    log.warning("%s: %s", self.name, error)
                    with self._changed:
                        self._synced.add(scope)
                        self._denied[scope] = str(error)  # said in problems until a list succeeds
                        self._version += 1
                        self._changed.notify_all()
                    delay = self._permission_refresh_s
                else:
                    if failures == 1:
                        log.warning("%s: %s: %s", self.name, kind_name, error)
                    with self._changed:
                        self._errors[scope] = str(error)
                        self._version += 1
                        self._changed.notify_all()
                if self._stop.wait(delay):
                    return

    def _safe_error(self, exc: Exception, what: str) -> SourceError:
        """A :class:`SourceError` for anything a list or watch raised."""
        if isinstance(exc, ApiException | urllib3.exceptions.HTTPError | OSError):
            try:
                return self._error(exc, what)
            except _Gone:
                return SourceError(f"{what}: resourceVersion expired")
        log.error("%s: %s failed unexpectedly", self.name, what, exc_info=True)
        said = clean(redact(" ".join(str(exc).split())), 200) or "no message"
        return SourceError(f"{what}: failed unexpectedly ({said}); the log has the details")

    def _list(self, kind: _Kind, namespace: str) -> str:
        """List every object in pages; replaces the kind's store. Returns the list's resourceVersion.

        The first list of a kind fills its store page by page, so the first view streams in (nodes, a
        page or two, come before the pods); a list after that (a 410) is built aside and swapped in whole,
        so the last complete view stays until then. Each page is bounded by ``timeout``, the list is not:
        it may take as long as it keeps making progress. No ``resourceVersion=0``: since Kubernetes 1.31
        a consistent list is served from the watch cache too, and ``0`` may be older than what was seen
        (and on older servers ignores ``limit``, sending every pod in one answer)."""
        path = kind.path(namespace)
        scope = (kind.name, namespace)
        items: dict[str, Any] = {}
        skipped: dict[str, _Skipped] = {}
        with self._lock:
            previous = self._stores[scope]
            first = scope not in self._synced
            if first:
                self._stores[scope] = items  # filled under the lock, page by page
                self._listed[scope] = 0
                self._remaining.pop(scope, None)
        token = ""
        version = ""
        while True:
            query = [("limit", str(PAGE_SIZE))] + ([("continue", token)] if token else [])
            if kind.field_selector:
                query.append(("fieldSelector", kind.field_selector))
            page = self._call("GET", path, query=query, what=f"a list page of {kind.name}")
            objects = page.get("items") or []
            if not isinstance(objects, list):
                raise SourceError(f"GET {path}: the API server's list has no list of items")
            taken: dict[str, Any] = {}
            for obj in objects:
                self._take(kind.name, obj, taken, skipped, previous)
            meta = page.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            version = _version_of(meta, "")
            more = meta.get("continue")
            token = more if isinstance(more, str) else ""
            left = meta.get("remainingItemCount")
            with self._changed:
                items.update(taken)
                if first:
                    self._listed[scope] = len(items)
                    self._errors.pop(scope, None)  # a first list that failed is making progress again
                    if isinstance(left, int) and not isinstance(left, bool) and 0 <= left < 2**31:
                        self._remaining[scope] = left if token else 0
                    self._version += 1
                    self._changed.notify_all()
            if not token or self._stop.is_set():
                break
        with self._changed:
            self._stores[scope] = items
            self._skipped[scope] = skipped
            self._listed.pop(scope, None)
            self._remaining.pop(scope, None)
            self._synced.add(scope)
            self._errors.pop(scope, None)
            self._denied.pop(scope, None)
            self._version += 1
            self._changed.notify_all()
        return version

    def _take(
        self,
        kind: str,
        obj: object,
        store: dict[str, Any],
        skipped: dict[str, _Skipped],
        previous: Mapping[str, Any],
    ) -> None:
        """Convert one listed object into ``store``, or count it in ``skipped`` (keeping its version from
        ``previous``, the last list, when there was one)."""
        unnamed = f"{_NO_NAME} {len(skipped)}"
        if not isinstance(obj, dict):
            skipped[unnamed] = _Skipped("an item of the list is not a JSON object")
            return
        try:
            key = object_key(obj)
        except MalformedObject as exc:
            skipped[unnamed] = _Skipped(str(exc))
            return
        try:
            rec = self._convert(kind, obj)
        except MalformedObject as exc:
            old = previous.get(key)
            if old is not None:
                store[key] = old
            skipped[key] = _Skipped(str(exc), kept=old is not None)
            return
        if rec is not None:
            store[key] = rec

    def _watch(self, kind: _Kind, namespace: str, version: str) -> str:
        """Follow one watch until it ends; the last resourceVersion seen (bookmarks included)."""
        path = kind.path(namespace)
        query = [
            ("watch", "1"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(self._watch_seconds)))),
        ]
        if kind.field_selector:
            query.append(("fieldSelector", kind.field_selector))
        try:
            # Silence past a bookmark or two (or the watch's own end) is a connection gone dead.
            silence = min(self._watch_seconds, WATCH_SILENCE_S) + self.timeout
            resp = self._request("GET", path, query=query, timeout=(self.timeout, silence))
        except ApiException as exc:
            raise self._error(exc, f"watch {path}") from None
        scope = (kind.name, namespace)
        with self._changed:
            if self._stop.is_set():
                _shutdown(resp)
                return version
            self._streams.add(resp)
            if self._errors.pop(scope, None) is not None:
                self._version += 1
                self._changed.notify_all()
        try:
            for line in _lines(resp, self._max_event_bytes):
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    self._skip(scope, "a watch event is not JSON")
                    continue
                if not isinstance(event, dict):
                    self._skip(scope, "a watch event is not a JSON object")
                    continue
                kind_of_event, obj = event.get("type"), event.get("object")
                if kind_of_event == "ERROR":
                    status = obj if isinstance(obj, dict) else {}
                    code, message = status.get("code"), status.get("message")
                    message = clean(message) if isinstance(message, str) else ""
                    if code == 410:
                        raise _Gone(message)
                    raise SourceError(f"watch {path}: {clean(str(code), 16)} {message}".strip())
                if kind_of_event not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    self._skip(scope, "a watch event has no known type")
                    continue
                if not isinstance(obj, dict):
                    self._skip(scope, "a watch event has no object")
                    continue
                meta = obj.get("metadata")
                new_version = _version_of(meta, version) if isinstance(meta, dict) else version
                if kind_of_event != "BOOKMARK":
                    self._apply(scope, kind_of_event, obj)
                version = new_version
        except _TooBig:
            resp.close()
            raise _TooBig(
                f"a watch event on {kind.name} is larger than {_size(self._max_event_bytes)}, the most "
                f"aios-tui reads of one event (watch {path}); it was not read"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The stream ended early (a dropped connection, a read timeout): resume from ``version``.
            if not self._stop.is_set():
                log.debug("%s: watch %s ended: %s", self.name, path, redact(str(exc)))
        finally:
            with self._lock:
                self._streams.discard(resp)
            resp.release_conn()
        return version

    def _skip(self, scope: _Scope, reason: str) -> None:
        """Count a watch event that names no object it could change."""
        with self._lock:
            if self._skipped[scope].get(_NO_NAME) != _Skipped(reason):
                self._skipped[scope][_NO_NAME] = _Skipped(reason)
                self._version += 1

    def _apply(self, scope: _Scope, event: str, obj: dict[str, Any]) -> None:
        try:
            key = object_key(obj)
        except MalformedObject as exc:
            self._skip(scope, str(exc))
            return
        rec, error = None, ""
        if event != "DELETED":
            try:
                rec = self._convert(scope[0], obj)
            except MalformedObject as exc:
                error = str(exc)
        with self._lock:
            store, skipped = self._stores[scope], self._skipped[scope]
            if error:
                why = _Skipped(error, kept=key in store)  # its last good version stays
                if skipped.get(key) == why:
                    return
                skipped[key] = why
            else:
                was_skipped = skipped.pop(key, None) is not None
                if rec is not None:
                    store[key] = rec
                elif store.pop(key, None) is None and not was_skipped:
                    return
            self._version += 1

    def _convert(self, kind: str, obj: dict[str, Any]) -> Any:
        names, source = self._gpu_names, self.name
        if kind == "nodes":
            return convert_node(obj, source=source, gpu_names=names, rack_label=self._settings.rack_label)
        if kind == "pods":
            return convert_pod(obj, source=source, gpu_names=names)
        if kind == "deployments":
            return convert_deployment(obj, kind="Deployment", gpu_names=names)
        if kind == "statefulsets":
            return convert_deployment(obj, kind="StatefulSet", gpu_names=names)
        if kind == "replicasets":
            return convert_replicaset(obj)
        if kind == "jobs":
            return convert_job(obj, gpu_names=names)
        if kind == "poddisruptionbudgets":
            return convert_pdb(obj, source=source)
        if kind == "horizontalpodautoscalers":
            return convert_hpa(obj)
        if kind == "events":
            return convert_event(obj)
        if kind == "podgroups":
            return convert_podgroup(obj)
        raise ValueError(f"unknown kind {kind!r}")

    def _blocking_errors(self) -> list[tuple[_Scope, str]]:
        return sorted(self._errors.items())

    def _find(self, kinds: Sequence[str], key: str) -> Any:
        """A record by kind and key, from any namespace scope (call with the lock held)."""
        for (kind, _), store in self._stores.items():
            if kind in kinds and key in store:
                return store[key]
        return None

    def _endpoint_kind(self, namespace: str, name: str) -> str:
        with self._lock:
            rec = self._find(("deployments", "statefulsets"), f"{namespace}/{name}")
        return str(rec.kind) if rec is not None else "Deployment"

    # --- joining records into the fleet ---------------------------------------------------------------------

    def _build(
        self, stores: Mapping[_Scope, Mapping[str, Any]], skipped: Mapping[_Scope, Mapping[str, _Skipped]]
    ) -> SourceData:
        def records(kind: str) -> list[Any]:
            return [rec for (k, _), store in stores.items() if k == kind for rec in store.values()]

        source = self.name
        rs_owner: dict[str, str] = {}
        for (kind, _), store in stores.items():
            if kind == "replicasets":
                for key, deployment in store.items():
                    rs_owner[key] = deployment
        pod_recs: list[PodRec] = records("pods")
        pods: list[Pod] = []
        on_node: dict[str, list[PodRec]] = {}
        by_job: dict[str, list[PodRec]] = {}
        for rec in pod_recs:
            pod = rec.pod
            if rec.replicaset:
                key = f"{pod.namespace}/{rec.replicaset}"
                if key in rs_owner:
                    owner = f"{pod.namespace}/{rs_owner[key] or rec.replicaset}"
                    if owner != pod.owner:
                        pod = rec.pod = dataclasses.replace(pod, owner=owner)
            pods.append(pod)
            if pod.node and pod.gpus and pod.phase in (PodPhase.PENDING, PodPhase.RUNNING):
                on_node.setdefault(pod.node, []).append(rec)
            if pod.owner_kind == "Job":
                by_job.setdefault(pod.owner, []).append(rec)

        nodes: list[Node] = []
        gpus: list[Gpu] = []
        node_cache: dict[str, tuple[Node, int, Node]] = {}
        gpu_cache: dict[tuple[str, int], Gpu] = {}
        job_recs: list[JobRec] = records("jobs")
        # Gangs other launches reserved count as taken, bound or not (their Job's reserved-nodes).
        in_use = _gpus_in_use(pod_recs, job_recs, {}) if any(j.reserved for j in job_recs) else None
        for node_rec in records("nodes"):
            assert isinstance(node_rec, NodeRec)
            base = node_rec.node
            holders = sorted(on_node.get(base.name, ()), key=lambda r: (r.created, r.pod.name))
            requested = sum(r.pod.gpus for r in holders) if in_use is None else in_use.get(base.name, 0)
            cached = self._node_cache.get(base.name)
            node = (
                cached[2]
                if cached is not None and cached[0] is base and cached[1] == requested
                else dataclasses.replace(base, gpus_requested=requested)
            )
            node_cache[base.name] = (base, requested, node)
            nodes.append(node)
            owners = [r.pod.key for r in holders for _ in range(r.pod.gpus)]
            for i in range(base.gpus_allocatable):
                pod_key = owners[i] if i < len(owners) else ""
                gpu = self._gpu_cache.get((base.name, i))
                if gpu is None or gpu.pod != pod_key or gpu.model != base.gpu_model:
                    gpu = Gpu(
                        node=base.name,
                        index=i,
                        uuid=gpu_slot(base.name, i),
                        model=base.gpu_model,
                        pod=pod_key,
                    )
                gpu_cache[(base.name, i)] = gpu
                gpus.append(gpu)
        with self._lock:
            denied = [(scope[0], self._denied[scope]) for scope in self._scopes if scope in self._denied]
        if any(kind == "nodes" for kind, _ in denied):
            # May not list nodes (the built-in ``view`` role): each node a pod names, with what its pods
            # tell (the GPUs they request). Its capacity is unknown: 0 allocatable, so no plan counts on it
            # and no GPU row is made up; the nodes pane shows its requests with capacity "?".
            listed = {n.name for n in nodes}
            requested_on: dict[str, int] = {}
            for pod in pods:
                if pod.node and pod.node not in listed:
                    running = pod.phase in (PodPhase.PENDING, PodPhase.RUNNING)
                    requested_on[pod.node] = requested_on.get(pod.node, 0) + (pod.gpus if running else 0)
            for name, requested in requested_on.items():
                seen = Node(name=name, source=source, pool="", zone="", instance_type="")
                cached = self._node_cache.get(name)
                node = (
                    cached[2]
                    if cached is not None and cached[0] == seen and cached[1] == requested
                    else dataclasses.replace(seen, gpus_requested=requested)
                )
                node_cache[name] = (seen, requested, node)
                nodes.append(node)
            denied = [
                (kind, f"{said}; the nodes shown are those its pods run on, their capacity unknown")
                if kind == "nodes"
                else (kind, said)
                for kind, said in denied
            ]
        self._node_cache, self._gpu_cache = node_cache, gpu_cache

        hpas: dict[tuple[str, str], Any] = {}
        for hpa_rec in records("horizontalpodautoscalers"):
            assert isinstance(hpa_rec, HpaRec)
            hpas[(hpa_rec.namespace, hpa_rec.target)] = hpa_rec.hpa
        endpoints = []
        selected: list[EndpointRec] = []
        endpoint_cache: dict[str, tuple[EndpointRec, Any, Any]] = {}
        for ep_rec in records("deployments") + records("statefulsets"):
            assert isinstance(ep_rec, EndpointRec)
            if not self._selected(self._endpoint_selector, ep_rec.labels, ep_rec.gpus):
                continue
            selected.append(ep_rec)
            hpa = hpas.get((ep_rec.namespace, f"{ep_rec.kind}/{ep_rec.name}"))
            hit = self._endpoint_cache.get(ep_rec.key)
            endpoint = (
                hit[2]
                if hit is not None and hit[0] is ep_rec and hit[1] is hpa
                else build_endpoint(ep_rec, hpa, source=source)
            )
            endpoint_cache[ep_rec.key] = (ep_rec, hpa, endpoint)
            endpoints.append(endpoint)
        self._endpoint_cache = endpoint_cache

        scheduling: dict[str, tuple[float, str]] = {}
        for event in records("events"):
            pod_key, message, when = event
            if pod_key not in scheduling or when >= scheduling[pod_key][0]:
                scheduling[pod_key] = (when, message)
        messages = {k: m for k, (_, m) in scheduling.items()}
        groups: dict[str, PodGroupRec] = {}
        for group in records("podgroups"):
            assert isinstance(group, PodGroupRec)
            if group.job:  # joined to its Job through the PodGroup's ownerReferences
                groups[f"{group.namespace}/{group.job}"] = group
        jobs = []
        for job_rec in job_recs:
            assert isinstance(job_rec, JobRec)
            if self._selected(self._job_selector, job_rec.labels, job_rec.gpus_per_worker):
                pods_of = by_job.get(job_rec.key, ())
                group_of = groups.get(job_rec.key)
                jobs.append(build_job(job_rec, pods_of, messages, source=source, group=group_of))

        pdbs = []
        for pdb_rec in records("poddisruptionbudgets"):
            assert isinstance(pdb_rec, PdbRec)
            selector = pdb_rec.selector
            owner = next(
                (
                    e.key
                    for e in selected
                    if selector is not None
                    and e.namespace == pdb_rec.namespace
                    and matches(selector, e.template_labels)
                ),
                "",
            )
            pdbs.append(build_pdb(pdb_rec, owner))

        return SourceData(
            nodes=tuple(sorted(nodes, key=lambda n: n.name)),
            gpus=tuple(gpus),
            pods=tuple(pods),
            jobs=tuple(jobs),
            endpoints=tuple(endpoints),
            pdbs=tuple(pdbs),
            context=self._context,
            problems=(*(said for _, said in denied), *_skip_sentences(skipped)),
        )

    @staticmethod
    def _selected(selector: tuple[Requirement, ...], labels: Mapping[str, str], gpus: int) -> bool:
        """A configured selector decides; without one, whatever requests GPUs is shown."""
        return matches(selector, labels) if selector else gpus > 0


# --- helpers ------------------------------------------------------------------------------------------------


def _entry_nodes(entry: object) -> tuple[str, ...] | None:
    """The nodes of one rank each of a reservation entry, with its GPUs per rank; None when malformed."""
    if not isinstance(entry, dict):
        return None
    nodes, gpus = entry.get("nodes"), entry.get("gpus")
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        return None
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        return None
    return tuple(nodes)


def _job_failed(job: Mapping[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(
        isinstance(c, dict) and c.get("type") == "Failed" and c.get("status") == "True" for c in conditions
    )


def _gpus_in_use(
    pod_recs: Iterable[PodRec], job_recs: Iterable[JobRec], table: Mapping[str, Any]
) -> dict[str, int]:
    """GPUs taken on each node: the live pods' requests, with each reserved gang (an entry of ``table``, the
    reservations Lease, or a Job's :data:`RESERVED_ANNOTATION`) counted as the larger of what it reserved
    and what its pods hold there, so a gang released but not bound yet takes its GPUs all the same."""
    reserved: dict[str, dict[str, int]] = {}
    for key, entry in table.items():
        nodes = _entry_nodes(entry)
        for node in nodes or ():
            per = reserved.setdefault(key, {})
            per[node] = per.get(node, 0) + int(entry["gpus"])
    for rec in job_recs:
        if rec.reserved and rec.key not in reserved and not (rec.complete or rec.failed):
            per = reserved.setdefault(rec.key, {})
            for node in rec.reserved:
                per[node] = per.get(node, 0) + rec.gpus_per_worker
    used: dict[str, int] = {}
    held: dict[str, dict[str, int]] = {}
    for pod_rec in pod_recs:
        pod = pod_rec.pod
        if not (pod.node and pod.gpus and pod.phase in (PodPhase.PENDING, PodPhase.RUNNING)):
            continue
        if pod.owner_kind == "Job" and pod.owner in reserved:
            per = held.setdefault(pod.owner, {})
            per[pod.node] = per.get(pod.node, 0) + pod.gpus
        else:
            used[pod.node] = used.get(pod.node, 0) + pod.gpus
    for key, per in reserved.items():
        bound = held.get(key, {})
        for node in per.keys() | bound.keys():
            used[node] = used.get(node, 0) + max(per.get(node, 0), bound.get(node, 0))
    return used


def _nodes_less(stores: Mapping[_Scope, Mapping[str, Any]], table: Mapping[str, Any]) -> list[Node]:
    """The listed nodes, each with ``gpus_requested`` = what :func:`_gpus_in_use` says it holds."""

    def records(kind: str) -> list[Any]:
        return [rec for (k, _), store in stores.items() if k == kind for rec in store.values()]

    used = _gpus_in_use(records("pods"), records("jobs"), table)
    return [
        dataclasses.replace(rec.node, gpus_requested=used.get(rec.node.name, 0)) for rec in records("nodes")
    ]


def _on_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop (which must never wait on a lock or a server)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _status_message(exc: ApiException) -> tuple[str, list[str]]:
    """The message of the Status the server answered with, and its causes' messages: remote text, so
    cleaned (and credentials masked) here."""
    try:
        status = json.loads(exc.body) if exc.body else {}
    except (ValueError, TypeError, RecursionError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    message = status.get("message")
    if not isinstance(message, str) or not message.strip():
        message = str(exc.reason or f"HTTP {exc.status}")
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    said = [
        c["message"]
        for c in (causes if isinstance(causes, list) else ())
        if isinstance(c, dict) and isinstance(c.get("message"), str) and c["message"]
    ]
    return clean(redact(message)), [clean(redact(c)) for c in said]


_RBAC_DENIED: Final = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "[^"]*")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| (?P<cluster>at the cluster scope))?'
)
"""What kube-apiserver's RBAC authorizer says in a 403 (``nodes is forbidden: User "system:serviceaccount:
ml-prod:viewer" cannot list resource "nodes" in API group "" at the cluster scope``)."""


def _forbidden_sentence(message: str, what: str) -> str:
    """A 403 in words: "cannot list nodes: forbidden (RBAC: user u may not list nodes at cluster scope)" for
    a list or watch, "forbidden: RBAC: user u may not patch deployments/scale in namespace ml-prod" for
    anything else. ``message`` is the server's Status message (cleaned), ``what`` the request ("GET /api/v1/
    nodes", "watch /api/v1/nodes", "PATCH …", "evict ns/name"). A message from another authorizer (a
    webhook) is passed on as it is."""
    found = _RBAC_DENIED.search(message)
    if found is not None:
        where = (
            f"in namespace {found['namespace']}"
            if found["namespace"]
            else "at cluster scope"
            if found["cluster"]
            else ""
        )
        said = f"RBAC: user {found['user']} may not {found['verb']} {found['resource']} {where}".rstrip()
    else:
        said = message
    method, _, path = what.partition(" ")
    if method in ("GET", "watch") and path.startswith("/api"):
        resource = found["resource"] if found is not None else path.rstrip("/").rpartition("/")[2]
        verb = "watch" if method == "watch" else found["verb"] if found is not None else "list"
        return f"cannot {verb} {resource}: forbidden ({said})"
    return f"forbidden: {said}"


def _skip_sentences(skipped: Mapping[_Scope, Mapping[str, _Skipped]]) -> tuple[str, ...]:
    """One sentence per kind with skipped objects: how many, and one of them with why ("1 pod skipped:
    metadata.ownerReferences is not a list (ml-prod/x)"). Keys are cleaned names; reasons name fields."""
    by_kind: dict[str, dict[str, _Skipped]] = {}
    for (name, _), entries in skipped.items():
        by_kind.setdefault(name, {}).update(entries)
    out = []
    for kind in KINDS:
        entries = by_kind.get(kind.name, {})
        if not entries:
            continue
        count = len(entries)
        key = min(entries, key=lambda k: (k.startswith(_NO_NAME), k))
        why = entries[key]
        example = "unnamed" if key.startswith(_NO_NAME) else key
        if why.kept:
            example += ", its last good version shown"
        more = f" and {count - 1} more" if count > 1 else ""
        noun = _NOUNS[kind.name] + ("s" if count > 1 else "")
        out.append(f"{count} {noun} skipped: {why.reason} ({example}){more}")
    return tuple(out)


def _version_of(meta: Mapping[str, Any], default: str) -> str:
    """An object's or a list's resourceVersion (etcd's revision, a decimal int64), or ``default`` when it
    has none that could be one: it goes back to the server in the next watch's query."""
    version = meta.get("resourceVersion")
    return version if isinstance(version, str) and 0 < len(version) <= 64 else default


def _equality_labels(selector: Sequence[Requirement]) -> dict[str, str]:
    """The labels a new object needs to match the ``key=value`` terms of a selector."""
    return {r.key: next(iter(r.values)) for r in selector if r.op == "In" and len(r.values) == 1}


def _seg(name: str) -> str:
    """A name as one segment of a URL path: a name from a broken or hostile server (``../nodes/x``) must
    not turn an action on one object into an action on another. Valid names pass unchanged."""
    return quote(name, safe="")


def _size(limit: int) -> str:
    """``64 MiB``, ``1.5 KiB``, ``100 bytes``: a limit as a person reads it."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"


def _read(resp: Any, limit: int) -> bytes:
    """The whole body of ``resp``, or :class:`_TooBig` as soon as it passes ``limit`` bytes (before any
    of it is read when Content-Length says so); the connection is closed then, not reused."""
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        resp.close()
        raise _TooBig(str(limit))
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.stream(_CHUNK, decode_content=True):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise _TooBig(str(limit))
        chunks.append(chunk)
    resp.release_conn()
    return b"".join(chunks)


def _lines(resp: Any, limit: int) -> Iterator[bytes]:
    """The lines of a streamed response as they arrive (a watch sends one JSON event per line, each ended
    by a line break: an unended tail is an event cut off, which the resumed watch sends again); a line
    longer than ``limit`` bytes raises :class:`_TooBig` without being held whole. Reads at most 64 KiB at a
    time (an HTTP chunk is not trusted to be small), and looks for line breaks only in what is new."""
    pending: list[bytes] = []
    size = 0
    for chunk in resp.stream(_CHUNK, decode_content=True):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if size + end - start > limit:
                raise _TooBig(str(limit))
            line = b"".join([*pending, chunk[start:end]]) if pending else chunk[start:end]
            pending, size, start = [], 0, end + 1
            if line.strip():
                yield line
        if start < len(chunk):
            size += len(chunk) - start
            if size > limit:
                raise _TooBig(str(limit))
            pending.append(chunk[start:])


def _shutdown(resp: Any) -> None:
    """Unblock a thread reading ``resp`` (urllib3 ≥ 2.3), then close it."""
    shutdown = getattr(resp, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        resp.close()
    except Exception:  # closing is best effort: the thread exits on its own at the stream's end
        log.debug("closing a watch stream failed", exc_info=True)
