"""bench/bench_trace.py on a pod list in the trace's format: every policy runs, the engine's included."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_trace

NODES = """sn,cpu_milli,memory_mib,gpu,model
openb-node-0000,64000,262144,2,T4
openb-node-0001,96000,393216,8,G2
"""
PODS = """name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos
p0,8000,16384,1,1000,,LS
p1,4000,8192,1,500,,LS
p2,4000,8192,1,500,T4,LS
p3,32000,65536,4,1000,G2,LS
p4,2000,4096,0,0,,LS
p5,8000,16384,1,1000,V100M16,LS
"""


def test_every_policy_runs_on_a_pod_list_in_the_trace_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "nodes.csv").write_text(NODES)
    (tmp_path / "pods.csv").write_text(PODS)
    bench_trace.main(
        [
            "--nodes",
            str(tmp_path / "nodes.csv"),
            "--pods",
            str(tmp_path / "pods.csv"),
            "--seeds",
            "2",
            "--json",
        ]
    )
    runs = json.loads(capsys.readouterr().out)
    assert {r["policy"] for r in runs} == set(bench_trace.POLICIES)
    engine = [r for r in runs if r["policy"] == "engine"]
    assert len(engine) == 2
    for r in engine:
        # The V100M16 task fits nowhere (no such node); every other task fits in 10 GPUs.
        assert r["failed"] >= 1
        assert r["failed_kinds"].get("1-gpu", [0])[0] >= 1
        arrived, unallocated = r["points"]["end"][:2]
        assert arrived > 0 and 0 <= unallocated < 1


def test_the_engine_places_and_commits_as_the_console_would() -> None:
    free = [
        bench_trace.NodeFree(64000, 262144, (1000, 1000), "T4"),
        bench_trace.NodeFree(96000, 393216, (1000,) * 8, "G2"),
    ]
    pods = [
        bench_trace.Task.parse(4000, 8192, 1, 500, "T4"),
        bench_trace.Task.parse(32000, 65536, 4, 1000, "G2"),
    ]
    engine = bench_trace.EngineRun(free, pods)
    state = list(free)
    for task in pods + pods[:1]:
        pick = engine.place(state, task)
        assert pick is not None
        i, gpus = pick
        state[i] = bench_trace.allocate(state[i], task, gpus)
    # Both T4 shares on one GPU (the fullest with room), the 4-GPU task on the G2 node.
    assert sorted(state[0].gpus) == [0, 1000] and sorted(state[1].gpus) == [0, 0, 0, 0] + [1000] * 4
    assert engine.place(state, bench_trace.Task.parse(64000, 1, 1, 1000, "T4")) is None  # no CPU left for it
