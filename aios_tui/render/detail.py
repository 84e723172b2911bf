"""Detail views: everything known about one node, GPU, job or endpoint, with history sparklines.

Pure: the object, the snapshot and a history look-up in, a rich renderable out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from aios_tui.alloc.drain import job_fate
from aios_tui.alloc.whatif import why_pending
from aios_tui.domain import (
    NA,
    Condition,
    Endpoint,
    FleetSnapshot,
    Gpu,
    Job,
    JobState,
    Metric,
    Node,
    fmt,
    fmt_age,
    fmt_mib,
    fmt_money,
    is_na,
)
from aios_tui.domain.health import Need
from aios_tui.domain.xid import xid_info
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, WARN_STYLE, heat_cells, sparkline
from aios_tui.render.table import (
    GPUS,
    RowCtx,
    cpu_requested_text,
    gpu_sharing_text,
    health_cell,
    layout,
    memory_requested_text,
    node_stats,
    pct_cell,
    render_header,
    render_row,
    shared_gpus_text,
    temp_cell,
)
from aios_tui.render.views import NEED_STYLE

History = Callable[[str, str, str], Sequence[float]]
"""(kind, key, metric) → values, oldest first; NaN where there was no reading."""


def _fields(rows: Sequence[tuple[str, Text | str]]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    for label, value in rows:
        t.add_row(label, value)
    return t


SparkRow = (
    tuple[str, Sequence[float], Callable[[float], str]]
    | tuple[str, Sequence[float], Callable[[float], str], Metric]
)
"""(label, values, format of one value[, the top of a fixed scale: a memory total; NA when unknown])."""
_FIXED_SCALE = {"Util": 100.0, "Mean util": 100.0, "Memory %": 100.0, "Errors": 1.0}
"""Percentages and fractions are drawn on their whole range (a 1 %-busy GPU near the bottom); the other
rows on 0..their greatest value."""


def _time_axis(values: Sequence[float], width: int) -> str:
    """``−4m … now`` under the chart, from the number of points drawn and the series' ``step`` (seconds
    apart; a poller's series carries it); "" when the step is unknown or the chart too narrow."""
    step = float(getattr(values, "step", 0.0) or 0.0)
    n = min(len(values), width)
    if step <= 0 or n < 2:
        return ""
    start = f"−{fmt_age((n - 1) * step)}"
    if n < len(start) + 5:
        return "now".rjust(width)
    return (start + " " * (n - len(start) - 3) + "now").rjust(width)


def _sparks(rows: Sequence[SparkRow], width: int, ascii: bool) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True, width=12)
    t.add_column(no_wrap=True)
    t.add_column(no_wrap=True, justify="right")
    axis = ""
    for row in rows:
        label, values, fmt_last = row[0], row[1], row[2]
        top = row[3] if len(row) == 4 else NA
        hi = _FIXED_SCALE.get(label) if is_na(top) else float(top)
        finite = [v for v in values if not math.isnan(v)]
        last = fmt_last(finite[-1]) if finite else "N/A"
        span = f"  min {fmt_last(min(finite))} max {fmt_last(max(finite))}" if finite else ""
        chart = sparkline(values, width, ascii=ascii, lo=0.0 if hi else None, hi=hi or None)
        t.add_row(label, Text(chart, "cyan"), last + span)
        axis = axis or _time_axis(values, width)
    if axis:
        t.add_row("", Text(axis.replace("−", "-") if ascii else axis, DIM_STYLE), "")
    return t


def _title(text: str, sub: str = "") -> Text:
    return Text.assemble((text, "bold underline"), (" — " + sub if sub else "", DIM_STYLE))


def _cloud_line(n: Node, now: float) -> list[tuple[str, str]]:
    """``Cloud  running, launched 3h ago`` when a cloud source told."""
    parts = [n.instance_state] if n.instance_state else []
    if not is_na(n.launched_at):
        parts.append(f"launched {fmt_age(max(0.0, now - float(n.launched_at)))} ago")
    return [("Cloud", ", ".join(parts))] if parts else []


def _node_status_text(n: Node, now: float) -> Text:
    if n.lost_since:
        return Text(f"lost: not reported for {fmt_age(now - n.lost_since)} (last readings shown)", FAIL_STYLE)
    return Text(n.status, FAIL_STYLE if not n.ready else WARN_STYLE if n.cordoned else "green")


