"""The embedded fleet's fast constructors make the very objects the dataclasses' own would."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from aios_tui.domain import Gpu, GpuProcess, Pod, PodPhase, Throttle
from aios_tui.sources.sim.construct import builder, new_gpu, new_pod, replace_pod, replacer

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


def test_new_pod_and_replace_pod() -> None:
    pod = new_pod(namespace="ns", name="p", node="a", phase=PodPhase.PENDING, gpus=8, containers=("x",))
    assert pod == Pod("ns", "p", "a", PodPhase.PENDING, gpus=8, containers=("x",))
    moved = replace_pod(pod, node="b", ready=True, phase=PodPhase.RUNNING)
    assert repr(moved) == repr(dataclasses.replace(pod, node="b", ready=True, phase=PodPhase.RUNNING))
    assert pod.node == "a" and not pod.ready  # the old one is untouched
    with pytest.raises(TypeError, match=r"no such fields: \['nod'\]"):
        replace_pod(pod, nod="b")


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
