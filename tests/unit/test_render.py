"""Pure renderers: declared columns, layout, filtering, sorting, glyphs and the header."""

from __future__ import annotations

import math
from dataclasses import replace

from rich.console import Console
from rich.text import Text

from aios_tui.domain import (
    NA,
    Endpoint,
    FleetSnapshot,
    Gpu,
    Hpa,
    Job,
    JobState,
    Node,
    SourceHealth,
    SourceState,
)
from aios_tui.domain.clock import FrozenClock
from aios_tui.render.glyphs import bar, heat_cells, sparkline
from aios_tui.render.header import header_lines
from aios_tui.render.kinds import REGISTRY, lookup
from aios_tui.render.table import (
    ENDPOINTS,
    GPUS,
    JOBS,
    NODES,
    Column,
    RowCtx,
    fit_qualified,
    layout,
    matches,
    render_header,
    render_row,
    select_rows,
)
from aios_tui.sources.sim import SimSource


def _snapshot() -> FleetSnapshot:
    nodes = (
        Node("gpu-a-001", "t", "h100-a", "us-east-1a", "p5.48xlarge", "H100", 8, 8, 8, price_per_hour=98.32),
        Node(
            "gpu-a-002",
            "t",
            "h100-a",
            "us-east-1a",
            "p5.48xlarge",
            "H100",
            8,
            8,
            0,
            cordoned=True,
            price_per_hour=98.32,
        ),
        Node("cpu-001", "t", "cpu", "us-east-1b", "m7i.8xlarge", price_per_hour=1.61),
    )
    gpus = tuple(
        Gpu(
            "gpu-a-001",
            i,
            f"GPU-a1-{i}",
            "H100",
            util=95.0 if i else 1.0,
            mem_used=60000,
            mem_total=81559,
            temp=70 + i,
            power=600,
            power_limit=700,
            pod="ml/train-0",
        )
        for i in range(8)
    ) + tuple(Gpu("gpu-a-002", i, f"GPU-a2-{i}", "H100", util=0.0, temp=35) for i in range(8))
    jobs = (
        Job("ml", "train", "t", 1, 8, "H100", JobState.RUNNING, placement=("gpu-a-001",)),
        Job(
            "ml",
            "big",
            "t",
            16,
            8,
            "H100",
            JobState.QUEUED,
            queue_position=1,
            pending_reason="needs 16×8 H100 in one zone",
        ),
    )
    eps = (
        Endpoint(
            "prod",
            "llm",
            "t",
            model="llama-3-70b",
            replicas_desired=3,
            replicas_ready=2,
            qps=120.0,
            p50_ms=80.0,
            p99_ms=2500.0,
            p99_slo_ms=1000.0,
            error_rate=0.02,
            hpa=Hpa("llm", 2, 8, "qps", 50.0, 60.0),
        ),
        Endpoint("prod", "embed", "t", model="bge", replicas_desired=1, replicas_ready=1, qps=NA),
    )
    health = (SourceHealth("sim", "sim", SourceState.OK, last_ok=100.0),)
    return FleetSnapshot(100.0, nodes, gpus, (), jobs, eps, (), health, "sim")


def test_layout_drops_low_priority_columns_and_gives_spare_width_to_flex() -> None:
    wide = layout(NODES.columns, 200)
    narrow = layout(NODES.columns, 76)
    assert len(narrow) < len(wide) == len(NODES.columns)
    assert sum(w for _, w in narrow) + len(narrow) - 1 <= 76
    assert {c.key for c, _ in narrow} >= {"name", "status", "alloc", "gpus", "util"}
    name_width = dict((c.key, w) for c, w in wide)["name"]
    assert sum(w for _, w in wide) + len(wide) - 1 == 200 and name_width > 18


def test_node_row_shows_allocation_heat_cells_and_status() -> None:
    snap = _snapshot()
    ctx = RowCtx(snap, 100.0)
    cols = layout(NODES.columns, 120)
    busy = render_row(cols, snap.nodes[0], ctx).plain
    cordoned = render_row(cols, snap.nodes[1], ctx).plain
    assert "8/8" in busy and "Ready" in busy and "█" in busy and "▁" in busy  # one GPU idle at 1%
    assert "Cordoned" in cordoned and "········" in cordoned and "0/8" in cordoned
    assert "83%" in busy  # mean of 1 and seven 95s


def test_header_counts_columns_and_sort_arrow() -> None:
    cols = layout(GPUS.columns, 100)
    assert "UTIL↓" in render_header(cols, "util", True).plain
    assert "UTILv" in render_header(cols, "util", True, ascii=True).plain


