"""What an on-call engineer walks through from a symptom to its cause: the pods view (``:pods``), the events
view (``:events``), the objects related to the one in a detail screen (endpoint → replicas → node → GPUs,
job → ranks, GPU → pod and owner) with the breadcrumb of the way there, a pod's detail, and the Grafana link
of a node, GPU or endpoint.

Pure functions of a snapshot, like :mod:`aios_tui.render.table`; the kinds are declared the same way so the
same table widget sorts, scrolls and filters them.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aios_tui.config import GrafanaSettings
from aios_tui.domain import (
    Endpoint,
    Event,
    FleetSnapshot,
    Gpu,
    Metric,
    Node,
    Pod,
    PodPhase,
    fmt,
    fmt_age,
    fmt_mib,
    is_na,
)
from aios_tui.domain.xid import xid_info
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE
from aios_tui.render.table import (
    Column,
    ResourceKind,
    RowCtx,
    cpu_requested_text,
    gpu_sharing_text,
    memory_requested_text,
    shared_gpus_text,
)

__all__ = [
    "EVENTS",
    "PODS",
    "Related",
    "crumb",
    "describe",
    "event_rows",
    "events_for",
    "grafana_url",
    "owner_kind",
    "pod_detail",
    "pod_gpus",
    "related",
    "related_section",
]

# --- pods -------------------------------------------------------------------------------------------------

_BAD_REASONS = ("CrashLoopBackOff", "OOMKilled", "Error", "ImagePullBackOff", "ErrImagePull", "Evicted")


def _age(created_at: float, now: float) -> str:
    return fmt_age(max(0.0, now - created_at)) if created_at else "-"


def pod_phase(p: Pod) -> Text:
    """``Running``, ``Pending``, or the kubelet's reason when it says more (``CrashLoopBackOff``)."""
    word = p.reason or str(p.phase)
    if p.reason in _BAD_REASONS or p.phase is PodPhase.FAILED:
        return Text(word, FAIL_STYLE)
    if p.phase is PodPhase.RUNNING and not p.reason:
        return Text(word, OK_STYLE if p.ready else WARN_STYLE)
    return Text(word, WARN_STYLE)


def _pod_restarts(p: Pod, _: RowCtx) -> Text:
    return Text(str(p.restarts), WARN_STYLE if p.restarts else "")


PODS = ResourceKind(
    name="pods",
    title="Pods",
    aliases=("pod", "po"),
    rows=lambda s: s.pods,
    key=lambda p: p.key,
    columns=(
        Column(
            "name",
            "NAMESPACE/NAME",
            22,
            lambda p, c: p.key,
            lambda p, c: p.key,
            flex=True,
            hotkey="N",
            qualified=True,
        ),
        Column(
            "owner", "OWNER", 18, lambda p, c: p.owner or "-", lambda p, c: p.owner, priority=3, hotkey="O"
        ),
        Column("node", "NODE", 12, lambda p, c: p.node or "-", lambda p, c: p.node, priority=2, hotkey="D"),
        Column(
            "gpus",
            "GPUs",
            4,
            lambda p, c: str(p.gpus),
            lambda p, c: p.gpus,
            justify="right",
            hotkey="G",
            descending=True,
        ),
        Column(
            "phase", "PHASE", 16, lambda p, c: pod_phase(p), lambda p, c: p.reason or str(p.phase), hotkey="P"
        ),
        Column(
            "restarts",
            "RESTARTS",
            8,
            _pod_restarts,
            lambda p, c: p.restarts,
            justify="right",
            hotkey="R",
            descending=True,
        ),
        Column(
            "age",
            "AGE",
            6,
            lambda p, c: _age(p.created_at, c.now),
            lambda p, c: -p.created_at,
            justify="right",
            hotkey="A",
        ),
    ),
    search_text=lambda p: f"{p.key} {p.owner} {p.node} {p.phase} {p.reason}".lower(),
    detail="pod",
    default_sort="name",
)


