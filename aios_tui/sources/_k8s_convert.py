"""Kubernetes JSON → domain objects: pure functions over the API server's JSON, no client, no I/O.

Each function takes one object as the API server sends it (a ``dict`` decoded from JSON, exactly the shape
of ``tests/fixtures/kubernetes/``) and returns a small record or a domain object. The source converts each
object once when it arrives (list or watch event) and joins the records at fetch time, so an object that did
not change is never converted again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.prices import INSTANCE_TYPES, price_per_hour
from aios_tui.domain import (
    NA,
    Condition,
    Endpoint,
    Health,
    Hpa,
    Job,
    JobState,
    Metric,
    Node,
    Pdb,
    Pod,
    PodPhase,
    Taint,
)
from aios_tui.domain.model import short_gpu_model

__all__ = [
    "DEFAULT_RACK_LABEL",
    "EndpointRec",
    "HpaRec",
    "JobRec",
    "NodeRec",
    "PdbRec",
    "PodRec",
    "Requirement",
    "build_endpoint",
    "build_job",
    "build_pdb",
    "convert_deployment",
    "convert_event",
    "convert_hpa",
    "convert_job",
    "convert_node",
    "convert_pdb",
    "convert_pod",
    "convert_replicaset",
    "deployment_of_replicaset",
    "gpu_request",
    "matches",
    "object_key",
    "parse_quantity",
    "parse_selector",
    "pdb_of_message",
    "selector_matches",
    "selector_requirements",
    "short_gpu_model",
]

DEFAULT_RACK_LABEL = "topology.k8s.aws/network-node-layer-3"
"""EKS's label for the network spine above a node: the closest thing to a rack it publishes."""
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
TEMPLATE_HASH = "pod-template-hash"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
#: Node labels naming the node group a node belongs to, by provider (EKS, GKE, AKS, Karpenter).
POOL_LABELS = (
    "eks.amazonaws.com/nodegroup",
    "cloud.google.com/gke-nodepool",
    "kubernetes.azure.com/agentpool",
    "karpenter.sh/nodepool",
)
#: Node conditions whose ``True`` is bad news.
PRESSURE_CONDITIONS = frozenset({"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"})