def test_filter_terms_and_negation() -> None:
    assert matches("gpu-a-001 h100 ready", ["h100", "ready"])
    assert not matches("gpu-a-001 h100 ready", ["h100", "!ready"])
    snap = _snapshot()
    ctx = RowCtx(snap, 100.0)
    assert [n.name for n in select_rows(NODES, snap, ctx, filter_text="cordoned")] == ["gpu-a-002"]
    assert len(select_rows(GPUS, snap, ctx, filter_text="!free")) == 8


def test_sort_puts_na_last_both_ways() -> None:
    snap = _snapshot()
    ctx = RowCtx(snap, 100.0)
    up = [e.name for e in select_rows(ENDPOINTS, snap, ctx, sort_key="qps")]
    assert up == ["llm", "embed"]
    util = select_rows(GPUS, snap, ctx, sort_key="util", reverse=True)
    assert float(util[0].util) == 95.0 and float(util[-1].util) == 0.0


def test_jobs_show_why_pending_and_queue_position() -> None:
    snap = _snapshot()
    cols = layout(JOBS.columns, 110)
    queued = render_row(cols, snap.jobs[1], RowCtx(snap, 100.0)).plain
    assert "Queued #1" in queued and "needs 16×8 H100" in queued and "16×8" in queued


def test_endpoint_row_flags_latency_and_errors() -> None:
    snap = _snapshot()
    text = render_row(layout(ENDPOINTS.columns, 120), snap.endpoints[0], RowCtx(snap, 100.0))
    assert "2/3" in text.plain and "2500/1000" in text.plain and "2.0%" in text.plain and "2-8" in text.plain
    assert " BREACH " in text.plain  # in words; no poller followed it, so no duration
    styles = {str(span.style) for span in text.spans}
    assert "bold red" in styles  # p99 2.5 s against a 1 s objective, 2% errors


def test_glyphs() -> None:
    assert bar(50, 4).plain == "██  "
    assert bar(50, 4, ascii=True).plain == "##.."
    assert bar(NA, 4).plain == "N/A "  # type: ignore[arg-type]
    assert sparkline([0, 50, 100], 3) == "▁▅█"
    assert sparkline([math.nan, 1.0], 4) == "   █"  # on 0..max, not the data's own min-max
    gpus = [
        Gpu("n", 0, "u0", "H100", util=99, pod="p"),
        Gpu("n", 1, "u1", "H100", util=0),
        Gpu("n", 2, "u2", "H100", xid=79, pod="p"),
        Gpu("n", 3, "u3", "H100"),
    ]
    assert heat_cells(gpus).plain == "█·✗·"
    assert heat_cells(gpus, ascii=True).plain == "@.X."
    no_reading = Gpu("n", 4, "u4", "H100", pod="p")  # allocated, no telemetry
    assert heat_cells([no_reading]).plain == "▪" and heat_cells([no_reading], ascii=True).plain == "o"


def test_header_lines_fit_and_keep_alarms() -> None:
    snap = _snapshot()
    for width in (80, 160):
        line1, line2 = header_lines(snap, 100.0, width, read_only=True)
        assert line1.cell_len <= width and line2.cell_len <= width
        assert "READ-ONLY" in line1.plain and "sim" in line1.plain
        assert "GPUs 8/16 used" in line2.plain
    _, wide = header_lines(snap, 100.0, 200)
    assert "1 idle $12.29/h" in wide.plain and "$198.25/h" in wide.plain and "1 queued" in wide.plain


def test_kind_aliases() -> None:
    assert (e := lookup(":no")) is not None and e.kind is NODES and e.pane
    assert (e := lookup("ep")) is not None and e.kind is ENDPOINTS
    assert (e := lookup("GPU")) is not None and e.kind is GPUS
    assert lookup("nope") is None


def test_node_detail_shows_what_the_cloud_says_and_no_na_in_its_title() -> None:
    from rich.console import Console

    from aios_tui.domain import FleetSnapshot, Node
    from aios_tui.render.detail import node_detail

    now = 1_800_000_000.0
    n = Node(name="i-0abc", source="aws", pool="ec2", zone="us-east-1a", instance_type="p5.48xlarge",
             gpu_model="H100", gpus_total=8, gpus_allocatable=8, price_per_hour=41.0, lifecycle="spot",
             launched_at=now - 2 * 3600, instance_state="running")  # fmt: skip
    console = Console(width=100, record=True)
    console.print(node_detail(n, FleetSnapshot(timestamp=now, nodes=(n,)), now, lambda *a: [], 100, False))
    text = console.export_text()
    assert "$41.00/h (spot)" in text
    assert "Cloud        running, launched 2h ago" in text
    assert "N/A" not in text.splitlines()[0]  # no readings: the title says nothing rather than "N/A%"