def pod_gpus(snap: FleetSnapshot, pod: Pod) -> list[Gpu]:
    """The GPUs allocated to ``pod``, by index."""
    return sorted((g for g in snap.gpus_by_node.get(pod.node, ()) if g.pod == pod.key), key=lambda g: g.index)


def owner_kind(snap: FleetSnapshot, owner: str) -> str:
    """``job`` or ``endpoint`` when ``owner`` (``namespace/name``) is one the console shows, else ""."""
    if owner in snap.job_by_key:
        return "job"
    if owner in snap.endpoint_by_key:
        return "endpoint"
    return ""


def find_pod(snap: FleetSnapshot, key: str) -> Pod | None:
    return next((p for p in snap.pods if p.key == key), None)


# --- events -----------------------------------------------------------------------------------------------


def event_rows(events: Sequence[Event]) -> list[Event]:
    """Warnings first, then newest first."""
    return sorted(events, key=lambda e: (not e.warning, -e.time))


def _event_type(e: Event, _: RowCtx) -> Text:
    return Text("Warning", WARN_STYLE) if e.warning else Text("Normal", DIM_STYLE)


def _event_message(e: Event, _: RowCtx) -> str:
    return f"{e.message} (×{e.count})" if e.count > 1 else e.message


def _event_object(e: Event, ctx: RowCtx) -> str:
    """``node gpu-a-0001``, ``gpu gpu-a-0001/gpu3`` (its place reads better than its uuid)."""
    if e.kind == "gpu" and (g := ctx.snapshot.gpu_by_uuid.get(e.key)) is not None:
        return f"gpu {g.node}/gpu{g.index}"
    return f"{e.kind} {e.key}"


def event_key(e: Event) -> str:
    return f"{e.kind}:{e.key}:{e.reason}:{e.time}"


EVENTS = ResourceKind(
    name="events",
    title="Events",
    aliases=("event", "ev"),
    rows=lambda s: event_rows(s.events),
    key=event_key,
    columns=(
        Column(
            "age",
            "AGE",
            5,
            lambda e, c: _age(e.time, c.now),
            lambda e, c: -e.time,
            justify="right",
            hotkey="A",
        ),
        Column("type", "TYPE", 7, _event_type, lambda e, c: not e.warning, hotkey="T"),
        Column("object", "OBJECT", 26, _event_object, lambda e, c: (e.kind, e.key), hotkey="O"),
        Column("reason", "REASON", 16, lambda e, c: e.reason, lambda e, c: e.reason, hotkey="R"),
        Column("message", "MESSAGE", 16, _event_message, None, flex=True),
    ),
    search_text=lambda e: (
        f"{e.kind} {e.key} {e.reason} {e.message} {'warning' if e.warning else 'normal'}".lower()
    ),
    detail="event",
)


def events_for(snap: FleetSnapshot, kind: str, key: str) -> list[Event]:
    """The events of one object (a node's include its GPUs'), warnings first, newest first."""
    keys = {key}
    if kind == "node":
        keys |= {g.uuid for g in snap.gpus_by_node.get(key, ())}
        keys |= {p.key for p in snap.pods_by_node.get(key, ())}
    return event_rows([e for e in snap.events if e.key in keys])


# --- related objects and the way there ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Related:
    """One object the detail screen lists under "Related": enter opens its detail."""

    kind: str
    """``node``, ``gpu``, ``pod``, ``job`` or ``endpoint``."""
    key: str
    label: Text


def _pod_line(p: Pod, prefix: str = "", *, node: bool = True) -> Text:
    out = Text(f"{prefix}pod {p.name}  ")
    out.append_text(pod_phase(p))
    where = f"  node {p.node or '-'}" if node else ""
    out.append(f"{where}  {p.gpus} GPU{'s' if p.gpus != 1 else ''}", DIM_STYLE)
    if p.restarts:
        out.append(f"  {p.restarts} restarts", WARN_STYLE)
    return out


