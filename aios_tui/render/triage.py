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
from aios_tui.domain import Endpoint, Event, FleetSnapshot, Gpu, Job, Node, Pod, PodPhase, fmt_age
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE
from aios_tui.render.table import Column, ResourceKind, RowCtx

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
        Column("name", "NAMESPACE/NAME", 22, lambda p, c: p.key, lambda p, c: p.key, flex=True, hotkey="N"),
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
    """A ``kubectl describe``-style text of one object: what it is, its state, and its events."""
    lines: list[str] = []
    obj: Node | Gpu | Job | Endpoint | Pod | None
    if kind == "node" and (obj := snap.node_by_name.get(key)) is not None:
        lines += [
            f"Name:          {obj.name}",
            f"Ready:         {obj.ready}",
            f"Cordoned:      {obj.cordoned}",
        ]
        lines += [f"Labels:        {k}={v}" for k, v in sorted(obj.labels.items())]
        lines += [f"Condition:     {c.type}={c.status} {c.reason}".rstrip() for c in obj.conditions]
    elif kind == "pod" and (obj := find_pod(snap, key)) is not None:
        lines += [
            f"Name:          {obj.name}",
            f"Namespace:     {obj.namespace}",
            f"Node:          {obj.node}",
        ]
        lines += [f"Status:        {obj.reason or obj.phase}", f"Restarts:      {obj.restarts}"]
        lines += [
            f"Controlled By: {obj.owner_kind} {obj.owner}",
            f"Containers:    {', '.join(obj.containers)}",
        ]
    elif kind == "gpu" and (obj := snap.gpu_by_uuid.get(key)) is not None:
        lines += [f"UUID:          {obj.uuid}", f"Node:          {obj.node}", f"Index:         {obj.index}"]
        lines += [
            f"Model:         {obj.model}",
            f"Pod:           {obj.pod or '-'}",
            f"XID:           {obj.xid}",
        ]
    elif kind == "job" and (obj := snap.job_by_key.get(key)) is not None:
        lines += [
            f"Name:          {obj.name}",
            f"Namespace:     {obj.namespace}",
            f"State:         {obj.state}",
        ]
        lines += [f"Workers:       {obj.workers} × {obj.gpus_per_worker} GPUs"]
    elif kind == "endpoint" and (obj := snap.endpoint_by_key.get(key)) is not None:
        lines += [
            f"Name:          {obj.name}",
            f"Namespace:     {obj.namespace}",
            f"Model:         {obj.model}",
        ]
        lines += [f"Replicas:      {obj.replicas_ready}/{obj.replicas_desired} ready"]
    else:
        return f"{kind} {key} is no longer in the fleet."
    events = events_for(snap, kind, key)
    lines += ["Events:" if events else "Events:        <none>"]
    lines += [
        f"  {'Warning' if e.warning else 'Normal':8} {e.reason:16} {_age(e.time, now):>5} ago  {e.message}"
        for e in events
    ]
    return "\n".join(lines)


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
