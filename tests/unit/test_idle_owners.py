"""The idle GPUs rolled up by the workload that holds them: GPU count, $/h, since when, dearest first."""

from __future__ import annotations

import math

from aios_tui.domain import Endpoint, FleetSnapshot, Gpu, Job, Node, Pod, PodPhase
from aios_tui.render.table import RowCtx, layout, render_row, select_rows
from aios_tui.render.views import IDLE_OWNERS, idle_owners, idle_summary


def _snapshot() -> FleetSnapshot:
    nodes = (
        Node("a", "k", "", "", "", gpus_total=8, price_per_hour=80.0),
        Node("b", "k", "", "", "", gpus_total=4, price_per_hour=8.0),
        Node("bare", "k", "", "", "", gpus_total=1),  # unpriced
    )
    pods = (
        Pod("ml", "serve-1", "a", PodPhase.RUNNING, 1, "ReplicaSet", "ml/serve"),
        Pod("ml", "serve-2", "b", PodPhase.RUNNING, 1, "ReplicaSet", "ml/serve"),
        Pod("nlp", "train-0", "a", PodPhase.RUNNING, 2, "Job", "nlp/train"),
        Pod("dev", "shell", "bare", PodPhase.RUNNING, 1),
    )
    gpus = (
        Gpu("a", 0, "u0", "H100", util=1.0, pod="ml/serve-1", low_since=900.0),
        Gpu("b", 0, "u1", "L4", util=0.0, pod="ml/serve-2", low_since=500.0),
        Gpu("a", 1, "u2", "H100", util=2.0, pod="nlp/train-0", low_since=950.0),
        Gpu("a", 2, "u3", "H100", util=2.0, pod="nlp/train-0", low_since=990.0),
        Gpu("bare", 0, "u4", "T4", util=0.0, pod="dev/shell", low_since=100.0),
        Gpu("a", 3, "u5", "H100", util=90.0, pod="nlp/train-0"),  # busy: not idle
    )
    return FleetSnapshot(
        timestamp=1000.0,
        nodes=nodes,
        gpus=gpus,
        pods=pods,
        endpoints=(Endpoint("ml", "serve", "k"),),
        jobs=(Job("nlp", "train", "k", 1, 2),),
        idle_window=0.0,
    )


def test_owners_roll_up_their_idle_gpus() -> None:
    snap = _snapshot()
    owners = {o.key: o for o in idle_owners(snap)}
    assert set(owners) == {"ml/serve", "nlp/train", "dev/shell"}
    serve, train, shell = owners["ml/serve"], owners["nlp/train"], owners["dev/shell"]
    assert (serve.kind, serve.gpus, serve.nodes, serve.cost_per_hour, serve.since) == (
        "endpoint",
        2,
        2,
        12.0,
        500.0,
    )
    assert (train.kind, train.gpus, train.nodes, train.cost_per_hour, train.since) == (
        "job",
        2,
        1,
        20.0,
        950.0,
    )
    assert (shell.kind, shell.gpus, shell.namespace, shell.name) == ("pod", 1, "dev", "shell")
    assert math.isnan(shell.cost_per_hour)  # unknown, not $0


def test_dearest_first_and_the_summary_counts_owners() -> None:
    snap = _snapshot()
    ctx = RowCtx(snap, 1000.0)
    rows = select_rows(IDLE_OWNERS, snap, ctx)
    assert [r.key for r in rows] == ["nlp/train", "ml/serve", "dev/shell"]  # unpriced last
    cols = layout(IDLE_OWNERS.columns, 80)
    assert render_row(cols, rows[0], ctx).plain.split() == ["nlp", "train", "job", "2", "1", "50s", "20.00"]
    assert render_row(cols, rows[2], ctx).plain.split()[-1] == "N/A"
    text = idle_summary(snap, rows).plain
    assert text == "5 allocated GPUs under 5% for ≥ now: $32.00/h in 3 workloads"
    kept = select_rows(IDLE_OWNERS, snap, ctx, filter_text="ml")
    assert idle_summary(snap, kept, filtered=True).plain.endswith("(shown: 2 GPUs, $12.00/h)")