def _gpu_line(g: Gpu) -> Text:
    out = Text(f"gpu {g.node}/gpu{g.index}  ")
    out.append(f"{g.util:.0f}% util" if isinstance(g.util, float) else "util N/A", DIM_STYLE)
    if g.xid:
        out.append(f"  XID {g.xid}", FAIL_STYLE)
    out.append(f"  pod {g.pod.partition('/')[2] or g.pod}" if g.pod else "  free", DIM_STYLE)
    return out


def _owner_line(snap: FleetSnapshot, owner: str) -> Related | None:
    kind = owner_kind(snap, owner)
    return Related(kind, owner, Text(f"{kind} {owner}")) if kind else None


def related(kind: str, key: str, snap: FleetSnapshot) -> list[Related]:
    """What one may open from an object, in the order one looks: an endpoint's replicas, a job's ranks in rank
    order, a pod's node, GPUs and owner, a node's GPU pods then its GPUs, a GPU's pod, owner and node."""
    out: list[Related] = []
    if kind in ("endpoint", "job"):
        pods = snap.pods_by_owner.get(key, ())
        if kind == "job":
            pods = tuple(sorted(pods, key=lambda p: (p.rank < 0, p.rank, p.name)))
        for p in pods:
            prefix = f"rank {p.rank}  " if kind == "job" and p.rank >= 0 else ""
            out.append(Related("pod", p.key, _pod_line(p, prefix)))
    elif kind == "pod":
        pod = find_pod(snap, key)
        if pod is None:
            return out
        if pod.node:
            out.append(Related("node", pod.node, Text(f"node {pod.node}")))
        out += [Related("gpu", g.uuid, _gpu_line(g)) for g in pod_gpus(snap, pod)]
        if (owner := _owner_line(snap, pod.owner)) is not None:
            out.append(owner)
    elif kind == "node":
        here = sorted(snap.pods_by_node.get(key, ()), key=lambda p: (-p.gpus, p.key))
        out += [Related("pod", p.key, _pod_line(p, node=False)) for p in here if p.gpus]
        out += [Related("gpu", g.uuid, _gpu_line(g)) for g in snap.gpus_by_node.get(key, ())]
        out += [Related("pod", p.key, _pod_line(p, node=False)) for p in here if not p.gpus]
    elif kind == "gpu":
        gpu = snap.gpu_by_uuid.get(key)
        if gpu is None:
            return out
        pod = find_pod(snap, gpu.pod) if gpu.pod else None
        if pod is not None:
            out.append(Related("pod", pod.key, _pod_line(pod)))
            if (owner := _owner_line(snap, pod.owner)) is not None:
                out.append(owner)
        out.append(Related("node", gpu.node, Text(f"node {gpu.node}")))
    return out


def crumb(kind: str, key: str, snap: FleetSnapshot | None = None) -> str:
    """One step of the breadcrumb: ``ml-prod/chat``, ``pod chat-7f9c-x2``, ``node gpu-a-0001``, ``gpu
    gpu-a-0001/gpu3``."""
    if kind in ("endpoint", "job"):
        return key
    if kind == "pod":
        return f"pod {key.partition('/')[2] or key}"
    if kind == "gpu" and snap is not None and (g := snap.gpu_by_uuid.get(key)) is not None:
        return f"gpu {g.node}/gpu{g.index}"
    return f"{kind} {key}"


def breadcrumb(trail: Sequence[str], width: int, *, ascii: bool = False) -> Text:
    """``Endpoints › ml-prod/chat › pod chat-7f… › node gpu-a-0001``, cut from the left to ``width``."""
    sep = " > " if ascii else " › "
    line = sep.join(trail)
    if len(line) > width > 1:
        line = ("..." if ascii else "…") + line[len(line) - width + (3 if ascii else 1) :]
    return Text(line, "bold")


def related_section(rows: Sequence[Related]) -> Text:
    """The heading above the related list (the list itself is a widget, so the cursor can move in it)."""
    if not rows:
        return Text("Related: none", DIM_STYLE)
    return Text.assemble(("Related", "bold underline"), (f" — {len(rows)}; enter opens one", DIM_STYLE))


