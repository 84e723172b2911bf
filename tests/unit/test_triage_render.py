"""The registry of kinds, breadcrumbs, Grafana links, event order and durations (issue 13), as pure
functions."""

from __future__ import annotations

from aios_tui.config import PANES as CONFIG_PANES
from aios_tui.config import GrafanaSettings
from aios_tui.domain import Endpoint, Event, Gpu, Node
from aios_tui.render.kinds import PANES, REGISTRY, VIEWS, lookup
from aios_tui.render.table import ENDPOINTS, NODES
from aios_tui.render.triage import EVENTS, PODS, breadcrumb, crumb, event_rows, grafana_url
from aios_tui.render.views import CORDON
from aios_tui.ui.screens.triage import parse_since


def test_one_registry_finds_panes_and_views_by_name_and_alias() -> None:
    assert tuple(PANES) == CONFIG_PANES
    assert lookup("no") is not None and lookup("no").kind is NODES  # type: ignore[union-attr]
    assert lookup(":EP") is not None and lookup(":EP").kind is ENDPOINTS  # type: ignore[union-attr]
    for name in ("pods", "pod", "po"):
        entry = lookup(name)
        assert entry is not None and entry.kind is PODS and not entry.pane and entry.detail == "pod"
    assert lookup("events") is not None and lookup("events").kind is EVENTS  # type: ignore[union-attr]
    assert lookup("health") is not None and lookup("health").kind is CORDON  # type: ignore[union-attr]
    assert lookup("nope") is None
    names = [e.name for e in REGISTRY]
    assert len(names) == len(set(names)) and set(VIEWS) == set(names) - set(PANES)


def test_breadcrumb_steps_and_cut_from_the_left() -> None:
    assert crumb("endpoint", "ml-prod/chat") == "ml-prod/chat"
    assert crumb("pod", "ml-prod/chat-7f9c-x2") == "pod chat-7f9c-x2"
    assert crumb("node", "gpu-a-0001") == "node gpu-a-0001"
    trail = ("Endpoints", "ml-prod/chat", "pod chat-7f9c-x2", "node gpu-a-0001")
    assert breadcrumb(trail, 80).plain == "Endpoints › ml-prod/chat › pod chat-7f9c-x2 › node gpu-a-0001"
    cut = breadcrumb(trail, 30).plain
    assert len(cut) == 30 and cut.startswith("…") and cut.endswith("node gpu-a-0001")
    assert breadcrumb(trail, 80, ascii=True).plain.count(" > ") == 3


def _node(name: str) -> Node:
    return Node(name=name, source="k8s", pool="p", zone="z", instance_type="p5.48xlarge")


def test_grafana_url_per_kind_quoted_and_none_without_a_url() -> None:
    g = GrafanaSettings(url="https://grafana.example.com/")
    node = _node("gpu a/1")
    assert grafana_url(g, "node", node) == "https://grafana.example.com/d/node-exporter?var-node=gpu%20a%2F1"
    gpu = Gpu(node="n1", index=3, uuid="GPU-1", model="H100")
    assert grafana_url(g, "gpu", gpu) == "https://grafana.example.com/d/dcgm?var-node=n1&var-gpu=3"
    ep = Endpoint(namespace="ml-prod", name="chat", source="k8s")
    assert grafana_url(g, "endpoint", ep) == (
        "https://grafana.example.com/d/serving?var-namespace=ml-prod&var-name=chat"
    )
    assert grafana_url(GrafanaSettings(), "node", node) == ""
    assert grafana_url(GrafanaSettings(url="https://g", node=""), "node", node) == ""
    # a placeholder the kind has no value for gives no link rather than a wrong one
    assert grafana_url(GrafanaSettings(url="https://g", node="/d/x?u={uuid}"), "node", node) == ""
    whole = GrafanaSettings(url="https://g", node="https://other/d/{node}")
    assert grafana_url(whole, "node", _node("n1")) == "https://other/d/n1"


def test_events_warnings_first_then_newest() -> None:
    rows = event_rows(
        [
            Event(time=10, kind="node", key="a", reason="Ready"),
            Event(time=5, kind="node", key="a", reason="NotReady", warning=True),
            Event(time=20, kind="node", key="b", reason="XID 79", warning=True),
            Event(time=30, kind="pod", key="ns/p", reason="Pulled"),
        ]
    )
    assert [e.reason for e in rows] == ["XID 79", "NotReady", "Pulled", "Ready"]


def test_parse_since() -> None:
    assert parse_since("15m") == 900
    assert parse_since("2h") == 7200
    assert parse_since("30s") == 30
    assert parse_since("1d") == 86400
    for bad in ("", "m", "15", "x5m", "0m", "-5m", "gpu"):
        assert parse_since(bad) is None, bad


def test_describe_tells_what_a_gpu_needs_and_how_an_endpoint_stands_against_its_objectives() -> None:
    from aios_tui.domain import FleetSnapshot, Pdb
    from aios_tui.render.triage import describe

    now = 10_000.0
    gpu = Gpu("n1", 3, "GPU-x", "NVIDIA H100", xid=79, xid_at=now - 720, remap_pending=True, nvlink_errors=4)
    ep = Endpoint(
        "ml",
        "chat",
        "sim",
        p99_ms=470.0,
        p99_slo_ms=32.0,
        error_rate=0.02,
        error_slo=0.01,
        replicas_desired=3,
    )
    snap = FleetSnapshot(
        timestamp=now,
        nodes=(Node("n1", "sim", "p", "z", "p5.48xlarge", "H100", 8, 8),),
        gpus=(gpu,),
        endpoints=(ep,),
        pdbs=(Pdb("ml", "chat", "ml/chat", disruptions_allowed=1),),
        slo_breached_since={"ml/chat": now - 300},
    )
    text = describe("gpu", "GPU-x", snap, now)
    assert "XID:            79 fallen off the bus, 12m ago" in text
    assert "Do now:         reboot node" in text
    assert "Row remap:      pending" in text and "NVLink errors:  4" in text
    node = describe("node", "n1", snap, now)
    assert "Verdict:        reboot: gpu3 XID 79 fallen off the bus, 12m ago → reboot node" in node
    text = describe("endpoint", "ml/chat", snap, now)
    assert "p50 / p99:      N/A / 470 ms (objective 32 ms)" in text
    assert "Errors:         2.00% (objective 1.00%)" in text
    assert "SLO:            breached for 5m" in text
    assert "Disruption:     PDB chat: 1 disruptions allowed now" in text
    assert describe("pod", "ml/gone", snap, now) == "pod ml/gone is no longer in the fleet."
