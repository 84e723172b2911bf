"""The ATC'23 fragmentation measure and FGD placement on shared GPUs, checked against the authors' own
numbers (their simulator's ``pkg/utils/frag_test.go``, commit 8f3d641) and against cases worked by hand."""

from __future__ import annotations

import pytest

from aios_tui.alloc.fragmentation import (
    Choice,
    NodeFree,
    TargetWorkload,
    Task,
    allocate,
    cluster_fragmentation,
    fgd_choice,
    fits,
    gpu_choices,
    node_fragmentation,
    task_fragmentation,
)

# The typical pods of the authors' test ``TestingGenerateGetTypicalPods``: (milli-CPU, milli-GPU, GPUs,
# model, share in %). Their shares do not sum to 100: the measure is a plain weighted sum, so none needed.
AUTHORS_TYPICAL = [
    (6000, 465, 1, "", 9.33), (8000, 440, 1, "2080", 9.15), (8000, 475, 1, "T4", 8.76),
    (8000, 440, 1, "P100", 8.72), (2000, 465, 1, "", 8.68), (12000, 900, 1, "", 8.65),
    (4000, 900, 1, "", 8.43), (16000, 678, 1, "T4", 8.36), (8000, 500, 1, "", 8.29),
    (6000, 511, 1, "", 8.11), (14000, 1000, 2, "2080", 0.54), (4000, 1000, 1, "2080", 0.43),
    (32000, 1000, 2, "T4", 0.43), (16000, 1000, 1, "V100M16", 0.40), (64000, 1000, 2, "", 0.40),
    (10000, 1000, 2, "", 0.40), (11400, 1000, 1, "T4", 0.36), (16000, 1000, 1, "T4", 0.36),
    (4000, 1000, 2, "", 0.36), (14000, 1000, 2, "V100M16", 0.36), (8000, 1000, 4, "", 0.36),
    (16000, 1000, 2, "", 0.32), (2000, 1000, 1, "T4", 0.32), (6000, 1000, 1, "", 0.32),
    (4000, 1000, 1, "", 0.32), (5000, 1000, 1, "", 0.32), (32000, 1000, 4, "V100M16", 0.32),
    (32000, 1000, 2, "", 0.32), (24000, 1000, 8, "2080", 0.32), (40000, 1000, 4, "", 0.29),
    (32000, 1000, 8, "", 0.29), (32000, 1000, 1, "T4", 0.29), (16000, 1000, 1, "", 0.25),
    (7000, 1000, 1, "V100M16", 0.25), (24000, 1000, 1, "T4", 0.25),
]  # fmt: skip

# ``TestingGenerateGetTypicalPodsWithNonGpu``: the same with CPU-only tasks (GPUs 0).
AUTHORS_WITH_CPU_ONLY = [
    (15700, 1000, 1, 28.69), (11900, 1000, 1, 18.93), (11400, 1000, 1, 12.27), (1000, 0, 0, 7.36),
    (18710, 1000, 1, 4.85), (8200, 1000, 1, 3.79), (16400, 1000, 1, 3.31), (9810, 1000, 1, 1.97),
    (15200, 1000, 1, 1.87), (11200, 1000, 1, 1.81), (14200, 1000, 1, 1.76), (12000, 0, 0, 1.65),
    (14900, 1000, 1, 1.39), (60200, 1000, 4, 1.23), (64200, 1000, 8, 1.07), (32200, 1000, 4, 1.01),
    (17400, 1000, 2, 0.91), (30200, 1000, 2, 0.69), (16000, 1000, 1, 0.64), (15000, 1000, 1, 0.59),
    (64000, 1000, 8, 0.53), (15000, 0, 0, 0.53), (11910, 1000, 1, 0.53), (120200, 1000, 8, 0.48),
    (11300, 1000, 1, 0.37), (30000, 1000, 2, 0.32), (9800, 1000, 1, 0.32), (8000, 1000, 1, 0.32),
    (2000, 1000, 1, 0.27), (2000, 80, 1, 0.27), (1000, 1000, 1, 0.27),
]  # fmt: skip


def authors_workload() -> TargetWorkload:
    return TargetWorkload(
        tuple(
            (Task.parse(cpu, 0, n, milli, model), pct / 100) for cpu, milli, n, model, pct in AUTHORS_TYPICAL
        )
    )


def authors_workload_with_cpu_only() -> TargetWorkload:
    return TargetWorkload(
        tuple((Task.parse(cpu, 0, n, milli), pct / 100) for cpu, milli, n, pct in AUTHORS_WITH_CPU_ONLY)
    )


def half_one_two() -> TargetWorkload:
    """Half the tasks take 0.5 GPU, 30 % one GPU, 20 % two GPUs; 1 CPU each."""
    return TargetWorkload(
        ((Task(1000, 0, 1, 500), 0.5), (Task(1000, 0, 1, 1000), 0.3), (Task(1000, 0, 2, 1000), 0.2))
    )