def test_pool_kind_fits_its_column() -> None:
    from aios_tui.domain import NodePool
    from aios_tui.render.views import POOLS

    (kind,) = [c for c in POOLS.columns if c.key == "kind"]
    cells = [
        str(kind.cell(NodePool(name="n", source="s", instance_type="p5.48xlarge", kind=k), None))  # type: ignore[arg-type]
        for k in ("eks-nodegroup", "asg", "", "gke-nodepool", "aks-agentpool", "mig", "vmss")
    ]
    assert cells == ["eks", "asg", "sim", "gke", "aks", "mig", "vmss"]
    assert all(len(c) <= kind.width for c in cells)


def test_a_pool_counting_weighted_units_says_units_and_raises_no_size_warning() -> None:
    from aios_tui.domain import NodePool
    from aios_tui.render.views import POOLS

    plain = NodePool(name="a", source="aws", instance_type="g5.xlarge", nodes=3, desired=12)
    weighted = NodePool(name="b", source="aws", instance_type="g5.xlarge", nodes=3, desired=12,
                        capacity_weights=("g5.xlarge=1", "g5.12xlarge=4"))  # fmt: skip
    (size,) = [c for c in POOLS.columns if c.key == "nodes"]
    snap = FleetSnapshot(timestamp=0.0, pools=(plain, weighted))
    cells = [size.cell(p, RowCtx(snap, 0.0)) for p in (plain, weighted)]
    assert [str(c) for c in cells] == ["3/12", "3/12u"]
    assert cells[0].style and not cells[1].style  # 3 of 12 machines is worth a look; 3 of 12 units is not


# --- lost, unknown, busy without a pod, one health ---------------------------------------------------------


def _cell(kind: object, key: str, obj: object, snap: FleetSnapshot, now: float = 1000.0) -> str:
    col = next(c for c in kind.columns if c.key == key)  # type: ignore[attr-defined]
    return str(col.cell(obj, RowCtx(snap, now)))


def test_a_lost_node_and_gpu_say_so_instead_of_showing_old_readings_as_current() -> None:
    node = Node("box", "prom", "p", "z", "p5", "H100", 1, 1, 1, lost_since=700.0)
    gpu = Gpu(node="box", index=0, uuid="GPU-1", model="H100", util=100.0, lost_since=700.0)
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node,), gpus=(gpu,))
    assert _cell(NODES, "status", node, snap) == "Lost 5m"
    assert _cell(GPUS, "util", gpu, snap) == "lost 5m"


def test_a_gpu_busy_with_processes_and_no_pod_is_in_use_and_shows_them() -> None:
    from aios_tui.domain import GpuProcess
    from aios_tui.render.detail import gpu_detail

    procs = (GpuProcess(4242, "alice", 70_000.0, "python"), GpuProcess(4343, "bob", 1024.0, "torchrun"))
    gpu = Gpu(node="box", index=0, uuid="GPU-1", model="H200", util=100.0, mem_used=71_000.0, processes=procs)
    idle = Gpu(node="box", index=1, uuid="GPU-2", model="H200", util=0.0)
    snap = FleetSnapshot(timestamp=0.0, gpus=(gpu, idle))
    assert gpu.in_use and not idle.in_use
    assert snap.totals.gpus_used == 1
    assert _cell(GPUS, "pod", gpu, snap) == "python (4242) +1"
    text = _plain(gpu_detail(gpu, snap, 0.0, lambda *_: [], 120, False))
    assert "4242 alice 68.4GiB python; 4343 bob 1.0GiB torchrun" in text


def test_unknown_replicas_are_not_zero() -> None:
    ep = Endpoint("ml", "chat", "prom", replicas_known=False, qps=12.0)
    assert _cell(ENDPOINTS, "ready", ep, FleetSnapshot(timestamp=0.0, endpoints=(ep,))) == "?"


