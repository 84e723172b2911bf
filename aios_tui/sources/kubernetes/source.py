""":class:`KubernetesSource`, one cluster, made of the mixins of this package, and
:func:`sources_from_settings`; ``fetch()`` joins the records the informers keep into the fleet.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence, Set
from contextlib import AbstractContextManager
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from aios_tui.config import KubernetesSettings
from aios_tui.domain import Event, Gpu, Node, Pod
from aios_tui.domain.clock import now as wall_now
from aios_tui.domain.model import gpu_slot
from aios_tui.sources._k8s_convert import (
    EndpointRec,
    EventRec,
    HpaRec,
    JobRec,
    NodeRec,
    PdbRec,
    PodGroupRec,
    PodRec,
    Requirement,
    build_endpoint,
    build_job,
    build_pdb,
    matches,
    parse_selector,
)
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.kubernetes.access import PERMISSION_REFRESH_S, _Access, _Review
from aios_tui.sources.kubernetes.actions import _TERMINAL, _Actions, _gpus_in_use
from aios_tui.sources.kubernetes.client import (
    _Client,
    _kubeconfig_path,
    _shutdown,
    api_client_factory,
    kubeconfig_contexts,
)
from aios_tui.sources.kubernetes.informer import (
    KINDS,
    MAX_EVENT_BYTES,
    MAX_PAGE_BYTES,
    WATCH_SECONDS,
    _Informer,
    _Scope,
    _skip_sentences,
    _Skipped,
)
from aios_tui.sources.kubernetes.logs import _Logs


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


MAX_EVENTS: Final = 2000
"""The most events one fetch gives (the newest): a cluster in trouble writes thousands of Warning events an
hour, and the poller's log keeps its own bound across fetches."""


def _events(
    recs: Sequence[EventRec],
    told: Sequence[Event],
    rs_owner: Mapping[str, str],
    endpoints: Set[str],
    hpa_target: Mapping[str, str] = MappingProxyType({}),
) -> tuple[Event, ...]:
    """The cluster's Warning events and what its pods' status tells (``told``: OOM kills), newest first,
    at most :data:`MAX_EVENTS`. A Deployment's, StatefulSet's, ReplicaSet's or HorizontalPodAutoscaler's event
    is its endpoint's when the workload is shown as one (a ReplicaSet's through the Deployment that owns it,
    an autoscaler's through the workload it scales: ``hpa_target``, its key → the workload's)."""
    out: list[Event] = []
    for rec in recs:
        e = rec.event
        if e.kind in ("deployment", "statefulset") and e.key in endpoints:
            e = dataclasses.replace(e, kind="endpoint")
        elif e.kind == "replicaset":
            ns, _, name = e.key.partition("/")
            owner = f"{ns}/{rs_owner.get(e.key) or name}"
            if owner in endpoints:
                e = dataclasses.replace(e, kind="endpoint", key=owner)
        elif e.kind == "horizontalpodautoscaler" and hpa_target.get(e.key, "") in endpoints:
            e = dataclasses.replace(e, kind="endpoint", key=hpa_target[e.key])
        out.append(e)
    out.extend(told)
    if len(out) > MAX_EVENTS:
        return tuple(heapq.nlargest(MAX_EVENTS, out, key=lambda e: e.time))
    return tuple(sorted(out, key=lambda e: e.time, reverse=True))


class _BuiltNode(NamedTuple):
    """A node as the last fetch made it, with what it was made of."""

    base: Node
    """As listed."""
    holding: list[Pod]
    """The pods that hold their requests there."""
    reserved: int | None
    """GPUs reserved gangs take there (:func:`_gpus_in_use`), or None when no gang reserves any."""
    sums: tuple[int, int, int, int, tuple[tuple[str, int], ...]]
    """Whole GPUs, milli-GPU, milli-CPU, memory and MIG slices by profile: what they take."""
    node: Node
    """As shown: with what its pods request."""
    owners: tuple[str, ...]
    """The pod each of its GPUs goes to, in order (a pod of n GPUs n times)."""


