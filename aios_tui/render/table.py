"""Declared columns and the one registry of resource kinds (nodes, GPUs, jobs, endpoints).

A row is a pure function of a domain object and a :class:`RowCtx`; nothing here does I/O or knows about
Textual. The UI's table asks this module for the rows of a snapshot, filters and sorts them here, and
renders only the rows on screen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Literal

from rich.cells import cell_len
from rich.control import strip_control_codes
from rich.text import Span, Text

from aios_tui.alloc.slo import breached
from aios_tui.alloc.whatif import why_pending
from aios_tui.domain import (
    MILLI_GPU,
    NA,
    Endpoint,
    FleetSnapshot,
    Gpu,
    Health,
    Job,
    JobState,
    Metric,
    Node,
    fmt,
    fmt_age,
    fmt_mib,
    is_na,
)
from aios_tui.domain.model import short_gpu_model
from aios_tui.render.glyphs import (
    DIM_STYLE,
    FAIL_STYLE,
    HEALTH_STYLE,
    OK_STYLE,
    WARN_STYLE,
    bar,
    heat_cells,
    temp_style,
    util_style,
)

Cell = Text | str


@dataclass(frozen=True, slots=True)
class RowCtx:
    """What a cell may look at besides its own object."""

    snapshot: FleetSnapshot
    now: float
    ascii: bool = False


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    """Width in cells; for a flex column, its minimum."""
    cell: Callable[[Any, RowCtx], Cell]
    sort: Callable[[Any, RowCtx], Any] | None = None
    justify: Literal["left", "right"] = "left"
    flex: bool = False
    """Takes the width left over by the other columns."""
    priority: int = 1
    """1 is always shown; higher numbers are dropped first when the terminal is narrow."""
    hotkey: str = ""
    """Capital letter that sorts by this column (k9s habit: shift+letter)."""
    descending: bool = False
    """First sort biggest first (utilisation, temperature, latency: the worst is what you look for)."""
    qualified: bool = False
    """Its text is ``namespace/name``: too long, the namespace is cut first and the name keeps its end
    (``team-v…/dpo-align-0052``), the part that tells two jobs apart."""


@dataclass(frozen=True)
class ResourceKind:
    name: str
    title: str
    aliases: tuple[str, ...]
    rows: Callable[[FleetSnapshot], Sequence[Any]]
    key: Callable[[Any], str]
    columns: tuple[Column, ...]
    search_text: Callable[[Any], str]
    detail: str
    """Kind name used for history look-ups: node, gpu, job, endpoint."""
    actions: tuple[str, ...] = ()
    default_sort: str = ""
    inputs: Callable[[Any, RowCtx], tuple[object, ...]] | None = None
    """What a row shows besides its object, for a table to keep a row whose object and inputs are the same
    as last time without rendering it again; None: rendered every time. It must name everything its
    columns read from the context (the snapshot's indexes, the time, ASCII mode)."""
    column_by_key: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_by_key", {c.key: c for c in self.columns})

    def sort_column_for(self, hotkey: str) -> Column | None:
        return next((c for c in self.columns if c.hotkey == hotkey and c.sort is not None), None)


# --- layout and rendering ---------------------------------------------------------------------------------


def layout(columns: Sequence[Column], width: int) -> list[tuple[Column, int]]:
    """Choose the columns that fit in ``width`` (dropping the highest ``priority`` first) and their widths;
    spare width goes to flex columns. One space separates columns."""
    chosen = list(columns)
    while len(chosen) > 1 and sum(c.width for c in chosen) + len(chosen) - 1 > width:
        worst = max(range(len(chosen)), key=lambda i: (chosen[i].priority, i))
        if chosen[worst].priority <= 1:
            break
        del chosen[worst]
    spare = max(0, width - (sum(c.width for c in chosen) + len(chosen) - 1))
    flex = [c for c in chosen if c.flex] or chosen[-1:]
    share, extra = divmod(spare, len(flex)) if flex else (0, 0)
    out = []
    for c in chosen:
        w = c.width
        if c in flex:
            w += share + (1 if extra > 0 else 0)
            extra -= 1
        out.append((c, w))
    return out


def fit_qualified(key: str, width: int) -> str:
    """``namespace/name`` in ``width`` cells: the namespace cut first (``team-v…/dpo-align-0052``), then the
    name from its start (``…dpo-align-0052``); as it is when it fits."""
    if len(key) <= width or width < 4:
        return key
    ns, sep, name = key.rpartition("/")
    if sep and len(name) + 3 <= width:  # at least one letter of the namespace, "…" and "/"
        return f"{ns[: width - len(name) - 2]}…/{name}"
    return "…" + key[-(width - 1) :]


def _fit(cell: Cell, width: int, justify: str) -> Text:
    text = cell if isinstance(cell, Text) else Text(cell)
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width, overflow="ellipsis")
    pad = width - text.cell_len
    if pad > 0:
        text = Text.assemble(" " * pad, text) if justify == "right" else Text.assemble(text, " " * pad)
    return text