def _gpu_problems(snap: FleetSnapshot, node: str) -> list[str]:
    return [f"gpu{g.index} {p}" for g in snap.gpus_by_node.get(node, ()) for p in g.problems]


def _power(g: Gpu) -> str:
    """``690 W of 700 W limit``; ``690 W`` when the limit is unknown (not ``of N/A W``)."""
    if is_na(g.power):
        return "N/A"
    limit = "" if is_na(g.power_limit) else f" of {fmt(g.power_limit)} W limit"
    return f"{fmt(g.power)} W{limit}"


def _memory(g: Gpu) -> str:
    if is_na(g.mem_used):
        return "N/A"
    if is_na(g.mem_total):
        return fmt_mib(g.mem_used)
    return f"{fmt_mib(g.mem_used)} of {fmt_mib(g.mem_total)} ({fmt(g.mem_pct)}%)"


def _clock(g: Gpu) -> str:
    if is_na(g.sm_clock):
        return "N/A"
    return f"{fmt(g.sm_clock)} MHz" + ("" if is_na(g.sm_clock_max) else f" of {fmt(g.sm_clock_max)} MHz")


def _processes(g: Gpu) -> Text | str:
    if not g.processes:
        return "none listed" if g.measured else Text("not known (the source does not list them)", DIM_STYLE)
    shown = [f"{p.pid} {p.user or '?'} {fmt_mib(p.used_mib)} {p.command}".rstrip() for p in g.processes[:6]]
    more = f" … +{len(g.processes) - 6}" if len(g.processes) > 6 else ""
    return "; ".join(shown) + more


def _condition(c: Condition) -> str:
    """``Ready=False (KubeletNotReady: PLEG is not healthy)``: the message only where the condition is bad
    (Ready not True, a pressure or other condition True), where it says what is wrong."""
    bad = (c.status != "True") if c.type == "Ready" else (c.status == "True")
    why = ": ".join(part for part in (c.reason, c.message if bad else "") if part)
    return f"{c.type}={c.status}" + (f" ({why})" if why else "")


def _verdict_lines(snap: FleetSnapshot, node: str, now: float) -> list[tuple[str, Text | str]]:
    """The node's verdict, why, what draining it hits and who cordoned it (:attr:`FleetSnapshot.verdicts`)."""
    v = snap.verdicts.get(node)
    if v is None:
        return [("Verdict", Text("healthy", NEED_STYLE[Need.HEALTHY]))]
    out: list[tuple[str, Text | str]] = [
        ("Verdict", Text.assemble((v.word, f"bold {NEED_STYLE[v.need]}"), f": {v.need.remedy}")),
        ("Why", Text(v.why(now), NEED_STYLE[v.need] if v.need >= Need.DRAIN else "")),
        ("Hits", ", ".join(v.hits) or Text("no job, endpoint or GPU pod", DIM_STYLE)),
    ]
    if v.cordoned:
        out.append(("Cordoned by", v.cordoned_by or Text("unknown", DIM_STYLE)))
    return out


def _gpu_guidance(g: Gpu, now: float, prefix: str = "") -> list[tuple[str, Text | str]]:
    """Per problem: what the XID means and NVIDIA's immediate and investigatory actions, the driver's
    recovery action, the row remapper's state, NVLink errors. Empty for a GPU without any of them."""
    out: list[tuple[str, Text | str]] = []
    if g.xid:
        info = xid_info(g.xid)
        when = f", {fmt_age(max(0.0, now - g.xid_at))} ago" if g.xid_at > 0 else ", time unknown"
        name = f" ({info.mnemonic})" if info.mnemonic else ""
        out.append((f"{prefix}XID {g.xid}", Text(f"{info.meaning}{name}{when}", "bold")))
        out.append((f"{prefix}  do now", info.action.words))
        out.append((f"{prefix}  then check", info.investigate))
    if g.recovery_action:
        words = g.recovery_action.replace("_", " ")
        out.append(
            (f"{prefix}Recovery action", Text(words, "" if g.recovery_action == "none" else FAIL_STYLE))
        )
    if g.remap_failed:
        out.append((f"{prefix}Row remap", Text("failed: replace the GPU (RMA)", FAIL_STYLE)))
    elif g.remap_pending:
        out.append((f"{prefix}Row remap", Text("pending: applied at the next GPU reset", WARN_STYLE)))
    if g.nvlink_errors:
        out.append((f"{prefix}NVLink errors", Text(f"{g.nvlink_errors:,}", WARN_STYLE)))
    return out


