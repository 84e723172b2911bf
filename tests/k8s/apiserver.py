"""A protocol-level Kubernetes API server for tests and benchmarks.

`FakeApiServer` speaks the Kubernetes REST protocol over real HTTP on 127.0.0.1 with the JSON shapes of
the responses captured from a real kube-apiserver (``tests/fixtures/kubernetes/``), so the real
``kubernetes`` client talks to it unpatched. It keeps an in-memory store keyed by (resource, namespace,
name) with one global resourceVersion counter, and a bounded history of changes from which watches are
served (a resourceVersion older than the history gets the ``410 Expired`` ERROR event). The methods
`apply`, `delete`, ... change the state as a controller or kubelet would; every change emits a watch event.
Faults (denied permissions, eviction answers, expired token, slow answers, dropped watches, compaction) are
switched on by methods of the same names. A broken or hostile server is played by `inject` (an object of any
shape, as it is, in lists and watches), `inject_line` (a watch line that is no event) and `pad_lists` (list
answers of a given size, to test a client's limit on what it reads).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import json
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml  # type: ignore[import-untyped]

JSON = dict[str, Any]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kubernetes"
USER = "system:serviceaccount:default:tester"
VIEWER = "system:serviceaccount:ml-prod:viewer"
"""The user of ``as_viewer()``: the service account the fixtures ssar-denied-viewer and
error-403-viewer-scale were captured as."""
VIEW_READS = frozenset(
    {
        ("pods", ""),
        ("pods", "log"),
        ("pods", "status"),
        ("events", ""),
        ("deployments", ""),
        ("deployments", "scale"),
        ("statefulsets", ""),
        ("statefulsets", "scale"),
        ("replicasets", ""),
        ("replicasets", "scale"),
        ("daemonsets", ""),
        ("jobs", ""),
        ("poddisruptionbudgets", ""),
        ("horizontalpodautoscalers", ""),
    }
)
"""What the built-in ``view`` ClusterRole may get, list and watch, of the resources served here (its rules
as kube-apiserver v1.36 bootstraps them): no nodes, no secrets, no PriorityClasses, nothing cluster-scoped;
and it may not create, patch, update or delete anything (no scale, no eviction, no cordon)."""


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How the server names the resource in messages: ``deployments.apps``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("nodes", "Node", "", "v1", namespaced=False),
        Resource("pods", "Pod", "", "v1"),
        Resource("events", "Event", "", "v1"),
        Resource("deployments", "Deployment", "apps", "v1"),
        Resource("statefulsets", "StatefulSet", "apps", "v1"),
        Resource("replicasets", "ReplicaSet", "apps", "v1"),
        Resource("daemonsets", "DaemonSet", "apps", "v1"),
        Resource("jobs", "Job", "batch", "v1"),
        Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1"),
        Resource("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2"),
        Resource("priorityclasses", "PriorityClass", "scheduling.k8s.io", "v1", namespaced=False),
        Resource("leases", "Lease", "coordination.k8s.io", "v1"),
        Resource("podgroups", "PodGroup", "scheduling.k8s.io", "v1alpha2"),
    )
}
GANG_GROUP_VERSION = ("scheduling.k8s.io", "v1alpha2")
"""Kubernetes' gang scheduling API (Workload and PodGroup, alpha in 1.36): served only by a server made with
``gang_scheduling=True``, as a real one serves it only with ``--runtime-config=scheduling.k8s.io/v1alpha2``
(and answers 404 to its discovery otherwise)."""
GPU = "nvidia.com/gpu"
_BY_KIND = {r.kind: r for r in RESOURCES.values()}
_SCALABLE = {"deployments", "statefulsets"}
_PATCH_TYPES = {"application/merge-patch+json", "application/strategic-merge-patch+json"}
_MULTIPLE_PDBS = (
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
)


def resource_for(kind: str) -> Resource:
    """The resource for a plural name (``pods``) or a kind (``Pod``)."""
    res = RESOURCES.get(kind) or _BY_KIND.get(kind)
    if res is None:
        raise KeyError(f"unknown kind {kind!r}")
    return res


def load_fixture(name: str) -> JSON:
    """One captured exchange ``{"request", "status", "response"}`` from tests/fixtures/kubernetes."""
    data: JSON = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ApiError(Exception):
    """An answer in the server's ``Status`` shape."""

    def __init__(self, code: int, reason: str, message: str, details: JSON | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
        }
        if details is not None:
            self.status["details"] = details
        self.status["code"] = code


def _not_found(res: Resource, name: str) -> ApiError:
    details: JSON = {"name": name, "group": res.group, "kind": res.plural}
    if not res.group:
        del details["group"]
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details)


# --- selectors ------------------------------------------------------------------------------------------


