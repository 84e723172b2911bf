"""The write actions of :class:`~aios_tui.sources.kubernetes.KubernetesSource`: scale, redeploy, cordon,
evict, launch (Job manifests, gang scheduling, node pinning, Lease reservations and their release loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, ParamSpec

from kubernetes.client.exceptions import ApiException

from aios_tui.alloc.placement import GangRequest, Placement, place_gang
from aios_tui.domain import FleetSnapshot, Node, Pod, PodPhase
from aios_tui.sources._k8s_convert import (
    GPU_PRODUCT_LABEL,
    KUEUE_QUEUE_LABEL,
    QUEUED_ANNOTATION,
    RESERVED_ANNOTATION,
    ZONE_LABEL,
    JobRec,
    Requirement,
    pdb_of_message,
)
from aios_tui.sources.base import EvictionBlocked, LaunchSpec, SourceError
from aios_tui.sources.kubernetes.client import _MERGE, _STRATEGIC, _Client, _seg, _status_message, log
from aios_tui.sources.kubernetes.informer import GANG_API, _Scope

_P = ParamSpec("_P")
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
MANAGED_BY: Final = {"app.kubernetes.io/managed-by": "aios-tui"}


class GangQueued(SourceError):
    """A launch's Job was created suspended because its gang does not fit now: it holds no GPU, and the
    release loop starts it, whole, when it fits."""


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


_TERMINAL: Final = (PodPhase.SUCCEEDED, PodPhase.FAILED)


def _holds(pod: Pod) -> bool:
    """Whether a pod holds what it requests on its node: bound and not terminated. The scheduler frees a
    Succeeded or Failed pod's requests at once; a Pending, Running or Unknown one keeps them, deleted or not,
    until it is gone or terminated."""
    return bool(pod.node) and pod.phase not in _TERMINAL


def _gpus_in_use(pods: Iterable[Pod], job_recs: Iterable[JobRec], table: Mapping[str, Any]) -> dict[str, int]:
    """Whole GPUs taken on each node: the holding pods' requests (:func:`_holds`), with each reserved gang
    (an entry of ``table``, the reservations Lease, or a Job's :data:`RESERVED_ANNOTATION`) counted as the
    larger of what it reserved and what its pods hold there, so a gang released but not bound yet takes its
    GPUs all the same."""
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
    for pod in pods:
        if not (pod.gpus and _holds(pod)):
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
    """The listed nodes whose GPUs are not shared, each with ``gpus_requested`` = what :func:`_gpus_in_use`
    says it holds. A launch asks whole GPUs of the GPU resource: a node that offers it as replicas of
    time-sliced GPUs or as MIG slices would give its ranks shares, or nothing (mixed MIG)."""

    def records(kind: str) -> list[Any]:
        return [rec for (k, _), store in stores.items() if k == kind for rec in store.values()]

    used = _gpus_in_use((rec.pod for rec in records("pods")), records("jobs"), table)
    return [
        dataclasses.replace(rec.node, gpus_requested=used.get(rec.node.name, 0))
        for rec in records("nodes")
        if not rec.node.gpu_sharing
    ]


def _equality_labels(selector: Sequence[Requirement]) -> dict[str, str]:
    """The labels a new object needs to match the ``key=value`` terms of a selector."""
    return {r.key: next(iter(r.values)) for r in selector if r.op == "In" and len(r.values) == 1}


class _Actions(_Client):
    """The methods of :class:`KubernetesSource` in this module."""

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
        spec.check_shape()
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
        audited = self.audit_hook
        if audited is None:  # nothing changes the cluster unaudited: a console without actions never releases
            return
        spec = LaunchSpec(rec.namespace, rec.name, rec.image, rec.workers, rec.gpus_per_worker, rec.gpu_model)
        placed = self._reserve(spec, queued=True)
        if isinstance(placed, str):
            return
        marks = {RESERVED_ANNOTATION: ",".join(placed), QUEUED_ANNOTATION: None}
        path = f"/apis/batch/v1/namespaces/{_seg(rec.namespace)}/jobs/{_seg(rec.name)}"
        title = f"Release queued job {rec.key} onto {', '.join(placed)}"
        resumed = False
        try:
            with audited("launch", rec.key, self.name, title):
                job = self._call(
                    "PATCH",
                    path,
                    body={"metadata": {"annotations": marks}, "spec": {"suspend": False}},
                    content_type=_MERGE,
                )
                resumed = True
                log.info("%s: queued job %s fits now on %s: released", self.name, rec.key, ", ".join(placed))
                uid = str((job.get("metadata") or {}).get("uid") or "")
                self._pin_ranks(dataclasses.replace(spec, placement=placed), uid)
        except Exception as exc:
            if not resumed:  # the Job is still suspended: its reservation goes
                self._unreserve(spec)
            raise SourceError(f"release of {rec.key}: {exc}") from None

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