def events_section(events: Sequence[Event], now: float, limit: int = 8) -> RenderableType:
    """An object's own events, for its detail screen."""
    if not events:
        return Text("Events: none recently", DIM_STYLE)
    t = Table.grid(padding=(0, 2))
    for e in events[:limit]:
        t.add_row(
            _age(e.time, now),
            Text("Warning", WARN_STYLE) if e.warning else Text("Normal", DIM_STYLE),
            e.reason,
            _event_message(e, RowCtx(FleetSnapshot(0.0), now)),
        )
    more = f" ({len(events) - limit} more in :events)" if len(events) > limit else ""
    return Group(Text.assemble(("Events", "bold underline"), (more, DIM_STYLE)), t)


# --- a pod, described ---------------------------------------------------------------------------------------


def pod_detail(pod: Pod, snap: FleetSnapshot, now: float) -> RenderableType:
    gpus = pod_gpus(snap, pod)
    okind = owner_kind(snap, pod.owner)
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    rows: list[tuple[str, Text | str]] = [
        ("Phase", pod_phase(pod)),
        ("Ready", "yes" if pod.ready else "no"),
        ("Node", pod.node or "not scheduled"),
        ("Owner", f"{pod.owner_kind or okind or '-'} {pod.owner}".strip()),
        ("GPUs", f"{pod.gpus}" + (": " + ", ".join(f"gpu{g.index}" for g in gpus) if gpus else "")),
        ("Restarts", str(pod.restarts)),
        ("Age", _age(pod.created_at, now)),
        ("Containers", ", ".join(pod.containers) or "-"),
        ("Source", pod.source or "-"),
    ]
    if pod.rank >= 0:
        rows.insert(4, ("Rank", str(pod.rank)))
    for label, value in rows:
        t.add_row(label, value)
    title = Text.assemble((f"Pod {pod.key}", "bold underline"))
    return Group(title, t, Text(""), events_section(events_for(snap, "pod", pod.key), now))


def describe(kind: str, key: str, snap: FleetSnapshot, now: float) -> str:
    """A ``kubectl describe``-style text of one object: what it is, where, its state and what it needs, what
    it runs or serves, and its events, warnings first."""
    rows = _describe_rows(kind, key, snap, now)
    if rows is None:
        return f"{kind} {key} is no longer in the fleet."
    lines = [f"{label + ':':<16}{value}" if label else f"{'':<16}{value}" for label, value in rows]
    events = events_for(snap, kind, key)
    lines += ["Events:" if events else f"{'Events:':<16}<none>"]
    lines += [
        f"  {'Warning' if e.warning else 'Normal':8} {e.reason:16} {_age(e.time, now):>5} ago  {e.message}"
        for e in events
    ]
    return "\n".join(lines)


def _rate(fraction: Metric) -> str:
    return "N/A" if is_na(fraction) else f"{float(fraction) * 100:.2f}%"


def _ago(t: float, now: float) -> str:
    return f"{fmt_age(max(0.0, now - t))} ago" if t else "-"


