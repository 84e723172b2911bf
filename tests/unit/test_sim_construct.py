"""The embedded fleet's fast constructors make the very objects the dataclasses' own would."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from aios_tui.domain import Endpoint, Gpu, GpuProcess, Job, Pod, PodPhase, Throttle
from aios_tui.sources.sim.construct import (
    builder,
    make_endpoint,
    make_job,
    new_gpu,
    new_pod,
    positional,
    replace_pod,
    replacer,
)

GPU_FIELDS = {
    "node": "gpu-0001",
    "index": 3,
    "uuid": "GPU-1",
    "model": "NVIDIA H100 80GB HBM3",
    "util": 97.0,
    "mem_used": 70000.0,
    "mem_total": 81559,
    "temp": 71.0,
    "power": 690.5,
    "power_limit": 700,
    "sm_clock": 1455.0,
    "sm_clock_max": 1980,
    "xid": 79,
    "ecc_uncorrected": 2,
    "ecc_corrected": 5,
    "throttle": Throttle.SW_POWER_CAP,
    "pod": "ns/p",
    "low_since": 1.5,
    "processes": (GpuProcess(7, "root", 10.0, "python"),),
    "xid_at": 9.0,
    "recovery_action": "reset",
    "remap_pending": True,
    "remap_failed": True,
    "nvlink_errors": 4,
    "lost_since": 2.0,
}


def test_new_gpu_is_gpu() -> None:
    assert set(GPU_FIELDS) == {f.name for f in dataclasses.fields(Gpu)}  # every field set, none default
    fast, slow = new_gpu(**GPU_FIELDS), Gpu(**GPU_FIELDS)
    assert type(fast) is Gpu and fast == slow and repr(fast) == repr(slow) and hash(fast) == hash(slow)
    least = {"node": "n", "index": 0, "uuid": "u", "model": "m"}
    assert repr(new_gpu(**least)) == repr(Gpu(**least))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.util = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        new_gpu(node="n", index=0, uuid="u")  # model is required, as Gpu() has it
    with pytest.raises(TypeError):
        new_gpu(node="n", index=0, uuid="u", model="m", utilisation=3.0)


def test_positional_takes_the_named_fields_in_order_and_defaults_the_rest() -> None:
    names = ("uuid", "node", "index", "model", "power", "temp", "throttle")  # not in field order
    make = positional(Gpu, *names)
    fast = make(*(GPU_FIELDS[n] for n in names))
    slow = Gpu(**{n: GPU_FIELDS[n] for n in names})
    assert type(fast) is Gpu and repr(fast) == repr(slow) and hash(fast) == hash(slow)
    with pytest.raises(ValueError, match="without a default"):
        positional(Gpu, "node", "index", "uuid")
    with pytest.raises(ValueError, match="unknown"):
        positional(Gpu, "node", "index", "uuid", "model", "utilisation")


def test_the_sims_gpu_reading_puts_each_value_in_its_field() -> None:
    # read_gpu passes 19 values positionally: each is compared with where it comes from (the GPU, its node,
    # its model's spec, the readings the telemetry draws), so that two values of one type swapped fail.
    from aios_tui.sources.sim import SimSource

    t = 1_795_000_000.0
    src = SimSource(seed=5, nodes=60, clock=lambda: t)
    src.fetch_now()
    fleet, tel = src._f, src._tel
    checked = 0
    for pos, sim in enumerate(fleet.gpus):
        node, spec = sim.node, sim.node.spec
        assert spec is not None
        values = tel.gpu_values(fleet, pos, t)
        if values is None:
            continue
        g = tel.read_gpu(fleet, pos, t)
        assert (g.util, g.mem_used, g.temp, g.power, g.sm_clock, g.throttle) == values
        assert (g.node, g.index, g.uuid, g.model) == (node.name, sim.index, sim.uuid, spec.name)
        assert (g.mem_total, g.power_limit, g.sm_clock_max) == (
            spec.mem_total,
            spec.power_limit,
            spec.sm_clock_max,
        )
        assert g.pod == node.owners[sim.index] and g.remap_pending == (sim.index == node.remap_gpu)
        assert g.recovery_action == ("reset" if g.remap_pending else "none")
        assert g.nvlink_errors == (node.nvlink_errors if sim.index == node.nvlink_gpu else 0)
        checked += 1
    assert checked > 300


def test_new_pod_and_replace_pod() -> None:
    pod = new_pod(namespace="ns", name="p", node="a", phase=PodPhase.PENDING, gpus=8, containers=("x",))
    assert pod == Pod("ns", "p", "a", PodPhase.PENDING, gpus=8, containers=("x",))
    moved = replace_pod(pod, node="b", ready=True, phase=PodPhase.RUNNING)
    assert repr(moved) == repr(dataclasses.replace(pod, node="b", ready=True, phase=PodPhase.RUNNING))
    assert pod.node == "a" and not pod.ready  # the old one is untouched
    with pytest.raises(TypeError, match=r"no such fields: \['nod'\]"):
        replace_pod(pod, nod="b")


def test_the_sims_jobs_and_endpoints_are_the_dataclasses_own() -> None:
    from aios_tui.sources.sim import SimSource

    assert make_job(namespace="ns", name="j", source="s", workers=2, gpus_per_worker=8) == Job(
        "ns", "j", "s", 2, 8
    )
    assert repr(make_endpoint(namespace="ns", name="e", source="s")) == repr(Endpoint("ns", "e", "s"))
    data = SimSource(seed=5, nodes=60, clock=lambda: 1_795_000_000.0).fetch_now()
    for obj in (*data.jobs, *data.endpoints):
        cls = type(obj)
        assert cls in (Job, Endpoint)
        same = cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)})
        assert repr(obj) == repr(same) and hash(obj) == hash(same)


@dataclass(frozen=True, slots=True)
class _Checked:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must not be negative")


@dataclass(frozen=True)
class _NoSlots:
    x: int


@dataclass(frozen=True, slots=True)
class _Factory:
    x: list[int] = field(default_factory=list)


@pytest.mark.parametrize("cls", [_Checked, _NoSlots, _Factory])
def test_classes_it_cannot_build_the_same_get_their_own(cls: type) -> None:
    assert builder(cls) is cls
    assert replacer(cls) is dataclasses.replace
