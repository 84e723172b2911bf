"""Scaling a node pool through Ops on the embedded fleet: refusals (read-only, role, limits), the typed
confirmation of a scale-down, the audit line, and nodes that join after the boot delay."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from aios_tui.ops import ActionRefused, Actor, AuditLog, ConfirmationError, Ops, PermissionDenied, Role
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.harness import START, FakeClock


def _ops(
    tmp_path: Path, *, role: Role = Role.OPERATOR, read_only: bool = False
) -> tuple[Ops, Poller, FakeClock]:
    clock = FakeClock()
    sim = SimSource(seed=7, nodes=40, clock=clock, start=START)
    poller = Poller([sim], clock=clock)
    asyncio.run(poller.refresh())
    ops = Ops(
        {sim.name: sim},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "audit.jsonl"),
        actor=Actor("tester", role),
        read_only=read_only,
    )
    return ops, poller, clock


def _audit(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_read_only_and_viewer_are_refused_in_the_backend(tmp_path: Path) -> None:
    ops, poller, _ = _ops(tmp_path, read_only=True)
    pool = poller.snapshot.pools[0]
    plan = ops.plan("scale-pool", pool=pool.name, desired=pool.nodes + 1)
    assert plan.blockers[0] == "read-only mode: scale-pool is not allowed"
    with pytest.raises(PermissionDenied):
        asyncio.run(ops.execute(plan))
    assert _audit(tmp_path)[-1]["outcome"] == "refused"
    ops, poller, _ = _ops(tmp_path, role=Role.VIEWER)
    assert ops.check("scale-pool", pool.name) == "role viewer may not scale-pool (it needs operator)"


def test_scale_down_needs_admin_and_the_pool_name(tmp_path: Path) -> None:
    ops, poller, _ = _ops(tmp_path)
    pool = next(p for p in poller.snapshot.pools if p.nodes >= 2)
    plan = ops.plan("scale-pool", pool=pool.name, desired="-1")
    assert plan.blockers == ("role operator may not scale-pool down (only admin may: it terminates nodes)",)
    assert plan.shrinks and plan.lines == (("Pool", pool.name), ("Nodes", "-1"))  # no what-if was built
    with pytest.raises(PermissionDenied):
        asyncio.run(ops.execute(replace(plan, blockers=(), source="sim"), confirmation=pool.name))
    ops, poller, _ = _ops(tmp_path, role=Role.ADMIN)
    plan = ops.plan("scale-pool", pool=pool.name, desired=pool.nodes - 1)
    assert plan.ok and any(label.startswith("Removes") for label, _ in plan.lines)
    with pytest.raises(ConfirmationError):
        asyncio.run(ops.execute(plan))
    result = asyncio.run(ops.execute(plan, confirmation=pool.name))
    assert result.ok
    asyncio.run(poller.refresh())
    after = poller.snapshot.pools_by_name[pool.name]
    assert (after.nodes, after.desired) == (pool.nodes - 1, pool.nodes - 1)


def test_scale_up_plans_the_unblocked_job_runs_audits_and_nodes_join_after_the_delay(tmp_path: Path) -> None:
    ops, poller, clock = _ops(tmp_path)
    [job] = [j for j in poller.snapshot.jobs if j.state.value == "Queued"]  # the fleet has one waiting
    assert (job.workers, job.gpus_per_worker, job.gpu_model) == (2, 8, "H100")
    pools = [p for p in poller.snapshot.pools if p.gpu_model == "H100"]
    plans = {p.name: ops.plan("scale-pool", pool=p.name, desired=p.max_size) for p in pools}
    pool = next(p for p in pools if f"{job.key} (2×8 H100)" in dict(plans[p.name].lines).get("Unblocks", ""))
    plan = plans[pool.name]
    assert plan.ok and plan.confirm_phrase is None
    lines = dict(plan.lines)
    assert lines["Cost"].startswith("+$")
    assert lines["Desired"].startswith(f"{pool.nodes} → {pool.max_size}")
    with pytest.raises(ActionRefused):  # limits are enforced before anything runs
        asyncio.run(ops.execute(ops.plan("scale-pool", pool=pool.name, desired=pool.max_size + 1)))
    result = asyncio.run(ops.execute(plan))
    assert result.ok, result.message
    [*_, line] = _audit(tmp_path)
    assert (line["action"], line["target"], line["outcome"], line["user"]) == (
        "scale-pool",
        pool.name,
        "ok",
        "tester",
    )
    assert line["params"] == {
        "pool": pool.name,
        "from": pool.nodes,
        "desired": pool.max_size,
        "asked": str(pool.max_size),
    }
    assert "token" not in json.dumps(line).lower() and "secret" not in json.dumps(line).lower()
    asyncio.run(poller.refresh())
    now = poller.snapshot.pools_by_name[pool.name]
    assert (now.nodes, now.desired) == (pool.nodes, pool.max_size)  # launching, not up yet
    clock.advance(61)
    asyncio.run(poller.refresh())
    snap = poller.snapshot
    assert snap.pools_by_name[pool.name].nodes == pool.max_size
    assert sum(1 for n in snap.nodes if n.pool == pool.name) == pool.max_size
    assert snap.job_by_key[job.key].state.value != "Queued"  # the sim's scheduler placed it
    # the same desired again: nothing to do
    assert (
        "already has desired capacity"
        in ops.plan("scale-pool", pool=pool.name, desired=pool.max_size).blockers[-1]
    )


def test_a_huge_pool_size_is_refused_before_any_what_if_naming_the_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``:scale-pool h100-a 100000000`` used to build 10⁸ hypothetical nodes before checking the limits."""
    from aios_tui.ops.actions import scale_pool

    def no_what_if(*_: object) -> None:
        raise AssertionError("the what-if was built for a size outside the limits")

    ops, poller, _ = _ops(tmp_path, role=Role.ADMIN)
    monkeypatch.setattr(scale_pool, "assess_pool_scale", no_what_if)
    pool = poller.snapshot.pools[0]
    for desired in ("100000000", "+999999999", "-999999999"):
        plan = ops.plan("scale-pool", pool=pool.name, desired=desired)
        [blocker] = plan.blockers
        assert f"outside the pool's limits {pool.min_size}–{pool.max_size}" in blocker
        assert plan.detail is None