def _describe_rows(kind: str, key: str, snap: FleetSnapshot, now: float) -> list[tuple[str, str]] | None:
    rows: list[tuple[str, str]] = []
    if kind == "node":
        n = snap.node_by_name.get(key)
        if n is None:
            return None
        rows += [("Name", n.name), ("Source", n.source), ("Pool", n.pool or "-"), ("Zone", n.zone or "-")]
        rows += [("Instance type", n.instance_type or "-"), ("Provider ID", n.provider_id or "-")]
        status = n.status + (f" (by {n.cordoned_by})" if n.cordoned and n.cordoned_by else "")
        rows += [("Status", status)]
        verdict = snap.verdicts.get(n.name)
        if verdict is not None:
            rows += [("Verdict", f"{verdict.word}: " + "; ".join(f.describe(now) for f in verdict.findings))]
        if n.gpu_model:
            gpus = f"{n.gpus_allocatable} × {n.gpu_model}, {n.gpus_requested} requested{shared_gpus_text(n)}"
            rows += [("GPUs", f"{gpus}, {n.gpus_free} free")]
            if sharing := gpu_sharing_text(n):
                rows += [("GPU sharing", sharing)]
        rows += [("CPU requested", cpu_requested_text(n)), ("Mem requested", memory_requested_text(n))]
        rows += [("Taints", ", ".join(map(str, n.taints)) or "<none>")]
        for i, c in enumerate(n.conditions):
            rows += [("Conditions" if i == 0 else "", f"{c.type}={c.status} {c.reason} {c.message}".rstrip())]
        pods = snap.pods_by_node.get(n.name, ())
        rows += [("Pods", f"{len(pods)} ({sum(1 for p in pods if p.gpus)} with GPUs)")]
        for i, (k, v) in enumerate(sorted(n.labels.items())):
            rows += [("Labels" if i == 0 else "", f"{k}={v}")]
    elif kind == "pod":
        p = find_pod(snap, key)
        if p is None:
            return None
        rows += [("Name", p.name), ("Namespace", p.namespace), ("Node", p.node or "<none>")]
        rows += [("Status", f"{p.phase}" + (f" ({p.reason})" if p.reason else "")), ("Ready", str(p.ready))]
        rows += [("Restarts", str(p.restarts)), ("Created", _ago(p.created_at, now))]
        rows += [("Controlled By", f"{p.owner_kind} {p.owner}".strip() or "<none>")]
        if p.rank >= 0:
            rows += [("Rank", str(p.rank))]
        held = [g for g in snap.gpus_by_node.get(p.node, ()) if g.pod == p.key]
        rows += [("GPUs", f"{p.gpus}" + (f" ({', '.join(f'gpu{g.index}' for g in held)})" if held else ""))]
        rows += [("Containers", ", ".join(p.containers) or "-")]
    elif kind == "gpu":
        g = snap.gpu_by_uuid.get(key)
        if g is None:
            return None
        rows += [("UUID", g.uuid), ("Node", f"{g.node} (GPU {g.index})"), ("Model", g.model)]
        rows += [("Pod", g.pod or "<none>")]
        rows += [
            ("Util", fmt(g.util, ".0f", "%")),
            ("Memory", f"{fmt_mib(g.mem_used)} / {fmt_mib(g.mem_total)}"),
        ]
        rows += [("Temperature", fmt(g.temp, ".0f", "°C")), ("Power", fmt(g.power, ".0f", " W"))]
        if g.xid:
            info = xid_info(g.xid)
            when = f", {_ago(g.xid_at, now)}" if g.xid_at else ""
            rows += [("XID", f"{g.xid} {info.meaning}{when}"), ("Do now", info.action.words)]
            rows += [("Then check", info.investigate)]
        rows += [("ECC", f"{g.ecc_uncorrected} uncorrectable, {g.ecc_corrected} corrected")]
        if g.recovery_action:
            rows += [("Recovery", g.recovery_action)]
        remap = "failed" if g.remap_failed else "pending" if g.remap_pending else "none"
        rows += [("Row remap", remap), ("NVLink errors", str(g.nvlink_errors))]
        if g.throttle.is_problem:
            rows += [("Throttling", g.throttle.problem.describe())]
    elif kind == "job":
        j = snap.job_by_key.get(key)
        if j is None:
            return None
        rows += [("Name", j.name), ("Namespace", j.namespace), ("Source", j.source)]
        state = str(j.state) + (f" (#{j.queue_position} in queue {j.queue})" if j.queue_position else "")
        rows += [("State", state)]
        rows += [("Gang", f"{j.workers} × {j.gpus_per_worker} {j.gpu_model or 'GPUs'} = {j.gpus} GPUs")]
        rows += [("Priority", str(j.priority)), ("Image", j.image or "-"), ("User", j.user or "-")]
        rows += [("Submitted", _ago(j.submitted_at, now)), ("Started", _ago(j.started_at, now))]
        rows += [("Backoff limit", str(j.backoff_limit)), ("Restart policy", j.restart_policy)]
        if j.pending_reason:
            rows += [("Reason", j.pending_reason)]
        ranks = sorted(snap.pods_by_owner.get(j.key, ()), key=lambda p: p.rank)
        for i, p in enumerate(ranks):
            rows += [("Ranks" if i == 0 else "", f"{p.rank}: {p.name} on {p.node or '<none>'} ({p.phase})")]
    elif kind == "endpoint":
        e = snap.endpoint_by_key.get(key)
        if e is None:
            return None
        rows += [("Name", e.name), ("Namespace", e.namespace), ("Source", e.source)]
        rows += [("Kind", e.workload_kind), ("Model", f"{e.model or '-'} on {e.server or '-'}")]
        rows += [("Image", e.image or "-")]
        strategy = e.strategy + (
            f" (maxSurge {e.max_surge}, maxUnavailable {e.max_unavailable})"
            if e.strategy == "RollingUpdate"
            else ""
        )
        rows += [("Strategy", strategy)]
        rows += [("Replicas", f"{e.replicas_ready}/{e.replicas_desired} ready")]
        rows += [("GPUs", f"{e.gpus_per_replica} × {e.gpu_model or 'GPU'} per replica, {e.gpus} in all")]
        rows += [("QPS", fmt(e.qps, ".1f"))]
        p99 = fmt(e.p99_ms, ".0f", " ms") + (
            f" (objective {fmt(e.p99_slo_ms, '.0f', ' ms')})" if not is_na(e.p99_slo_ms) else ""
        )
        err = _rate(e.error_rate) + (f" (objective {_rate(e.error_slo)})" if not is_na(e.error_slo) else "")
        rows += [("p50 / p99", f"{fmt(e.p50_ms, '.0f', ' ms')} / {p99}"), ("Errors", err)]
        since = snap.slo_breached_since.get(e.key)
        if since is not None:
            rows += [("SLO", f"breached for {fmt_age(max(0.0, now - since))}")]
        if e.hpa is not None:
            h = e.hpa
            rows += [
                (
                    "Autoscaler",
                    f"{h.name}: {h.min_replicas}–{h.max_replicas} on {h.metric}, target {h.target:g}",
                )
            ]
        pdb = snap.pdb_by_owner.get(e.key)
        if pdb is not None:
            rows += [("Disruption", f"PDB {pdb.name}: {pdb.disruptions_allowed} disruptions allowed now")]
    else:
        return None
    return rows