def _requested(text: str, requested: int, allocatable: int) -> Text:
    """What a node's pods request of its CPU or memory: dim when unknown, a warning when they request all."""
    style = DIM_STYLE if not allocatable else WARN_STYLE if requested >= allocatable else ""
    return Text(text, style)


def node_detail(
    n: Node, snap: FleetSnapshot, now: float, history: History, width: int, ascii: bool
) -> RenderableType:
    stats = node_stats(snap, n.name)
    gpus = snap.gpus_by_node.get(n.name, ())
    conditions = ", ".join(_condition(c) for c in n.conditions) or "none reported"
    fields = _fields(
        [
            ("Status", _node_status_text(n, now)),
            # The worst of the node's own health and its GPUs', as in the Nodes pane and the health view.
            ("Health", health_cell(snap.health_of(n.name), _gpu_problems(snap, n.name))),
            *_verdict_lines(snap, n.name, now),
            *(
                line
                for g in gpus
                if g.xid or g.remap_pending or g.remap_failed
                for line in _gpu_guidance(g, now, f"gpu{g.index} ")
            ),
            (
                "Pool / zone",
                f"{n.pool or 'no pool'} / {n.zone or 'no zone'}" + (f" / rack {n.rack}" if n.rack else ""),
            ),
            ("Instance", f"{n.instance_type}  {n.provider_id}".strip()),
            (
                "GPUs",
                f"{n.gpus_requested} requested by its pods; capacity unknown (the node could not be read)"
                if not n.gpus_total and n.gpus_requested
                else f"{n.gpus_requested} of {n.gpus_allocatable} allocatable requested"
                + shared_gpus_text(n)
                + f" ({n.gpus_total} × {n.gpu_model or 'none'})",
            ),
            *([("GPU sharing", sharing)] if (sharing := gpu_sharing_text(n)) else []),
            (
                "Requested",
                Text.assemble(
                    "CPU ",
                    _requested(cpu_requested_text(n), n.cpu_requested, n.cpu_allocatable),
                    ", memory ",
                    _requested(memory_requested_text(n), n.memory_requested, n.memory_allocatable),
                ),
            ),
            ("Price", fmt_money(n.price_per_hour) + (f" ({n.lifecycle})" if n.lifecycle else "")),
            *_cloud_line(n, now),
            ("Conditions", conditions),
            ("Taints", ", ".join(str(t) for t in n.taints) or "none"),
            ("Cluster", n.cluster or n.source),
        ]
    )
    spark_w = max(10, min(60, width - 40))
    sparks = _sparks([("Mean util", history("node", n.name, "util"), lambda v: f"{v:.0f}%")], spark_w, ascii)
    # The GPU rows are the GPUs pane's own columns, without the node they all share.
    cols = layout([c for c in GPUS.columns if c.key not in ("node", "model")], max(40, width - 2))
    ctx = RowCtx(snap, now, ascii)
    header = render_header(cols, "", False, ascii=ascii)
    header.stylize("bold")
    gt = Group(header, *(render_row(cols, g, ctx) for g in gpus))
    pods = snap.pods_by_node.get(n.name, ())
    pod_list = Text(
        ", ".join(p.key for p in pods[:12]) + (f" … +{len(pods) - 12}" if len(pods) > 12 else ""), DIM_STYLE
    )
    return Group(
        _title(
            f"Node {n.name}",
            "  ".join(
                f"{label} {fmt(value)}{unit}".strip()
                for label, value, unit in (
                    ("util", stats.util, "%"),
                    ("max", stats.temp_max, "°C"),
                    ("", stats.power, "W"),
                )
                if not is_na(value)
            ).strip(),
        ),
        Text(""),
        fields,
        Text(""),
        sparks,
        Text(""),
        Text.assemble(("GPUs ", "bold"), heat_cells(gpus, ascii=ascii)),
        gt,
        Text(""),
        Text(f"Pods ({len(pods)})", "bold"),
        pod_list,
    )