_EMPTY: Mapping[str, str] = MappingProxyType({})
_SUFFIXES = {
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_PDB_NAME = re.compile(r"disruption budget (\S+)")


# --- small parsers ----------------------------------------------------------------------------------------


def parse_quantity(value: object) -> Decimal:
    """A resource quantity (``"8"``, ``"500m"``, ``"64Gi"``, ``2``) as a number; 0 when unreadable."""
    if isinstance(value, bool):
        return Decimal(0)
    if isinstance(value, int | float):
        return Decimal(str(value))
    if not isinstance(value, str):
        return Decimal(0)
    m = _QUANTITY.match(value.strip())
    if m is None:
        return Decimal(0)
    try:
        number = Decimal(m[1])
    except InvalidOperation:
        return Decimal(0)
    return number * _SUFFIXES[m[2]] if m[2] else number


def _count(value: object) -> int:
    """A device count: whole devices, never negative."""
    return max(0, int(parse_quantity(value)))


def _time(value: object) -> float:
    """An RFC 3339 timestamp as seconds since the epoch; 0.0 when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return 0.0
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else _EMPTY


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return MappingProxyType(dict(labels)) if isinstance(labels, Mapping) and labels else _EMPTY


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    annotations = _meta(obj).get("annotations")
    return annotations if isinstance(annotations, Mapping) else _EMPTY


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for a cluster-scoped object)."""
    meta = _meta(obj)
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def gpu_request(pod_spec: Mapping[str, Any] | None, names: Sequence[str]) -> int:
    """GPUs a pod (or pod template) holds: its containers' requests (limits where no request) summed over
    the GPU resource ``names``, or its largest init container's when that is more (as the scheduler counts).
    """
    if not isinstance(pod_spec, Mapping):
        return 0

    def of(container: Any) -> int:
        if not isinstance(container, Mapping):
            return 0
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        return sum(_count(requests[n] if n in requests else limits.get(n, 0)) for n in names)

    main = sum(of(c) for c in pod_spec.get("containers") or ())
    init = max((of(c) for c in pod_spec.get("initContainers") or ()), default=0)
    return max(main, init)


def _gpu_image(pod_spec: Mapping[str, Any] | None, names: Sequence[str]) -> tuple[str, str]:
    """Name and image of the container that requests GPUs (the first container when none does)."""
    containers = [c for c in (pod_spec or {}).get("containers") or () if isinstance(c, Mapping)]
    for c in containers:
        if gpu_request({"containers": [c]}, names):
            return str(c.get("name", "")), str(c.get("image", ""))
    if containers:
        return str(containers[0].get("name", "")), str(containers[0].get("image", ""))
    return "", ""


def _template_model(pod_spec: Mapping[str, Any] | None) -> str:
    selector = (pod_spec or {}).get("nodeSelector") or {}
    return short_gpu_model(str(selector.get(GPU_PRODUCT_LABEL, "")))


# --- label selectors --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector: ``key op values`` with op In, NotIn, Exists or DoesNotExist."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "In":
            return labels.get(self.key) in self.values
        if self.op == "NotIn":
            return labels.get(self.key) not in self.values
        if self.op == "Exists":
            return self.key in labels
        if self.op == "DoesNotExist":
            return self.key not in labels
        return False


_SET_TERM = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [t.strip() for t in out if t.strip()]


def parse_selector(text: str) -> tuple[Requirement, ...]:
    """A label selector as typed (``app=llm,tier in (a,b),!legacy``). Raises ValueError when malformed."""
    out = []
    for term in _split_terms(text):
        m = _SET_TERM.match(term)
        if m:
            values = frozenset(v.strip() for v in m[3].split(",") if v.strip())
            out.append(Requirement(m[1], "In" if m[2] == "in" else "NotIn", values))
        elif "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            out.append(Requirement(key, "NotIn", frozenset({value})))
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            out.append(Requirement(key, "In", frozenset({value})))
        elif term.startswith("!"):
            out.append(Requirement(term[1:].strip(), "DoesNotExist"))
        else:
            out.append(Requirement(term, "Exists"))
        if not out[-1].key or any(c in out[-1].key for c in " =!()"):
            raise ValueError(f"malformed label selector term {term!r}")
    return tuple(out)


def matches(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in requirements)


def selector_requirements(selector: object) -> tuple[Requirement, ...] | None:
    """A ``LabelSelector`` object (matchLabels, matchExpressions) as requirements; None for a null one."""
    if not isinstance(selector, Mapping):
        return None
    out = [Requirement(k, "In", frozenset({str(v)})) for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or ():
        if isinstance(expr, Mapping):
            out.append(
                Requirement(
                    str(expr.get("key", "")),
                    str(expr.get("operator", "")),
                    frozenset(str(v) for v in expr.get("values") or ()),
                )
            )
    return tuple(out)


def selector_matches(selector: object, labels: Mapping[str, str]) -> bool:
    """Whether a ``LabelSelector`` object selects ``labels`` (null selects nothing, empty everything)."""
    reqs = selector_requirements(selector)
    return reqs is not None and matches(reqs, labels)


# --- nodes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRec:
    """A node as listed, with ``gpus_requested`` still 0: pods fill it in at fetch time."""

    node: Node


def convert_node(
    obj: Mapping[str, Any], *, source: str, gpu_names: Sequence[str], rack_label: str
) -> NodeRec:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    labels = _labels(obj)
    capacity = status.get("capacity") or {}
    allocatable = status.get("allocatable") or {}
    total = sum(_count(capacity.get(n, 0)) for n in gpu_names)
    alloc = sum(_count(allocatable.get(n, 0)) for n in gpu_names)
    conditions = tuple(
        Condition(
            str(c.get("type", "")),
            str(c.get("status", "")),
            str(c.get("reason") or ""),
            str(c.get("message") or ""),
        )
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping)
    )
    taints = tuple(
        Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect") or "NoSchedule"))
        for t in spec.get("taints") or ()
        if isinstance(t, Mapping)
    )
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    if not ready:
        health = Health.FAIL
    elif any(c.type in PRESSURE_CONDITIONS and c.status == "True" for c in conditions):
        health = Health.WARN
    else:
        health = Health.OK
    itype = labels.get(INSTANCE_TYPE_LABEL, labels.get("beta.kubernetes.io/instance-type", ""))
    model = short_gpu_model(labels.get(GPU_PRODUCT_LABEL, ""))
    if not model and total and itype in INSTANCE_TYPES:
        model = INSTANCE_TYPES[itype].gpu_model
    pool = next((labels[k] for k in POOL_LABELS if labels.get(k)), "")
    node = Node(
        name=str(meta.get("name", "")),
        source=source,
        pool=pool or itype,
        zone=labels.get(ZONE_LABEL, labels.get("failure-domain.beta.kubernetes.io/zone", "")),
        instance_type=itype,
        gpu_model=model if (total or alloc) else "",
        gpus_total=total,
        gpus_allocatable=alloc,
        ready=ready,
        cordoned=bool(spec.get("unschedulable")),
        conditions=conditions,
        taints=taints,
        labels=labels,
        rack=labels.get(rack_label or DEFAULT_RACK_LABEL, ""),
        provider_id=str(spec.get("providerID") or ""),
        price_per_hour=price_per_hour(itype) if itype else NA,
        health=health,
        cluster=source,
    )
    return NodeRec(node)


# --- pods -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class PodRec:
    """A pod as listed. ``pod.owner`` of a ReplicaSet's pod is provisional until the ReplicaSet is known."""

    pod: Pod
    labels: Mapping[str, str]
    replicaset: str = ""
    """Name of the owning ReplicaSet, whose owner is the Deployment (resolved at fetch time)."""
    unschedulable: str = ""
    """The scheduler's message while the pod cannot be placed (its PodScheduled=False condition)."""
    created: float = 0.0


def _owner_ref(meta: Mapping[str, Any]) -> tuple[str, str]:
    refs = [r for r in meta.get("ownerReferences") or () if isinstance(r, Mapping)]
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return (str(ref.get("kind", "")), str(ref.get("name", ""))) if ref else ("", "")


def deployment_of_replicaset(rs_name: str, labels: Mapping[str, str]) -> str:
    """A Deployment names its ReplicaSets ``<deployment>-<pod-template-hash>``."""
    h = labels.get(TEMPLATE_HASH, "")
    return rs_name[: -len(h) - 1] if h and rs_name.endswith("-" + h) else rs_name


def convert_pod(obj: Mapping[str, Any], *, source: str, gpu_names: Sequence[str]) -> PodRec | None:
    """None for a mirror pod (a static pod the kubelet runs): it cannot be evicted or moved."""
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    if MIRROR_ANNOTATION in _annotations(obj):
        return None
    labels = _labels(obj)
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    kind, owner_name = _owner_ref(meta)
    replicaset = ""
    owner = f"{ns}/{owner_name}" if owner_name else ""
    if kind == "ReplicaSet":
        replicaset = owner_name
        owner = f"{ns}/{deployment_of_replicaset(owner_name, labels)}"
    try:
        phase = PodPhase(status.get("phase") or "Pending")
    except ValueError:
        phase = PodPhase.UNKNOWN
    conditions = [c for c in status.get("conditions") or () if isinstance(c, Mapping)]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    unschedulable = next(
        (
            str(c.get("message") or c.get("reason") or "Unschedulable")
            for c in conditions
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        "",
    )
    index = labels.get(COMPLETION_INDEX, _annotations(obj).get(COMPLETION_INDEX, ""))
    pod = Pod(
        namespace=ns,
        name=name,
        node=str(spec.get("nodeName") or ""),
        phase=phase,
        gpus=gpu_request(spec, gpu_names),
        owner_kind=kind,
        owner=owner,
        ready=ready,
        empty_dir=any(isinstance(v, Mapping) and "emptyDir" in v for v in spec.get("volumes") or ()),
        rank=int(index) if index.isdigit() else -1,
        source=source,
    )
    return PodRec(pod, labels, replicaset, unschedulable, _time(meta.get("creationTimestamp")))


def convert_replicaset(obj: Mapping[str, Any]) -> str:
    """The Deployment that owns a ReplicaSet ("" when none does)."""
    kind, name = _owner_ref(_meta(obj))
    return name if kind == "Deployment" else ""


# --- endpoints ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointRec:
    """A Deployment or StatefulSet; shown as an endpoint when ``selected``."""

    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    template_labels: Mapping[str, str]
    replicas: int
    ready: int
    image: str
    container: str
    gpus: int
    gpu_model: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def convert_deployment(obj: Mapping[str, Any], *, kind: str, gpu_names: Sequence[str]) -> EndpointRec:
    """A Deployment (``kind="Deployment"``) or StatefulSet (``kind="StatefulSet"``)."""
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    container, image = _gpu_image(pod_spec, gpu_names)
    tlabels = _get(template, "metadata", "labels")
    return EndpointRec(
        kind=kind,
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels=_labels(obj),
        template_labels=MappingProxyType(dict(tlabels)) if isinstance(tlabels, Mapping) else _EMPTY,
        replicas=_int(spec.get("replicas"), 1),
        ready=_int(status.get("readyReplicas")),
        image=image,
        container=container,
        gpus=gpu_request(pod_spec, gpu_names),
        gpu_model=_template_model(pod_spec),
    )


@dataclass(frozen=True, slots=True)
class HpaRec:
    """A HorizontalPodAutoscaler and the workload it scales (``Deployment/name``)."""

    namespace: str
    target: str
    hpa: Hpa


def _metric_value(target: Mapping[str, Any] | None) -> float | None:
    if not isinstance(target, Mapping):
        return None
    for field_name in ("averageValue", "value", "averageUtilization"):
        if field_name in target:
            return float(parse_quantity(target[field_name]))
    return None


def _metric_name(metric: Mapping[str, Any]) -> tuple[str, Mapping[str, Any] | None, str]:
    """(name, its target, the section name) of an HPA metric spec."""
    kind = str(metric.get("type", ""))
    section = kind[:1].lower() + kind[1:]
    body = metric.get(section) or {}
    if kind in {"Resource", "ContainerResource"}:
        name = str(body.get("name", ""))
    else:
        name = str(_get(body, "metric", "name") or "")
    return name, body.get("target"), section


def convert_hpa(obj: Mapping[str, Any]) -> HpaRec:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    metrics = [m for m in spec.get("metrics") or () if isinstance(m, Mapping)]
    name, target = "", 0.0
    current: Metric = NA
    if metrics:
        name, target_spec, section = _metric_name(metrics[0])
        target = _metric_value(target_spec) or 0.0
        for m in status.get("currentMetrics") or ():
            if isinstance(m, Mapping) and m.get("type") == metrics[0].get("type"):
                cur_name, _, _ = _metric_name(m)
                value = _metric_value(_get(m, section, "current"))
                if cur_name == name and value is not None:
                    current = value
                    break
    return HpaRec(
        namespace=str(meta.get("namespace", "")),
        target=f"{ref.get('kind', '')}/{ref.get('name', '')}",
        hpa=Hpa(
            name=str(meta.get("name", "")),
            min_replicas=_int(spec.get("minReplicas"), 1),
            max_replicas=_int(spec.get("maxReplicas")),
            metric=name,
            target=target,
            current=current,
        ),
    )


def build_endpoint(rec: EndpointRec, hpa: Hpa | None, *, source: str) -> Endpoint:
    return Endpoint(
        namespace=rec.namespace,
        name=rec.name,
        source=source,
        image=rec.image,
        replicas_desired=rec.replicas,
        replicas_ready=rec.ready,
        gpus_per_replica=rec.gpus,
        gpu_model=rec.gpu_model,
        hpa=hpa,
        cluster=source,
    )


# --- jobs ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRec:
    namespace: str
    name: str
    labels: Mapping[str, str]
    workers: int
    gpus_per_worker: int
    gpu_model: str
    image: str
    priority: int
    suspended: bool
    complete: bool
    failed: str
    """The Failed condition's message ("" unless the job failed)."""
    created: float
    started: float
    finished: float
    succeeded: int

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def convert_job(obj: Mapping[str, Any], *, gpu_names: Sequence[str]) -> JobRec:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    pod_spec = _get(spec, "template", "spec") or {}
    conditions = [c for c in status.get("conditions") or () if isinstance(c, Mapping)]
    true = {str(c.get("type")): c for c in conditions if c.get("status") == "True"}
    failed = true.get("Failed")
    return JobRec(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels=_labels(obj),
        workers=_int(spec.get("parallelism"), 1),
        gpus_per_worker=gpu_request(pod_spec, gpu_names),
        gpu_model=_template_model(pod_spec),
        image=_gpu_image(pod_spec, gpu_names)[1],
        priority=_int(pod_spec.get("priority")),
        suspended=bool(spec.get("suspend")),
        complete="Complete" in true,
        failed=str(failed.get("message") or failed.get("reason") or "failed") if failed else "",
        created=_time(meta.get("creationTimestamp")),
        started=_time(status.get("startTime")),
        finished=_time(status.get("completionTime")),
        succeeded=_int(status.get("succeeded")),
    )


def build_job(rec: JobRec, pods: Sequence[PodRec], scheduling: Mapping[str, str], *, source: str) -> Job:
    """The job as a gang: QUEUED while suspended (Kueue) or while any rank cannot be scheduled, with the
    scheduler's words as the reason; RUNNING once every rank runs. ``pods`` are the job's pods;
    ``scheduling`` maps a pod key to its latest FailedScheduling event message."""
    queue = rec.labels.get(KUEUE_QUEUE_LABEL, "")
    live = [p for p in pods if p.pod.phase in (PodPhase.PENDING, PodPhase.RUNNING)]
    live.sort(key=lambda p: (p.pod.rank if p.pod.rank >= 0 else 1 << 30, p.pod.name))
    reason = ""
    placement: tuple[str, ...] = ()
    if rec.failed:
        state, reason = JobState.FAILED, rec.failed
    elif rec.complete:
        state = JobState.SUCCEEDED
    elif rec.suspended:
        state = JobState.QUEUED
        reason = f"suspended, waiting in Kueue queue {queue}" if queue else "suspended"
    else:
        blocked = [p for p in live if not p.pod.node and (p.unschedulable or p.pod.key in scheduling)]
        if blocked:
            state = JobState.QUEUED
            first = blocked[0]
            why = scheduling.get(first.pod.key) or first.unschedulable
            rank = f"rank {first.pod.rank}" if first.pod.rank >= 0 else first.pod.name
            reason = f"{rank}: {why}"
        else:
            running = sum(1 for p in live if p.pod.phase is PodPhase.RUNNING)
            state = JobState.RUNNING if running >= rec.workers else JobState.STARTING
            placement = tuple(p.pod.node for p in live)
    progress = 1.0 if state is JobState.SUCCEEDED else NA
    return Job(
        namespace=rec.namespace,
        name=rec.name,
        source=source,
        workers=rec.workers,
        gpus_per_worker=rec.gpus_per_worker,
        gpu_model=rec.gpu_model,
        state=state,
        priority=rec.priority,
        queue=queue,
        placement=placement,
        pending_reason=reason,
        image=rec.image,
        submitted_at=rec.created,
        started_at=rec.started,
        finished_at=rec.finished,
        progress=progress,
        cluster=source,
    )


# --- events, PDBs -----------------------------------------------------------------------------------------


def convert_event(obj: Mapping[str, Any]) -> tuple[str, str, float] | None:
    """(pod key, message, time) of a FailedScheduling event; None for any other event."""
    if obj.get("reason") != "FailedScheduling":
        return None
    involved = obj.get("involvedObject") or {}
    if involved.get("kind") != "Pod":
        return None
    when = (
        _time(obj.get("lastTimestamp"))
        or _time(obj.get("eventTime"))
        or _time(_meta(obj).get("creationTimestamp"))
    )
    key = f"{involved.get('namespace', '')}/{involved.get('name', '')}"
    return key, str(obj.get("message") or ""), when


@dataclass(frozen=True, slots=True)
class PdbRec:
    namespace: str
    name: str
    selector: tuple[Requirement, ...] | None
    pdb: Pdb = field(compare=False)


def convert_pdb(obj: Mapping[str, Any], *, source: str) -> PdbRec:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))

    def whole(value: object) -> int | None:  # a percentage has no fixed count: desiredHealthy says it
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    pdb = Pdb(
        namespace=ns,
        name=name,
        owner="",
        min_available=whole(spec.get("minAvailable")),
        max_unavailable=whole(spec.get("maxUnavailable")),
        current_healthy=_int(status.get("currentHealthy")),
        desired_healthy=_int(status.get("desiredHealthy")),
        disruptions_allowed=_int(status.get("disruptionsAllowed")),
        source=source,
    )
    return PdbRec(ns, name, selector_requirements(spec.get("selector")), pdb)


def build_pdb(rec: PdbRec, owner: str) -> Pdb:
    return rec.pdb if rec.pdb.owner == owner else dataclasses.replace(rec.pdb, owner=owner)


def pdb_of_message(namespace: str, message: str) -> str:
    """``namespace/name`` of the budget a 429's cause names ("The disruption budget llm-serve needs …")."""
    m = _PDB_NAME.search(message)
    return f"{namespace}/{m[1]}" if m else ""
