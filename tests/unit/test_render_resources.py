"""CPU, memory and shared GPUs on the screens: the node detail, the Nodes table, describe and JSON."""

from __future__ import annotations

from rich.console import Console

from aios_tui.domain import FleetSnapshot, MigSlice, Node
from aios_tui.render.detail import node_detail
from aios_tui.render.jsonout import snapshot_to_json
from aios_tui.render.table import NODES, RowCtx, layout, render_header, render_row, select_rows
from aios_tui.render.triage import describe

NOW = 1_800_000_000.0
GIB = 1 << 30

P5 = Node(
    "gpu-a-001", "t", "h100-a", "us-east-1a", "p5.48xlarge", "H100", 8, 8, 8,
    cpu_allocatable=191_450, cpu_requested=169_000,
    memory_allocatable=2046 * GIB, memory_requested=1850 * GIB,
)  # fmt: skip
UNREAD = Node("gpu-b-001", "t", "h100-b", "us-east-1b", "p5.48xlarge", "H100", 8, 8, 4, cpu_requested=12_500)
SLICED = Node(
    "l4-a-001", "t", "l4-a", "us-east-1a", "g6.12xlarge", "L4", 4, 4, 0,
    cpu_allocatable=47_810, cpu_requested=47_810, memory_allocatable=189 * GIB, memory_requested=20 * GIB,
    gpu_sharing="time-slicing", gpu_replicas=4, gpu_milli_requested=3250,
)  # fmt: skip
MIG = Node(
    "a100-a-001", "t", "a100-a", "us-east-1a", "p4de.24xlarge", "A100", 8, 8, 6,
    gpu_sharing="mig", gpu_milli_requested=284,
    mig_slices=(MigSlice("1g.10gb", 7, 2, 142), MigSlice("3g.40gb", 2, 0, 428)),
)  # fmt: skip


def _detail(n: Node) -> str:
    console = Console(width=100, record=True)
    console.print(node_detail(n, FleetSnapshot(timestamp=NOW, nodes=(n,)), NOW, lambda *a: [], 100, False))
    return console.export_text()


def test_the_node_detail_says_what_its_pods_request_of_its_cpu_and_memory() -> None:
    text = _detail(P5)
    assert "Requested    CPU 169 of 191 cores (88%), memory 1.8 of 2.0 TiB (90%)" in text
    assert "GPU sharing" not in text and "shares" not in text


def test_a_node_whose_allocatable_is_unknown_says_unknown_not_zero() -> None:
    text = _detail(UNREAD)
    assert "CPU unknown (its pods request 12.5 cores), memory unknown" in text
    assert "0%" not in text


def test_a_shared_node_shows_its_sharing_and_counts_shared_gpus_as_taken() -> None:
    text = _detail(SLICED)
    assert "GPU sharing  time-slicing ×4: 3.25 GPUs in shares" in text
    assert "0 of 4 allocatable requested, 4 more taken in part by shares (4 × L4)" in text
    assert "CPU 47.8 of 47.8 cores (100%), memory 20.0 of 189 GiB (11%)" in text
    mig = _detail(MIG)
    assert "MIG 1g.10gb 2/7, 3g.40gb 0/2: 0.28 GPUs in slices" in mig
    assert "6 of 8 allocatable requested, 2 more partitioned into MIG slices" in mig
    snap = FleetSnapshot(timestamp=NOW, nodes=(SLICED, MIG))
    assert "GPUs:           4 × L4, 0 requested, 4 more taken in part by shares, 0 free" in describe(
        "node", SLICED.name, snap, NOW
    )
    # The ALLOC column counts a GPU partly taken as used, as gpus_free leaves it out.
    ctx = RowCtx(snap, NOW)
    cols = [(c, w) for c, w in layout(NODES.columns, 200) if c.key in ("name", "alloc")]
    assert render_row(cols, SLICED, ctx).plain.split()[-1] == "4/4" and SLICED.gpus_free == 0
    # MIG: 7 × 1g and 2 × 3g partition 2 GPUs (0.99 + 0.86), used or not
    assert render_row(cols, MIG, ctx).plain.split()[-1] == "8/8" and MIG.gpus_free == 0


def test_the_nodes_table_shows_cpu_and_memory_only_where_there_is_room() -> None:
    snap = FleetSnapshot(timestamp=NOW, nodes=(P5, UNREAD, SLICED))
    ctx = RowCtx(snap, NOW)
    wide = layout(NODES.columns, 120)
    assert {"cpu", "memory"} <= {c.key for c, _ in wide}
    header = render_header(wide, "", False).plain
    assert "CPU" in header and "MEM" in header
    cells = {c.key: i for i, (c, _) in enumerate(wide)}
    row = render_row([wide[cells["cpu"]], wide[cells["memory"]]], P5, ctx).plain.split()
    assert row == ["88%", "90%"]
    assert render_row([wide[cells["cpu"]], wide[cells["memory"]]], UNREAD, ctx).plain.split() == ["-", "-"]
    # At 80 columns (a pane of 78) they give way first: the screen stays as it was.
    narrow = {c.key for c, _ in layout(NODES.columns, 78)}
    assert not {"cpu", "memory", "zone"} & narrow and "pool" in narrow
    busiest = select_rows(NODES, snap, ctx, sort_key="cpu", reverse=True)
    assert [n.name for n in busiest] == [SLICED.name, P5.name, UNREAD.name]  # unknown last


def test_json_carries_the_new_fields() -> None:
    out = snapshot_to_json(FleetSnapshot(timestamp=NOW, nodes=(P5, MIG)))
    p5, mig = out["nodes"]
    assert (p5["cpu_allocatable"], p5["cpu_requested"]) == (191_450, 169_000)
    assert p5["memory_requested"] == 1850 * GIB
    assert mig["gpu_sharing"] == "mig" and mig["gpu_milli_requested"] == 284
    assert mig["mig_slices"][0] == {"profile": "1g.10gb", "allocatable": 7, "requested": 2, "milli": 142}