def render_row(cols: Sequence[tuple[Column, int]], obj: Any, ctx: RowCtx) -> Text:
    """The row's cells, each fitted to its column (cut with "…", padded by its justification), one space
    apart: one Text built from the cells' text and spans. The visible rows are rendered again at every
    refresh; a Text per cell, its padding and the join made it twice the time."""
    plain: list[str] = []
    spans: list[Span] = []
    offset = 0
    for col, width in cols:
        try:
            cell = col.cell(obj, ctx)
        except Exception:  # a renderer bug must not take the console down
            cell = Text("?", FAIL_STYLE)
        if isinstance(cell, str):
            if col.qualified:
                cell = fit_qualified(cell, width)
            text, style, cell_spans = strip_control_codes(cell), None, None
        else:
            text, style, cell_spans = cell.plain, cell.style, cell.spans
        size = cell_len(text)
        if size > width:  # rare (a name longer than its column): as Text.truncate cuts it
            fitted = _fit(cell, width, col.justify)
            text, style, cell_spans, size = fitted.plain, fitted.style, fitted.spans, width
        if offset:
            plain.append(" ")
            offset += 1
        pad = width - size
        if pad > 0 and col.justify == "right":
            plain.append(" " * pad)
            offset += pad
            pad = 0
        plain.append(text)
        if style:
            spans.append(Span(offset, offset + len(text), style))
        if cell_spans:
            spans.extend(Span(offset + start, offset + end, st) for start, end, st in cell_spans)
        offset += len(text)
        if pad > 0:
            plain.append(" " * pad)
            offset += pad
    return Text("".join(plain), spans=spans)


def render_header(
    cols: Sequence[tuple[Column, int]], sort_key: str, reverse: bool, *, ascii: bool = False
) -> Text:
    parts = []
    for col, width in cols:
        title = col.title
        if col.key == sort_key:
            title += ("v" if reverse else "^") if ascii else ("↓" if reverse else "↑")
        parts.append(_fit(title, width, col.justify))
    return Text(" ").join(parts)


# --- filtering and sorting (on the snapshot, outside the widget) ------------------------------------------


def matches(search_text: str, terms: Sequence[str]) -> bool:
    """All terms must appear (case-insensitive); a term starting with ``!`` must not."""
    for term in terms:
        if term.startswith("!"):
            if term[1:] and term[1:] in search_text:
                return False
        elif term not in search_text:
            return False
    return True


def select_rows(
    kind: ResourceKind,
    snapshot: FleetSnapshot,
    ctx: RowCtx,
    *,
    filter_text: str = "",
    sort_key: str = "",
    reverse: bool = False,
) -> Sequence[Any]:
    rows: Sequence[Any] = kind.rows(snapshot)
    terms = filter_text.lower().split()
    if terms:
        rows = [r for r in rows if matches(kind.search_text(r), terms)]
    col = kind.column_by_key.get(sort_key or kind.default_sort)
    if col is not None and col.sort is not None:
        sort = col.sort
        keyed = [(sort(r, ctx), r) for r in rows]
        known = [kr for kr in keyed if not _missing(kr[0])]
        known.sort(key=itemgetter(0), reverse=reverse)
        # Rows without a reading go last whichever way the column is sorted.
        return [r for _, r in known] + [r for k, r in keyed if _missing(k)]
    return list(reversed(rows)) if reverse else rows


def _missing(value: Any) -> bool:
    return value is NA or (isinstance(value, float) and math.isnan(value))


# --- helpers shared by the kinds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeStats:
    util: Metric
    temp_max: Metric
    power: Metric
    mem_pct: Metric