def _split_terms(selector: str) -> list[str]:
    """Split a selector on the commas that are not inside ``in (a,b)`` parentheses."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(selector[start:i].strip())
            start = i + 1
    terms.append(selector[start:].strip())
    return [t for t in terms if t]


def label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    """A predicate for a label selector: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
    ``a``, ``!a``."""
    terms: list[tuple[str, str, set[str]]] = []  # (operator, key, values)
    for term in _split_terms(selector):
        for op in (" notin ", " in ", "!=", "==", "="):
            if op in term:
                key, _, value = term.partition(op)
                values = {v.strip() for v in value.strip().strip("()").split(",")}
                terms.append((op.strip(), key.strip(), values))
                break
        else:
            terms.append(
                ("!exists", term[1:].strip(), set()) if term.startswith("!") else ("exists", term, set())
            )

    def matches(labels: dict[str, str]) -> bool:
        for op, key, values in terms:
            ok = {
                "notin": labels.get(key) not in values,
                "in": labels.get(key) in values,
                "!=": labels.get(key) not in values,
                "==": labels.get(key) in values,
                "=": labels.get(key) in values,
                "!exists": key not in labels,
                "exists": key in labels,
            }[op]
            if not ok:
                return False
        return True

    return matches


def field_matcher(selector: str) -> Callable[[JSON], bool]:
    """A predicate for a field selector on dotted paths (``spec.nodeName=x``, ``status.phase!=Failed``)."""
    terms: list[tuple[list[str], str, bool]] = []  # (path, value, negated)
    for term in _split_terms(selector):
        negate = "!=" in term
        path, _, value = term.replace("!=", "=").replace("==", "=").partition("=")
        terms.append((path.strip().split("."), value.strip(), negate))

    def lookup(obj: JSON, parts: list[str]) -> str:
        node: Any = obj
        for part in parts:
            node = node.get(part) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    return lambda obj: all((lookup(obj, path) == value) != negate for path, value, negate in terms)


def selector_matches(selector: JSON, labels: dict[str, str]) -> bool:
    """Whether a ``LabelSelector`` object (matchLabels/matchExpressions) selects these labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (lists are replaced; ``null`` deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- the server -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Event:
    rv: int
    resource: str
    namespace: str
    obj: JSON
    line: bytes  # the serialized watch event, newline-terminated


@dataclass(frozen=True)
class _WatchParams:
    res: Resource
    namespace: str | None
    labels: Callable[[dict[str, str]], bool] | None
    fields: Callable[[JSON], bool] | None

    def matches(self, resource: str, namespace: str, obj: JSON) -> bool:
        if resource != self.res.plural or (self.namespace is not None and namespace != self.namespace):
            return False
        if self.labels is not None and not self.labels(obj["metadata"].get("labels") or {}):
            return False
        return self.fields is None or self.fields(obj)


class FakeApiServer:
    """An in-memory Kubernetes API server on 127.0.0.1, for the real client over HTTP.

    The server takes ownership of the dicts passed to the constructor (no copy, so that a 150,000-pod
    fleet loads quickly); `apply` copies. Stored objects are never mutated in place: a change stores a
    new dict, so watch events and answers can share them safely. `bookmark_interval` is the seconds
    between BOOKMARK events on watches that allow them; `history` bounds the changes kept for watches
    (between `history` and twice that). A server is started once and stopped once.
    """

    def __init__(
        self,
        objects: Iterable[JSON] = (),
        *,
        token: str = "test-token",
        bookmark_interval: float = 1.0,
        history: int = 10_000,
        gang_scheduling: bool = False,
    ) -> None:
        self.token = token
        self.gang_scheduling = gang_scheduling
        """Serve scheduling.k8s.io/v1alpha2; the Job controller (`run_job_controller`) then makes a PodGroup
        for each gang Indexed Job, as kube-controller-manager does with ``WorkloadWithJob``."""
        self.bookmark_interval = bookmark_interval
        self.requests: list[tuple[str, str]] = []
        self.url = ""
        self._history_size = history
        self._lock = threading.Condition(threading.RLock())
        self._store: dict[str, dict[str, JSON]] = {plural: {} for plural in RESOURCES}
        self._sorted: dict[str, list[str]] = {}
        self._rv = 0
        self._events: list[_Event] = []
        self._events_base = 0  # absolute index of self._events[0]
        self._floor = 0  # watches from a resourceVersion below this get 410 Gone
        self._denied: set[tuple[str, str, str, str]] = set()
        self._viewer = ""  # as_viewer(): the user bound to the built-in view ClusterRole
        self._review_delay = 0.0  # delay_reviews(): seconds before each SelfSubjectAccessReview answer
        self._evictions: dict[str, int] = {}
        self._token_expired = False
        self._delay = 0.0
        self._hung = False
        self._stalls: dict[str, int] = {}  # plural -> list pages still served before lists of it hang
        self._page_delay: dict[str, float] = {}  # plural -> seconds before each list page of it
        self._drop_generation = 0
        self._raw: dict[str, list[tuple[str | None, Any]]] = {plural: [] for plural in RESOURCES}
        self._padding: dict[str, tuple[int, bool]] = {}
        self._logs: dict[tuple[str, str, str, bool], list[str]] = {}
        """(namespace, pod, container, previous) → the log's lines (`set_log`, `append_log`)."""
        self._logs_ended: set[tuple[str, str, str]] = set()
        self.honour_limit_bytes = True
        """False: answer a log read whole, whatever its ``limitBytes`` (a server or proxy that ignores it)."""
        self.padding_sent: dict[str, int] = {}
        """Bytes of padding the last padded list of each resource got out before the client hung up."""
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        for obj in objects:
            res = resource_for(obj["kind"])
            meta = obj.setdefault("metadata", {})
            self._fill_metadata(meta, res)
            if meta.get("resourceVersion"):
                self._rv = max(self._rv, int(meta["resourceVersion"]))
            else:
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
            self._store[res.plural][self._key(res, meta)] = obj
        self._sorted = {plural: sorted(objs) for plural, objs in self._store.items()}
        self._floor = self._rv

    # --- lifecycle ---

    def start(self) -> FakeApiServer:
        self._httpd = _HttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.api = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close every open connection (watches included) and join the threads."""
        if self._httpd is None:
            return
        self._stopping.set()
        with self._lock:
            self._lock.notify_all()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)
        self._httpd.server_close()  # joins the handler threads
        assert self._thread is not None
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: Path, *, context: str = "test", token: str | None = None) -> Path:
        """Write (or merge into) a kubeconfig with a cluster, user and context named `context`.

        An existing file keeps its other entries and its current-context; a new file gets `context` as
        current-context.
        """
        if not self.url:
            raise RuntimeError("start the server before writing a kubeconfig for it")
        loaded: JSON | None = yaml.safe_load(path.read_text()) if path.exists() else None
        config: JSON = loaded or {"apiVersion": "v1", "kind": "Config", "preferences": {}}
        entries = {
            "clusters": {"name": context, "cluster": {"server": self.url}},
            "users": {"name": context, "user": {"token": self.token if token is None else token}},
            "contexts": {"name": context, "context": {"cluster": context, "user": context}},
        }
        for section, entry in entries.items():
            kept = [e for e in config.get(section) or [] if e.get("name") != context]
            config[section] = [*kept, entry]
        config.setdefault("current-context", context)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # --- state, as controllers would change it ---

    def apply(self, obj: JSON) -> JSON:
        """Create or replace an object (by kind, namespace, name); bumps its resourceVersion."""
        res = resource_for(obj["kind"])
        with self._lock:
            return self._put(res, copy.deepcopy(obj))

    def delete(self, kind: str, namespace: str, name: str) -> None:
        res = resource_for(kind)
        with self._lock:
            self._remove(res, namespace, name)

    def get(self, kind: str, namespace: str, name: str) -> JSON | None:
        res = resource_for(kind)
        with self._lock:
            obj = self._store[res.plural].get(self._key_of(res, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def run_job_controller(self, interval: float = 0.02) -> None:
        """Act as kube-controller-manager's Job controller for Jobs created from now on (until `stop`): each
        Job that is not suspended gets its ``parallelism`` pods, as the real one makes them for an Indexed
        Job (``<job>-<index>-<suffix>``, the ``batch.kubernetes.io/job-completion-index`` label and
        annotation, ``batch.kubernetes.io/job-name`` and ``controller-uid`` labels, the Job as controlling
        owner, the template's spec, schedulingGates included, Pending with no node). Nothing schedules
        them."""
        seen = {o["metadata"]["uid"] for o in self.list("Job")}

        def loop() -> None:
            while not self._stopping.wait(interval):
                for job in self.list("Job"):
                    meta, spec = job["metadata"], job.get("spec") or {}
                    if meta["uid"] in seen or spec.get("suspend"):
                        continue
                    seen.add(meta["uid"])
                    template = spec.get("template") or {}
                    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"]}
                    owner |= {"uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}
                    parallelism = int(spec.get("parallelism", 1))
                    group = ""
                    if (
                        self.gang_scheduling
                        and spec.get("completionMode") == "Indexed"
                        and parallelism > 1
                        and int(spec.get("completions", 1)) == parallelism
                    ):
                        # As kube-controller-manager 1.36 with WorkloadWithJob (the fixture podgroups_list).
                        group = f"{meta['name']}-{meta['uid'][:10]}-{meta['name']}-pgt-0"
                        podgroup = {
                            "metadata": {
                                "name": group,
                                "namespace": meta["namespace"],
                                "ownerReferences": [owner],
                            },
                            "spec": {
                                "schedulingPolicy": {"gang": {"minCount": parallelism}},
                                "disruptionMode": "Pod",
                            },
                        }
                        with self._lock:
                            self._create(RESOURCES["podgroups"], meta["namespace"], podgroup)
                    for index in range(parallelism):
                        labels = {
                            **((template.get("metadata") or {}).get("labels") or {}),
                            "batch.kubernetes.io/job-completion-index": str(index),
                            "batch.kubernetes.io/job-name": meta["name"],
                            "batch.kubernetes.io/controller-uid": meta["uid"],
                        }
                        pod_meta = {
                            "generateName": f"{meta['name']}-{index}-",
                            "namespace": meta["namespace"],
                            "labels": labels,
                            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
                            "ownerReferences": [owner],
                        }
                        pod = {"metadata": pod_meta, "spec": copy.deepcopy(template.get("spec") or {})}
                        if group:
                            pod["spec"]["schedulingGroup"] = {"podGroupName": group}
                        pod["status"] = {"phase": "Pending"}
                        with self._lock:
                            self._create(RESOURCES["pods"], meta["namespace"], pod)

        threading.Thread(target=loop, name="job-controller", daemon=True).start()

    def run_scheduler(self, interval: float = 0.02) -> None:
        """Act as a minimal kube-scheduler (until `stop`): each Pending pod with no node and no scheduling
        gate is bound (``spec.nodeName``, Running) to the first node by name that is Ready, not cordoned,
        matches its ``nodeSelector`` (``kubernetes.io/hostname`` included) and has its GPUs free; else the
        pod gets ``PodScheduled=False/Unschedulable``. Pods of a PodGroup (``spec.schedulingGroup``) are
        bound all together once ``minCount`` of them exist, or none: the PodGroup then says
        ``PodGroupScheduled`` True/Scheduled or False/Unschedulable, as the real one (the fixtures in
        shared/fixtures/kubernetes/gang-scheduling). GPUs only: CPU and memory are not counted."""

        def loop() -> None:
            seen = -1
            while not self._stopping.wait(interval):
                with self._lock:
                    if self._rv != seen:
                        self._schedule()
                        seen = self._rv

        threading.Thread(target=loop, name="scheduler", daemon=True).start()

    def _schedule(self) -> None:
        nodes = [n for n in self._store["nodes"].values() if _node_ready(n)]
        nodes.sort(key=lambda n: str(n["metadata"]["name"]))
        free = {
            n["metadata"]["name"]: int((n.get("status") or {}).get("allocatable", {}).get(GPU, "0"))
            for n in nodes
        }
        waiting: list[JSON] = []
        for pod in self._store["pods"].values():
            spec, phase = pod.get("spec") or {}, (pod.get("status") or {}).get("phase")
            if phase not in ("Pending", "Running"):
                continue
            if spec.get("nodeName"):
                if spec["nodeName"] in free:
                    free[spec["nodeName"]] -= _pod_gpus(pod)
            elif not spec.get("schedulingGates"):
                waiting.append(pod)
        waiting.sort(key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))
        groups: dict[tuple[str, str], list[JSON]] = {}
        for pod in waiting:
            group = ((pod.get("spec") or {}).get("schedulingGroup") or {}).get("podGroupName")
            key = (_ns(pod), str(group or ""))
            groups.setdefault(key if group else (key[0], pod["metadata"]["name"] + "\x00"), []).append(pod)
        for (ns, group), pods in groups.items():
            podgroup = self._store["podgroups"].get(f"{ns}/{group}") if not group.endswith("\x00") else None
            if podgroup is not None:
                need = int(podgroup["spec"]["schedulingPolicy"]["gang"]["minCount"])
                if len(pods) < need:
                    continue  # waiting for minCount pods from a gang
            trial = dict(free)
            bound: list[tuple[JSON, str]] = []
            for pod in pods:
                node = next((n for n in nodes if _fits(pod, n, trial)), None)
                if node is None:
                    break
                trial[node["metadata"]["name"]] -= _pod_gpus(pod)
                bound.append((pod, node["metadata"]["name"]))
            if len(bound) == len(pods):
                free = trial
                for pod, name in bound:
                    new = merge_patch(pod, {"spec": {"nodeName": name}})
                    new["status"] = {
                        "phase": "Running",
                        "conditions": [{"type": "PodScheduled", "status": "True"}],
                    }
                    self._put(RESOURCES["pods"], new)
                if podgroup is not None:
                    self._set_group(podgroup, "True", "Scheduled", "")
                continue
            message = f"0/{len(self._store['nodes'])} nodes are available: {len(nodes)} Insufficient {GPU}."
            for pod in pods:
                cond = {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                }
                if (pod.get("status") or {}).get("conditions") != [cond]:
                    self._put(
                        RESOURCES["pods"], {**pod, "status": {"phase": "Pending", "conditions": [cond]}}
                    )
            if podgroup is not None:
                self._set_group(podgroup, "False", "Unschedulable", "pod group is unschedulable")

    def _set_group(self, podgroup: JSON, status: str, reason: str, message: str) -> None:
        cond = {"type": "PodGroupScheduled", "status": status, "reason": reason, "message": message}
        if (podgroup.get("status") or {}).get("conditions") != [cond]:
            self._put(RESOURCES["podgroups"], {**podgroup, "status": {"conditions": [cond]}})

    def list(self, kind: str, namespace: str | None = None) -> list[JSON]:
        res = resource_for(kind)
        with self._lock:
            objs = [self._store[res.plural][k] for k in self._sorted[res.plural]]
        return [copy.deepcopy(o) for o in objs if namespace is None or _ns(o) == namespace]

    @property
    def resource_version(self) -> int:
        """The current global resourceVersion."""
        return self._rv

    # --- authorization and faults ---

    def deny(self, verb: str, resource: str, subresource: str = "", namespace: str = "") -> None:
        """Deny `verb` on resource[/subresource] (in `namespace`, or everywhere when empty): SSARs answer
        ``allowed: false`` and the call itself gets 403."""
        self._denied.add((verb, resource, subresource, namespace))

    def delay_reviews(self, seconds: float) -> None:
        """Answer each SelfSubjectAccessReview ``seconds`` late (lists and actions as before)."""
        self._review_delay = seconds

    def allow(self, verb: str, resource: str, subresource: str = "", namespace: str = "") -> None:
        """Undo a ``deny`` with the same arguments (a RoleBinding added)."""
        self._denied.discard((verb, resource, subresource, namespace))

    def as_viewer(self, user: str = VIEWER) -> None:
        """Answer as kube-apiserver does ``user`` bound to the built-in ``view`` ClusterRole: get, list and
        watch of :data:`VIEW_READS` only. Every other call gets the real 403 (error-403-viewer-scale's
        shape, naming ``user``) and its SelfSubjectAccessReview ``allowed: false`` with no reason, as
        ssar-denied-viewer was captured."""
        self._viewer = user

    def set_eviction(self, pod_key: str, status: int) -> None:
        """How evicting the pod ``namespace/name`` is answered: 201 (evicts), 429 (PDB) or 500."""
        if status not in (201, 429, 500):
            raise ValueError(f"eviction status must be 201, 429 or 500, not {status}")
        self._evictions[pod_key] = status

    def expire_token(self) -> None:
        """From now on every call is answered 401 Unauthorized."""
        self._token_expired = True

    def delay(self, seconds: float) -> None:
        """Answer every request `seconds` late (0 for no delay)."""
        self._delay = seconds

    def hang(self) -> None:
        """From now on accept connections and read requests but answer nothing, and send nothing on open
        watches (no event, no bookmark), as a wedged server or a partition that drops packets does."""
        with self._lock:
            self._hung = True

    def resume(self) -> None:
        """End :meth:`hang` and :meth:`stall_lists`: everything held back is answered and sent, in order."""
        with self._lock:
            self._hung = False
            self._stalls.clear()
            self._lock.notify_all()

    def stall_lists(self, kind: str, after: int) -> None:
        """Serve ``after`` more list pages of the kind, then let every later one hang (until `resume`)."""
        with self._lock:
            self._stalls[resource_for(kind).plural] = after

    def slow_lists(self, kind: str, seconds: float) -> None:
        """Answer each list page of the kind ``seconds`` late (0 for no delay): a real server's per-page
        cost on a big list (reading etcd or its watch cache, encoding), which this one does not have."""
        with self._lock:
            self._page_delay[resource_for(kind).plural] = seconds

    def _hold(self, plural: str = "") -> None:
        """Wait here while the server hangs, or while lists of ``plural`` are stalled."""
        with self._lock:
            if plural in self._stalls and self._stalls[plural] > 0:
                self._stalls[plural] -= 1
                return
            while (self._hung or plural in self._stalls) and not self._stopping.is_set():
                self._lock.wait(1.0)

    def drop_watches(self) -> None:
        """Close every open watch stream abruptly (no terminating chunk), as a broken connection would."""
        with self._lock:
            self._drop_generation += 1
            self._lock.notify_all()

    def inject(
        self, kind: str, item: Any, *, namespace: str | None = None, event: str | None = "ADDED"
    ) -> None:
        """Serve ``item`` as it is, whatever its shape (``{"metadata": []}``, ``5``), as a broken server or
        a proxy might: at the end of every list of the kind (of ``namespace``'s lists too when given) and,
        unless ``event`` is None, as a watch event of that type to the kind's open watches."""
        res = resource_for(kind)
        with self._lock:
            self._raw[res.plural].append((namespace, item))
            if event is not None:
                line = json.dumps({"type": event, "object": item}, separators=(",", ":")).encode() + b"\n"
                self._emit_line(res, namespace or "", line)

    def inject_line(self, kind: str, line: bytes) -> None:
        """Send ``line`` (a newline is added) as it is to the kind's open watches: a watch event that is
        not one (``5``, ``{"type": "SURPRISE"}``)."""
        res = resource_for(kind)
        with self._lock:
            self._emit_line(res, "", line + b"\n")

    def pad_lists(self, kind: str, size: int, *, chunked: bool = False) -> None:
        """Answer every list of the kind with ``size`` bytes of whitespace before the JSON (valid JSON, and
        as costly to read as a page that big), sent with a Content-Length or, when ``chunked``, as chunks
        with no length announced; ``size`` 0 stops. How much of the padding got out before the client hung
        up is kept in `padding_sent`."""
        res = resource_for(kind)
        with self._lock:
            if size:
                self._padding[res.plural] = (size, chunked)
            else:
                self._padding.pop(res.plural, None)

    def compact(self) -> None:
        """Forget the event history: watches from any resourceVersion before now get 410 Gone."""
        with self._lock:
            self._events_base += len(self._events)
            self._events = []
            self._floor = self._rv

    # --- pod logs and events, as a kubelet and controllers write them ---

    def _container_of(self, pod_key: str, container: str) -> tuple[str, str, str]:
        namespace, _, name = pod_key.partition("/")
        if not container:
            pod = self._store["pods"].get(pod_key)
            containers = ((pod or {}).get("spec") or {}).get("containers") or [{}]
            container = str(containers[0].get("name", ""))
        return namespace, name, container

    def set_log(
        self, pod_key: str, lines: Iterable[str], *, container: str = "", previous: bool = False
    ) -> None:
        """What the pod ``namespace/name``'s container (its first when not named) has written, or wrote in
        its previous run (``previous``: a restarted container's). A line may hold anything (escapes)."""
        with self._lock:
            ns, name, container = self._container_of(pod_key, container)
            self._logs[(ns, name, container, previous)] = list(lines)
            self._logs_ended.discard((ns, name, container))
            self._lock.notify_all()

    def append_log(self, pod_key: str, lines: Iterable[str], *, container: str = "") -> None:
        """The container writes ``lines``: followers (``follow=true``) get them at once."""
        with self._lock:
            ns, name, container = self._container_of(pod_key, container)
            self._logs.setdefault((ns, name, container, False), []).extend(lines)
            self._lock.notify_all()

    def end_log(self, pod_key: str, *, container: str = "") -> None:
        """The container exits: every follow of its log ends (the terminating chunk), as the kubelet's."""
        with self._lock:
            self._logs_ended.add(self._container_of(pod_key, container))
            self._lock.notify_all()

    def warn(
        self,
        kind: str,
        key: str,
        reason: str,
        message: str,
        *,
        count: int = 1,
        last: str = "",
        namespace: str = "",
    ) -> JSON:
        """A ``type: Warning`` core/v1 Event about ``kind`` ``key`` (``namespace/name``, or a node's name), as
        the kubelet's recorder writes one (``count``, ``firstTimestamp``/``lastTimestamp``; ``last`` is its
        RFC 3339 time, now when empty); it goes to the event watches like every change."""
        obj_ns, _, name = key.rpartition("/")
        when = last or _now()
        event: JSON = {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{name}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace or obj_ns or "default",
            },
            "involvedObject": {"kind": kind, "name": name, **({"namespace": obj_ns} if obj_ns else {})},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "count": count,
            "firstTimestamp": when,
            "lastTimestamp": when,
            "source": {"component": "kubelet"},
        }
        return self.apply(event)

    # --- store internals (called with the lock held) ---

    @staticmethod
    def _key(res: Resource, meta: JSON) -> str:
        return f"{meta.get('namespace', '')}/{meta['name']}" if res.namespaced else str(meta["name"])

    @staticmethod
    def _key_of(res: Resource, namespace: str | None, name: str) -> str:
        return f"{namespace}/{name}" if res.namespaced else name

    @staticmethod
    def _fill_metadata(meta: JSON, res: Resource) -> None:
        if not meta.get("name"):
            if not meta.get("generateName"):
                message = f'{res.kind}.{res.group or "core"} "" is invalid: metadata.name: Required value: '
                raise ApiError(422, "Invalid", message + "name or generateName is required")
            suffix = "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=5))
            meta["name"] = meta["generateName"] + suffix
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())

    def _put(self, res: Resource, obj: JSON) -> JSON:
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        meta = obj["metadata"] = dict(obj.get("metadata") or {})  # may be shared with the stored version
        self._fill_metadata(meta, res)
        key = self._key(res, meta)
        old = self._store[res.plural].get(key)
        if old is not None:
            meta["uid"] = old["metadata"]["uid"]
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"]
            generation = old["metadata"].get("generation", 1)
            meta["generation"] = generation + (old.get("spec") != obj.get("spec"))
        else:
            meta.setdefault("generation", 1)
            bisect.insort(self._sorted[res.plural], key)
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._store[res.plural][key] = obj
        self._emit("MODIFIED" if old is not None else "ADDED", res, obj)
        return obj

    def _remove(self, res: Resource, namespace: str, name: str) -> JSON:
        key = self._key_of(res, namespace, name)
        old = self._store[res.plural].pop(key, None)
        if old is None:
            raise _not_found(res, name)
        keys = self._sorted[res.plural]
        del keys[bisect.bisect_left(keys, key)]
        self._rv += 1
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
        self._emit("DELETED", res, gone)
        return gone

    def _emit(self, kind: str, res: Resource, obj: JSON) -> None:
        line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
        self._events.append(_Event(self._rv, res.plural, _ns(obj), obj, line))
        if len(self._events) > 2 * self._history_size:  # trim in halves: amortised O(1) per event
            cut = len(self._events) - self._history_size
            self._floor = self._events[cut - 1].rv
            del self._events[:cut]
            self._events_base += cut
        self._lock.notify_all()

    def _emit_line(self, res: Resource, namespace: str, line: bytes) -> None:
        """A raw watch line, matched by resource and namespace only (it may have no readable object)."""
        self._rv += 1
        self._events.append(_Event(self._rv, res.plural, namespace, {"metadata": {}}, line))
        self._lock.notify_all()

    def _is_denied(self, verb: str, resource: str, subresource: str, namespace: str) -> bool:
        """Whether a `deny` rule matches (a rule with no namespace matches every namespace)."""
        reads = verb in ("get", "list", "watch") and (resource, subresource) in VIEW_READS
        if self._viewer and not reads:
            return True
        return any((verb, resource, subresource, ns) in self._denied for ns in ("", namespace))

    # --- request handling (called by _Handler) ---

    def handle(
        self, method: str, target: str, headers: Any, body: bytes, stream: _Stream
    ) -> tuple[int, JSON]:
        """Answer one request: (status, JSON body). A watch writes to `stream` and returns (0, {})."""
        with self._lock:
            self.requests.append((method, target))
        if self._delay:
            self._stopping.wait(self._delay)
        self._hold()
        if self._token_expired or headers.get("Authorization") != f"Bearer {self.token}":
            return 401, load_fixture("error-401-bad-token")["response"]
        url = urlsplit(target)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            payload: JSON = json.loads(body) if body else {}
            return self._route(method, url.path.rstrip("/") or "/", query, headers, payload, stream)
        except ApiError as err:
            return err.code, err.status
        except (ValueError, KeyError, TypeError) as err:  # a malformed body, query or continue token
            return 400, ApiError(400, "BadRequest", f"malformed request: {err!r}").status

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: Any, payload: JSON, stream: _Stream
    ) -> tuple[int, JSON]:
        fixed = {
            "/version": "version",
            "/api/v1": "discovery-api-v1",
            "/apis/apps/v1": "discovery-apis-apps-v1",
        }
        if method == "GET" and path in ("/readyz", "/livez"):
            return 200, {}
        if method == "GET" and path in fixed:
            return 200, load_fixture(fixed[path])["response"]
        if method == "GET" and path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if method == "GET" and path == "/apis":
            return 200, _api_group_list(self.gang_scheduling)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _no_route()
        if (group, version) == GANG_GROUP_VERSION and not self.gang_scheduling:
            raise _no_route()
        if method == "GET" and not rest:
            return 200, _resource_list(group, version)
        if (group, rest) == ("authorization.k8s.io", ["selfsubjectaccessreviews"]) and method == "POST":
            return 201, self._ssar(payload)
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        res = RESOURCES.get(rest[0])
        if res is None or (res.group, res.version) != (group, version) or len(rest) > 3:
            raise _no_route()
        if namespace is not None and not res.namespaced:
            raise _no_route()
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        verb = {
            "GET": "get" if name else ("watch" if _flag(query.get("watch")) else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }.get(method, "")
        if self._is_denied(verb, res.plural, sub, namespace or ""):
            raise _forbidden(res, verb, sub, namespace, name, self._viewer or USER)
        ns = namespace or ""
        if method == "GET" and not name and verb == "list":
            self._hold(res.plural)
            if self._page_delay.get(res.plural):
                self._stopping.wait(self._page_delay[res.plural])
        if method == "GET" and not name and verb == "list" and res.plural in self._padding:
            with self._lock:
                page = self._list(res, namespace, query)
            self._send_padded(res.plural, page, stream)
            return 0, {}
        if method == "GET" and res.plural == "pods" and name and sub == "log":
            self._log(ns, name, query, stream)
            return 0, {}
        with self._lock:
            if method == "GET" and not name and verb == "watch":
                pass  # streamed below, outside the lock
            elif method == "GET" and not name:
                return 200, self._list(res, namespace, query)
            elif method == "GET" and not sub:
                return 200, self._get(res, ns, name)
            elif method == "GET" and sub == "scale" and res.plural in _SCALABLE:
                return 200, _scale_of(self._get(res, ns, name))
            elif method == "PATCH" and sub in ("", "scale"):
                content_type = headers.get("Content-Type", "")
                return 200, self._patch(res, ns, name, sub, payload, content_type, query.get("fieldManager"))
            elif method == "PUT" and not sub:
                return 200, self._replace(res, ns, name, payload)
            elif method == "POST" and not name:
                return 201, self._create(res, ns, payload)
            elif method == "POST" and res.plural == "pods" and sub == "eviction":
                return self._evict(ns, name, query.get("dryRun") == "All")
            elif method == "DELETE" and name and not sub:
                return 200, self._remove(res, ns, name)
            else:
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
        self._watch(res, namespace, query, stream)
        return 0, {}

    def _get(self, res: Resource, namespace: str, name: str) -> JSON:
        obj = self._store[res.plural].get(self._key_of(res, namespace, name))
        if obj is None:
            raise _not_found(res, name)
        return obj

    def _list(self, res: Resource, namespace: str | None, query: dict[str, str]) -> JSON:
        keys = self._sorted[res.plural]
        objs = self._store[res.plural]
        prefix = f"{namespace}/" if namespace is not None else ""
        rv = self._rv
        start = prefix
        if query.get("continue"):
            token = json.loads(base64.urlsafe_b64decode(query["continue"] + "==="))
            if token["rv"] < self._floor:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter.",
                )
            rv, start = token["rv"], prefix + token["start"]
        limit = int(query.get("limit") or 0)
        labels = label_matcher(query["labelSelector"]) if query.get("labelSelector") else None
        fields = field_matcher(query["fieldSelector"]) if query.get("fieldSelector") else None
        items: list[JSON] = []
        index = bisect.bisect_left(keys, start)
        while index < len(keys) and keys[index].startswith(prefix):
            if limit and len(items) == limit:
                break
            obj = objs[keys[index]]
            index += 1
            if labels is not None and not labels(obj["metadata"].get("labels") or {}):
                continue
            if fields is not None and not fields(obj):
                continue
            items.append({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
        meta: JSON = {"resourceVersion": str(rv)}
        more = index < len(keys) and keys[index].startswith(prefix)
        if not more and labels is None and fields is None:
            items += [item for ns, item in self._raw[res.plural] if namespace is None or ns == namespace]
        if more and limit:
            last = keys[index - 1][len(prefix) :]
            token = {"v": "meta.k8s.io/v1", "rv": rv, "start": last + "\x00"}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")
            if labels is None and fields is None:
                end = bisect.bisect_left(keys, prefix + "\U0010ffff") if prefix else len(keys)
                meta["remainingItemCount"] = end - index
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}

    def _send_padded(self, plural: str, page: JSON, stream: _Stream) -> None:
        size, chunked = self._padding[plural]
        data = json.dumps(page).encode()
        stream.begin(None if chunked else size + len(data))
        piece = b" " * 2**20
        sent = 0
        while sent < size:
            part = piece[: min(len(piece), size - sent)]
            if not stream.write(part):
                break
            sent += len(part)
        with self._lock:
            self.padding_sent[plural] = sent
        if sent == size and stream.write(data) and chunked:
            stream.end()

    def _patch(
        self,
        res: Resource,
        ns: str,
        name: str,
        sub: str,
        patch: JSON,
        content_type: str,
        manager: str | None = None,
    ) -> JSON:
        if content_type.split(";", maxsplit=1)[0].strip() not in _PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"{', '.join(sorted(_PATCH_TYPES))}",
            )
        obj = self._get(res, ns, name)
        if sub == "scale":
            scale = merge_patch(_scale_of(obj), patch)
            _check_replicas(scale, "Scale", "autoscaling", name)
            return _scale_of(
                self._put(res, merge_patch(obj, {"spec": {"replicas": scale["spec"]["replicas"]}}))
            )
        wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != obj["metadata"]["resourceVersion"]:
            raise _conflict(res, name)
        new = merge_patch(obj, patch)
        _check_replicas(new, res.kind, res.group or "core", name)
        _manage(new, patch, manager)
        return self._put(res, new)

    def _replace(self, res: Resource, ns: str, name: str, obj: JSON) -> JSON:
        current = self._get(res, ns, name)
        wanted_rv = obj.get("metadata", {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise _conflict(res, name)
        obj.setdefault("metadata", {}).update(name=name, **({"namespace": ns} if res.namespaced else {}))
        return self._put(res, obj)

    def _create(self, res: Resource, ns: str, obj: JSON) -> JSON:
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = ns
        self._fill_metadata(meta, res)
        if self._key(res, meta) in self._store[res.plural]:
            details: JSON = {"name": meta["name"], "group": res.group, "kind": res.plural}
            raise ApiError(409, "AlreadyExists", f'{res.qualified} "{meta["name"]}" already exists', details)
        for field in ("resourceVersion", "generation"):
            meta.pop(field, None)
        return self._put(res, obj)

    def _evict(self, ns: str, name: str, dry_run: bool) -> tuple[int, JSON]:
        pods = RESOURCES["pods"]
        pod = self._get(pods, ns, name)
        status = self._evictions.get(f"{ns}/{name}", 201)
        if status == 429:
            raise self._pdb_blocked(pod)
        if status == 500:
            cause = {"message": _MULTIPLE_PDBS}
            raise ApiError(
                500, "InternalError", f"Internal error occurred: {_MULTIPLE_PDBS}", {"causes": [cause]}
            )
        if not dry_run:
            self._remove(pods, ns, name)
        return 201, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    def _pdb_blocked(self, pod: JSON) -> ApiError:
        template = load_fixture("eviction-pdb")["response"]
        labels = pod["metadata"].get("labels") or {}
        details: JSON = {}
        for pdb in self._store["poddisruptionbudgets"].values():
            if _ns(pdb) == _ns(pod) and selector_matches(pdb["spec"].get("selector") or {}, labels):
                needs = pdb["spec"].get("minAvailable", pdb.get("status", {}).get("desiredHealthy", 0))
                has = pdb.get("status", {}).get("currentHealthy", 0)
                name = pdb["metadata"]["name"]
                cause = f"The disruption budget {name} needs {needs} healthy pods and has {has} currently"
                details = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
                break
        return ApiError(429, template["reason"], template["message"], details)

    def _ssar(self, review: JSON) -> JSON:
        if self._review_delay:
            self._stopping.wait(self._review_delay)
        attrs = review.get("spec", {}).get("resourceAttributes") or {}
        allowed = not self._is_denied(
            attrs.get("verb", ""),
            attrs.get("resource", ""),
            attrs.get("subresource", ""),
            attrs.get("namespace", ""),
        )
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {},
            "spec": review.get("spec", {}),
            "status": {"allowed": allowed},
        }

    def _log(self, ns: str, name: str, query: dict[str, str], stream: _Stream) -> None:
        """``GET …/pods/{name}/log`` as kube-apiserver answers it (text, not JSON; its 400s and 404 in its
        words): ``container`` (required when the pod has several), ``previous``, ``tailLines``,
        ``limitBytes``, ``follow`` (chunked; lines appended later are sent as they come, until the container
        ends, the client goes or the server stops)."""
        with self._lock:
            pod = self._get(RESOURCES["pods"], ns, name)
            containers = [str(c.get("name", "")) for c in (pod.get("spec") or {}).get("containers") or []]
            container = query.get("container", "")
            if not container:
                if len(containers) != 1:
                    choose = " ".join(containers)
                    message = f"a container name must be specified for pod {name}, choose one of: [{choose}]"
                    raise ApiError(400, "BadRequest", message)
                container = containers[0]
            if container not in containers:
                raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
            previous = _flag(query.get("previous"))
            key = (ns, name, container, previous)
            if key not in self._logs:
                if previous:
                    message = f'previous terminated container "{container}" in pod "{name}" not found'
                    raise ApiError(400, "BadRequest", message)
                if (pod.get("status") or {}).get("phase", "Pending") == "Pending":
                    message = (
                        f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
                    )
                    raise ApiError(400, "BadRequest", message)
            lines = self._logs.get(key, [])
            tail = query.get("tailLines")
            start = max(0, len(lines) - int(tail)) if tail else 0
            body = "".join(f"{line}\n" for line in lines[start:]).encode()
            cursor = len(lines)
        limit = int(query.get("limitBytes") or 0)
        if limit and self.honour_limit_bytes:
            body = body[:limit]
        if not _flag(query.get("follow")):
            stream.begin(len(body), content_type="text/plain")
            stream.write(body)
            return
        stream.begin(content_type="text/plain")
        if not stream.write(body):
            return
        while True:
            with self._lock:
                while (
                    len(self._logs.get(key, ())) <= cursor
                    and (ns, name, container) not in self._logs_ended
                    and not self._stopping.is_set()
                ):
                    self._lock.wait(1.0)
                new = self._logs.get(key, [])[cursor:]
                cursor += len(new)
                ended = (ns, name, container) in self._logs_ended or self._stopping.is_set()
            if new and not stream.write("".join(f"{line}\n" for line in new).encode()):
                return
            if ended:
                stream.end()
                return

    # --- watches ---

    def _watch(self, res: Resource, namespace: str | None, query: dict[str, str], stream: _Stream) -> None:
        params = _WatchParams(
            res,
            namespace,
            label_matcher(query["labelSelector"]) if query.get("labelSelector") else None,
            field_matcher(query["fieldSelector"]) if query.get("fieldSelector") else None,
        )
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        next_bookmark = time.monotonic() + self.bookmark_interval
        start_rv = query.get("resourceVersion", "")
        if start_rv not in ("", "0") and not start_rv.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {start_rv!r}")
        stream.begin()
        with self._lock:
            generation = self._drop_generation
            if start_rv in ("", "0"):  # "any": the current state as ADDED events, then the changes
                initial = [
                    json.dumps({"type": "ADDED", "object": o}, separators=(",", ":")).encode() + b"\n"
                    for o in (self._store[res.plural][key] for key in self._sorted[res.plural])
                    if params.matches(res.plural, _ns(o), o)
                ]
                cursor = self._events_base + len(self._events)
            elif int(start_rv) < self._floor:
                initial, cursor = [_expired_line(int(start_rv), self._rv)], -1
            else:
                cursor = self._events_base + bisect.bisect_right(
                    self._events, int(start_rv), key=lambda e: e.rv
                )
                initial = []
        if not stream.write(b"".join(initial)) or cursor < 0:
            stream.end()
            return
        while True:
            with self._lock:
                while True:
                    now = time.monotonic()
                    wake = min(deadline, next_bookmark) if bookmarks else deadline
                    if self._hung and not self._stopping.is_set() and generation == self._drop_generation:
                        self._lock.wait(1.0)  # hung: nothing sent, not even the watch's end
                        continue
                    if (
                        now >= wake
                        or self._stopping.is_set()
                        or generation != self._drop_generation
                        or cursor < self._events_base + len(self._events)
                    ):
                        break
                    self._lock.wait(wake - now)
                if self._stopping.is_set() or generation != self._drop_generation:
                    stream.drop()
                    return
                if cursor < self._events_base:  # fell behind the history while writing
                    lines = [_expired_line(self._events_base, self._rv)]
                    cursor = -1
                else:
                    lines = [
                        e.line
                        for e in self._events[cursor - self._events_base :]
                        if params.matches(e.resource, e.namespace, e.obj)
                    ]
                    cursor = self._events_base + len(self._events)
                current_rv = self._rv
            now = time.monotonic()
            if bookmarks and now >= next_bookmark and cursor >= 0:
                mark = {
                    "kind": res.kind,
                    "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(current_rv)},
                }
                lines.append(json.dumps({"type": "BOOKMARK", "object": mark}).encode() + b"\n")
                next_bookmark = now + self.bookmark_interval
            if not stream.write(b"".join(lines)) or cursor < 0 or now >= deadline:
                stream.end()
                return


def _node_ready(node: JSON) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not (node.get("spec") or {}).get("unschedulable")


def _pod_gpus(pod: JSON) -> int:
    containers = (pod.get("spec") or {}).get("containers") or []
    return sum(int(((c.get("resources") or {}).get("requests") or {}).get(GPU, "0")) for c in containers)


def _fits(pod: JSON, node: JSON, free: dict[str, int]) -> bool:
    """Whether ``pod`` may go on ``node``: its nodeSelector and hostname node affinity match, its GPUs fit."""
    labels = node["metadata"].get("labels") or {}
    spec = pod.get("spec") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("operator") == "In" and labels.get(expr["key"]) not in expr.get("values", []):
                return False
    return free.get(node["metadata"]["name"], 0) >= _pod_gpus(pod)


def _flag(value: str | None) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it (the client sends ``True``)."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


def _ns(obj: JSON) -> str:
    return str(obj["metadata"].get("namespace", ""))


def _expired_line(rv: int, current: int) -> bytes:
    status = load_fixture("watch-too-old-rv")["events"][0]["object"]
    status = {**status, "message": f"too old resource version: {rv} ({current})"}
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"


def _no_route() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _forbidden(
    res: Resource, verb: str, sub: str, namespace: str | None, name: str, user: str = USER
) -> ApiError:
    subject = f'{res.qualified} "{name}"' if name else res.qualified
    resource = f"{res.plural}/{sub}" if sub else res.plural
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{res.group}"{where}'
    )
    details: JSON = {"name": name, "group": res.group, "kind": res.plural}
    return ApiError(403, "Forbidden", message, {k: v for k, v in details.items() if v})