def gpu_detail(
    g: Gpu, snap: FleetSnapshot, now: float, history: History, width: int, ascii: bool
) -> RenderableType:
    fields = _fields(
        [
            ("Node / index", f"{g.node} / {g.index}"),
            ("UUID", g.uuid),
            ("Model", g.model),
            ("Health", health_cell(g.health, g.problems)),
            *_gpu_guidance(g, now),
            ("Utilisation", pct_cell(g.util)),
            ("Memory", _memory(g)),
            ("Temperature", temp_cell(g.temp)),
            ("Power", _power(g)),
            ("SM clock", _clock(g)),
            ("Throttling", Text(g.throttle.describe(), WARN_STYLE if g.throttle.is_problem else "")),
            (
                "XID / ECC",
                Text(
                    f"last XID {g.xid or 'none'}, {g.ecc_uncorrected} uncorrectable, "
                    f"{g.ecc_corrected} corrected",
                    FAIL_STYLE if g.health == 2 else "",
                ),
            ),
            ("Pod", g.pod or Text("free", DIM_STYLE)),
            ("Processes", _processes(g)),
            *(
                [
                    (
                        "Reading",
                        Text(
                            f"lost {fmt_age(now - g.lost_since)} ago: these are its last values", FAIL_STYLE
                        ),
                    )
                ]
                if g.lost_since
                else []
            ),
        ]
    )
    spark_w = max(10, min(60, width - 40))
    sparks = _sparks(
        [
            ("Util", history("gpu", g.uuid, "util"), lambda v: f"{v:.0f}%"),
            ("Memory", history("gpu", g.uuid, "mem_used"), fmt_mib, g.mem_total),
            ("Temp", history("gpu", g.uuid, "temp"), lambda v: f"{v:.0f}°C"),
            ("Power", history("gpu", g.uuid, "power"), lambda v: f"{v:.0f}W"),
        ],
        spark_w,
        ascii,
    )
    return Group(_title(f"GPU {g.node}/{g.index}", g.model), Text(""), fields, Text(""), sparks)


def job_detail(
    j: Job, snap: FleetSnapshot, now: float, history: History, width: int, ascii: bool
) -> RenderableType:
    state_style = {JobState.FAILED: FAIL_STYLE, JobState.QUEUED: WARN_STYLE}.get(j.state, "green")
    rows: list[tuple[str, Text | str]] = [
        (
            "State",
            Text(
                j.state.value + (f" (#{j.queue_position} in queue)" if j.queue_position else ""), state_style
            ),
        ),
        (
            "Gang",
            f"{j.workers} workers × {j.gpus_per_worker} {j.gpu_model or 'any'} GPUs = {j.gpus} GPUs, "
            "all or nothing",
        ),
        ("Priority / queue", f"{j.priority} / {j.queue or 'default'}"),
        # What its controller does when a node under it is drained or lost (alloc.drain.job_fate).
        ("If a rank is evicted", job_fate(j, 1).text),
        ("Image", j.image or "N/A"),
        ("User", j.user or "N/A"),
        ("Submitted", fmt_age(now - j.submitted_at) + " ago" if j.submitted_at else "N/A"),
        ("Running for", fmt_age(now - j.started_at) if j.started_at and not j.finished_at else "-"),
        ("Progress", "N/A" if is_na(j.progress) else f"{float(j.progress) * 100:.1f}%"),
    ]
    if j.state is JobState.QUEUED:
        rows.append(("Why pending", Text(why_pending(snap, j), WARN_STYLE)))
        if j.pending_reason:  # the scheduler's own words (FailedScheduling), beside the plan's reading
            rows.append(("Scheduler says", j.pending_reason))
    elif j.pending_reason:
        rows.append(("Reason", Text(j.pending_reason, FAIL_STYLE)))
    ranks = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("RANK", "POD", "NODE", "GPU UTIL"):
        ranks.add_column(col, no_wrap=True)
    pods = sorted(snap.pods_by_owner.get(j.key, ()), key=lambda p: p.rank)
    for p in pods:
        gpus = [g for g in snap.gpus_by_node.get(p.node, ()) if g.pod == p.key]
        ranks.add_row(
            str(p.rank), p.name, p.node or Text(p.phase.value, WARN_STYLE), heat_cells(gpus, ascii=ascii)
        )
    placed: Table | Text = ranks
    if not pods and j.state is JobState.QUEUED:
        placed = Text(f"Not placed: all {j.workers} ranks wait until the whole gang fits.", DIM_STYLE)
    return Group(
        _title(f"Job {j.key}", j.state.value),
        Text(""),
        _fields(rows),
        Text(""),
        Text(f"Ranks ({len(pods)})", "bold"),
        placed,
    )