def node_stats(snapshot: FleetSnapshot, node: str) -> NodeStats:
    utils: list[float] = []
    temps: list[float] = []
    power = 0.0
    have_power = False
    used = total = 0.0
    for g in snapshot.gpus_by_node.get(node, ()):
        if not is_na(g.util):
            utils.append(float(g.util))
        if not is_na(g.temp):
            temps.append(float(g.temp))
        if not is_na(g.power):
            power += float(g.power)
            have_power = True
        if not is_na(g.mem_used) and not is_na(g.mem_total):
            used += float(g.mem_used)
            total += float(g.mem_total)
    return NodeStats(
        util=sum(utils) / len(utils) if utils else NA,
        temp_max=max(temps) if temps else NA,
        power=power if have_power else NA,
        mem_pct=100 * used / total if total else NA,
    )


def pct_cell(value: Metric) -> Text:
    if is_na(value):
        return Text("N/A", DIM_STYLE)
    return Text(f"{float(value):.0f}%", util_style(float(value)))


def temp_cell(value: Metric) -> Text:
    if is_na(value):
        return Text("N/A", DIM_STYLE)
    return Text(f"{float(value):.0f}°C", temp_style(float(value)))


def health_cell(health: Health, problems: Sequence[str] = ()) -> Text:
    label = "; ".join(problems) if problems else health.label
    return Text(label, HEALTH_STYLE[health])


def _num(v: Metric) -> float:
    return math.nan if is_na(v) else float(v)


# --- nodes ------------------------------------------------------------------------------------------------


def node_status(n: Node, ctx: RowCtx) -> Text:
    if n.lost_since:
        return Text(f"Lost {fmt_age(ctx.now - n.lost_since)}", FAIL_STYLE)
    if not n.ready:
        return Text("NotReady", FAIL_STYLE)
    if n.cordoned:
        return Text("Cordoned", WARN_STYLE)
    return Text("Ready", OK_STYLE)


def gpus_taken(n: Node) -> int:
    """GPUs a pod holds all or part of: whole ones requested, and those partly taken by shares (time-sliced
    replicas, MIG slices); with the GPUs free, the node's allocatable ones."""
    return n.gpus_requested + n.gpus_shared


def _node_alloc(n: Node, _: RowCtx) -> Text:
    if not n.gpus_total:
        # GPUs requested on a node of no known capacity: its source may not read the node (RBAC).
        return Text(f"{n.gpus_requested}/?", WARN_STYLE) if n.gpus_requested else Text("-", DIM_STYLE)
    style = OK_STYLE if n.gpus_free == 0 else ""
    return Text(f"{gpus_taken(n)}/{n.gpus_allocatable}", style)


def requested_share(requested: int, allocatable: int) -> float:
    """The share of a node's allocatable CPU or memory its pods request, in %; NaN when allocatable is
    unknown (0)."""
    return 100.0 * requested / allocatable if allocatable else math.nan


_MEMORY_UNITS = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1, "B"))


def _requested_text(requested: int, allocatable: int, scale: int, unit: str) -> str:
    """``169 of 191 cores (88%)``: what its pods request of allocatable, both in ``unit`` (``scale`` of
    the amount); ``unknown`` when allocatable is (0), with what its pods request when they request some."""

    def figure(amount: int) -> str:
        x = amount / scale
        return f"{x:.1f}" if round(x, 1) < 100 else f"{x:.0f}"

    if not allocatable:
        return f"unknown (its pods request {figure(requested)} {unit})" if requested else "unknown"
    share = requested_share(requested, allocatable)
    return f"{figure(requested)} of {figure(allocatable)} {unit} ({share:.0f}%)"


def cpu_requested_text(n: Node) -> str:
    """The CPU its pods request of what it can give them: ``169 of 191 cores (88%)``."""
    return _requested_text(n.cpu_requested, n.cpu_allocatable, 1000, "cores")


def memory_requested_text(n: Node) -> str:
    """The memory its pods request of what it can give them, in the unit of the larger:
    ``1.8 of 2.0 TiB (90%)``."""
    size = max(n.memory_allocatable, n.memory_requested)
    scale, unit = next((s, u) for s, u in _MEMORY_UNITS if size >= s or s == 1)
    return _requested_text(n.memory_requested, n.memory_allocatable, scale, unit)