def test_the_gpu_detail_leaves_out_a_limit_it_does_not_know() -> None:
    from aios_tui.render.detail import gpu_detail

    gpu = Gpu(node="n", index=0, uuid="GPU-1", model="H100", power=690.0, sm_clock=1980.0)
    text = _plain(gpu_detail(gpu, FleetSnapshot(timestamp=0.0, gpus=(gpu,)), 0.0, lambda *_: [], 120, False))
    assert "690 W" in text and "N/A W" not in text and "limit" not in text
    assert "1980 MHz" in text and "of N/A" not in text
    memory = next(line for line in text.splitlines() if line.startswith("Memory"))
    assert memory.split() == ["Memory", "N/A"]


def test_a_node_detail_shows_the_worst_of_its_gpus_health() -> None:
    from aios_tui.render.detail import node_detail

    node = Node("box", "prom", "p", "z", "p5", "H100", 1, 1, 1)
    bad = Gpu(node="box", index=0, uuid="GPU-1", model="H100", xid=79)
    snap = FleetSnapshot(timestamp=0.0, nodes=(node,), gpus=(bad,))
    text = _plain(node_detail(node, snap, 0.0, lambda *_: [], 120, False))
    health = next(line for line in text.splitlines() if line.strip().startswith("Health"))
    assert "gpu0 XID 79 (fallen off the bus)" in health and " ok" not in health


def test_the_health_view_says_what_a_node_hits_and_why() -> None:
    from aios_tui.render.views import CORDON

    node = Node("box", "prom", "p", "z", "p5", "H100", 2, 2, 2)
    gpus = (
        Gpu(node="box", index=0, uuid="GPU-1", model="H100", xid=79, xid_at=280.0, pod="ml/a"),
        Gpu(node="box", index=1, uuid="GPU-2", model="H100", pod="ml/b"),
    )
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node,), gpus=gpus)
    [verdict] = CORDON.rows(snap)
    # Only telemetry knows the node: the pods its GPUs hold are what a drain hits.
    assert _cell(CORDON, "hits", verdict, snap) == "ml/a, ml/b"
    assert _cell(CORDON, "verdict", verdict, snap) == "reboot"
    assert _cell(CORDON, "why", verdict, snap) == "gpu0 XID 79 fallen off the bus, 12m ago → reboot node"
    assert _cell(CORDON, "by", verdict, snap) == "-"