# ---- the authors' numbers ------------------------------------------------------------------------------


def test_authors_4_and_8_gpu_nodes_of_an_unlisted_model() -> None:
    """``TestNodeGpuShareFragAmountScore``: a 1080 node (no model-constrained shape can use it)."""
    m = authors_workload()
    used = NodeFree(1000, 0, (200, 1000, 1000, 500), "1080")
    assert node_fragmentation(used, m) == pytest.approx(2566.62, abs=0.01)
    assert node_fragmentation(NodeFree(1000, 0, (1000,) * 4, "1080"), m) == pytest.approx(3802.40, abs=0.01)
    assert node_fragmentation(NodeFree(1000, 0, (1000,) * 8, "1080"), m) == pytest.approx(7604.80, abs=0.01)
    # One shape alone, short of CPU: every free milli-GPU is a fragment, weighted by its share.
    lonely = TargetWorkload(((Task.parse(6000, 0, 1, 465), 0.0933),))
    assert task_fragmentation(used, Task.parse(6000, 0, 1, 465)) == 2700
    assert node_fragmentation(used, lonely) == pytest.approx(251.91, abs=0.01)


def test_authors_p100_node_with_cpu_only_tasks() -> None:
    """``TestNodeGpuShareFragAmountWithNonGpu``: CPU-only tasks count every free GPU as a fragment."""
    m = authors_workload_with_cpu_only()
    empty = NodeFree(64000, 0, (1000,) * 8, "P100")
    assert node_fragmentation(empty, m) == pytest.approx(887.20, abs=0.01)
    halved = NodeFree(32000, 0, (1000,) * 4 + (0,) * 4, "P100")
    assert node_fragmentation(halved, m) == pytest.approx(554.4, abs=0.01)
    no_cpu = NodeFree(0, 0, (1000,) * 4 + (0,) * 4, "P100")
    assert node_fragmentation(no_cpu, m) == pytest.approx(4000, abs=0.01)


# ---- worked by hand ------------------------------------------------------------------------------------


def test_fragmentation_of_a_partly_used_node_by_hand() -> None:
    node = NodeFree(8000, 64, (1000, 500, 300, 0), "T4")
    assert task_fragmentation(node, Task(1000, 0, 1, 500)) == 300  # only the 300 left on GPU 2 is unusable
    assert task_fragmentation(node, Task(1000, 0, 1, 1000)) == 800  # 500 + 300
    assert task_fragmentation(node, Task(1000, 0, 2, 1000)) == 1800  # one whole GPU: all 1800 stranded
    assert task_fragmentation(node, Task(1000)) == 1800  # a CPU-only task uses no GPU at all
    # 0.5·300 + 0.3·800 + 0.2·1800
    assert node_fragmentation(node, half_one_two()) == pytest.approx(750.0)
    assert node_fragmentation(NodeFree(8000, 64, (1000,) * 4, "T4"), half_one_two()) == 0.0


def test_fgd_fills_the_half_used_gpu_of_the_used_node() -> None:
    """A 0.5-GPU task. On the used node: GPU 0 → F 800 (+50), GPU 1 → F 500 (−250); on the empty node any
    GPU → F 250 (+250). FGD takes GPU 1 of the used node."""
    empty = NodeFree(8000, 64, (1000,) * 4, "T4")
    used = NodeFree(8000, 64, (1000, 500, 300, 0), "T4")
    task = Task(1000, 0, 1, 500)
    assert gpu_choices(used, task) == ((0,), (1,))
    m = half_one_two()
    assert node_fragmentation(allocate(used, task, (0,)), m) == pytest.approx(800.0)
    assert node_fragmentation(allocate(used, task, (1,)), m) == pytest.approx(500.0)
    choice = fgd_choice([empty, used], task, m)
    assert choice is not None
    assert (choice.node, choice.gpus) == (1, (1,))
    assert choice.increase == pytest.approx(-250.0)
    assert cluster_fragmentation([empty, used], m) == pytest.approx(750.0)


def test_a_task_that_fits_nowhere_has_no_choice() -> None:
    nodes = [NodeFree(64000, 1024, (1000, 1000), "T4"), NodeFree(64000, 1024, (1000,) * 4 + (0,) * 4, "G2")]
    eight = Task(8000, 0, 8, 1000)
    assert not any(fits(n, eight) for n in nodes)
    assert fgd_choice(nodes, eight, half_one_two()) is None
    assert fgd_choice([], Task(1000), half_one_two()) is None


def test_cpu_is_the_binding_resource() -> None:
    """Four free GPUs, 2 CPUs left: a 4-CPU task fits no GPU of it, and counts them all as fragments."""
    starved = NodeFree(2000, 1024, (1000,) * 4, "T4")
    roomy = NodeFree(16000, 1024, (1000, 1000, 0, 0), "T4")
    task = Task(4000, 0, 1, 1000)
    assert not fits(starved, task)
    assert task_fragmentation(starved, task) == 4000
    m = TargetWorkload(((task, 1.0),))
    assert node_fragmentation(starved, m) == 4000.0
    assert fgd_choice([starved, roomy], task, m) == Choice(1, (0,), 0.0)