def gpu_sharing_text(n: Node) -> str:
    """How its pods share GPUs, "" when they take whole ones: ``time-slicing ×4: 3.25 GPUs in shares``,
    ``MIG 1g.10gb 2/7, 3g.40gb 0/2: 0.28 GPUs in slices``."""
    if not n.gpu_sharing:
        return ""
    taken = f"{n.gpu_milli_requested / MILLI_GPU:.2f}".rstrip("0").rstrip(".")
    if n.gpu_sharing == "mig":
        slices = ", ".join(f"{s.profile} {s.requested}/{s.allocatable}" for s in n.mig_slices)
        return f"MIG {slices or 'slices unknown'}: {taken} GPUs in slices"
    return f"{n.gpu_sharing} ×{n.gpu_replicas}: {taken} GPUs in shares"


def shared_gpus_text(n: Node) -> str:
    """``, 2 more taken in part by shares`` (time-slicing, MPS) or ``, 1 more partitioned into MIG slices``;
    "" when no GPU is."""
    if not n.gpus_shared:
        return ""
    how = "partitioned into MIG slices" if n.mig_slices else "taken in part by shares"
    return f", {n.gpus_shared} more {how}"


def _requested_cell(requested: int, allocatable: int) -> Text:
    share = requested_share(requested, allocatable)
    if math.isnan(share):
        return Text("-", DIM_STYLE)
    return Text(f"{share:.0f}%", WARN_STYLE if share >= 100 else "")


def _node_health(n: Node, ctx: RowCtx) -> Text:
    problems: list[str] = []
    for c in n.conditions:
        if (c.type == "Ready" and c.status != "True") or (c.type != "Ready" and c.status == "True"):
            problems.append(c.reason or c.type)
    for g in ctx.snapshot.gpus_by_node.get(n.name, ()):
        problems.extend(f"gpu{g.index} {p}" for p in g.problems)
    # The worst of the node's own health and its GPUs': a node with a failed GPU is not "ok".
    return health_cell(ctx.snapshot.health_of(n.name), problems)


def _node_search(n: Node) -> str:
    state = "notready" if not n.ready else "cordoned" if n.cordoned else "ready"
    fields = (n.name, n.pool, n.zone, n.instance_type, n.gpu_model, state, n.health.label, n.rack)
    reasons = (c.reason for c in n.conditions if c.reason)
    return " ".join((*fields, *reasons, *(str(t) for t in n.taints))).lower()


def _node_inputs(n: Node, ctx: RowCtx) -> tuple[object, ...]:
    """What a node's row reads besides the node: its GPUs (heat cells, utilisation, temperature, power,
    health), its health with theirs, the time where it shows an age, ASCII mode."""
    snap = ctx.snapshot
    return (
        snap.gpus_by_node.get(n.name),
        snap.health_of(n.name),
        ctx.now if n.lost_since else 0.0,
        ctx.ascii,
    )


