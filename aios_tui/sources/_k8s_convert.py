"""Kubernetes JSON → domain objects: pure functions over the API server's JSON, no client, no I/O.

Each function takes one object as the API server sends it (a ``dict`` decoded from JSON, exactly the shape
of ``tests/fixtures/kubernetes/``) and returns a small record or a domain object. The source converts each
object once when it arrives (list or watch event) and joins the records at fetch time, so an object that did
not change is never converted again.

Nothing here trusts the object. Tenants write images, messages and labels, and whatever sits between the
console and the API server (a proxy, an aggregated API, a buggy server) decides the shape. So every string
taken from an object passes :func:`~aios_tui.domain.text.clean` (escapes, controls, bidi and zero-width
characters out; length capped) before it enters a record, and every field read is type-checked: a field
of the wrong type, a number out of range, a quantity or a time that does not parse raises
:class:`MalformedObject`, and nothing else is ever raised (``tests/unit/test_k8s_convert.py`` fuzzes every
converter to hold that). The source skips such an object and counts it; it never fails the whole source.
A field that is absent or ``null`` is not malformed: it takes the default Kubernetes gives it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from aios_tui.domain import (
    MILLI_GPU,
    NA,
    Condition,
    Endpoint,
    Event,
    Health,
    Hpa,
    Job,
    JobState,
    Metric,
    MigSlice,
    Node,
    Pdb,
    Pod,
    PodPhase,
    Taint,
)
from aios_tui.domain.model import short_gpu_model
from aios_tui.domain.text import LIMIT, LONG_LIMIT, clean
from aios_tui.sources.clouds import instance_type, list_price

__all__ = [
    "DEFAULT_RACK_LABEL",
    "EVENT_KINDS",
    "IMAGE_LIMIT",
    "LABEL_KEY_LIMIT",
    "MAX_DEVICES",
    "MAX_MEMORY",
    "MAX_MILLI_CPU",
    "EndpointRec",
    "EventRec",
    "HpaRec",
    "JobRec",
    "MalformedObject",
    "NodeRec",
    "PdbRec",
    "PodGroupRec",
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
    "convert_podgroup",
    "convert_replicaset",
    "convert_warning_event",
    "deployment_of_replicaset",
    "gpu_request",
    "matches",
    "mig_profile",
    "object_key",
    "parse_quantity",
    "parse_selector",
    "pdb_of_message",
    "requests_of",
    "selector_matches",
    "selector_requirements",
    "short_gpu_model",
]

DEFAULT_RACK_LABEL = "topology.k8s.aws/network-node-layer-3"
"""EKS's label for the network spine above a node: the closest thing to a rack it publishes."""
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
"""GPU feature discovery's count of the node's physical GPUs (of its MIG devices under MIG's single
strategy)."""
GPU_REPLICAS_LABEL = "nvidia.com/gpu.replicas"
"""GPU feature discovery: how many replicas of each GPU the device plugin offers (time-slicing, MPS)."""
GPU_SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
"""GPU feature discovery: ``none``, ``time-slicing`` or ``mps`` (absent before device plugin v0.15, which
only time-sliced)."""
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
"""GPU feature discovery: ``single`` (the GPU resource counts MIG devices, all of one profile) or ``mixed``
(one ``nvidia.com/mig-<profile>`` resource per profile)."""
MIG_PREFIX = "nvidia.com/mig-"
SHARED_SUFFIX = ".shared"
"""The device plugin's ``renameByDefault``: replicas of ``nvidia.com/gpu`` offered as
``nvidia.com/gpu.shared``."""
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
TEMPLATE_HASH = "pod-template-hash"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
RESERVED_ANNOTATION = "aios-tui.dev/reserved-nodes"
"""On a Job aios-tui launched without the cluster's gang scheduling: the node of each rank (comma-separated,
in rank order) that the launch reserved before releasing its pods. Every console subtracts what is not yet
bound there from its free GPUs (see docs/actions.md, "Gangs that cannot collide")."""
QUEUED_ANNOTATION = "aios-tui.dev/queued"
"""On a Job an aios-tui launch created suspended because its gang did not fit: why, in words."""
DEFAULT_BACKOFF_LIMIT = 6
"""A Job's ``spec.backoffLimit`` when the object leaves it out (batch/v1)."""
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