def endpoint_detail(
    e: Endpoint, snap: FleetSnapshot, now: float, history: History, width: int, ascii: bool
) -> RenderableType:
    hpa = (
        "none"
        if e.hpa is None
        else (
            f"{e.hpa.name}: min {e.hpa.min_replicas}, max {e.hpa.max_replicas}, target {e.hpa.metric} "
            f"{e.hpa.target:g}, now {fmt(e.hpa.current, '.1f')}"
        )
    )
    fields = _fields(
        [
            ("Model / server", " on ".join(x for x in (e.model, e.server) if x) or "N/A"),
            ("Image", e.image or "N/A"),
            (
                "Replicas",
                Text(
                    f"{e.replicas_ready} ready of {e.replicas_desired} desired",
                    WARN_STYLE if e.replicas_ready < e.replicas_desired else "",
                ),
            ),
            ("GPUs", f"{e.gpus_per_replica} × {e.gpu_model or 'GPU'} per replica, {e.gpus} in all"),
            ("Autoscaler", hpa),
            ("p99 objective", fmt(e.p99_slo_ms, ".0f", " ms")),
        ]
    )
    spark_w = max(10, min(60, width - 40))
    sparks = _sparks(
        [
            ("QPS", history("endpoint", e.key, "qps"), lambda v: f"{v:.1f}"),
            ("p50", history("endpoint", e.key, "p50_ms"), lambda v: f"{v:.0f}ms"),
            ("p99", history("endpoint", e.key, "p99_ms"), lambda v: f"{v:.0f}ms"),
            ("Errors", history("endpoint", e.key, "error_rate"), lambda v: f"{v * 100:.2f}%"),
            ("Ready", history("endpoint", e.key, "replicas_ready"), lambda v: f"{v:.0f}"),
        ],
        spark_w,
        ascii,
    )
    pods = snap.pods_by_owner.get(e.key, ())
    reps = Table(box=None, padding=(0, 1), header_style="bold")
    for col in ("POD", "PHASE", "READY", "NODE"):
        reps.add_column(col, no_wrap=True)
    for p in pods:
        reps.add_row(p.name, p.phase.value, "yes" if p.ready else Text("no", WARN_STYLE), p.node or "-")
    return Group(
        _title(f"Endpoint {e.key}", e.model),
        Text(""),
        fields,
        Text(""),
        sparks,
        Text(""),
        Text(f"Replicas ({len(pods)})", "bold"),
        reps,
    )


def find(kind: str, key: str, snap: FleetSnapshot) -> Node | Gpu | Job | Endpoint | None:
    if kind in ("node", "nodes"):
        return snap.node_by_name.get(key)
    if kind in ("gpu", "gpus"):
        return snap.gpu_by_uuid.get(key)
    if kind in ("job", "jobs"):
        return snap.job_by_key.get(key)
    if kind in ("endpoint", "endpoints"):
        return snap.endpoint_by_key.get(key)
    return None


def detail(
    kind: str,
    key: str,
    snap: FleetSnapshot,
    now: float,
    history: History,
    *,
    width: int = 100,
    ascii: bool = False,
) -> RenderableType:
    obj = find(kind, key, snap)
    if isinstance(obj, Node):
        return node_detail(obj, snap, now, history, width, ascii)
    if isinstance(obj, Gpu):
        return gpu_detail(obj, snap, now, history, width, ascii)
    if isinstance(obj, Job):
        return job_detail(obj, snap, now, history, width, ascii)
    if isinstance(obj, Endpoint):
        return endpoint_detail(obj, snap, now, history, width, ascii)
    return Text(f"{kind} {key} is no longer in the fleet.", WARN_STYLE)