NODES = ResourceKind(
    name="nodes",
    title="Nodes",
    aliases=("no", "node", "n"),
    rows=lambda s: s.nodes,
    key=lambda n: n.name,
    detail="node",
    search_text=_node_search,
    actions=(),
    inputs=_node_inputs,
    columns=(
        Column("name", "NAME", 14, lambda n, c: n.name, lambda n, c: n.name, flex=True, hotkey="N"),
        Column("status", "STATUS", 8, node_status, lambda n, c: (n.ready, not n.cordoned), hotkey="S"),
        Column("pool", "POOL", 8, lambda n, c: n.pool, lambda n, c: n.pool, priority=3),
        Column("zone", "ZONE", 10, lambda n, c: n.zone, lambda n, c: n.zone, priority=4, hotkey="Z"),
        Column("model", "GPU", 5, lambda n, c: n.gpu_model or "-", lambda n, c: n.gpu_model, priority=2),
        Column(
            "alloc",
            "ALLOC",
            5,
            _node_alloc,
            lambda n, c: gpus_taken(n),
            justify="right",
            descending=True,
            hotkey="A",
        ),
        Column(
            "gpus", "GPUS", 8, lambda n, c: heat_cells(c.snapshot.gpus_by_node.get(n.name, ()), ascii=c.ascii)
        ),
        Column(
            "util",
            "UTIL",
            4,
            lambda n, c: pct_cell(node_stats(c.snapshot, n.name).util),
            lambda n, c: _num(node_stats(c.snapshot, n.name).util),
            justify="right",
            descending=True,
            hotkey="U",
        ),
        Column(
            "temp",
            "TEMP",
            5,
            lambda n, c: temp_cell(node_stats(c.snapshot, n.name).temp_max),
            lambda n, c: _num(node_stats(c.snapshot, n.name).temp_max),
            justify="right",
            priority=2,
            descending=True,
            hotkey="T",
        ),
        # CPU and memory its pods request, of allocatable: a node can run out of either with GPUs free.
        Column(
            "cpu",
            "CPU",
            4,
            lambda n, c: _requested_cell(n.cpu_requested, n.cpu_allocatable),
            lambda n, c: requested_share(n.cpu_requested, n.cpu_allocatable),
            justify="right",
            priority=4,
            descending=True,
        ),
        Column(
            "memory",
            "MEM",
            4,
            lambda n, c: _requested_cell(n.memory_requested, n.memory_allocatable),
            lambda n, c: requested_share(n.memory_requested, n.memory_allocatable),
            justify="right",
            priority=4,
            descending=True,
        ),
        Column(
            "power",
            "POWER",
            6,
            lambda n, c: fmt(node_stats(c.snapshot, n.name).power, ".0f", "W"),
            lambda n, c: _num(node_stats(c.snapshot, n.name).power),
            justify="right",
            priority=3,
            descending=True,
            hotkey="P",
        ),
        Column(
            "cost",
            "$/H",
            7,
            lambda n, c: fmt(n.price_per_hour, ".2f"),
            lambda n, c: _num(n.price_per_hour),
            justify="right",
            priority=3,
            descending=True,
            hotkey="C",
        ),
        Column(
            "health",
            "HEALTH",
            10,
            _node_health,
            lambda n, c: -c.snapshot.health_of(n.name),
            priority=2,
            hotkey="H",
            flex=True,
        ),
    ),
)


# --- GPUs -------------------------------------------------------------------------------------------------


def _gpu_mem(g: Gpu, _: RowCtx) -> str:
    """``71.8/79.6GiB``, ``0.6/79.6GiB``: used of total in the total's unit, said once."""
    if is_na(g.mem_used):
        return "N/A"
    used, total = fmt_mib(g.mem_used), fmt_mib(g.mem_total)
    if is_na(g.mem_total):
        return used
    if total.endswith("GiB"):
        gib = float(g.mem_used) / 1024
        return (f"{gib:.1f}" if round(gib, 1) < 100 else f"{gib:.0f}") + f"/{total}"
    return f"{used}/{total}"


def _gpu_index(g: Gpu, ctx: RowCtx) -> Text:
    """``7``, or ``7✗`` / ``7!`` for a failed or warning GPU: where the pane is too narrow for the health
    column, a GPU with an XID 79 must not look healthy."""
    health = g.health
    if health is Health.OK:
        return Text(f"{g.index} ")
    mark = ("X" if ctx.ascii else "✗") if health is Health.FAIL else "!"
    return Text.assemble(str(g.index), (mark, FAIL_STYLE if health is Health.FAIL else WARN_STYLE))


def _gpu_util(g: Gpu, ctx: RowCtx) -> Text:
    if g.lost_since:  # its last reading is history, not a reading
        return Text(f"lost {fmt_age(ctx.now - g.lost_since)}", FAIL_STYLE)
    if is_na(g.util):
        return Text("N/A", DIM_STYLE)
    return Text.assemble(bar(float(g.util), 5, ascii=ctx.ascii), f"{float(g.util):4.0f}%")


def _gpu_power(g: Gpu, _: RowCtx) -> Text:
    if is_na(g.power):
        return Text("N/A", DIM_STYLE)
    near_cap = not is_na(g.power_limit) and float(g.power) >= 0.95 * float(g.power_limit)
    return Text(f"{float(g.power):.0f}W", WARN_STYLE if near_cap else "")


def _gpu_pod(g: Gpu, _: RowCtx) -> Text:
    if g.pod:
        return Text(g.pod)
    if g.processes:
        first = g.processes[0]
        more = f" +{len(g.processes) - 1}" if len(g.processes) > 1 else ""
        return Text(f"{first.command or 'pid'} ({first.pid}){more}")
    return Text("free", DIM_STYLE)