def test_a_pool_short_of_its_desired_count_plans_the_change_in_desired(tmp_path: Path) -> None:
    """A cloud pool whose nodes lag its desired count (launches pending, or failing for want of capacity): the
    plan used to say ``Adds 2 × p5.48xlarge`` for a scale-down and count the adds from the nodes up, not from
    the desired count the cost line prices."""
    ops, poller, _ = _ops(tmp_path, role=Role.ADMIN)
    pool = next(
        p for p in poller.snapshot.pools if p.max_size - p.nodes >= 2 and p.nodes >= 2 and p.gpu_model
    )
    up = pool.nodes - 2
    for desired in (up, up + 2):  # down 2 (gone at once), then up 2 (launching)
        plan = ops.plan("scale-pool", pool=pool.name, desired=desired)
        result = asyncio.run(ops.execute(plan, confirmation=pool.name if plan.shrinks else None))
        assert result.ok, result.message
        asyncio.run(poller.refresh())
    short = poller.snapshot.pools_by_name[pool.name]
    assert (short.nodes, short.desired) == (up, up + 2)  # launching, not up yet

    down = ops.plan("scale-pool", pool=pool.name, desired=up + 1)
    lines = dict(down.lines)
    assert "Adds" not in lines, lines
    assert lines["Desired"].startswith(f"{up + 2} → {up + 1} ({up} nodes now, 2 of the desired not up")
    assert lines["Removes"] == "no node that is up; cancels 1 launch not yet up (1 still to come)"
    assert down.detail.added_zones == () and down.detail.removed == ()

    grow = ops.plan("scale-pool", pool=pool.name, desired=up + 4)
    lines = dict(grow.lines)
    price = pool.price_per_hour
    assert lines["Cost"].startswith(f"+${2 * price:,.2f}/h")
    assert lines["Adds"].startswith(f"2 × {pool.instance_type} to the desired count; with {up} up now, ")
    assert "the what-if counts 4 new" in lines["Adds"]
    assert any(f"has {up} of its desired {up + 2} nodes up" in w for w in grow.warnings)
