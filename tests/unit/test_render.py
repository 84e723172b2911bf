"""Pure renderers: declared columns, layout, filtering, sorting, glyphs and the header."""

from __future__ import annotations

import math

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
from aios_tui.render.glyphs import bar, heat_cells, sparkline
from aios_tui.render.header import header_lines
from aios_tui.render.table import (
    ENDPOINTS,
    GPUS,
    JOBS,
    NODES,
    RowCtx,
    kind_for,
    layout,
    matches,
    render_header,
    render_row,
    select_rows,
)


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
    assert "2/3" in text.plain and "2500ms" in text.plain and "2.0%" in text.plain and "2-8" in text.plain
    styles = {str(span.style) for span in text.spans}
    assert "bold red" in styles  # p99 2.5 s against a 1 s objective, 2% errors


def test_glyphs() -> None:
    assert bar(50, 4).plain == "██  "
    assert bar(50, 4, ascii=True).plain == "##.."
    assert bar(NA, 4).plain == "N/A "  # type: ignore[arg-type]
    assert sparkline([0, 50, 100], 3) == "▁▅█"
    assert sparkline([math.nan, 1.0], 4) == "   ▄"
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
    assert kind_for(":no".lstrip(":")) is NODES
    assert kind_for("ep") is ENDPOINTS
    assert kind_for("GPU") is GPUS
    assert kind_for("nope") is None


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
        for k in ("eks-nodegroup", "asg", "")
    ]
    assert cells == ["eks", "asg", "sim"]
    assert all(len(c) <= kind.width for c in cells)