def _gpu_search(g: Gpu) -> str:
    problems = " ".join(g.problems)
    return f"{g.node} gpu{g.index} {g.uuid} {g.model} {g.pod or 'free'} {g.health.label} {problems}".lower()


GPUS = ResourceKind(
    name="gpus",
    title="GPUs",
    aliases=("gpu", "g"),
    rows=lambda s: s.gpus,
    key=lambda g: g.uuid,
    detail="gpu",
    search_text=_gpu_search,
    # Besides the GPU: the time where it shows an age, ASCII mode (bars and marks).
    inputs=lambda g, c: (c.now if g.lost_since else 0.0, c.ascii),
    columns=(
        Column(
            "node", "NODE", 16, lambda g, c: g.node, lambda g, c: (g.node, g.index), flex=True, hotkey="N"
        ),
        Column("index", "#", 3, _gpu_index, lambda g, c: g.index, justify="right"),
        Column(
            "model",
            "MODEL",
            5,
            lambda g, c: short_gpu_model(g.model) or "-",
            lambda g, c: g.model,
            priority=3,
        ),
        Column("util", "UTIL", 10, _gpu_util, lambda g, c: _num(g.util), descending=True, hotkey="U"),
        Column(
            "mem",
            "MEM",
            12,
            _gpu_mem,
            lambda g, c: _num(g.mem_pct),
            justify="right",
            descending=True,
            hotkey="M",
        ),
        Column(
            "temp",
            "TEMP",
            5,
            lambda g, c: temp_cell(g.temp),
            lambda g, c: _num(g.temp),
            justify="right",
            descending=True,
            hotkey="T",
        ),
        Column(
            "power",
            "POWER",
            5,
            _gpu_power,
            lambda g, c: _num(g.power),
            justify="right",
            priority=2,
            descending=True,
            hotkey="P",
        ),
        Column(
            "clock",
            "SM MHZ",
            6,
            lambda g, c: fmt(g.sm_clock),
            lambda g, c: _num(g.sm_clock),
            justify="right",
            priority=4,
        ),
        Column("pod", "POD", 16, _gpu_pod, lambda g, c: g.pod, priority=3, flex=True),
        Column(
            "health",
            "HEALTH",
            8,
            lambda g, c: health_cell(g.health, g.problems),
            lambda g, c: -g.health,
            priority=2,
            flex=True,
            hotkey="H",
        ),
    ),
)


# --- jobs -------------------------------------------------------------------------------------------------

JOB_STATE_STYLE = {
    JobState.QUEUED: WARN_STYLE,
    JobState.STARTING: "cyan",
    JobState.RUNNING: OK_STYLE,
    JobState.SUCCEEDED: DIM_STYLE,
    JobState.FAILED: FAIL_STYLE,
}


def _job_state(j: Job, _: RowCtx) -> Text:
    label = j.state.value
    if j.state is JobState.QUEUED and j.queue_position:
        label = f"Queued #{j.queue_position}"
    return Text(label, JOB_STATE_STYLE[j.state])


_STATE_ORDER = {state: i for i, state in enumerate(JobState)}
"""Jobs sorted by state in the enum's order (``list(JobState).index`` per job was a tenth of a refresh)."""


def _job_age(j: Job, ctx: RowCtx) -> str:
    return fmt_age(ctx.now - j.submitted_at) if j.submitted_at else "N/A"


def _job_where(j: Job, ctx: RowCtx) -> Text:
    if j.state is JobState.QUEUED:
        return Text(why_pending(ctx.snapshot, j), WARN_STYLE)
    if j.state is JobState.FAILED and j.pending_reason:
        return Text(j.pending_reason, FAIL_STYLE)
    nodes = [n for n in j.placement if n]
    if not nodes:
        return Text("-", DIM_STYLE)
    distinct = list(dict.fromkeys(nodes))
    return Text(distinct[0] + (f" +{len(distinct) - 1}" if len(distinct) > 1 else ""))


def _job_progress(j: Job, _: RowCtx) -> str:
    return "N/A" if is_na(j.progress) else f"{float(j.progress) * 100:.0f}%"


def _job_search(j: Job) -> str:
    return f"{j.key} {j.state.value} {j.gpu_model} {j.queue} {j.user} {j.pending_reason}".lower()