def _conflict(res: Resource, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    details: JSON = {"name": name, "group": res.group, "kind": res.plural}
    return ApiError(409, "Conflict", message, {k: v for k, v in details.items() if v})


def _manage(obj: JSON, patch: JSON, manager: str | None) -> None:
    """Record who set the patched fields in ``metadata.managedFields``, as the API server does: one
    ``Update`` entry per manager (without ``?fieldManager=`` the real server names the User-Agent's program,
    ``OpenAPI-Generator`` for the kubernetes client)."""

    def fields(value: Any) -> JSON:
        if not isinstance(value, dict):
            return {}
        return {f"f:{k}": fields(v) for k, v in value.items() if k != "metadata"}

    entry = {
        "manager": manager or "OpenAPI-Generator",
        "operation": "Update",
        "apiVersion": obj.get("apiVersion", "v1"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields(patch),
    }
    meta = obj.setdefault("metadata", {})
    meta["managedFields"] = [
        *(e for e in meta.get("managedFields") or () if e.get("manager") != entry["manager"]),
        entry,
    ]


def _check_replicas(obj: JSON, kind: str, group: str, name: str) -> None:
    """422 Invalid, as the server words it, for a negative or non-integer ``spec.replicas``."""
    replicas = obj.get("spec", {}).get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        detail = f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0"
        cause = {"reason": "FieldValueInvalid", "message": detail, "field": "spec.replicas"}
        details = {"name": name, "group": group, "kind": kind, "causes": [cause]}
        message = f'{kind}.{group} "{name}" is invalid: spec.replicas: {detail}'
        raise ApiError(422, "Invalid", message, details)


def _scale_of(obj: JSON) -> JSON:
    meta = obj["metadata"]
    selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
        },
        "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
        "status": {
            "replicas": obj.get("status", {}).get("replicas", 0),
            "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
        },
    }