def test_memory_binds_placement_but_not_the_measure() -> None:
    """The authors' measure ignores memory; ``fits`` does not."""
    short = NodeFree(16000, 1000, (1000, 600), "T4")
    task = Task(1000, 2048, 1, 1000)
    assert not fits(short, task)
    assert task_fragmentation(short, task) == 600  # usable by GPU and CPU: only GPU 1's 600 left over
    assert fgd_choice([short], task, half_one_two()) is None
    with pytest.raises(ValueError, match="1000 milli-CPU and 2048 MiB, the node has 16000 and 1000 left"):
        allocate(short, task, (0,))


def test_model_alternatives() -> None:
    """``A10|T4`` runs on either model, never on a V100, whose free GPUs are then all fragments for it."""
    task = Task.parse(1000, 0, 1, 250, "A10|T4")
    assert task.models == frozenset({"A10", "T4"})
    v100 = NodeFree(8000, 64, (1000, 1000), "V100M16")
    t4 = NodeFree(8000, 64, (1000, 400), "T4")
    a10 = NodeFree(8000, 64, (1000,), "A10")
    assert [fits(n, task) for n in (v100, t4, a10)] == [False, True, True]
    assert task_fragmentation(v100, task) == 2000
    # M = this task only: on the T4 its GPU 1 (400 → 150 left, unusable) costs +150, GPU 0 (→ 750) costs 0;
    # the A10 (1000 → 750) costs 0 too, and comes later.
    m = TargetWorkload(((task.shape(), 1.0),))
    assert fgd_choice([v100, t4, a10], task, m) == Choice(1, (0,), 0.0)
    assert Task.parse(1000, 0, 1, 250).accepts("V100M16")


def test_a_fractional_task_shares_a_partly_used_gpu() -> None:
    node = NodeFree(8000, 64, (1000, 460, 1000), "G2")
    task = Task(2000, 16, 1, 460)
    assert gpu_choices(node, task) == ((0,), (1,), (2,))
    after = allocate(node, task, (1,))
    assert after == NodeFree(6000, 48, (1000, 0, 1000), "G2")
    # Whole-GPU tasks only ever take fully free GPUs, the first ones.
    assert gpu_choices(node, Task(1000, 0, 2, 1000)) == ((0, 2),)
    assert gpu_choices(node, Task(1000, 0, 3, 1000)) == ()
    with pytest.raises(ValueError, match="GPU 1 does not have 460 milli-GPU free"):
        allocate(after, task, (1,))
    # Two equally good GPUs (and nodes): the first of each wins, so a run depends on its seed alone.
    twin = NodeFree(8000, 64, (1000, 1000), "G2")
    # [540, 1000] after: 0.3·540 (one-GPU tasks) + 0.2·1540 (two-GPU tasks) = 470
    assert fgd_choice([twin, twin], task, half_one_two()) == Choice(0, (0,), 470.0)


def test_target_workload_keeps_the_popular_shapes_covering_95_percent() -> None:
    a, b, c = Task(1000, 0, 1, 500), Task(2000, 0, 1, 1000), Task(4000, 0, 8, 1000)
    # 12 A (memory differs: the same shape), 7 B, 1 C: A and B cover 19/20 = 95 %, C is dropped.
    tasks = [Task(1000, m, 1, 500) for m in range(12)] + [b] * 7 + [c]
    m = TargetWorkload.from_tasks(tasks)
    assert m.shapes == ((a, 12 / 19), (b, 7 / 19))
    # 6 A, 3 B, 1 C: A and B cover 90 % only, so C is kept.
    assert TargetWorkload.from_tasks([a] * 6 + [b] * 3 + [c]).shapes == ((a, 0.6), (b, 0.3), (c, 0.1))
    with pytest.raises(ValueError, match="no tasks"):
        TargetWorkload.from_tasks([])


def test_bad_requests_are_refused_with_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="a 2-GPU task must take whole GPUs, got 500"):
        Task(1000, 0, 2, 500)
    with pytest.raises(ValueError, match="no GPU cannot ask for 300"):
        Task(1000, 0, 0, 300)
    with pytest.raises(ValueError, match="between 0 and 1000, got 1200"):
        NodeFree(1000, 0, (1200,))
    with pytest.raises(ValueError, match="needs 2 distinct GPUs"):
        allocate(NodeFree(8000, 64, (1000, 1000)), Task(1000, 0, 2, 1000), (0, 0))
    with pytest.raises(ValueError, match="accepts T4, not V100"):
        allocate(NodeFree(8000, 64, (1000,), "V100"), Task.parse(1000, 0, 1, 1000, "T4"), (0,))