JOBS = ResourceKind(
    name="jobs",
    title="Jobs",
    aliases=("job", "j", "training"),
    rows=lambda s: s.jobs,
    key=lambda j: j.key,
    detail="job",
    search_text=_job_search,
    default_sort="state",
    columns=(
        Column(
            "name", "NAME", 24, lambda j, c: j.key, lambda j, c: j.key, hotkey="N", flex=True, qualified=True
        ),
        Column(
            "state",
            "STATE",
            10,
            _job_state,
            lambda j, c: (_STATE_ORDER[j.state], j.queue_position, -j.priority),
            hotkey="S",
        ),
        Column(
            "gang",
            "GANG",
            7,
            lambda j, c: (
                f"{j.workers}×{j.gpus_per_worker}" if not c.ascii else f"{j.workers}x{j.gpus_per_worker}"
            ),
            lambda j, c: j.gpus,
            justify="right",
            descending=True,
            hotkey="W",
        ),
        Column("model", "GPU", 5, lambda j, c: j.gpu_model or "any", lambda j, c: j.gpu_model, priority=3),
        Column(
            "prio",
            "PRI",
            4,
            lambda j, c: str(j.priority),
            lambda j, c: j.priority,
            justify="right",
            priority=3,
            descending=True,
            hotkey="P",
        ),
        Column(
            "progress", "DONE", 4, _job_progress, lambda j, c: _num(j.progress), justify="right", priority=2
        ),
        Column(
            "age", "AGE", 6, _job_age, lambda j, c: -j.submitted_at, justify="right", priority=2, hotkey="A"
        ),
        Column("where", "WHERE / WHY", 18, _job_where, flex=True),
    ),
)


# --- endpoints --------------------------------------------------------------------------------------------


def _ep_ready(e: Endpoint, _: RowCtx) -> Text:
    if not e.replicas_known:  # traffic seen, workload not: unknown, not 0/0 (which reads as down)
        return Text("?", DIM_STYLE)
    style = OK_STYLE if e.replicas_ready >= e.replicas_desired else WARN_STYLE
    if e.replicas_desired and not e.replicas_ready:
        style = FAIL_STYLE
    return Text(f"{e.replicas_ready}/{e.replicas_desired}", style)


SLO_NEAR = 0.7
"""Past this share of an objective an endpoint is near it: the p99 turns yellow."""


def _ep_latency(value: Metric, slo_ms: Metric) -> Text:
    """Latency, red past the endpoint's objective and yellow within 30% of it; plain when none is known."""
    if is_na(value):
        return Text("N/A", DIM_STYLE)
    v = float(value)
    text = f"{v:.0f}ms" if v < 10_000 else f"{v / 1000:.0f}s"
    if is_na(slo_ms):
        return Text(text)
    slo = float(slo_ms)
    return Text(text, FAIL_STYLE if v > slo else WARN_STYLE if v > SLO_NEAR * slo else "")


def _ep_p99(e: Endpoint, _: RowCtx) -> Text:
    """The p99 and, when known, its objective next to it: ``470/32`` (the colour is a hint, not the news)."""
    text = _ep_latency(e.p99_ms, e.p99_slo_ms)
    if is_na(e.p99_slo_ms):
        return text
    value = "-" if is_na(e.p99_ms) else text.plain.removesuffix("ms")
    return Text.assemble(value, (f"/{float(e.p99_slo_ms):.0f}", DIM_STYLE), style=text.style)


def _short_age(seconds: float) -> str:
    """A duration in at most three cells: 45s, 12m, 3h, 2d (the SLO column is ten wide)."""
    s = max(0, int(seconds))
    if s >= 2 * 86400:
        return f"{min(s // 86400, 99)}d"
    return f"{s // 3600}h" if s >= 3600 else f"{s // 60}m" if s >= 60 else f"{s}s"


def _ep_slo(e: Endpoint, c: RowCtx) -> Text:
    """The endpoint against its objectives, in words that survive NO_COLOR: ``ok``, ``BREACH 12m``, ``-``
    (no objective or no reading). A breach the poller follows lasts until the endpoint has met its
    objectives for a minute (``poll.slo``)."""
    since = c.snapshot.slo_breached_since.get(e.key)
    if since is not None:
        return Text(f"BREACH {_short_age(c.now - since)}", FAIL_STYLE)
    verdict = breached(e)
    if verdict is None:
        return Text("-", DIM_STYLE)
    return Text("BREACH", FAIL_STYLE) if verdict else Text("ok", OK_STYLE)