def _group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"authorization.k8s.io": ["v1"]}
    for res in RESOURCES.values():
        if res.group and res.version not in groups.setdefault(res.group, []):
            groups[res.group].append(res.version)
    return groups


def _api_group_list(gang_scheduling: bool) -> JSON:
    groups = []
    for group, versions in _group_versions().items():
        served = [v for v in versions if gang_scheduling or (group, v) != GANG_GROUP_VERSION]
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in served]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _resource_list(group: str, version: str) -> JSON:
    if group and version not in _group_versions().get(group, []):
        raise _no_route()
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    resources: list[JSON] = [
        {
            "name": r.plural,
            "singularName": r.kind.lower(),
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
        }
        for r in RESOURCES.values()
        if (r.group, r.version) == (group, version)
    ]
    if group == "authorization.k8s.io":
        resources.append(
            {
                "name": "selfsubjectaccessreviews",
                "singularName": "",
                "namespaced": False,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            }
        )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


# --- HTTP plumbing --------------------------------------------------------------------------------------


def _shutdown(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        conn.shutdown(socket.SHUT_RDWR)


class _Stream:
    """A body written as it is made: a watch answer (chunked, one JSON event per line, flushed as written),
    or a padded list answer (chunked, or with a Content-Length)."""

    def __init__(self, handler: _Handler) -> None:
        self._handler = handler
        self.started = False
        self._length: int | None = None

    def begin(self, length: int | None = None, *, content_type: str = "application/json") -> None:
        """Send the headers: chunked, or ``length`` bytes to follow."""
        self.started = True
        self._length = length
        # The connection ends with the stream, and says so: without the header a client keeps it in its
        # pool, and its next request races the close ("Remote end closed connection without response").
        self._handler.close_connection = True
        self._handler.send_response(200)
        self._handler.send_header("Connection", "close")
        self._handler.send_header("Content-Type", content_type)
        if length is None:
            self._handler.send_header("Transfer-Encoding", "chunked")
        else:
            self._handler.send_header("Content-Length", str(length))
        self._handler.end_headers()

    def write(self, data: bytes) -> bool:
        """Send one chunk (or plain bytes, with a Content-Length); False when the client has gone."""
        if not data:
            return True
        try:
            framed = data if self._length is not None else b"%x\r\n%s\r\n" % (len(data), data)
            self._handler.wfile.write(framed)
            self._handler.wfile.flush()
        except OSError:
            return False
        return True

    def end(self) -> None:
        """End the stream cleanly (the terminating chunk), as a watch timeout does."""
        with contextlib.suppress(OSError):
            self._handler.wfile.write(b"0\r\n\r\n")
            self._handler.wfile.flush()

    def drop(self) -> None:
        """Break the connection mid-stream."""
        _shutdown(self._handler.connection)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    api: FakeApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away is not an error
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds the second
    # for ~40 ms on every answer.
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        with self.server.api._lock:
            self.server.api._connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.api._lock:
                self.server.api._connections.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the server's requests are logged in `FakeApiServer.requests`."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        stream = _Stream(self)
        status, payload = self.server.api.handle(self.command, self.path, self.headers, body, stream)
        if stream.started:
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


# --- scenes ---------------------------------------------------------------------------------------------

_SCENE_LISTS = (
    "nodes-list",
    "pods-list-all",
    "deployments-list",
    "replicasets-list",
    "daemonsets-list",
    "jobs-list",
    "pdb-list",
    "hpa-list",
    "events-list",
)


def fixture_scene() -> list[JSON]:
    """The objects of the captured lists (nodes, all pods, and ml-prod's workloads, PDB, HPA, events), as
    captured, each with the ``kind``/``apiVersion`` that a list's items leave out."""
    objects: list[JSON] = []
    for name in _SCENE_LISTS:
        answer = load_fixture(name)["response"]
        kind = answer["kind"].removesuffix("List")
        objects += [{"kind": kind, "apiVersion": answer["apiVersion"], **item} for item in answer["items"]]
    return objects


_GPU = "nvidia.com/gpu"
_ZONES = ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d")
_T0 = "2026-11-29T00:00:00Z"


class _FleetBuilder:
    """Builds the objects of `generate_fleet`: nodes, controllers and the pods they own."""

    def __init__(self, seed: int, pods: int) -> None:
        self.rng = random.Random(seed)
        self.objects: list[JSON] = []
        self.budget = pods  # pods still to create

    def add(
        self, kind: str, name: str, namespace: str, labels: dict[str, str], spec: JSON, **extra: Any
    ) -> JSON:
        res = _BY_KIND[kind]
        meta: JSON = {"name": name, "uid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}
        meta |= {"namespace": namespace} if namespace else {}
        meta |= {"creationTimestamp": _T0, "labels": labels}
        obj: JSON = {
            "kind": kind,
            "apiVersion": res.api_version,
            "metadata": meta,
            "spec": spec,
            "status": {},
        }
        obj |= extra
        self.objects.append(obj)
        return obj

    def owned(self, obj: JSON, owner: JSON) -> JSON:
        ref = {k: owner[k] for k in ("apiVersion", "kind")} | {
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        obj["metadata"]["ownerReferences"] = [ref]
        return obj

    def pod(self, owner: JSON, name: str, node: str, labels: dict[str, str], gpus: int) -> None:
        if self.budget <= 0:
            return
        self.budget -= 1
        template = owner["spec"]["template"]["spec"]["containers"][0]
        requests: JSON = {"cpu": "8", "memory": "64Gi", _GPU: str(gpus)} if gpus else {"cpu": "500m"}
        container = {"name": "main", "image": template["image"], "resources": {"requests": requests}}
        spec = {"nodeName": node, "containers": [container]}
        pod = self.add("Pod", name, owner["metadata"]["namespace"], labels, spec, status={"phase": "Running"})
        self.owned(pod, owner)

    @staticmethod
    def template(labels: dict[str, str], image: str, gpus: int) -> JSON:
        requests = {_GPU: str(gpus)} if gpus else {"cpu": "500m"}
        container = {"name": "main", "image": image, "resources": {"requests": requests}}
        return {"metadata": {"labels": labels}, "spec": {"containers": [container]}}

    def deployment(
        self, name: str, namespace: str, replicas: int, image: str, gpus: int
    ) -> tuple[JSON, dict[str, str]]:
        """A Deployment and its ReplicaSet; the ReplicaSet (which owns the pods) and the pods' labels."""
        labels = {"app": name}
        spec = {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": self.template(labels, image, gpus),
        }
        status = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
        deployment = self.add("Deployment", name, namespace, labels, spec, status=status)
        pod_labels = {**labels, "pod-template-hash": "5d8f7c9b4"}
        rs_spec = {**spec, "template": self.template(pod_labels, image, gpus)}
        rs = self.add("ReplicaSet", f"{name}-5d8f7c9b4", namespace, pod_labels, rs_spec, status=status)
        return self.owned(rs, deployment), pod_labels


def generate_fleet(nodes: int, pods: int, *, seed: int = 0) -> list[JSON]:
    """A synthetic fleet: `nodes` H100 nodes (8 GPUs each) and up to `pods` pods, with their controllers.

    Every node runs a ``dcgm-exporter`` DaemonSet pod; 40 % of the nodes run Indexed training Jobs
    (8 ranks x 8 GPUs), the next 50 % run 1-GPU serving Deployments (16 replicas); the other pods belong
    to CPU-only Deployments of 50 replicas spread over all nodes. Deterministic for a given seed.
    """
    fleet = _FleetBuilder(seed, pods)
    names = [f"gpu-node-{i:05d}" for i in range(nodes)]
    for i, name in enumerate(names):
        zone = _ZONES[i % len(_ZONES)]
        labels = {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": zone,
            "node.kubernetes.io/instance-type": "p5.48xlarge",
            "topology.k8s.aws/network-node-layer-3": f"rack-{i // 32:04d}",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        }
        capacity = {"cpu": "192", "memory": "2097152Mi", "pods": "110", _GPU: "8"}
        ready = [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
        status = {"capacity": capacity, "allocatable": capacity, "conditions": ready}
        fleet.add("Node", name, "", labels, {"providerID": f"aws:///{zone}/i-{i:017x}"}, status=status)
    ds_labels = {"app": "dcgm-exporter"}
    ds_spec = {
        "selector": {"matchLabels": ds_labels},
        "template": fleet.template(ds_labels, "nvcr.io/dcgm", 0),
    }
    daemonset = fleet.add("DaemonSet", "dcgm-exporter", "gpu-operator", ds_labels, ds_spec)
    for i, node in enumerate(names):
        fleet.pod(daemonset, f"dcgm-exporter-{i:05d}", node, ds_labels, 0)
    training = names[: int(nodes * 0.4) // 8 * 8]
    for j in range(len(training) // 8):
        labels = {"job-name": f"train-{j:04d}"}
        spec = {"parallelism": 8, "completions": 8, "completionMode": "Indexed"}
        spec["template"] = fleet.template(labels, "nvcr.io/pytorch:24.05", 8)
        job = fleet.add("Job", labels["job-name"], "ml-train", labels, spec, status={"active": 8})
        for rank, node in enumerate(training[j * 8 : j * 8 + 8]):
            rank_labels = {**labels, "batch.kubernetes.io/job-completion-index": str(rank)}
            fleet.pod(job, f"{labels['job-name']}-{rank}", node, rank_labels, 8)
    slots = [node for node in names[len(training) : len(training) + nodes // 2] for _ in range(8)]
    for j in range(0, len(slots), 16):
        rs, labels = fleet.deployment(f"serve-{j // 16:04d}", "ml-serve", 16, "vllm/vllm-openai:v0.6", 1)
        for k, node in enumerate(slots[j : j + 16]):
            fleet.pod(rs, f"{rs['metadata']['name']}-{k:05d}", node, labels, 1)
    j = 0
    while fleet.budget > 0 and names:
        rs, labels = fleet.deployment(f"web-{j:05d}", f"team-{j % 20:02d}", 50, "registry.local/web:1.0", 0)
        for k in range(50):
            fleet.pod(rs, f"{rs['metadata']['name']}-{k:05d}", fleet.rng.choice(names), labels, 0)
        j += 1
    return fleet.objects


def other_cluster(scene: list[JSON]) -> list[JSON]:
    """The same scene as another cluster runs it: same names, other machines (EC2 instance ids are unique,
    and the console matches a node with its cloud instance on them)."""
    for obj in scene:
        spec = obj.get("spec") or {}
        if obj.get("kind") == "Node" and spec.get("providerID"):
            spec["providerID"] = spec["providerID"].replace("/i-0", "/i-1")
    return scene