LABEL_KEY_LIMIT = 317
"""Characters kept of a label or taint key: Kubernetes allows a 253-character prefix, ``/`` and a
63-character name, so a valid key is never cut (names, namespaces and label values fit ``LIMIT``)."""
IMAGE_LIMIT = 520
"""Characters kept of a container image: the distribution spec's 255-character name, ``:`` and a
128-character tag, ``@`` and a 135-character sha512 digest. A valid reference is never cut (redeploy's
``:TAG`` builds the new image from it)."""
MAX_DEVICES = 1024
"""The most devices (GPUs, MIG slices, time-sliced shares) one node offers or one pod requests: 8 GPUs ×
7 MIG slices is 56, time-slicing 8 GPUs 10 ways is 80. Beyond it the object is malformed: the source makes
one ``Gpu`` per allocatable device, and a node claiming 10¹⁵ would exhaust memory."""
MAX_MILLI_CPU = 10**9
"""The most milli-CPU one pod asks or one node offers: a million CPUs, hundreds of times the largest machine.
Beyond it the object is malformed, as a device count beyond :data:`MAX_DEVICES` is."""
MAX_MEMORY = 2**60
"""The most bytes of memory one pod asks or one node offers: an exbibyte (malformed beyond)."""
MAX_PROFILES = 64
"""The most MIG profiles one node offers: a GPU has about ten, a node one kind of GPU (malformed beyond)."""
_INT32 = 2**31 - 1
"""Replicas, parallelism, priority and the PDB counts are int32 in the Kubernetes API."""
_SHORT = 64
"""Longer than any quantity or timestamp Kubernetes writes: a longer one is not worth parsing."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_QUANTITY_MAX = Decimal(2**63)
_INDEX = re.compile(r"^[0-9]{1,9}$")
_MIG_PROFILE = re.compile(r"^(?:([1-7])c\.)?([1-7])g\.[0-9]{1,4}gb(?:[+-][a-z.]{1,16})?$")
"""``1g.10gb``, ``1g.10gb+me``, ``3g.40gb``, ``1c.3g.40gb`` (a compute instance of one slice in a 3g one)."""
_MIG_SLICES = 7
"""Compute slices in a whole MIG-capable GPU: a ``3g`` slice is 3/7 of it."""
_PDB_NAME = re.compile(r"disruption budget (\S+)")


class MalformedObject(ValueError):
    """An object without the shape Kubernetes gives it: a field of the wrong type, a number out of range, a
    quantity or a time that does not parse. The only exception the converters raise; the source skips the
    object and counts it. The message names the field and what is wrong ("metadata.ownerReferences is not a
    list"), never the value, which may be hostile or huge."""


# --- typed reads: each raises MalformedObject, and only that ---------------------------------------------


def _root(obj: object) -> Mapping[str, Any]:
    # What JSON gives, tested first: Mapping's ABC check cost ~6 % of a pod's conversion (cProfile).
    if type(obj) is dict:
        return obj
    if not isinstance(obj, Mapping):
        raise MalformedObject("the object is not a JSON object")
    return obj


def _map(value: object, path: str) -> Mapping[str, Any]:
    """A JSON object; absent or null is empty."""
    if type(value) is dict:
        return value
    if value is None:
        return _EMPTY
    if isinstance(value, Mapping):
        return value
    raise MalformedObject(f"{path} is not an object")


def _list(value: object, path: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return value
    raise MalformedObject(f"{path} is not a list")


def _maps(value: object, path: str) -> list[Mapping[str, Any]]:
    """A list of JSON objects (containers, conditions, taints …)."""
    items = _list(value, path)
    for item in items:
        if type(item) is not dict and not isinstance(item, Mapping):
            raise MalformedObject(f"{path} has an entry that is not an object")
    return list(items)


def _text(value: object, path: str, limit: int = LIMIT) -> str:
    """A string, cleaned and capped; absent or null is ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value, limit)
    raise MalformedObject(f"{path} is not a string")


def _name(meta: Mapping[str, Any]) -> str:
    name = _text(meta.get("name"), "metadata.name")
    if not name:
        raise MalformedObject("metadata.name is missing")
    return name


def _flag(value: object, path: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    raise MalformedObject(f"{path} is not true or false")


def _whole(value: object, path: str, default: int = 0, low: int = 0) -> int:
    """An int32 of at least ``low``; absent or null is ``default``."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedObject(f"{path} is not a whole number")
    if not low <= value <= _INT32:
        raise MalformedObject(f"{path} is out of range")
    return value


def _time(value: object, path: str) -> float:
    """An RFC 3339 timestamp as seconds since the epoch; 0.0 when absent."""
    if value is None or value == "":
        return 0.0
    if not isinstance(value, str):
        raise MalformedObject(f"{path} is not a string")
    if len(value) > _SHORT:
        raise MalformedObject(f"{path} is not a time")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if when.tzinfo is None:  # the API server always says UTC; never the reading machine's zone
            when = when.replace(tzinfo=dt.UTC)
        return when.timestamp()
    except (ValueError, OverflowError):
        raise MalformedObject(f"{path} is not a time") from None


def _labels_of(value: object, path: str) -> Mapping[str, str]:
    """A string → string map (labels, a node selector), keys and values cleaned."""
    raw = _map(value, path)
    if not raw:
        return _EMPTY
    out: dict[str, str] = {}
    for key, item in raw.items():
        if not isinstance(item, str):
            raise MalformedObject(f"{path} has a value that is not a string")
        out[clean(key, LABEL_KEY_LIMIT)] = clean(item, LIMIT)
    return MappingProxyType(out)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_root(obj).get("metadata"), "metadata")


def _labels(meta: Mapping[str, Any]) -> Mapping[str, str]:
    return _labels_of(meta.get("labels"), "metadata.labels")


def _annotations(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """The annotations, unchecked but for being an object: only the few read are type-checked."""
    return _map(meta.get("annotations"), "metadata.annotations")


def _section(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    return _map(obj.get(key), key)


# --- small parsers ----------------------------------------------------------------------------------------


def parse_quantity(value: object, path: str = "quantity") -> Decimal:
    """A resource quantity (``"8"``, ``"500m"``, ``"64Gi"``, ``2``) as a number. Raises
    :class:`MalformedObject` when it is not one, or beyond ±2⁶³ (Kubernetes' own range)."""
    if isinstance(value, bool):
        raise MalformedObject(f"{path} is not a quantity")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedObject(f"{path} is out of range")
        number = Decimal(repr(value))
    elif isinstance(value, str) and len(value) <= _SHORT:
        m = _QUANTITY.match(value.strip())
        if m is None:
            raise MalformedObject(f"{path} is not a quantity")
        try:
            number = Decimal(m[1])
        except InvalidOperation:
            raise MalformedObject(f"{path} is not a quantity") from None
        # Compared before scaling, and exactly (copy_abs applies no context): 1e999999999 × Ki overflows.
        if number.copy_abs() >= _QUANTITY_MAX:
            raise MalformedObject(f"{path} is out of range")
        if m[2]:
            number *= _SUFFIXES[m[2]]
    else:
        raise MalformedObject(f"{path} is not a quantity")
    if number.copy_abs() >= _QUANTITY_MAX:
        raise MalformedObject(f"{path} is out of range")
    return number


def _count(value: object, path: str) -> int:
    """A device count: whole devices, never negative, at most :data:`MAX_DEVICES`."""
    number = parse_quantity(value, path)
    if number > MAX_DEVICES:
        raise MalformedObject(f"{path} is more than {MAX_DEVICES} devices")
    return max(0, int(number))


def _devices(resources: Mapping[str, Any], names: Sequence[str], path: str) -> int:
    total = sum(_count(resources[n], f"{path}[{n}]") for n in names if resources.get(n) is not None)
    if total > MAX_DEVICES:
        raise MalformedObject(f"{path} has more than {MAX_DEVICES} devices")
    return total


_PARSED: dict[tuple[str, str], int] = {}
"""Quantities of containers already read, by (resource, text): a cluster writes a few dozen ("500m",
"64Gi", "1") over and over, and reading one costs a regular expression and Decimal arithmetic."""
_PARSED_MAX = 4096
"""Beyond this many, a quantity is read each time: an object's own strings cannot grow the table further."""


def _amount(value: object, path: str, scale: int, cap: int) -> int:
    """A CPU (``scale`` 1000: milli-CPU) or memory (``scale`` 1: bytes) quantity, rounded up as Kubernetes
    does (``100m`` of memory is one byte). Malformed when negative or beyond ``cap``."""
    number = parse_quantity(value, path) * scale
    if number < 0:
        raise MalformedObject(f"{path} is negative")
    if number > cap:
        raise MalformedObject(f"{path} is out of range")
    return int(number.to_integral_value(ROUND_CEILING))


def _milli_cpu(value: object, path: str) -> int:
    return _amount(value, path, 1000, MAX_MILLI_CPU)


def _bytes(value: object, path: str) -> int:
    return _amount(value, path, 1, MAX_MEMORY)


_Readers = Mapping[str, Callable[[object, str], int]]
_POD_LEVEL: _Readers = MappingProxyType({"cpu": _milli_cpu, "memory": _bytes})
"""The resources a pod's own ``spec.resources`` may set (Pod Level Resources; hugepages are not read)."""
_CAPS = {"cpu": (MAX_MILLI_CPU, "milli-CPU"), "memory": (MAX_MEMORY, "bytes")}


@functools.cache
def _readers(gpu_names: tuple[str, ...]) -> _Readers:
    """How each resource read is parsed: CPU in milli-CPU, memory in bytes, the GPU resources and their
    :data:`SHARED_SUFFIX` renames in devices (``nvidia.com/mig-…`` ones too: :func:`_asked`)."""
    readers: dict[str, Callable[[object, str], int]] = {}
    for name in gpu_names:
        readers[name] = readers[name + SHARED_SUFFIX] = _count
    readers.update(_POD_LEVEL)  # one reader per resource name, whatever the settings: _PARSED relies on it
    return MappingProxyType(readers)


def _shared_names(gpu_names: Sequence[str]) -> tuple[str, ...]:
    return (*gpu_names, *(n + SHARED_SUFFIX for n in gpu_names))


@functools.lru_cache(maxsize=256)
def mig_profile(resource: str) -> tuple[str, int] | None:
    """(profile, milli-GPU of one slice) of a MIG resource (``nvidia.com/mig-3g.40gb`` → ``3g.40gb``, 428:
    3 of 7 compute slices); None when ``resource`` is not one. The profile is cleaned."""
    if not resource.startswith(MIG_PREFIX) or len(resource) > _SHORT:
        return None
    profile = resource[len(MIG_PREFIX) :]
    m = _MIG_PROFILE.match(profile)
    if m is None:
        return None
    return clean(profile), MILLI_GPU * int(m[1] or m[2]) // _MIG_SLICES


def _asked(container: Mapping[str, Any], where: str, readers: _Readers) -> dict[str, int]:
    """What one container asks of each resource read: its request, else its limit (Kubernetes defaults a
    missing request to the limit; a pod template is not defaulted)."""
    resources = _map(container.get("resources"), f"{where}.resources")
    out: dict[str, int] = {}
    for part in ("requests", "limits"):
        for name, value in _map(resources.get(part), f"{where}.resources.{part}").items():
            if value is None or name in out:
                continue
            read = readers.get(name)
            if read is None:
                if mig_profile(name) is None:
                    continue
                read = _count
            if type(value) is str:
                known = _PARSED.get((name, value))
                if known is None:
                    known = read(value, f"{where}.resources[{name}]")
                    if len(_PARSED) < _PARSED_MAX:
                        _PARSED[(name, value)] = known
                out[name] = known
            else:
                out[name] = read(value, f"{where}.resources[{name}]")
    return out


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, amount in more.items():
        total[name] = total.get(name, 0) + amount


def requests_of(
    pod_spec: Mapping[str, Any] | None, gpu_names: Sequence[str], path: str = "spec"
) -> dict[str, int]:
    """A pod's (or pod template's) effective request of each resource read, as the scheduler counts it:
    ``cpu`` in milli-CPU, ``memory`` in bytes, the GPU resources, their ``.shared`` renames and the MIG
    ones (``nvidia.com/mig-1g.10gb``) in devices.

    Per resource (Kubernetes' "Resource sharing within containers", sidecars included, and Pod Overhead):
    the app containers' requests summed, plus every sidecar's (an init container with ``restartPolicy:
    Always`` runs beside them), or the largest regular init container's plus the sidecars started before
    it, whichever is more; the pod's own ``spec.resources`` (Pod Level Resources) instead for CPU and
    memory where it sets them; plus the pod's ``overhead``. A container's request, else its limit.
    """
    spec = _map(pod_spec, path)
    readers = _readers(tuple(gpu_names))
    main_path, init_path = f"{path}.containers", f"{path}.initContainers"
    total: dict[str, int] = {}
    for c in _maps(spec.get("containers"), main_path):
        if total:
            _add(total, _asked(c, main_path, readers))
        else:
            total = _asked(c, main_path, readers)
    sidecars: dict[str, int] = {}
    init: dict[str, int] = {}
    for c in _maps(spec.get("initContainers"), init_path):
        asked = _asked(c, init_path, readers)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, asked)
        else:
            for name, amount in asked.items():
                init[name] = max(init.get(name, 0), amount + sidecars.get(name, 0))
    _add(total, sidecars)
    for name, amount in init.items():
        total[name] = max(total.get(name, 0), amount)
    if spec.get("resources") is not None:
        total.update(_asked(spec, path, _POD_LEVEL))
    overhead = _map(spec.get("overhead"), f"{path}.overhead")
    if overhead:
        _add(total, _asked({"resources": {"requests": overhead}}, f"{path}.overhead", readers))
    devices = 0
    for name, amount in total.items():
        cap = _CAPS.get(name)
        if cap is None:
            devices += amount
        elif amount > cap[0]:
            raise MalformedObject(f"{main_path} request more than {cap[0]} {cap[1]}")
    if devices > MAX_DEVICES:
        raise MalformedObject(f"{main_path} request more than {MAX_DEVICES} devices")
    return total


def _gpus(requests: Mapping[str, int], gpu_names: Sequence[str]) -> int:
    """Devices of the GPU resources (and their ``.shared`` renames) among ``requests``."""
    return sum(requests.get(n, 0) + requests.get(n + SHARED_SUFFIX, 0) for n in gpu_names)


def gpu_request(pod_spec: Mapping[str, Any] | None, names: Sequence[str], path: str = "spec") -> int:
    """GPUs a pod (or pod template) holds: its effective request (:func:`requests_of`) of the GPU resources
    ``names`` and their ``.shared`` renames (replicas of a GPU that time-slices, once it is bound)."""
    return _gpus(requests_of(pod_spec, names, path), names)


def _mig_asked(
    requests: Mapping[str, int], gpu_names: Sequence[str]
) -> tuple[tuple[tuple[str, int], ...], int]:
    """(profile, slices) of each MIG resource (mixed strategy) among ``requests``, by profile, and the
    milli-GPU they are; one named a GPU resource in the settings counts as whole GPUs instead."""
    out = []
    milli = 0
    for name, amount in requests.items():
        if amount and name.startswith(MIG_PREFIX) and name not in gpu_names:
            known = mig_profile(name)
            if known is not None:
                out.append((known[0], amount))
                milli += known[1] * amount
    return tuple(sorted(out)), milli


def object_key(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` (or ``name`` for a cluster-scoped object), cleaned. Raises
    :class:`MalformedObject` when the object has no readable name."""
    meta = _meta(obj)
    name = _name(meta)
    ns = _text(meta.get("namespace"), "metadata.namespace")
    return f"{ns}/{name}" if ns else name


def _gpu_image(pod_spec: Mapping[str, Any], names: Sequence[str], path: str) -> tuple[str, str]:
    """Name and image of the container that requests GPUs (the first container when none does)."""
    where = f"{path}.containers"
    containers = _maps(pod_spec.get("containers"), where)
    readers = _readers(tuple(names))
    chosen = next((c for c in containers if _gpus(_asked(c, where, readers), names)), None)
    if chosen is None and containers:
        chosen = containers[0]
    if chosen is None:
        return "", ""
    return (
        _text(chosen.get("name"), f"{path}.containers.name"),
        _text(chosen.get("image"), f"{path}.containers.image", IMAGE_LIMIT),
    )


def _template_model(pod_spec: Mapping[str, Any], path: str) -> str:
    selector = _labels_of(pod_spec.get("nodeSelector"), f"{path}.nodeSelector")
    return clean(short_gpu_model(selector.get(GPU_PRODUCT_LABEL, "")))


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


def selector_requirements(selector: object, path: str = "selector") -> tuple[Requirement, ...] | None:
    """A ``LabelSelector`` object (matchLabels, matchExpressions) as requirements, keys and values cleaned
    as labels are; None for a null one. Raises :class:`MalformedObject`."""
    if selector is None:
        return None
    body = _map(selector, path)
    match_labels = _labels_of(body.get("matchLabels"), f"{path}.matchLabels")
    out = [Requirement(k, "In", frozenset({v})) for k, v in match_labels.items()]
    where = f"{path}.matchExpressions"
    for expr in _maps(body.get("matchExpressions"), where):
        values = _list(expr.get("values"), f"{where}.values")
        out.append(
            Requirement(
                _text(expr.get("key"), f"{where}.key", LABEL_KEY_LIMIT),
                _text(expr.get("operator"), f"{where}.operator"),
                frozenset(_text(v, f"{where}.values") for v in values),
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
    """A node as listed, with what its pods request still 0: they fill it in at fetch time."""

    node: Node
    single_mig: bool = False
    """MIG's single strategy: each device of the GPU resource is one slice of ``node.mig_slices[0]``."""

    @property
    def shares(self) -> bool:
        """Whether a device of the GPU resource is a share of a GPU here, not a whole one."""
        return self.single_mig or self.node.gpu_replicas > 0

    def share(self, devices: int) -> tuple[int, str]:
        """(milli-GPU, MIG profile) that ``devices`` of the GPU resource a pod holds here are: replicas of a
        time-sliced GPU (``n * 1000 // replicas``) or MIG slices; (0, "") where each is a whole GPU."""
        if self.node.gpu_replicas:
            return devices * MILLI_GPU // self.node.gpu_replicas, ""
        if self.single_mig:
            mig = self.node.mig_slices[0]
            return devices * mig.milli, mig.profile
        return 0, ""


def _conditions(status: Mapping[str, Any]) -> tuple[Condition, ...]:
    return tuple(
        Condition(
            _text(c.get("type"), "status.conditions.type"),
            _text(c.get("status"), "status.conditions.status"),
            _text(c.get("reason"), "status.conditions.reason"),
            _text(c.get("message"), "status.conditions.message", LONG_LIMIT),
        )
        for c in _maps(status.get("conditions"), "status.conditions")
    )


CORDON_BY_LABEL = "k8saas.nvidia.com/cordon-by"
"""NVIDIA NVSentinel's label on the nodes it quarantines (value ``NVSentinel``; its reason in
``k8saas.nvidia.com/cordon-reason``)."""
_CONTROLLER_TAINTS = {
    "karpenter.sh/disrupted": "Karpenter",  # Karpenter v1, while it consolidates or replaces the node
    "karpenter.sh/disruption": "Karpenter",  # before v1 (value "disrupting")
    "ToBeDeletedByClusterAutoscaler": "cluster-autoscaler",
    "DeletionCandidateOfClusterAutoscaler": "cluster-autoscaler",
}
_MANAGERS = {"kubectl-cordon": "kubectl", "kubectl-drain": "kubectl drain"}
"""Field managers that set ``spec.unschedulable``, as people know them."""


def _cordoned_by(
    meta: Mapping[str, Any], labels: Mapping[str, str], taints: Sequence[Taint], cordoned: bool
) -> str:
    """Who cordoned or tainted the node: NVSentinel's label, a Karpenter or cluster-autoscaler taint, else
    the field manager that last set ``spec.unschedulable`` (``kubectl-cordon``, ``aios-tui``, another
    controller's name); "" when none says."""
    by = labels.get(CORDON_BY_LABEL, "")
    if by and cordoned:
        return by
    for t in taints:
        controller = _CONTROLLER_TAINTS.get(t.key)
        if controller:
            return controller
    if not cordoned:
        return ""
    try:  # bookkeeping, not the node: a malformed entry leaves "who" unknown rather than the node unread
        for entry in _maps(meta.get("managedFields"), "metadata.managedFields"):
            fields = _map(entry.get("fieldsV1"), "metadata.managedFields.fieldsV1")
            if "f:unschedulable" in _map(fields.get("f:spec"), "metadata.managedFields.fieldsV1.f:spec"):
                manager = _text(entry.get("manager"), "metadata.managedFields.manager")
                return _MANAGERS.get(manager, manager)
    except MalformedObject:
        pass
    return ""


def convert_node(
    obj: Mapping[str, Any], *, source: str, gpu_names: Sequence[str], rack_label: str
) -> NodeRec:
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    labels = _labels(meta)
    capacity = _map(status.get("capacity"), "status.capacity")
    allocatable = _map(status.get("allocatable"), "status.allocatable")
    gpus = _node_gpus(labels, capacity, allocatable, gpu_names)
    total, alloc = gpus.total, gpus.allocatable
    conditions = _conditions(status)
    taints = tuple(
        Taint(
            _text(t.get("key"), "spec.taints.key", LABEL_KEY_LIMIT),
            _text(t.get("value"), "spec.taints.value"),
            _text(t.get("effect"), "spec.taints.effect") or "NoSchedule",
        )
        for t in _maps(spec.get("taints"), "spec.taints")
    )
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    if not ready:
        health = Health.FAIL
    elif any(c.type in PRESSURE_CONDITIONS and c.status == "True" for c in conditions):
        health = Health.WARN
    else:
        health = Health.OK
    itype = labels.get(INSTANCE_TYPE_LABEL, labels.get("beta.kubernetes.io/instance-type", ""))
    model = clean(short_gpu_model(labels.get(GPU_PRODUCT_LABEL, "")))
    known = instance_type(itype) if itype else None
    if not model and total and known is not None:
        model = known.gpu_model
    pool = next((labels[k] for k in POOL_LABELS if labels.get(k)), "")
    cordoned = _flag(spec.get("unschedulable"), "spec.unschedulable")
    node = Node(
        name=_name(meta),
        source=source,
        pool=pool or itype,
        zone=labels.get(ZONE_LABEL, labels.get("failure-domain.beta.kubernetes.io/zone", "")),
        instance_type=itype,
        gpu_model=model if (total or alloc) else "",
        gpus_total=total,
        gpus_allocatable=alloc,
        ready=ready,
        cordoned=cordoned,
        cordoned_by=_cordoned_by(meta, labels, taints, cordoned),
        conditions=conditions,
        taints=taints,
        labels=labels,
        rack=labels.get(rack_label or DEFAULT_RACK_LABEL, ""),
        provider_id=_text(spec.get("providerID"), "spec.providerID"),
        price_per_hour=list_price(itype, labels.get(REGION_LABEL, "")) if itype else NA,
        health=health,
        cluster=source,
        cpu_allocatable=_resource(allocatable, "cpu", _milli_cpu),
        memory_allocatable=_resource(allocatable, "memory", _bytes),
        gpu_sharing=gpus.sharing,
        gpu_replicas=gpus.replicas,
        mig_slices=gpus.slices,
    )
    return NodeRec(node, gpus.single_mig)


def _resource(allocatable: Mapping[str, Any], name: str, read: Callable[[object, str], int]) -> int:
    value = allocatable.get(name)
    return 0 if value is None else read(value, f"status.allocatable[{name}]")


def _label_count(labels: Mapping[str, str], key: str) -> int:
    """A count GPU feature discovery writes in a label; 0 when absent or not a count of devices (a label is
    advice: a wrong one must not hide the node)."""
    value = labels.get(key, "")
    if not (value.isascii() and value.isdigit() and len(value) <= 4):
        return 0
    return int(value) if int(value) <= MAX_DEVICES else 0


def _fewest_gpus(slices: Iterable[tuple[int, int]]) -> int:
    """The fewest GPUs that hold ``slices``, (milli-GPU of one slice, how many) by profile: their compute
    slices summed over 7 a GPU, and no more of a profile on one GPU than fit (two ``3g``, three ``2g``). A
    lower bound: a node may have them spread over more."""
    fewest = used = 0
    for size, count in slices:
        compute = -(-size * _MIG_SLICES // MILLI_GPU)  # 142 → 1, 285 → 2 … 1000 → 7
        if compute and count:
            used += compute * count
            fewest = max(fewest, -(-count // (_MIG_SLICES // compute)))
    return max(fewest, -(-used // _MIG_SLICES))


@dataclass(frozen=True, slots=True)
class _NodeGpus:
    """What :func:`_node_gpus` reads of a node: its physical GPUs and how pods share them."""

    total: int
    allocatable: int
    sharing: str = ""
    replicas: int = 0
    slices: tuple[MigSlice, ...] = ()
    single_mig: bool = False


def _node_gpus(
    labels: Mapping[str, str],
    capacity: Mapping[str, Any],
    allocatable: Mapping[str, Any],
    gpu_names: Sequence[str],
) -> _NodeGpus:
    """The node's physical GPUs (capacity, allocatable) and how pods share them, from what the NVIDIA device
    plugin offers and GPU feature discovery's labels.

    - Time-slicing or MPS (``nvidia.com/gpu.replicas`` R > 1): each GPU is offered R times, as the GPU
      resource or as its ``.shared`` rename; the physical count is ``nvidia.com/gpu.count``, else the
      offered devices / R.
    - MIG, single strategy (``nvidia.com/mig.strategy=single``, the product label ending ``-MIG-<profile>``):
      the GPU resource counts slices of that one profile; the GPUs are the fewest that hold them
      (``nvidia.com/gpu.count`` counts the slices there).
    - MIG, mixed strategy: one ``nvidia.com/mig-<profile>`` resource per profile, beside whole GPUs of the
      GPU resource; the physical count is ``nvidia.com/gpu.count``, else the whole GPUs and the fewest GPUs
      that hold the slices.
    """
    total = _devices(capacity, gpu_names, "status.capacity")
    alloc = _devices(allocatable, gpu_names, "status.allocatable")
    physical = _label_count(labels, GPU_COUNT_LABEL)
    replicas = _label_count(labels, GPU_REPLICAS_LABEL)
    strategy = labels.get(GPU_SHARING_LABEL, "time-slicing")
    if replicas > 1 and strategy in ("time-slicing", "mps"):
        names = _shared_names(gpu_names)
        total = physical or _devices(capacity, names, "status.capacity") // replicas
        alloc = min(total, _devices(allocatable, names, "status.allocatable") // replicas)
        return _NodeGpus(total, alloc, strategy, replicas)
    product = labels.get(GPU_PRODUCT_LABEL, "")
    if labels.get(MIG_STRATEGY_LABEL) == "single" and "-MIG-" in product:
        known = mig_profile(MIG_PREFIX + product.rpartition("-MIG-")[2])
        if known is not None:
            profile, size = known
            mig = (MigSlice(profile, alloc, 0, size),)
            whole = _fewest_gpus([(size, total)])
            return _NodeGpus(whole, min(whole, _fewest_gpus([(size, alloc)])), "mig", 0, mig, True)
    offered = _mig_offered(allocatable, gpu_names, "status.allocatable")
    if not offered:
        return _NodeGpus(total, alloc)
    in_capacity = _mig_offered(capacity, gpu_names, "status.capacity")
    whole = physical or total + _fewest_gpus((s.milli, s.allocatable) for s in in_capacity)
    alloc = min(whole, alloc + _fewest_gpus((s.milli, s.allocatable) for s in offered))
    return _NodeGpus(whole, alloc, "mig", 0, offered)


def _mig_offered(resources: Mapping[str, Any], gpu_names: Sequence[str], path: str) -> tuple[MigSlice, ...]:
    """The MIG slices offered, by profile (mixed strategy); a MIG resource named a GPU resource in the
    settings counts as whole GPUs instead."""
    slices = []
    for name, value in resources.items():
        known = mig_profile(name) if name.startswith(MIG_PREFIX) and name not in gpu_names else None
        if known is not None and value is not None:
            count = _count(value, f"{path}[{name}]")
            if count:
                slices.append(MigSlice(known[0], count, 0, known[1]))
    if len(slices) > MAX_PROFILES:
        raise MalformedObject(f"{path} has more than {MAX_PROFILES} MIG profiles")
    if sum(s.allocatable for s in slices) > MAX_DEVICES:
        raise MalformedObject(f"{path} has more than {MAX_DEVICES} devices")
    return tuple(sorted(slices, key=lambda s: s.profile))


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
    events: tuple[Event, ...] = ()
    """What the pod's own status tells happened (an OOM kill with its time), kept when the cluster's Event
    for it has expired (after an hour, by default)."""
    slices: tuple[tuple[str, int], ...] = ()
    """(MIG profile, how many) of each MIG resource it asks (mixed strategy): its node's slices taken."""


def _owner_ref(meta: Mapping[str, Any]) -> tuple[str, str]:
    path = "metadata.ownerReferences"
    refs = _maps(meta.get("ownerReferences"), path)
    ref = next((r for r in refs if _flag(r.get("controller"), f"{path}.controller")), None)
    if ref is None and refs:
        ref = refs[0]
    if ref is None:
        return "", ""
    return _text(ref.get("kind"), f"{path}.kind"), _text(ref.get("name"), f"{path}.name")


def deployment_of_replicaset(rs_name: str, labels: Mapping[str, str]) -> str:
    """A Deployment names its ReplicaSets ``<deployment>-<pod-template-hash>``."""
    h = labels.get(TEMPLATE_HASH, "")
    return rs_name[: -len(h) - 1] if h and rs_name.endswith("-" + h) else rs_name


def _phase(value: object) -> PodPhase:
    text = _text(value, "status.phase")
    try:
        return PodPhase(text or "Pending")
    except ValueError:
        return PodPhase.UNKNOWN


def convert_pod(obj: Mapping[str, Any], *, source: str, gpu_names: Sequence[str]) -> PodRec | None:
    """None for a mirror pod (a static pod the kubelet runs): it cannot be evicted or moved."""
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    annotations = _annotations(meta)
    if MIRROR_ANNOTATION in annotations:
        return None
    labels = _labels(meta)
    ns = _text(meta.get("namespace"), "metadata.namespace")
    name = _name(meta)
    kind, owner_name = _owner_ref(meta)
    replicaset = ""
    owner = f"{ns}/{owner_name}" if owner_name else ""
    if kind == "ReplicaSet":
        replicaset = owner_name
        owner = f"{ns}/{deployment_of_replicaset(owner_name, labels)}"
    conditions = _maps(status.get("conditions"), "status.conditions")
    kinds = [
        (_text(c.get("type"), "status.conditions.type"), _text(c.get("status"), "status.conditions.status"))
        for c in conditions
    ]
    ready = ("Ready", "True") in kinds
    unschedulable = next(
        (
            _text(c.get("message"), "status.conditions.message", LONG_LIMIT)
            or _text(c.get("reason"), "status.conditions.reason")
            or "Unschedulable"
            for c, k in zip(conditions, kinds, strict=True)
            if k == ("PodScheduled", "False")
        ),
        "",
    )
    index = labels.get(COMPLETION_INDEX) or _text(
        annotations.get(COMPLETION_INDEX), f"metadata.annotations[{COMPLETION_INDEX}]"
    )
    volumes = _maps(spec.get("volumes"), "spec.volumes")
    created = _time(meta.get("creationTimestamp"), "metadata.creationTimestamp")
    restarts, reason, ooms = _container_states(status)
    requested = requests_of(spec, gpu_names)
    slices, milli = _mig_asked(requested, gpu_names)
    pod = Pod(
        namespace=ns,
        name=name,
        node=_text(spec.get("nodeName"), "spec.nodeName"),
        phase=_phase(status.get("phase")),
        gpus=_gpus(requested, gpu_names),
        owner_kind=kind,
        owner=owner,
        ready=ready,
        empty_dir=any("emptyDir" in v for v in volumes),
        rank=int(index) if _INDEX.match(index) else -1,
        source=source,
        restarts=restarts,
        created_at=created,
        reason=reason or _text(status.get("reason"), "status.reason", _SHORT),
        containers=tuple(
            _text(c.get("name"), "spec.containers.name")
            for c in _maps(spec.get("containers"), "spec.containers")
        ),
        cpu=requested.get("cpu", 0),
        memory=requested.get("memory", 0),
        gpu_milli=milli,
        gpu_profile=clean(",".join(p for p, _ in slices)) if slices else "",
    )
    events = tuple(
        Event(when, "pod", pod.key, "OOMKilled", f"container {container} was OOM-killed", True, 1, source)
        for container, when in ooms
    )
    return PodRec(pod, labels, replicaset, unschedulable, created, events, slices)


def _container_states(status: Mapping[str, Any]) -> tuple[int, str, list[tuple[str, float]]]:
    """From ``status.containerStatuses``: the restarts summed over the containers; the pod's reason in the
    kubelet's word (a waiting reason such as ``CrashLoopBackOff``, else how a container last ended, such as
    ``OOMKilled`` or ``Error``, never ``Completed``); and each OOM kill they tell of, (container, when) —
    its time from ``terminated.finishedAt``, and none when that is missing: a made-up time would mislead."""
    path = "status.containerStatuses"
    restarts = 0
    waiting, ended, ooms = "", "", []
    for c in _maps(status.get("containerStatuses"), path):
        restarts += _whole(c.get("restartCount"), f"{path}.restartCount")
        state = _map(c.get("state"), f"{path}.state")
        waiting = waiting or _text(_map(state.get("waiting"), path).get("reason"), f"{path}.waiting", _SHORT)
        for run in (state, _map(c.get("lastState"), f"{path}.lastState")):
            done = _map(run.get("terminated"), f"{path}.terminated")
            why = _text(done.get("reason"), f"{path}.terminated.reason", _SHORT)
            if why and why != "Completed":
                ended = ended or why
            if why == "OOMKilled":  # the only time read: parsing one costs a pod's conversion 10 %
                when = _time(done.get("finishedAt"), f"{path}.terminated.finishedAt")
                if when:
                    ooms.append((_text(c.get("name"), f"{path}.name"), when))
    return restarts, waiting or ended, ooms


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
    strategy: str = "RollingUpdate"
    max_surge: str = "25%"
    max_unavailable: str = "25%"
    p99_slo_ms: Metric = NA
    """From the :data:`SLO_P99_ANNOTATION` annotation."""
    error_slo: Metric = NA
    """From the :data:`SLO_ERROR_ANNOTATION` annotation."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


SLO_P99_ANNOTATION = "aios-tui.dev/slo-p99-ms"
"""On a Deployment or StatefulSet: its p99 latency objective in milliseconds (``"250"``)."""
SLO_ERROR_ANNOTATION = "aios-tui.dev/slo-error-rate"
"""On a Deployment or StatefulSet: its error-rate objective, a fraction (``"0.001"``) or a percentage
(``"0.1%"``)."""
_OBJECTIVE = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)\s*(%|ms)?")


def _objective(annotations: Mapping[str, Any], key: str, unit: str, high: float) -> Metric:
    """An objective annotation as a number above 0 and at most ``high`` (a percentage for ``unit="%"``
    becomes a fraction). Unknown, not an error, when it is missing or does not read as one: a workload's
    annotation is advice, and a typo in it must not hide the endpoint."""
    value = annotations.get(key)
    if not isinstance(value, str) or len(value) > _SHORT:
        return NA
    m = _OBJECTIVE.fullmatch(value.strip())
    if m is None or (m.group(2) and m.group(2) != unit):
        return NA
    number = float(m.group(1)) / (100.0 if m.group(2) == "%" else 1.0)
    return number if 0 < number <= high else NA


def _count_or_percent(value: object, path: str, default: str) -> str:
    """An IntOrString (``1`` or ``"25%"``) as text; absent is ``default``."""
    if value is None:
        return default
    if isinstance(value, str):
        text = _text(value, path)
        if not re.fullmatch(r"\d{1,3}%|\d{1,10}", text):
            raise MalformedObject(f"{path} is neither a count nor a percentage")
        return text
    return str(_whole(value, path))


def _strategy(kind: str, spec: Mapping[str, Any]) -> tuple[str, str, str]:
    """(type, maxSurge, maxUnavailable) of a Deployment's ``spec.strategy`` or a StatefulSet's
    ``spec.updateStrategy``, with the API's defaults (Deployment 25 %/25 %; StatefulSet no surge, 1)."""
    if kind == "StatefulSet":
        strategy = _map(spec.get("updateStrategy"), "spec.updateStrategy")
        kind_path, default_surge, default_unavailable = "spec.updateStrategy", "0", "1"
    else:
        strategy = _map(spec.get("strategy"), "spec.strategy")
        kind_path, default_surge, default_unavailable = "spec.strategy", "25%", "25%"
    name = _text(strategy.get("type"), f"{kind_path}.type") or "RollingUpdate"
    rolling = _map(strategy.get("rollingUpdate"), f"{kind_path}.rollingUpdate")
    surge = default_surge
    if kind != "StatefulSet":
        surge = _count_or_percent(rolling.get("maxSurge"), f"{kind_path}.rollingUpdate.maxSurge", surge)
    unavailable = _count_or_percent(
        rolling.get("maxUnavailable"), f"{kind_path}.rollingUpdate.maxUnavailable", default_unavailable
    )
    return name, surge, unavailable


def _template(spec: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """A workload's pod template and the template's pod spec."""
    template = _map(spec.get("template"), "spec.template")
    return template, _map(template.get("spec"), "spec.template.spec")


def convert_deployment(obj: Mapping[str, Any], *, kind: str, gpu_names: Sequence[str]) -> EndpointRec:
    """A Deployment (``kind="Deployment"``) or StatefulSet (``kind="StatefulSet"``)."""
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    template, pod_spec = _template(spec)
    where = "spec.template.spec"
    container, image = _gpu_image(pod_spec, gpu_names, where)
    template_meta = _map(template.get("metadata"), "spec.template.metadata")
    strategy, surge, unavailable = _strategy(kind, spec)
    annotations = _annotations(meta)
    return EndpointRec(
        kind=kind,
        namespace=_text(meta.get("namespace"), "metadata.namespace"),
        name=_name(meta),
        labels=_labels(meta),
        template_labels=_labels_of(template_meta.get("labels"), "spec.template.metadata.labels"),
        replicas=_whole(spec.get("replicas"), "spec.replicas", 1),
        ready=_whole(status.get("readyReplicas"), "status.readyReplicas"),
        image=image,
        container=container,
        gpus=gpu_request(pod_spec, gpu_names, where),
        gpu_model=_template_model(pod_spec, where),
        strategy=strategy,
        max_surge=surge,
        max_unavailable=unavailable,
        p99_slo_ms=_objective(annotations, SLO_P99_ANNOTATION, "ms", 3_600_000),
        error_slo=_objective(annotations, SLO_ERROR_ANNOTATION, "%", 1.0),
    )


@dataclass(frozen=True, slots=True)
class HpaRec:
    """A HorizontalPodAutoscaler and the workload it scales (``Deployment/name``)."""

    namespace: str
    target: str
    hpa: Hpa


def _metric_value(target: Mapping[str, Any], path: str) -> float | None:
    for field_name in ("averageValue", "value", "averageUtilization"):
        value = target.get(field_name)
        if value is not None:
            return float(parse_quantity(value, f"{path}.{field_name}"))
    return None


def _metric_name(metric: Mapping[str, Any], path: str) -> tuple[str, Mapping[str, Any], str, str]:
    """(name, its body, the section name, the metric type) of an HPA metric spec or status."""
    kind = _text(metric.get("type"), f"{path}.type")
    section = kind[:1].lower() + kind[1:]
    body = _map(metric.get(section), f"{path}.{section}") if section else _EMPTY
    if kind in {"Resource", "ContainerResource"}:
        name = _text(body.get("name"), f"{path}.{section}.name")
    else:
        inner = _map(body.get("metric"), f"{path}.{section}.metric")
        name = _text(inner.get("name"), f"{path}.{section}.metric.name")
    return name, body, section, kind


def convert_hpa(obj: Mapping[str, Any]) -> HpaRec:
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    ref = _map(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
    metrics = _maps(spec.get("metrics"), "spec.metrics")
    name, target = "", 0.0
    current: Metric = NA
    if metrics:
        name, body, section, kind = _metric_name(metrics[0], "spec.metrics")
        where = f"spec.metrics.{section}.target"
        target = _metric_value(_map(body.get("target"), where), where) or 0.0
        for m in _maps(status.get("currentMetrics"), "status.currentMetrics"):
            cur_name, cur_body, _, cur_kind = _metric_name(m, "status.currentMetrics")
            where = f"status.currentMetrics.{section}.current"
            value = _metric_value(_map(cur_body.get("current"), where), where)
            if cur_kind == kind and cur_name == name and value is not None:
                current = value
                break
    ref_kind = _text(ref.get("kind"), "spec.scaleTargetRef.kind")
    ref_name = _text(ref.get("name"), "spec.scaleTargetRef.name")
    return HpaRec(
        namespace=_text(meta.get("namespace"), "metadata.namespace"),
        target=f"{ref_kind}/{ref_name}",
        hpa=Hpa(
            name=_name(meta),
            min_replicas=_whole(spec.get("minReplicas"), "spec.minReplicas", 1),
            max_replicas=_whole(spec.get("maxReplicas"), "spec.maxReplicas"),
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
        workload_kind=rec.kind,
        strategy=rec.strategy,
        max_surge=rec.max_surge,
        max_unavailable=rec.max_unavailable,
        p99_slo_ms=rec.p99_slo_ms,
        error_slo=rec.error_slo,
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
    backoff_limit: int = DEFAULT_BACKOFF_LIMIT
    backoff_limit_per_index: int | None = None
    failed_pods: int = 0
    disruption_action: str = ""
    restart_policy: str = "Never"
    reserved: tuple[str, ...] = ()
    """Node of each rank as reserved by an aios-tui launch (:data:`RESERVED_ANNOTATION`)."""
    held: str = ""
    """Why an aios-tui launch left the Job suspended (:data:`QUEUED_ANNOTATION`); "" when it did not."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _disruption_action(policy: Mapping[str, Any], path: str) -> str:
    """The action of the first podFailurePolicy rule matching the ``DisruptionTarget`` condition an evicted
    pod carries ("" when none does). Exit-code rules are skipped: a drained container's code is unknown."""
    for i, rule in enumerate(_maps(policy.get("rules"), f"{path}.rules")):
        where = f"{path}.rules[{i}]"
        for cond in _maps(rule.get("onPodConditions"), f"{where}.onPodConditions"):
            kind = _text(cond.get("type"), f"{where}.onPodConditions.type")
            status = _text(cond.get("status"), f"{where}.onPodConditions.status") or "True"
            if kind == "DisruptionTarget" and status == "True":
                return _text(rule.get("action"), f"{where}.action") or "Count"
    return ""


def convert_job(obj: Mapping[str, Any], *, gpu_names: Sequence[str]) -> JobRec:
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    _, pod_spec = _template(spec)
    where = "spec.template.spec"
    path = "status.conditions"
    true: dict[str, Mapping[str, Any]] = {}
    for c in _maps(status.get("conditions"), path):
        kind = _text(c.get("type"), f"{path}.type")
        if _text(c.get("status"), f"{path}.status") == "True":
            true[kind] = c
    failed = true.get("Failed")
    failure = ""
    if failed is not None:
        failure = (
            _text(failed.get("message"), f"{path}.message", LONG_LIMIT)
            or _text(failed.get("reason"), f"{path}.reason")
            or "failed"
        )
    return JobRec(
        namespace=_text(meta.get("namespace"), "metadata.namespace"),
        name=_name(meta),
        labels=_labels(meta),
        workers=_whole(spec.get("parallelism"), "spec.parallelism", 1),
        gpus_per_worker=gpu_request(pod_spec, gpu_names, where),
        gpu_model=_template_model(pod_spec, where),
        image=_gpu_image(pod_spec, gpu_names, where)[1],
        priority=_whole(pod_spec.get("priority"), f"{where}.priority", 0, low=-_INT32 - 1),
        suspended=_flag(spec.get("suspend"), "spec.suspend"),
        complete="Complete" in true,
        failed=failure,
        created=_time(meta.get("creationTimestamp"), "metadata.creationTimestamp"),
        started=_time(status.get("startTime"), "status.startTime"),
        finished=_time(status.get("completionTime"), "status.completionTime"),
        succeeded=_whole(status.get("succeeded"), "status.succeeded"),
        backoff_limit=_whole(spec.get("backoffLimit"), "spec.backoffLimit", DEFAULT_BACKOFF_LIMIT),
        backoff_limit_per_index=(
            None
            if spec.get("backoffLimitPerIndex") is None
            else _whole(spec.get("backoffLimitPerIndex"), "spec.backoffLimitPerIndex")
        ),
        failed_pods=_whole(status.get("failed"), "status.failed"),
        disruption_action=_disruption_action(
            _map(spec.get("podFailurePolicy"), "spec.podFailurePolicy"), "spec.podFailurePolicy"
        ),
        restart_policy=_text(pod_spec.get("restartPolicy"), f"{where}.restartPolicy") or "Never",
        reserved=_reserved(_annotations(meta).get(RESERVED_ANNOTATION)),
        held=_text(_annotations(meta).get(QUEUED_ANNOTATION), f"metadata.annotations[{QUEUED_ANNOTATION}]"),
    )


def _reserved(value: object) -> tuple[str, ...]:
    """The nodes of :data:`RESERVED_ANNOTATION`; a value that is not a list of node names reserves nothing
    (another tool's annotation of the same name must not make GPUs look taken)."""
    if not isinstance(value, str) or len(value) > LONG_LIMIT * 16:
        return ()
    nodes = tuple(clean(n) for n in value.split(","))
    return nodes if all(nodes) else ()


@dataclass(frozen=True, slots=True)
class PodGroupRec:
    """A ``scheduling.k8s.io/v1alpha2`` PodGroup (Kubernetes' gang scheduling): the Job controller makes one
    per gang Indexed Job (``WorkloadWithJob``), and the scheduler says in ``PodGroupScheduled`` whether the
    whole group is placed."""

    namespace: str
    name: str
    job: str
    """The owning Job's name ("" when a Job does not own it)."""
    scheduled: str
    """``PodGroupScheduled``'s status: "True", "False", or "" while the scheduler has not said."""
    reason: str
    message: str


def convert_podgroup(obj: Mapping[str, Any]) -> PodGroupRec:
    meta, status = _meta(obj), _section(obj, "status")
    path = "metadata.ownerReferences"
    job = next(
        (
            _text(r.get("name"), f"{path}.name")
            for r in _maps(meta.get("ownerReferences"), path)
            if _text(r.get("kind"), f"{path}.kind") == "Job"
        ),
        "",
    )
    path = "status.conditions"
    cond = next(
        (
            c
            for c in _maps(status.get("conditions"), path)
            if _text(c.get("type"), path) == "PodGroupScheduled"
        ),
        {},
    )
    return PodGroupRec(
        namespace=_text(meta.get("namespace"), "metadata.namespace"),
        name=_name(meta),
        job=job,
        scheduled=_text(cond.get("status"), f"{path}.status"),
        reason=_text(cond.get("reason"), f"{path}.reason"),
        message=_text(cond.get("message"), f"{path}.message", LONG_LIMIT),
    )


def build_job(
    rec: JobRec,
    pods: Sequence[PodRec],
    scheduling: Mapping[str, str],
    *,
    source: str,
    group: PodGroupRec | None = None,
) -> Job:
    """The job as a gang: QUEUED while suspended (Kueue, or an aios-tui launch that did not fit, with why),
    while its PodGroup is not scheduled (Kubernetes' gang scheduling: ``group``), or while any
    rank cannot be scheduled, with the scheduler's words as the reason; RUNNING once every rank runs.
    ``pods`` are the job's pods; ``scheduling`` maps a pod key to its latest FailedScheduling message."""
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
        if queue:
            reason = f"suspended, waiting in Kueue queue {queue}"
        else:
            reason = clean(f"queued: {rec.held}", LONG_LIMIT) if rec.held else "suspended"
    else:
        blocked = [p for p in live if not p.pod.node and (p.unschedulable or p.pod.key in scheduling)]
        unplaced = group is not None and group.scheduled == "False" and not any(p.pod.node for p in live)
        if blocked or unplaced:
            state = JobState.QUEUED
            parts = []
            if unplaced and group is not None:
                said = ": ".join(x for x in (group.reason or "not scheduled", group.message) if x)
                parts.append(f"gang waits whole (PodGroup {group.name}): {said}")
            if blocked:
                first = blocked[0]
                why = scheduling.get(first.pod.key) or first.unschedulable
                parts.append(f"{f'rank {first.pod.rank}' if first.pod.rank >= 0 else first.pod.name}: {why}")
            reason = clean("; ".join(parts), LONG_LIMIT)  # each part clean already: this only caps the whole
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
        backoff_limit=rec.backoff_limit,
        backoff_limit_per_index=rec.backoff_limit_per_index,
        failed_pods=rec.failed_pods,
        disruption_action=rec.disruption_action,
        jobset=rec.labels.get(JOBSET_LABEL, ""),
        restart_policy=rec.restart_policy,
    )


# --- events, PDBs -----------------------------------------------------------------------------------------


def convert_event(obj: Mapping[str, Any]) -> tuple[str, str, float] | None:
    """(pod key, message, time) of a FailedScheduling event; None for any other event."""
    if _text(_root(obj).get("reason"), "reason") != "FailedScheduling":
        return None
    involved = _map(obj.get("involvedObject"), "involvedObject")
    if _text(involved.get("kind"), "involvedObject.kind") != "Pod":
        return None
    when = (
        _time(obj.get("lastTimestamp"), "lastTimestamp")
        or _time(obj.get("eventTime"), "eventTime")
        or _time(_meta(obj).get("creationTimestamp"), "metadata.creationTimestamp")
    )
    ns = _text(involved.get("namespace"), "involvedObject.namespace")
    name = _text(involved.get("name"), "involvedObject.name")
    return f"{ns}/{name}", _text(obj.get("message"), "message", LONG_LIMIT), when


EVENT_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "Pod": "pod",
        "Node": "node",
        "Job": "job",
        "Deployment": "deployment",
        "StatefulSet": "statefulset",
        "ReplicaSet": "replicaset",
    }
)
"""An involved object's kind as :attr:`Event.kind` says it; the join makes a Deployment's, StatefulSet's or
ReplicaSet's event an ``endpoint``'s when its workload is one. Other kinds are lower-cased."""


@dataclass(frozen=True, slots=True)
class EventRec:
    """A Warning event as the informer keeps it."""

    event: Event
    scheduling: tuple[str, str, float] | None = None
    """(pod key, message, time) of the scheduler's refusal (:func:`convert_event`): a pod's pending reason."""


def convert_warning_event(obj: Mapping[str, Any], *, source: str) -> EventRec | None:
    """A ``type: Warning`` core/v1 Event as a domain :class:`Event` (None for any other type).

    Its time is its last occurrence: ``series.lastObservedTime`` (events.k8s.io recorders such as the
    scheduler's fold repeats there, with ``eventTime`` the first), else ``lastTimestamp`` (older recorders
    such as the kubelet's), else ``eventTime``, ``firstTimestamp``, ``metadata.creationTimestamp``. A node
    is keyed by its name; namespaced objects by ``namespace/name``."""
    root = _root(obj)
    if _text(root.get("type"), "type", _SHORT) != "Warning":
        return None
    involved = _map(root.get("involvedObject"), "involvedObject")
    raw_kind = _text(involved.get("kind"), "involvedObject.kind", _SHORT)
    kind = EVENT_KINDS.get(raw_kind, raw_kind.lower())
    ns = _text(involved.get("namespace"), "involvedObject.namespace")
    name = _text(involved.get("name"), "involvedObject.name")
    series = _map(root.get("series"), "series")
    when = (
        _time(series.get("lastObservedTime"), "series.lastObservedTime")
        or _time(root.get("lastTimestamp"), "lastTimestamp")
        or _time(root.get("eventTime"), "eventTime")
        or _time(root.get("firstTimestamp"), "firstTimestamp")
        or _time(_meta(root).get("creationTimestamp"), "metadata.creationTimestamp")
    )
    count = max(1, _whole(series.get("count"), "series.count") or _whole(root.get("count"), "count"))
    event = Event(
        time=when,
        kind=kind or "object",
        key=f"{ns}/{name}" if ns and kind != "node" else name,
        reason=_text(root.get("reason"), "reason", _SHORT) or "Warning",
        message=_text(root.get("message"), "message", LONG_LIMIT),
        warning=True,
        count=count,
        source=source,
    )
    return EventRec(event, convert_event(root))


@dataclass(frozen=True, slots=True)
class PdbRec:
    namespace: str
    name: str
    selector: tuple[Requirement, ...] | None
    pdb: Pdb = field(compare=False)


def _int_or_percent(value: object, path: str) -> int | None:
    """A count, or None for a percentage (it has no fixed count: desiredHealthy says it)."""
    if value is None or isinstance(value, str):
        return None
    return _whole(value, path)


def convert_pdb(obj: Mapping[str, Any], *, source: str) -> PdbRec:
    meta, spec, status = _meta(obj), _section(obj, "spec"), _section(obj, "status")
    ns, name = _text(meta.get("namespace"), "metadata.namespace"), _name(meta)
    pdb = Pdb(
        namespace=ns,
        name=name,
        owner="",
        min_available=_int_or_percent(spec.get("minAvailable"), "spec.minAvailable"),
        max_unavailable=_int_or_percent(spec.get("maxUnavailable"), "spec.maxUnavailable"),
        current_healthy=_whole(status.get("currentHealthy"), "status.currentHealthy"),
        desired_healthy=_whole(status.get("desiredHealthy"), "status.desiredHealthy"),
        disruptions_allowed=_whole(status.get("disruptionsAllowed"), "status.disruptionsAllowed"),
        source=source,
    )
    return PdbRec(ns, name, selector_requirements(spec.get("selector"), "spec.selector"), pdb)


def build_pdb(rec: PdbRec, owner: str) -> Pdb:
    return rec.pdb if rec.pdb.owner == owner else dataclasses.replace(rec.pdb, owner=owner)


def pdb_of_message(namespace: str, message: str) -> str:
    """``namespace/name`` of the budget a 429's cause names ("The disruption budget llm-serve needs …")."""
    m = _PDB_NAME.search(message)
    return f"{namespace}/{clean(m[1])}" if m else ""