def _ep_slo_sort(e: Endpoint, c: RowCtx) -> Any:
    """Breaching first (the longest breach first), then the others by name; those that cannot be judged last.
    A breach the poller follows ends only after a minute within the objectives (``poll.slo``), so rows move
    when a breach starts or ends, not with every reading: sorted by the ratio to the objective, rows moved at
    every refresh (the operator's row jumped under the cursor, and re-drawing moved rows was half the bytes
    the console sent), and a band for "near the objective" (past ``SLO_NEAR``) still moved them at 5,000
    nodes, where many endpoints hover at its edge. Near shows in the p99's colour; ``L`` sorts by the p99."""
    since = c.snapshot.slo_breached_since.get(e.key)
    if since is not None:
        return (0, since, e.key)
    verdict = breached(e)
    if verdict is None:
        return NA
    return (0 if verdict else 1, c.now, e.key)


def _ep_errors(e: Endpoint, _: RowCtx) -> Text:
    if is_na(e.error_rate):
        return Text("N/A", DIM_STYLE)
    pct = float(e.error_rate) * 100
    return Text(
        f"{pct:.1f}%" if pct < 10 else f"{pct:.0f}%",
        FAIL_STYLE if pct >= 1 else WARN_STYLE if pct >= 0.1 else "",
    )


def _ep_hpa(e: Endpoint, _: RowCtx) -> Text:
    if e.hpa is None:
        return Text("-", DIM_STYLE)
    return Text(f"{e.hpa.min_replicas}-{e.hpa.max_replicas}")


def _ep_search(e: Endpoint) -> str:
    return f"{e.key} {e.model} {e.server} {e.gpu_model}".lower()


ENDPOINTS = ResourceKind(
    name="endpoints",
    title="Endpoints",
    aliases=("endpoint", "ep", "e", "svc", "serving"),
    rows=lambda s: s.endpoints,
    key=lambda e: e.key,
    detail="endpoint",
    search_text=_ep_search,
    actions=("scale",),
    default_sort="slo",
    columns=(
        Column(
            "name", "NAME", 24, lambda e, c: e.key, lambda e, c: e.key, flex=True, hotkey="N", qualified=True
        ),
        Column("model", "MODEL", 12, lambda e, c: e.model, lambda e, c: e.model, priority=4),
        Column(
            "ready",
            "READY",
            5,
            _ep_ready,
            lambda e, c: e.replicas_ready - e.replicas_desired,
            justify="right",
            hotkey="R",
        ),
        Column(
            "gpus",
            "GPU",
            6,
            lambda e, c: (
                f"{e.gpus_per_replica}×{e.gpu_model}"
                if not c.ascii
                else f"{e.gpus_per_replica}x{e.gpu_model}"
            ),
            lambda e, c: e.gpus,
            priority=2,
        ),
        Column(
            "qps",
            "QPS",
            6,
            lambda e, c: fmt(e.qps, ".0f" if _num(e.qps) >= 10 else ".1f"),
            lambda e, c: _num(e.qps),
            justify="right",
            descending=True,
            hotkey="Q",
        ),
        Column(
            "p50",
            "P50",
            6,
            lambda e, c: _ep_latency(e.p50_ms, NA),
            lambda e, c: _num(e.p50_ms),
            justify="right",
            priority=3,
        ),
        Column(
            "p99",
            "P99/SLO",
            9,
            _ep_p99,
            lambda e, c: _num(e.p99_ms),
            justify="right",
            descending=True,
            hotkey="L",
        ),
        Column(
            "errors",
            "ERR",
            5,
            _ep_errors,
            lambda e, c: _num(e.error_rate),
            justify="right",
            descending=True,
            hotkey="E",
        ),
        Column("slo", "SLO", 10, _ep_slo, _ep_slo_sort, hotkey="O"),
        Column("hpa", "HPA", 5, _ep_hpa, lambda e, c: e.hpa is not None, priority=3),
    ),
)

__all__ = [
    "ENDPOINTS",
    "GPUS",
    "JOBS",
    "NODES",
    "Column",
    "NodeStats",
    "ResourceKind",
    "RowCtx",
    "layout",
    "matches",
    "node_stats",
    "render_header",
    "render_row",
    "select_rows",
]