def _plain(renderable: object) -> str:
    import io

    from rich.console import Console

    console = Console(width=160, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_a_failed_gpu_is_marked_where_the_health_column_does_not_fit() -> None:
    bad = Gpu(node="n", index=7, uuid="GPU-1", model="H100", xid=79)
    hot = Gpu(node="n", index=6, uuid="GPU-2", model="H100", temp=90.0)
    fine = Gpu(node="n", index=5, uuid="GPU-3", model="H100")
    snap = FleetSnapshot(timestamp=0.0, gpus=(bad, hot, fine))
    assert [_cell(GPUS, "index", g, snap) for g in (bad, hot, fine)] == ["7✗", "6!", "5 "]
    narrow = [c.key for c, _ in layout(GPUS.columns, 58)]
    assert "index" in narrow and "health" not in narrow  # the pane of the four-pane grid at 120 columns


def test_a_node_detail_gives_the_message_of_a_bad_condition_only() -> None:
    from aios_tui.domain import Condition
    from aios_tui.render.detail import node_detail

    conditions = (
        Condition("Ready", "False", "KubeletNotReady", "PLEG is not healthy"),
        Condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
        Condition("DiskPressure", "True", "KubeletHasDiskPressure", "ephemeral storage at 97%"),
    )
    node = Node("box", "k8s", "p", "z", "p5", "H100", 1, 1, 1, conditions=conditions)
    text = " ".join(_plain(node_detail(node, FleetSnapshot(timestamp=0.0, nodes=(node,)), 0.0,
                                       lambda *_: [], 160, False)).split())  # fmt: skip
    assert "Ready=False (KubeletNotReady: PLEG is not healthy)" in text
    assert "MemoryPressure=False (KubeletHasSufficientMemory)," in text and "sufficient memory" not in text
    assert "DiskPressure=True (KubeletHasDiskPressure: ephemeral storage at 97%)" in text


def test_a_queued_job_shows_the_schedulers_own_words_beside_the_plans() -> None:
    from aios_tui.domain import Job
    from aios_tui.render.detail import job_detail

    job = Job("ml", "train", "k8s", 2, 8, "H100", JobState.QUEUED,
              pending_reason="0/7 nodes are available: 7 Insufficient nvidia.com/gpu")  # fmt: skip
    text = " ".join(_plain(job_detail(job, FleetSnapshot(timestamp=0.0, jobs=(job,)), 0.0,
                                      lambda *_: [], 160, False)).split())  # fmt: skip
    assert "Why pending no node in the fleet has H100 GPUs" in text
    assert "Scheduler says 0/7 nodes are available: 7 Insufficient nvidia.com/gpu" in text


def test_gpu_memory_is_said_in_the_totals_unit_once() -> None:
    def mem(used: float, total: float) -> str:
        gpu = Gpu(node="n", index=0, uuid="GPU-1", model="H100", mem_used=used, mem_total=total)
        return _cell(GPUS, "mem", gpu, FleetSnapshot(timestamp=0.0, gpus=(gpu,)))

    assert mem(73_318.0, 81_559.0) == "71.6/79.6GiB"
    assert mem(615.0, 81_559.0) == "0.6/79.6GiB"  # not 615MiB/79.6GiB, which the column cuts
    assert mem(120_000.0, 143_771.0) == "117/140GiB"
    assert mem(300.0, 1000.0) == "300MiB/1000MiB"
    assert mem(615.0, math.nan) == "615MiB"
    assert mem(math.nan, 81_559.0) == "N/A"


def test_node_and_gpu_detail_give_the_verdict_and_nvidias_actions() -> None:
    from aios_tui.render.detail import gpu_detail, node_detail

    node = Node("box", "k8s", "p", "z", "p5", "H100", 2, 2, 0, cordoned=True, cordoned_by="NVSentinel")
    bad = Gpu(node="box", index=0, uuid="GPU-1", model="H100", xid=79, xid_at=280.0)
    remap = Gpu(node="box", index=1, uuid="GPU-2", model="H100", remap_pending=True, recovery_action="reset")
    snap = FleetSnapshot(timestamp=1000.0, nodes=(node,), gpus=(bad, remap))
    lines = [
        " ".join(line.split())
        for line in _plain(node_detail(node, snap, 1000.0, lambda *_: [], 160, False)).splitlines()
    ]
    assert "Verdict reboot: drain, reboot node" in lines
    assert "Cordoned by NVSentinel" in lines
    assert "gpu0 XID 79 fallen off the bus (ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS), 12m ago" in lines
    assert "gpu0 do now reboot node" in lines
    assert any(line.startswith("gpu0 then check the PCIe link went down") for line in lines)
    assert (
        "gpu1 Recovery action reset" in lines
        and "gpu1 Row remap pending: applied at the next GPU reset" in lines
    )

    text = _plain(gpu_detail(remap, snap, 1000.0, lambda *_: [], 160, False))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    assert "Recovery action reset" in lines and "Row remap pending: applied at the next GPU reset" in lines
    assert not any("do now" in line for line in lines)  # no XID: no XID guidance


def test_a_qualified_name_too_long_keeps_the_end_of_its_name() -> None:
    from aios_tui.render.table import fit_qualified

    assert fit_qualified("team-vision/dpo-align-0052", 26) == "team-vision/dpo-align-0052"
    assert fit_qualified("team-vision/dpo-align-0052", 24) == "team-vis…/dpo-align-0052"
    assert fit_qualified("team-vision/dpo-align-0052", 17) == "t…/dpo-align-0052"
    assert fit_qualified("team-vision/dpo-align-0052", 12) == "…-align-0052"
    assert fit_qualified("no-namespace-here-at-all", 10) == "…re-at-all"
    assert all(len(fit_qualified("team-vision/dpo-align-0052", w)) == w for w in range(4, 26))


def test_endpoints_sort_breaching_first_then_by_name_so_rows_stay_put() -> None:
    """Breaching (the longest breach the poller follows first), then the others by name, whatever their
    readings; those that cannot be judged last. A p99 that jitters, even across 70 % of its objective,
    does not move its row (it did at every refresh when sorted by the ratio or by a "near" band)."""

    def ep(name: str, p99: float, slo: float = 100.0) -> Endpoint:
        return Endpoint("ml", name, "s", p99_ms=p99, p99_slo_ms=slo)

    eps = (
        ep("a-ok", 50.0),
        ep("b-near", 80.0),
        ep("c-ok", 10.0),
        ep("d-breach", 120.0),
        ep("e-old-breach", 101.0),
        ep("f-unjudged", 50.0, NA),
        ep("g-near", 75.0),
    )
    snap = FleetSnapshot(0.0, endpoints=eps, slo_breached_since={"ml/e-old-breach": 10.0})
    ctx = RowCtx(snap, 100.0)
    order = [e.name for e in select_rows(ENDPOINTS, snap, ctx)]
    assert order == ["e-old-breach", "d-breach", "a-ok", "b-near", "c-ok", "g-near", "f-unjudged"]
    jittered = FleetSnapshot(0.0, endpoints=(ep("a-ok", 72.0), ep("c-ok", 60.0)), slo_breached_since={})
    assert [e.name for e in select_rows(ENDPOINTS, jittered, RowCtx(jittered, 100.0))] == ["a-ok", "c-ok"]


def _by_cells(cols: list[tuple[Column, int]], obj: object, ctx: RowCtx) -> Text:
    """The row as the plain reading of "each cell fitted, one space apart" builds it: a Text per cell."""
    parts = []
    for col, width in cols:
        cell = col.cell(obj, ctx)
        if col.qualified and isinstance(cell, str):
            cell = fit_qualified(cell, width)
        text = cell.copy() if isinstance(cell, Text) else Text(cell)
        text.truncate(width, overflow="ellipsis")
        pad = " " * (width - text.cell_len)
        parts.append(Text.assemble(pad, text) if col.justify == "right" else Text.assemble(text, pad))
    return Text(" ").join(parts)


def test_a_row_built_in_one_piece_shows_what_a_text_per_cell_would() -> None:
    # Every kind's rows on a fleet with faults, queues, lost and cordoned nodes, at widths that cut names
    # and drop columns: the same characters with the same style at every position.
    clock = FrozenClock(1_795_000_000.0)
    data = SimSource(seed=3, nodes=120, clock=clock, start=clock()).fetch_now()
    snap = FleetSnapshot(
        timestamp=clock(), nodes=data.nodes, gpus=data.gpus, pods=data.pods, jobs=data.jobs,
        endpoints=data.endpoints, pools=data.pools,
    )  # fmt: skip
    console = Console(width=400, color_system="truecolor")
    ctx = RowCtx(snap, clock())
    checked = cut = 0
    for kind in (e.kind for e in REGISTRY):
        for width in (60, 97, 160):
            cols = layout(kind.columns, width)
            for obj in list(kind.rows(snap))[:40]:
                want, got = _by_cells(cols, obj, ctx), render_row(cols, obj, ctx)
                assert got.plain == want.plain
                styles = [got.get_style_at_offset(console, i) for i in range(len(got))]
                assert styles == [want.get_style_at_offset(console, i) for i in range(len(want))]
                checked += 1
                cut += "…" in got.plain
    assert checked > 700 and cut > 50


def test_a_row_whose_object_and_inputs_are_as_before_renders_as_before() -> None:
    # A table keeps the text of a row whose object and declared inputs (ResourceKind.inputs) did not change.
    # Over a minute of a live fleet, with lost nodes and GPUs whose ages move and ASCII mode switched on and
    # off: wherever the object and the inputs are the same as at the last refresh, the row the
    # columns render is the same text. An input a column reads and `inputs` leaves out fails here.
    clock = FrozenClock(1_795_000_000.0)
    src = SimSource(seed=3, nodes=120, clock=clock, start=clock())
    last: dict[tuple[str, str], tuple[object, tuple[object, ...], Text]] = {}
    kept = 0
    first = src.fetch_now()
    lost_at = clock() - 45.0  # three nodes and their GPUs stopped reporting then: their last readings stay
    lost = {n.name: replace(n, lost_since=lost_at) for n in first.nodes[:3]}
    lost_gpus = {g.uuid: replace(g, lost_since=lost_at) for g in first.gpus if g.node in lost}
    for step in range(8):
        data = src.fetch_now()
        nodes = tuple(lost.get(n.name, n) for n in data.nodes)
        gpus = tuple(lost_gpus.get(g.uuid, g) for g in data.gpus)
        snap = FleetSnapshot(timestamp=clock(), nodes=nodes, gpus=gpus, pods=data.pods, jobs=data.jobs)
        ctx = RowCtx(snap, clock(), ascii=step in (3, 4, 5))
        for kind in (NODES, GPUS):
            assert kind.inputs is not None
            cols = layout(kind.columns, 160)
            for obj in kind.rows(snap):
                key, inputs, text = (
                    (kind.name, kind.key(obj)),
                    kind.inputs(obj, ctx),
                    render_row(cols, obj, ctx),
                )
                was = last.get(key)
                if was is not None and was[0] == obj and was[1] == inputs:
                    assert text == was[2], key
                    kept += 1
                last[key] = (obj, inputs, text)
        clock.advance(20.0 if step % 3 else 2.0)
    assert kept > 500
    assert any("Lost" in t.plain for _, _, t in last.values())
