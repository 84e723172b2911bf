"""Neuron devices and fractional GPUs are shown, never offered to a request for GPUs."""

from __future__ import annotations

import pytest

from aios_tui.alloc.freecap import free_capacity
from aios_tui.alloc.placement import GangRequest, Placement, Refusal, place_gang
from aios_tui.alloc.whatif import capacity_whatif
from aios_tui.domain import FleetSnapshot, is_gpu_model
from tests.alloc.test_placement import node
from tests.alloc.test_whatif import pool


@pytest.mark.parametrize(
    ("model", "gpu"),
    [
        ("H100", True),
        ("B200", True),
        ("L4", True),
        ("Trainium", False),
        ("Trainium2", False),
        ("Inferentia2", False),
        ("L4 (1/8 GPU)", False),
        ("", True),  # a GPU node without a model label: its GPUs still count
    ],
)
def test_which_models_are_gpus(model: str, gpu: bool) -> None:
    assert is_gpu_model(model) is gpu


def test_a_request_for_any_gpu_never_lands_on_trainium_or_a_fraction_of_a_gpu() -> None:
    nodes = (
        node("trn", model="Trainium", alloc=16),
        node("g6f", model="L4 (1/8 GPU)", alloc=1),
        node("h", model="H100", used=8),
    )
    snapshot = FleetSnapshot(
        timestamp=0.0, nodes=nodes, pools=(pool("trn1", "z1", model="Trainium", gpus=16),)
    )
    got = place_gang(snapshot, GangRequest(1, 1))
    assert isinstance(got, Refusal), got
    assert snapshot.totals.gpus_free == 0
    assert free_capacity(snapshot)[1].free == 0
    assert capacity_whatif(snapshot, GangRequest(1, 8)) is None  # no pool of GPUs to grow
    more = FleetSnapshot(timestamp=0.0, nodes=(*nodes, node("h2", model="H100")))
    placed = place_gang(more, GangRequest(1, 1))
    assert isinstance(placed, Placement) and placed.nodes == ("h2",)


def test_a_gpu_node_without_a_model_label_still_offers_its_gpus() -> None:
    snapshot = FleetSnapshot(
        timestamp=0.0, nodes=(node("trn", model="Trainium", alloc=16), node("u", model=""))
    )
    placed = place_gang(snapshot, GangRequest(1, 2))
    assert isinstance(placed, Placement) and placed.nodes == ("u",)
    assert snapshot.totals.gpus_free == 8 and free_capacity(snapshot)[1].free == 8