# --- Grafana ------------------------------------------------------------------------------------------------


def grafana_url(settings: GrafanaSettings, kind: str, obj: object) -> str:
    """The dashboard URL of a node, GPU or endpoint, from ``[grafana]``; "" when none is configured."""
    template = {"node": settings.node, "gpu": settings.gpu, "endpoint": settings.endpoint}.get(kind, "")
    if not settings.url or not template:
        return ""
    values: dict[str, str] = {}
    if isinstance(obj, Node):
        values = {"node": obj.name}
    elif isinstance(obj, Gpu):
        values = {"node": obj.node, "gpu": obj.uuid, "index": str(obj.index)}
    elif isinstance(obj, Endpoint):
        values = {"namespace": obj.namespace, "name": obj.name}
    quoted = {k: urllib.parse.quote(v, safe="") for k, v in values.items()}
    try:
        path = template.format(**quoted)
    except (KeyError, IndexError, ValueError):
        return ""  # a placeholder this kind has no value for: no link rather than a wrong one
    if path.startswith(("http://", "https://")):
        return path
    return settings.url.rstrip("/") + "/" + path.lstrip("/")


def grafana_line(url: str) -> Text:
    """The link as an OSC 8 hyperlink (where the terminal supports it) that also reads as the URL."""
    return Text.assemble(("Grafana  ", "bold"), (url, Style(link=url, underline=True)))
