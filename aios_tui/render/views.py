"""The views over the fleet, declared like the panes' kinds (:mod:`aios_tui.render.table`) and
drawn by the same table widget, so that they sort, scroll and filter the same way:

- ``IDLE``: GPUs allocated to a pod but under 5 % utilisation for the whole idle window, with their owner,
  how long they have been idle and what they cost per hour;
- ``CORDON`` (``:health``): every node with a verdict (:mod:`aios_tui.domain.health`: watch, drain, reset,
  reboot, RMA), worst first, with why, what draining it hits and who cordoned it;
- ``POOLS``: the node pools, with their size against their limits, what they cost per hour and how many
  queued jobs would fit their nodes; ``s`` scales one (``ops.pools``);
- ``CAPACITY`` (``:free``): the free GPUs per zone, rack and pool, whole free nodes, the 1/2/4/8-GPU
  workers that fit and the share the next request cannot use (``alloc.freecap``).

They are not panes of the main screen: each opens as a screen of its own (:mod:`aios_tui.render.kinds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.text import Text

from aios_tui.alloc.freecap import SCOPE_ORDER, SLOT_SIZES, FreeDomain, FreeTotals, free_capacity
from aios_tui.alloc.pools import pending_for_pool
from aios_tui.domain import FleetSnapshot, Gpu, Metric, NodePool, SourceState, fmt, fmt_age, fmt_money, is_na
from aios_tui.domain.health import Need, Verdict, to_cordon
from aios_tui.domain.model import short_gpu_model
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE
from aios_tui.render.table import Column, ResourceKind, RowCtx, pct_cell

__all__ = [
    "CAPACITY",
    "CORDON",
    "IDLE",
    "IDLE_OWNERS",
    "NEED_STYLE",
    "POOLS",
    "SOURCES",
    "IdleOwner",
    "SourceRow",
    "capacity_summary",
    "free_of",
    "gpu_owner",
    "health_summary",
    "idle_cost",
    "idle_owners",
    "idle_summary",
    "pool_cost",
    "pools_summary",
    "source_rows",
    "source_why",
    "sources_summary",
]


# --- allocated but idle -----------------------------------------------------------------------------------


def gpu_owner(snapshot: FleetSnapshot, gpu: Gpu) -> str:
    """The job or endpoint (``namespace/name``) whose pod holds ``gpu``; the pod itself when it has none."""
    namespace, _, name = gpu.pod.partition("/")
    for p in snapshot.pods_by_node.get(gpu.node, ()):
        if p.name == name and p.namespace == namespace:
            return p.owner or gpu.pod
    return gpu.pod


def _idle_seconds(g: Gpu, ctx: RowCtx) -> float:
    since = ctx.snapshot.low_since(g)
    return math.nan if is_na(since) else max(0.0, ctx.now - float(since))


def _idle_for(g: Gpu, ctx: RowCtx) -> Text:
    seconds = _idle_seconds(g, ctx)
    if math.isnan(seconds):
        return Text("N/A", DIM_STYLE)
    return Text(fmt_age(seconds), WARN_STYLE if seconds >= 3600 else "")


def _price(g: Gpu, ctx: RowCtx) -> float:
    price = ctx.snapshot.gpu_price(g)
    return math.nan if is_na(price) else float(price)


def _price_cell(g: Gpu, ctx: RowCtx) -> Text:
    price = _price(g, ctx)
    return Text("N/A", DIM_STYLE) if math.isnan(price) else Text(f"{price:.2f}")


def _idle_search(g: Gpu) -> str:
    return f"{g.node} gpu{g.index} {g.uuid} {g.model} {g.pod}".lower()


def idle_cost(snapshot: FleetSnapshot, gpus: Sequence[Gpu]) -> float:
    """What ``gpus`` cost per hour (unpriced ones count 0, as in the header's figure)."""
    total = 0.0
    for g in gpus:
        price = snapshot.gpu_price(g)
        if not is_na(price):
            total += float(price)
    return total


def idle_summary(
    snapshot: FleetSnapshot, shown: Sequence[Gpu] | Sequence[IdleOwner], *, filtered: bool = False
) -> Text:
    """``349 allocated GPUs idle ≥ 10m: $4,010.20/h`` (the header's figure), how many owners hold them, and
    what a filter kept (``shown``: the rows on screen, GPUs or owners)."""
    idle = snapshot.idle_gpus
    window = fmt_age(snapshot.idle_window) if snapshot.idle_window > 0 else "now"
    out = Text.assemble(
        (f"{len(idle):,} allocated GPUs under 5% for ≥ {window}", "bold"),
        ": ",
        (fmt_money(snapshot.totals.idle_cost_per_hour), WARN_STYLE if idle else OK_STYLE),
    )
    owners = [o for o in shown if isinstance(o, IdleOwner)]
    if owners or (filtered and not shown):
        if not filtered:
            out.append(f" in {len(owners):,} workload{'s' if len(owners) != 1 else ''}")
        gpus = sum(o.gpus for o in owners)
        cost = sum(o.cost_per_hour for o in owners if not math.isnan(o.cost_per_hour))
    else:
        gpus, cost = len(shown), idle_cost(snapshot, [g for g in shown if isinstance(g, Gpu)])
    if filtered:
        out.append(f"  (shown: {gpus:,} GPUs, {fmt_money(cost)})", DIM_STYLE)
    return out


IDLE = ResourceKind(
    name="idle",
    title="Idle GPUs",
    aliases=("idle", "waste"),
    rows=lambda s: s.idle_gpus,
    key=lambda g: g.uuid,
    detail="gpu",
    search_text=_idle_search,
    default_sort="idle",
    columns=(
        Column("node", "NODE", 13, lambda g, c: g.node, lambda g, c: (g.node, g.index), hotkey="N"),
        Column("index", "#", 2, lambda g, c: str(g.index), lambda g, c: g.index, justify="right"),
        Column(
            "model",
            "MODEL",
            5,
            lambda g, c: short_gpu_model(g.model) or "-",
            lambda g, c: g.model,
            priority=3,
        ),
        Column(
            "owner",
            "OWNER",
            18,
            lambda g, c: gpu_owner(c.snapshot, g),
            lambda g, c: gpu_owner(c.snapshot, g),
            flex=True,
            hotkey="O",
        ),
        Column("pod", "POD", 16, lambda g, c: g.pod, lambda g, c: g.pod, priority=4, flex=True),
        Column(
            "util",
            "UTIL",
            4,
            lambda g, c: pct_cell(g.util),
            lambda g, c: float(g.util) if not is_na(g.util) else math.nan,
            justify="right",
            hotkey="U",
        ),
        Column(
            "idle",
            "IDLE FOR",
            9,
            _idle_for,
            # Since when, oldest first: the longest idle on top.
            lambda g, c: -_idle_seconds(g, c),
            justify="right",
            hotkey="I",
        ),
        Column("cost", "$/H", 7, _price_cell, _price, justify="right", descending=True, hotkey="C"),
    ),
)


@dataclass(frozen=True, slots=True)
class IdleOwner:
    """The idle GPUs of one workload: what the idle view opens on, because "who pays for these" is the
    question (one endpoint over-provisioned by 6 replicas, not 6 unrelated GPUs)."""

    key: str
    """The workload's ``namespace/name`` (an endpoint's or a job's; a bare pod's own)."""
    kind: str
    """``endpoint``, ``job`` or ``pod`` (no controller the snapshot knows)."""
    gpus: int
    cost_per_hour: float
    """USD per hour of those GPUs; NaN when none of them is priced (unpriced ones count 0)."""
    since: float
    """Since when the longest idle of them has been idle; NaN when not known."""
    nodes: int

    @property
    def namespace(self) -> str:
        return self.key.partition("/")[0]

    @property
    def name(self) -> str:
        return self.key.partition("/")[2]


def idle_owners(snapshot: FleetSnapshot) -> tuple[IdleOwner, ...]:
    """The idle GPUs rolled up by the workload that holds them, in the order first met."""
    groups: dict[str, list[Gpu]] = {}
    for g in snapshot.idle_gpus:
        groups.setdefault(gpu_owner(snapshot, g), []).append(g)
    out = []
    for key, gpus in groups.items():
        kind = (
            "endpoint" if key in snapshot.endpoint_by_key else "job" if key in snapshot.job_by_key else "pod"
        )
        prices = [float(p) for g in gpus if not is_na(p := snapshot.gpu_price(g))]
        since = [float(t) for g in gpus if not is_na(t := snapshot.low_since(g))]
        out.append(
            IdleOwner(
                key=key,
                kind=kind,
                gpus=len(gpus),
                cost_per_hour=sum(prices) if prices else math.nan,
                since=min(since) if since else math.nan,
                nodes=len({g.node for g in gpus}),
            )
        )
    return tuple(out)


def _owner_idle_for(o: IdleOwner, ctx: RowCtx) -> Text:
    if math.isnan(o.since):
        return Text("N/A", DIM_STYLE)
    seconds = max(0.0, ctx.now - o.since)
    return Text(fmt_age(seconds), WARN_STYLE if seconds >= 3600 else "")


IDLE_OWNERS = ResourceKind(
    name="idle-owners",
    title="Idle GPUs by owner",
    aliases=(),
    rows=idle_owners,
    key=lambda o: o.key,
    detail="",
    search_text=lambda o: f"{o.key} {o.kind}".lower(),
    actions=("scale",),
    default_sort="cost",
    columns=(
        Column("namespace", "NAMESPACE", 12, lambda o, c: o.namespace, lambda o, c: o.key, hotkey="N"),
        Column("owner", "OWNER", 18, lambda o, c: o.name, lambda o, c: o.name, flex=True, hotkey="O"),
        Column("kind", "KIND", 8, lambda o, c: o.kind, lambda o, c: o.kind, priority=2),
        Column(
            "gpus", "GPUS", 4, lambda o, c: str(o.gpus), lambda o, c: -o.gpus, justify="right", hotkey="G"
        ),
        Column(
            "nodes", "NODES", 5, lambda o, c: str(o.nodes), lambda o, c: -o.nodes, justify="right", priority=3
        ),
        Column(
            "idle",
            "IDLE FOR",
            9,
            _owner_idle_for,
            lambda o, c: o.since,  # since when, oldest first: the longest idle on top
            justify="right",
            hotkey="I",
        ),
        Column(
            "cost",
            "$/H",
            9,
            lambda o, c: (
                Text("N/A", DIM_STYLE) if math.isnan(o.cost_per_hour) else Text(f"{o.cost_per_hour:,.2f}")
            ),
            lambda o, c: -o.cost_per_hour,  # dearest first
            justify="right",
            hotkey="C",
        ),
    ),
)


# --- node health --------------------------------------------------------------------------------------------

NEED_STYLE = {
    Need.HEALTHY: OK_STYLE,
    Need.WATCH: WARN_STYLE,
    Need.DRAIN: FAIL_STYLE,
    Need.RESET: FAIL_STYLE,
    Need.REBOOT: FAIL_STYLE,
    Need.RMA: FAIL_STYLE,
}


def _verdict(v: Verdict, _: RowCtx) -> Text:
    return Text(v.word, NEED_STYLE[v.need])  # a word, so that NO_COLOR still tells reboot from watch


def _why(v: Verdict, ctx: RowCtx) -> Text:
    return Text(v.why(ctx.now), NEED_STYLE[v.need] if v.need >= Need.DRAIN else "")


def _hits(v: Verdict, _: RowCtx) -> Text:
    names = [*v.jobs, *v.endpoints, *v.pods]
    return Text(", ".join(names)) if names else Text("nothing", DIM_STYLE)


def _cordoned_by(v: Verdict, _: RowCtx) -> Text:
    if not v.cordoned and not v.cordoned_by:
        return Text("-", DIM_STYLE)
    return Text(v.cordoned_by or "yes (who: unknown)")


def health_summary(snapshot: FleetSnapshot, shown: Sequence[Verdict], *, filtered: bool = False) -> Text:
    """``3 nodes need attention: 1 reboot, 1 reset, 1 watch; 2 to cordon`` (the header's figure)."""
    all_ = tuple(snapshot.verdicts.values())
    if not all_:
        return Text("Every node healthy: no XID, ECC error, row remap, NVLink error or throttling", OK_STYLE)
    counts: dict[Need, int] = {}
    for v in all_:
        counts[v.need] = counts.get(v.need, 0) + 1
    said = ", ".join(f"{counts[n]} {n.word}" for n in sorted(counts, reverse=True))
    worst = max(counts)
    out = Text.assemble(
        (f"{len(all_)} node{'s' if len(all_) != 1 else ''} need attention: ", "bold"),
        (said, NEED_STYLE[worst]),
    )
    cordon = len(to_cordon(snapshot))
    if cordon:
        out.append(f"; {cordon} to cordon", FAIL_STYLE)
    if filtered:
        out.append(f"  (shown: {len(shown):,})", DIM_STYLE)
    return out


CORDON = ResourceKind(
    name="cordon",
    title="Node health",
    aliases=("health", "suggest", "suggestions", "cordons"),
    rows=lambda s: tuple(s.verdicts.values()),
    key=lambda v: v.node,
    detail="node",
    search_text=lambda v: f"{v.node} {v.word} {v.why(0.0)} {' '.join(v.hits)} {v.cordoned_by}".lower(),
    default_sort="verdict",
    actions=("cordon",),
    columns=(
        Column("node", "NODE", 13, lambda v, c: v.node, lambda v, c: v.node, hotkey="N"),
        Column(
            "verdict",
            "VERDICT",
            8,
            _verdict,
            lambda v, c: (-v.need, v.node),
            hotkey="V",
        ),
        Column("why", "WHY", 30, _why, flex=True),
        Column(
            "hits",
            "WHAT IT HITS",
            18,
            _hits,
            lambda v, c: -(len(v.jobs) + len(v.endpoints) + len(v.pods)),
            priority=3,
            hotkey="H",
        ),
        Column(
            "by",
            "CORDONED BY",
            11,
            _cordoned_by,
            lambda v, c: (not v.cordoned, v.cordoned_by),
            priority=2,
            hotkey="C",
        ),
    ),
)

# --- node pools -------------------------------------------------------------------------------------------


def pool_cost(pool: NodePool) -> float:
    """What the pool's nodes cost per hour now (NaN when its price is unknown)."""
    return math.nan if is_na(pool.price_per_hour) else float(pool.price_per_hour) * pool.nodes


_KIND_SHORT = {"eks-nodegroup": "eks", "gke-nodepool": "gke", "aks-agentpool": "aks"}
"""Pool kinds as the 5-column KIND cell shows them."""


def _pool_cost_cell(p: NodePool, _: RowCtx) -> Text:
    cost = pool_cost(p)
    return Text("N/A", DIM_STYLE) if math.isnan(cost) else Text(f"{cost:,.2f}")


def _pool_size(p: NodePool, _: RowCtx) -> Text:
    want = p.desired_capacity
    if p.capacity_weights:  # desired counts weighted units, not machines: "3/12u", no warning for 3 != 12
        return Text(f"{p.nodes}/{want}u")
    text = f"{p.nodes}/{want}"
    return Text(text, WARN_STYLE) if want != p.nodes else Text(text)


def _pool_shape(p: NodePool, _: RowCtx) -> str:
    if not p.gpu_model:
        return "no GPU"
    most = p.gpus_per_node_max
    count = f"{p.gpus_per_node}–{most}" if most > p.gpus_per_node else str(p.gpus_per_node)
    return f"{count}×{short_gpu_model(p.gpu_model)}"


def _pool_pending(p: NodePool, ctx: RowCtx) -> int:
    return pending_for_pool(ctx.snapshot, p)


def _pending_cell(p: NodePool, ctx: RowCtx) -> Text:
    n = _pool_pending(p, ctx)
    return Text(str(n), WARN_STYLE) if n else Text("0", DIM_STYLE)


def pools_summary(snapshot: FleetSnapshot, shown: Sequence[NodePool]) -> Text:
    """``18 node pools, 200 nodes, $12.4k/h``."""
    nodes = sum(p.nodes for p in shown)
    cost = sum(c for p in shown if not math.isnan(c := pool_cost(p)))
    # Nodes of pools with no price are left out of the sum: it is a floor then, and says so.
    unpriced = sum(p.nodes for p in shown if math.isnan(pool_cost(p)))
    money = fmt_money(cost)
    if unpriced and unpriced < nodes:
        money = f"≥ {money}, {unpriced} node{'s' if unpriced != 1 else ''} unpriced"
    elif unpriced:
        money = fmt_money(math.nan)
    return Text.assemble(
        (f"{len(shown)} node pool{'s' if len(shown) != 1 else ''}, {nodes:,} nodes, {money}", "bold"),
    )


POOLS = ResourceKind(
    name="pools",
    title="Node pools",
    aliases=("pool", "nodepools", "asg", "asgs", "nodegroups", "migs", "vmss", "agentpools"),
    rows=lambda s: s.pools,
    key=lambda p: p.name,
    detail="pool",
    search_text=lambda p: f"{p.name} {p.kind} {p.instance_type} {p.gpu_model} {' '.join(p.zones)}".lower(),
    default_sort="name",
    actions=("scale-pool",),
    columns=(
        Column("name", "POOL", 10, lambda p, c: p.name, lambda p, c: p.name, flex=True, hotkey="N"),
        Column(
            "kind",
            "KIND",
            5,
            lambda p, c: _KIND_SHORT.get(p.kind, p.kind) or "sim",
            lambda p, c: p.kind,
            priority=4,
        ),
        Column("type", "TYPE", 13, lambda p, c: p.instance_type, lambda p, c: p.instance_type, priority=5),
        Column("gpus", "GPUS", 7, _pool_shape, lambda p, c: (p.gpu_model, p.gpus_per_node), hotkey="G"),
        Column(
            "nodes",
            "NODES",
            7,
            _pool_size,
            lambda p, c: p.nodes,
            justify="right",
            descending=True,
            hotkey="S",
        ),
        Column(
            "limits",
            "MIN–MAX",
            7,
            lambda p, c: f"{p.min_size}–{p.max_size}",
            lambda p, c: p.max_size,
            justify="right",
            priority=2,
        ),
        Column(
            "zones",
            "ZONES",
            10,
            lambda p, c: ",".join(p.zones) or "-",
            lambda p, c: p.zones,
            priority=3,
            flex=True,
        ),
        Column(
            "cost",
            "$/H",
            9,
            _pool_cost_cell,
            lambda p, c: pool_cost(p),
            justify="right",
            descending=True,
            hotkey="C",
        ),
        Column(
            "pending",
            "QUEUED",
            6,
            _pending_cell,
            _pool_pending,
            justify="right",
            descending=True,
            hotkey="Q",
        ),
    ),
)

# --- the sources --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One line of the sources view: a source, or one of its parts (an SSH host, a scrape target) under it."""

    key: str
    name: str
    kind: str
    state: SourceState
    last_ok: float
    error: str
    latency_ms: Metric
    next_try: float = 0.0
    last_error: str = ""
    last_error_at: float = 0.0
    part: bool = False


def source_rows(snapshot: FleetSnapshot) -> tuple[SourceRow, ...]:
    """Each source, then its parts, in configuration order."""
    out: list[SourceRow] = []
    for s in snapshot.sources:
        out.append(
            SourceRow(
                s.name,
                s.name,
                s.kind,
                s.state,
                s.last_ok,
                s.error,
                s.latency_ms,
                s.next_try,
                s.last_error,
                s.last_error_at,
            )
        )
        out.extend(
            SourceRow(
                f"{s.name}/{p.name}", p.name, s.kind, p.state, p.last_ok, p.error, p.latency_ms, part=True
            )
            for p in s.parts
        )
    return tuple(out)


_STATE_WORDS = {
    SourceState.OK: ("ok", OK_STYLE),
    SourceState.PARTIAL: ("partial", WARN_STYLE),
    SourceState.STALE: ("stale", WARN_STYLE),
    SourceState.ERROR: ("error", FAIL_STYLE),
    SourceState.STARTING: ("starting", DIM_STYLE),
}


def _source_name(r: SourceRow, ctx: RowCtx) -> Text:
    branch = "`- " if ctx.ascii else "└ "
    return Text(f"  {branch}{r.name}") if r.part else Text(r.name, "bold")


def _source_state(r: SourceRow, ctx: RowCtx) -> Text:
    word, style = _STATE_WORDS[r.state]
    if r.state is SourceState.STALE and r.last_ok:
        word = f"stale {fmt_age(ctx.now - r.last_ok)}"
    return Text(word, style)


def _source_last_ok(r: SourceRow, ctx: RowCtx) -> Text:
    if not r.last_ok:
        return Text("never", FAIL_STYLE if r.state is SourceState.ERROR else DIM_STYLE)
    return Text(f"{fmt_age(ctx.now - r.last_ok)} ago")


def _source_next(r: SourceRow, ctx: RowCtx) -> Text:
    if not r.next_try:
        return Text("-", DIM_STYLE)
    left = r.next_try - ctx.now
    return Text("now" if left <= 0.5 else f"in {fmt_age(left)}", DIM_STYLE)


def _source_why(r: SourceRow, ctx: RowCtx) -> Text:
    if r.error:
        return Text(r.error, FAIL_STYLE if r.state in (SourceState.ERROR, SourceState.STALE) else WARN_STYLE)
    if r.last_error:
        when = f"{fmt_age(ctx.now - r.last_error_at)} ago: " if r.last_error_at else ""
        return Text(f"recovered; {when}{r.last_error}", DIM_STYLE)
    return Text("")


SOURCES = ResourceKind(
    name="sources",
    title="Sources",
    aliases=("source", "src", "health-of-sources"),
    rows=source_rows,
    key=lambda r: r.key,
    detail="source",
    search_text=lambda r: f"{r.name} {r.kind} {r.state.value} {r.error}".lower(),
    default_sort="",
    columns=(
        Column("name", "SOURCE", 14, _source_name, None),
        Column("kind", "KIND", 10, lambda r, c: r.kind, None, priority=3),
        Column("state", "STATE", 10, _source_state, None),
        Column("last", "LAST OK", 9, _source_last_ok, None, justify="right"),
        Column(
            "latency",
            "LATENCY",
            8,
            lambda r, c: fmt(r.latency_ms, ".0f", "ms"),
            None,
            justify="right",
            priority=2,
        ),
        Column("next", "NEXT TRY", 8, _source_next, None, justify="right", priority=2),
        Column("why", "WHY", 20, _source_why, None, flex=True),
    ),
)


def source_why(r: SourceRow, now: float) -> Text:
    """One row in full, for below the table: its error, or the last one it recovered from."""
    head = Text(f"{r.name}: ", "bold")
    if r.error:
        return head + Text(
            r.error, FAIL_STYLE if r.state in (SourceState.ERROR, SourceState.STALE) else WARN_STYLE
        )
    if r.last_error:
        when = f" {fmt_age(now - r.last_error_at)} ago" if r.last_error_at else ""
        return head + Text(f"working; it last failed{when}: {r.last_error}", DIM_STYLE)
    return head + Text("working, no error seen", OK_STYLE)


def sources_summary(snapshot: FleetSnapshot) -> Text:
    """``3 sources: 2 ok, 1 stale``, and how to read the rest."""
    counts: dict[str, int] = {}
    for s in snapshot.sources:
        counts[_STATE_WORDS[s.state][0]] = counts.get(_STATE_WORDS[s.state][0], 0) + 1
    bad = any(s.state in (SourceState.ERROR, SourceState.STALE) for s in snapshot.sources)
    said = ", ".join(f"{n} {w}" for w, n in counts.items())
    n = len(snapshot.sources)
    return Text(f"{n} source{'s' if n != 1 else ''}: {said}", FAIL_STYLE if bad else "bold")


# --- free capacity ----------------------------------------------------------------------------------------

_free_seen: list[tuple[FleetSnapshot, tuple[tuple[FreeDomain, ...], FreeTotals]]] = []


def free_of(snapshot: FleetSnapshot) -> tuple[tuple[FreeDomain, ...], FreeTotals]:
    """:func:`~aios_tui.alloc.freecap.free_capacity` of ``snapshot``, once per snapshot (the table asks for
    its rows more than once per refresh, the summary for the totals)."""
    if _free_seen and _free_seen[0][0] is snapshot:
        return _free_seen[0][1]
    out = free_capacity(snapshot)
    _free_seen[:] = [(snapshot, out)]
    return out


def _free_cell(d: FreeDomain, _: RowCtx) -> Text:
    return Text(f"{d.free:,}/{d.gpus:,}", "" if d.free else DIM_STYLE)


def _slot_cell(i: int) -> Callable[[FreeDomain, RowCtx], Text]:
    def cell(d: FreeDomain, _: RowCtx) -> Text:
        return Text(f"{d.slots[i]:,}", "" if d.slots[i] else DIM_STYLE)

    return cell


def _unusable_cell(d: FreeDomain, _: RowCtx) -> Text:
    if not d.free:
        return Text("-", DIM_STYLE)
    share = d.unusable_share
    return Text(f"{share:.0%}", WARN_STYLE if share >= UNUSABLE_WARN else "")


def _blocked_cell(d: FreeDomain, _: RowCtx) -> Text:
    return Text(str(d.blocked), WARN_STYLE) if d.blocked else Text("0", DIM_STYLE)


UNUSABLE_WARN = 0.25
"""A domain where a quarter of the free GPUs cannot take the next typical request is shown in amber."""


def capacity_summary(snapshot: FleetSnapshot, *, ascii: bool = False) -> Text:
    """``Free 1,240/37,588 GPUs · 52 whole nodes · 18% unusable by the next request · slots 1×1,240 2×600
    4×290 8×52 · 12 GPU nodes blocked``: what matters first, as an 80-column line cuts the end."""
    _, t = free_of(snapshot)
    times = "x" if ascii else "×"
    dot = " - " if ascii else " · "
    out = Text(f"Free {t.free:,}/{len(snapshot.gpus):,} GPUs", "bold")
    out.append(f"{dot}{t.whole:,} whole node{'s' if t.whole != 1 else ''}{dot}")
    out.append(f"{t.unusable_share:.0%}", WARN_STYLE if t.unusable_share >= UNUSABLE_WARN else "")
    out.append(" unusable by the next request")
    slots = " ".join(f"{size}{times}{n:,}" for size, n in zip(SLOT_SIZES, t.slots, strict=True))
    out.append(f"{dot}slots {slots}")
    if t.blocked:
        out.append(dot)
        out.append(f"{t.blocked:,} GPU node{'s' if t.blocked != 1 else ''} blocked", WARN_STYLE)
    return out


def _capacity_search(d: FreeDomain) -> str:
    return f"{d.scope} {d.name} {d.gpu_model} {d.zone}".lower()


CAPACITY = ResourceKind(
    name="capacity",
    title="Free capacity",
    aliases=("free", "frag", "fragmentation", "cap", "slots"),
    rows=lambda s: free_of(s)[0],
    key=lambda d: d.key,
    detail="",  # a domain, not an object: enter shows its nodes (CapacityScreen)
    search_text=_capacity_search,
    default_sort="scope",
    columns=(
        Column(
            "scope",
            "SCOPE",
            6,
            lambda d, c: d.scope,
            lambda d, c: (SCOPE_ORDER[d.scope], d.name, d.gpu_model),
            hotkey="O",
        ),
        Column("name", "NAME", 12, lambda d, c: d.name, lambda d, c: d.name, flex=True, hotkey="N"),
        Column("model", "GPU", 5, lambda d, c: short_gpu_model(d.gpu_model) or "-", lambda d, c: d.gpu_model),
        Column("zone", "ZONE", 10, lambda d, c: d.zone, lambda d, c: d.zone, priority=4),
        Column(
            "nodes",
            "NODES",
            5,
            lambda d, c: f"{d.nodes:,}",
            lambda d, c: d.nodes,
            justify="right",
            priority=3,
        ),
        Column(
            "free",
            "FREE",
            9,
            _free_cell,
            lambda d, c: d.free,
            justify="right",
            descending=True,
            hotkey="F",
        ),
        Column(
            "whole",
            "WHOLE",
            5,
            lambda d, c: Text(f"{d.whole:,}", "" if d.whole else DIM_STYLE),
            lambda d, c: d.whole,
            justify="right",
            descending=True,
            hotkey="W",
        ),
        *(
            Column(
                f"slots{size}",
                f"{size}GPU",
                4,
                _slot_cell(i),
                lambda d, c, i=i: d.slots[i],  # type: ignore[misc]
                justify="right",
                descending=True,
                priority=1 if size in (1, 8) else 2,
                hotkey="S" if size == 8 else "",
            )
            for i, size in enumerate(SLOT_SIZES)
        ),
        Column(
            "unusable",
            "UNUSABLE",
            8,
            _unusable_cell,
            lambda d, c: d.unusable_share if d.free else math.nan,
            justify="right",
            descending=True,
            hotkey="U",
        ),
        Column(
            "blocked",
            "BLOCKED",
            7,
            _blocked_cell,
            lambda d, c: d.blocked,
            justify="right",
            descending=True,
            priority=2,
            hotkey="B",
        ),
    ),
)