class KubernetesSource(_Access, _Actions, _Informer, _Logs, _Client):
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
        self._cut: set[Any] = set()
        """Open watches this source closed itself (to resume them once the server answers again): whatever
        their reading thread then raises is the cut, not a failure."""
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
        self._node_cache: dict[str, _BuiltNode] = {}
        self._shared_cache: dict[str, tuple[Pod, Pod]] = {}
        """Each pod on a node that shares GPUs as last built: (as listed, as shown there)."""
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
        self.audit_hook: Callable[[str, str, str, str], AbstractContextManager[None]] | None = None
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
        node_recs: list[NodeRec] = records("nodes")
        sharing = {rec.node.name: rec for rec in node_recs if rec.shares}
        pods: list[Pod] = []
        on_node: dict[str, list[Pod]] = {}  # the pods that hold their requests there (actions._holds)
        slices: dict[str, dict[str, int]] = {}  # per MIG node, the slices of each profile its pods take
        by_job: dict[str, list[PodRec]] = {}
        told: list[Event] = []
        shared_cache: dict[str, tuple[Pod, Pod]] = {}
        for rec in pod_recs:
            pod = rec.pod
            if rec.replicaset:
                key = f"{pod.namespace}/{rec.replicaset}"
                if key in rs_owner:
                    owner = f"{pod.namespace}/{rs_owner[key] or rec.replicaset}"
                    if owner != pod.owner:
                        pod = rec.pod = dataclasses.replace(pod, owner=owner)
            taken = rec.slices
            if pod.gpus and pod.node in sharing:
                pod, taken = self._shared(pod, sharing[pod.node], taken, shared_cache)
            pods.append(pod)
            if pod.node and pod.phase not in _TERMINAL:  # _holds, inline: 150,000 pods a build
                holding = on_node.get(pod.node)
                if holding is None:
                    on_node[pod.node] = [pod]
                else:
                    holding.append(pod)
                if taken:
                    per = slices.setdefault(pod.node, {})
                    for profile, count in taken:
                        per[profile] = per.get(profile, 0) + count
            if pod.owner_kind == "Job":
                by_job.setdefault(pod.owner, []).append(rec)
            if rec.events:
                told.extend(rec.events)
        self._shared_cache = shared_cache

        nodes: list[Node] = []
        gpus: list[Gpu] = []
        node_cache: dict[str, _BuiltNode] = {}
        gpu_cache: dict[tuple[str, int], Gpu] = {}
        job_recs: list[JobRec] = records("jobs")
        # Gangs other launches reserved count as taken, bound or not (their Job's reserved-nodes).
        in_use = _gpus_in_use(pods, job_recs, {}) if any(j.reserved for j in job_recs) else None
        for node_rec in node_recs:
            base = node_rec.node
            reserved = in_use.get(base.name, 0) if in_use is not None else None
            built = self._node_with(base, on_node.get(base.name, []), reserved, slices.get(base.name))
            node_cache[base.name] = built
            nodes.append(built.node)
            owners = built.owners
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
            # tell (the GPUs, CPU and memory they request). Its capacity is unknown: 0 allocatable, so no
            # plan counts on it and no GPU row is made up; the nodes pane shows requests with capacity "?".
            listed = {n.name for n in nodes}
            for name in dict.fromkeys(p.node for p in pods if p.node and p.node not in listed):
                seen = Node(name=name, source=source, pool="", zone="", instance_type="")
                built = node_cache[name] = self._node_with(seen, on_node.get(name, []), None, None)
                nodes.append(built.node)
            denied = [
                (kind, f"{said}; the nodes shown are those its pods run on, their capacity unknown")
                if kind == "nodes"
                else (kind, said)
                for kind, said in denied
            ]
        self._node_cache, self._gpu_cache = node_cache, gpu_cache

        hpas: dict[tuple[str, str], Any] = {}
        hpa_target: dict[str, str] = {}
        for hpa_rec in records("horizontalpodautoscalers"):
            assert isinstance(hpa_rec, HpaRec)
            hpas[(hpa_rec.namespace, hpa_rec.target)] = hpa_rec.hpa
            scaled = hpa_rec.target.partition("/")[2]
            hpa_target[f"{hpa_rec.namespace}/{hpa_rec.hpa.name}"] = f"{hpa_rec.namespace}/{scaled}"
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
        event_recs: list[EventRec] = records("events")
        for event_rec in event_recs:
            if event_rec.scheduling is None:
                continue
            pod_key, message, when = event_rec.scheduling
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

        events = _events(event_recs, told, rs_owner, {e.key for e in endpoints}, hpa_target)
        return SourceData(
            nodes=tuple(sorted(nodes, key=lambda n: n.name)),
            gpus=tuple(gpus),
            pods=tuple(pods),
            jobs=tuple(jobs),
            endpoints=tuple(endpoints),
            pdbs=tuple(pdbs),
            context=self._context,
            problems=(*(said for _, said in denied), *_skip_sentences(skipped)),
            events=events,
        )

    def _shared(
        self,
        pod: Pod,
        node: NodeRec,
        taken: tuple[tuple[str, int], ...],
        cache: dict[str, tuple[Pod, Pod]],
    ) -> tuple[Pod, tuple[tuple[str, int], ...]]:
        """A pod whose node offers shares of GPUs as its GPU resource, as the node gives them: the replicas or
        MIG slices it holds as milli-GPU (and profile), no whole GPU; with the MIG slices it takes there.
        Made once per pod and node sharing (``cache`` keeps this fetch's; the last fetch's are reused)."""
        milli, profile = node.share(pod.gpus)
        if profile:
            taken = (*taken, (profile, pod.gpus))
        want = (pod.gpu_milli + milli, profile or pod.gpu_profile)
        hit = self._shared_cache.get(pod.key)
        if hit is not None and hit[0] is pod and (hit[1].gpu_milli, hit[1].gpu_profile) == want:
            shown = hit[1]
        else:
            shown = dataclasses.replace(pod, gpus=0, gpu_milli=want[0], gpu_profile=want[1])
        cache[pod.key] = (pod, shown)
        return shown, taken

    def _node_with(
        self, base: Node, holding: list[Pod], reserved: int | None, slices: Mapping[str, int] | None
    ) -> _BuiltNode:
        """``base`` with what the pods ``holding`` their requests there take (whole GPUs, or ``reserved``
        where gangs reserved some: :func:`_gpus_in_use`; milli-GPU, CPU, memory; ``slices``, MIG slices by
        profile) and the pods its GPUs go to, in order. Summed again only when the node, one of its pods or
        the reservations changed since the last fetch; the node made again only when a sum changed."""
        taken = tuple(sorted(slices.items())) if slices else ()
        hit = self._node_cache.get(base.name)
        same_base = hit is not None and (hit.base is base or hit.base == base)  # unlisted: made anew, equal
        if hit is not None and same_base and hit.holding == holding and hit.reserved == reserved:
            return hit
        gpus = milli = cpu = memory = 0
        for pod in holding:
            gpus += pod.gpus
            milli += pod.gpu_milli
            cpu += pod.cpu
            memory += pod.memory
        sums = (gpus if reserved is None else reserved, milli, cpu, memory, taken)
        gpu_pods = sorted((p for p in holding if p.gpus), key=lambda p: (p.created_at, p.name))
        owners = tuple(p.key for p in gpu_pods for _ in range(p.gpus))
        if hit is not None and same_base and hit.sums == sums:  # a pod changed, not what it requests
            return _BuiltNode(base, holding, reserved, sums, hit.node, owners)
        mig = base.mig_slices
        if slices:
            mig = tuple(dataclasses.replace(s, requested=slices.get(s.profile, 0)) for s in mig)
        node = dataclasses.replace(
            base,
            gpus_requested=sums[0],
            gpu_milli_requested=milli,
            cpu_requested=cpu,
            memory_requested=memory,
            mig_slices=mig,
        )
        return _BuiltNode(base, holding, reserved, sums, node, owners)

    @staticmethod
    def _selected(selector: tuple[Requirement, ...], labels: Mapping[str, str], gpus: int) -> bool:
        """A configured selector decides; without one, whatever requests GPUs is shown."""
        return matches(selector, labels) if selector else gpus > 0
