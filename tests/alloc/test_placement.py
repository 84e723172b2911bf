"""Gang placement: invariants over random fleets (hypothesis) and the refusal sentences."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.alloc.placement import (
    DEFAULT_SIZES,
    LOCALITY_GPUS,
    Capacity,
    GangRequest,
    Placement,
    Refusal,
    demand_sizes,
    place_gang,
    unusable_gpus,
)
from aios_tui.domain import FleetSnapshot, Health, Job, Node, Taint

MODELS = ("H100", "A100")
ZONES = ("z1", "z2")


def node(
    name: str,
    *,
    model: str = "H100",
    zone: str = "z1",
    rack: str = "",
    alloc: int = 8,
    used: int = 0,
    ready: bool = True,
    cordoned: bool = False,
    taints: tuple[Taint, ...] = (),
    health: Health = Health.OK,
) -> Node:
    return Node(
        name=name,
        source="t",
        pool=f"{model.lower()}-pool",
        zone=zone,
        instance_type="x",
        gpu_model=model,
        gpus_total=alloc,
        gpus_allocatable=alloc,
        gpus_requested=used,
        ready=ready,
        cordoned=cordoned,
        taints=taints,
        rack=rack,
        health=health,
    )


def fleet(*nodes: Node) -> FleetSnapshot:
    return FleetSnapshot(timestamp=0.0, nodes=nodes)


@st.composite
def nodes_st(draw: st.DrawFn) -> tuple[Node, ...]:
    """1–30 nodes; most of them usable and mostly free, so that racks and zones often fit a gang."""
    count = draw(st.integers(1, 30))
    out = []
    for i in range(count):
        zone = draw(st.sampled_from(ZONES))
        alloc = draw(st.sampled_from((4, 8, 8)))
        rack = draw(st.sampled_from(("", "r1", "r2")))
        rare = draw(st.integers(0, 9))
        out.append(
            node(
                f"n{i:02d}",
                model=draw(st.sampled_from(MODELS)),
                zone=zone,
                rack=f"{zone}-{rack}" if rack else "",
                alloc=alloc,
                used=draw(st.sampled_from((0, 0, alloc // 2)) | st.integers(0, alloc)),
                ready=rare != 1,
                cordoned=rare == 2,
                taints=(
                    (Taint("gpu", "x", "NoSchedule"),)
                    if rare == 3
                    else (Taint("gpu", "x", "NoExecute"),)
                    if rare == 4
                    else (Taint("soft", "x", "PreferNoSchedule"),)
                    if rare == 5
                    else ()
                ),
                health=Health.FAIL if rare == 6 else Health.WARN if rare == 7 else Health.OK,
            )
        )
    return tuple(out)


requests_st = st.builds(
    GangRequest,
    workers=st.integers(1, 5),
    gpus_per_worker=st.sampled_from((1, 2, 4, 8)),
    gpu_model=st.sampled_from(("", *MODELS)),
    zone=st.sampled_from(("", *ZONES)),
)


def usable(nodes: tuple[Node, ...], exclude: frozenset[str] = frozenset()) -> dict[str, Node]:
    return {n.name: n for n in nodes if n.schedulable and n.name not in exclude}


def zone_capacity(
    nodes: dict[str, Node], free: dict[str, int], req: GangRequest
) -> dict[tuple[str, str], int]:
    """Workers of the request each (model, zone) could hold: the brute-force oracle."""
    cap: Counter[tuple[str, str]] = Counter()
    for name, n in nodes.items():
        if (not req.gpu_model or n.gpu_model == req.gpu_model) and (not req.zone or n.zone == req.zone):
            cap[(n.gpu_model, n.zone)] += free[name] // req.gpus_per_worker
    return cap


def check_placement(p: Placement, nodes: dict[str, Node], free: dict[str, int]) -> None:
    req = p.request
    assert len(p.nodes) == req.workers
    for name, gpus in p.gpus_by_node.items():
        assert name in nodes, f"{name} cannot receive pods"
        assert gpus <= free[name], f"{name} over-committed: {gpus} > {free[name]}"
    placed = [nodes[n] for n in p.nodes]
    assert len({n.zone for n in placed}) == 1
    assert len({n.gpu_model for n in placed}) == 1
    if req.gpu_model:
        assert placed[0].gpu_model == req.gpu_model
    if req.zone:
        assert placed[0].zone == req.zone


@settings(max_examples=300, deadline=None)
@given(nodes=nodes_st(), req=requests_st, data=st.data())
def test_place_is_sound_complete_and_topology_tight(
    nodes: tuple[Node, ...], req: GangRequest, data: st.DataObject
) -> None:
    exclude = frozenset(data.draw(st.sets(st.sampled_from([n.name for n in nodes]), max_size=3)))
    ok = usable(nodes, exclude)
    free = {name: n.gpus_free for name, n in ok.items()}
    result = place_gang(fleet(*nodes), req, exclude=exclude)
    feasible = any(c >= req.workers for c in zone_capacity(ok, free, req).values())
    assert isinstance(result, Placement) == feasible, result
    if not isinstance(result, Placement):
        assert result.reason
        return
    check_placement(result, ok, free)
    matching = [
        n
        for n in ok.values()
        if (not req.gpu_model or n.gpu_model == req.gpu_model) and (not req.zone or n.zone == req.zone)
    ]
    if any(free[n.name] >= req.gpus for n in matching):
        if result.domain.startswith("node "):
            assert set(result.nodes) == {result.domain.removeprefix("node ")}
            return
        # Spread over partly used nodes of one rack instead: only when it saves more than the locality cost.
        assert req.workers > 1 and len(set(result.nodes)) > 1
        assert len({(ok[n].zone, ok[n].rack) for n in result.nodes}) == 1
        where = ok[result.nodes[0]]
        assert result.domain == (f"rack {where.rack}" if where.rack else f"zone {where.zone}")
        f = {n: free[n] for n in free}
        before = sum(unusable_gpus(x, DEFAULT_SIZES) for x in f.values())
        one_node = min(
            unusable_gpus(free[n.name] - req.gpus, DEFAULT_SIZES) - unusable_gpus(free[n.name], DEFAULT_SIZES)
            for n in matching
            if free[n.name] >= req.gpus
        )
        for n in result.nodes:
            f[n] -= req.gpus_per_worker
        saved = one_node - (sum(unusable_gpus(x, DEFAULT_SIZES) for x in f.values()) - before)
        assert saved > LOCALITY_GPUS * (len(set(result.nodes)) - 1) - 1e-9
        assert result.fragmented_after == pytest.approx(before + one_node - saved)
        return
    racks: Counter[tuple[str, str, str]] = Counter()
    for n in matching:
        if n.rack:
            racks[(n.gpu_model, n.zone, n.rack)] += free[n.name] // req.gpus_per_worker
    if any(c >= req.workers for c in racks.values()):
        assert result.domain.startswith("rack ")
        assert {ok[n].rack for n in result.nodes} == {result.domain.removeprefix("rack ")}
    else:
        assert result.domain == f"zone {ok[result.nodes[0]].zone}"


@settings(max_examples=150, deadline=None)
@given(nodes=nodes_st(), reqs=st.lists(requests_st, min_size=1, max_size=12), data=st.data())
def test_commits_never_overcommit_and_release_restores(
    nodes: tuple[Node, ...], reqs: list[GangRequest], data: st.DataObject
) -> None:
    snap = fleet(*nodes)
    cap = Capacity.from_snapshot(snap)
    before = cap.copy()
    ok = usable(nodes)
    free = {name: n.gpus_free for name, n in ok.items()}
    placed: list[Placement] = []
    for req in reqs:
        result = cap.place(req)
        feasible = any(c >= req.workers for c in zone_capacity(ok, free, req).values())
        assert isinstance(result, Placement) == feasible
        if isinstance(result, Placement):
            check_placement(result, ok, free)
            cap.commit(result)
            for name, gpus in result.gpus_by_node.items():
                free[name] -= gpus
            placed.append(result)
            assert result.fragmented_after == pytest.approx(cap.fragmented_gpus())
        for n in nodes:
            assert cap.free(n.name) == free.get(n.name, 0) >= 0
        assert cap.fragmented_gpus() == pytest.approx(cap.fragmented_gpus(cap.sizes))
    # the copy taken before is untouched; a stale placement is refused exactly when it no longer fits,
    # and a refused commit takes nothing
    for n in nodes:
        assert before.free(n.name) == (n.gpus_free if n.name in ok else 0)
    for stale in placed:
        fits = all(cap.free(name) >= gpus for name, gpus in stale.gpus_by_node.items())
        trial = cap.copy()
        if fits:
            trial.commit(stale)
            assert all(trial.free(k) == cap.free(k) - g for k, g in stale.gpus_by_node.items())
        else:
            with pytest.raises(ValueError, match="free GPUs, the placement needs"):
                trial.commit(stale)
            assert all(trial.free(n.name) == cap.free(n.name) for n in nodes)
    for p in data.draw(st.permutations(placed)):
        for name, gpus in p.gpus_by_node.items():
            cap.release(name, gpus)
    for n in nodes:
        assert cap.free(n.name) == before.free(n.name)
    assert cap.fragmented_gpus() == pytest.approx(before.fragmented_gpus())


@settings(max_examples=150, deadline=None)
@given(nodes=nodes_st(), reqs=st.lists(requests_st, min_size=1, max_size=16), data=st.data())
def test_the_indexs_remembered_answers_never_change_a_placement(
    nodes: tuple[Node, ...], reqs: list[GangRequest], data: st.DataObject
) -> None:
    """The index remembers answers between calls (each rack's capacity per worker size, the racks ranked by
    it, the rack a one-node placement takes from, a rack's shape): after any commits and releases, and on a
    copy, every request gets the placement the same index gets with all of them forgotten."""
    cap = Capacity.from_snapshot(fleet(*nodes))
    for req in reqs:
        cap.place(req)  # fills what is remembered
        result = cap.place(req)
        if isinstance(result, Placement) and data.draw(st.booleans()):
            cap.commit(result)
        if cap.nodes and data.draw(st.booleans()):
            name = data.draw(st.sampled_from(sorted(cap.nodes)))
            room = next(n.gpus_allocatable for n in nodes if n.name == name) - cap.free(name)
            if room:
                cap.release(name, data.draw(st.integers(1, room)))
        copy = cap.copy()
        for probe in reqs:
            got, copied = cap.place(probe), copy.place(probe)
            forgot = cap.copy()
            for group in forgot._groups.values():
                group.by_capacity.clear()
                group.picks.clear()
                for dom in group.racks.values():
                    dom.caps.clear()
                    dom.shape = None
            assert _answer(got) == _answer(copied) == _answer(forgot.place(probe))


def _answer(result: Placement | Refusal) -> object:
    """What a placement decided."""
    if isinstance(result, Refusal):
        return repr(result)
    return (result.nodes, result.domain, round(result.fragmented_after, 6))


def test_unschedulable_nodes_never_receive_anything() -> None:
    bad = (
        node("cordoned", cordoned=True),
        node("notready", ready=False),
        node("tainted", taints=(Taint("maint", "", "NoExecute"),)),
        node("failed", health=Health.FAIL),
        node("drained"),
    )
    snap = fleet(*bad, node("good", used=4))
    p = place_gang(snap, GangRequest(1, 4, "H100"), exclude=["drained"])
    assert isinstance(p, Placement) and p.nodes == ("good",)
    r = place_gang(snap, GangRequest(1, 8, "H100"), exclude=["drained"])
    assert isinstance(r, Refusal)
    cap = Capacity.from_snapshot(snap, exclude=["drained"])
    assert [cap.free(n.name) for n in bad] == [0, 0, 0, 0, 0]
    cap.release("cordoned", 8)  # ignored: it cannot receive pods
    assert cap.free("cordoned") == 0


def test_prefers_one_node_then_one_rack_then_best_fit() -> None:
    snap = fleet(
        node("a1", rack="ra", used=4),
        node("a2", rack="ra", used=4),
        node("b1", rack="rb"),
        node("b2", rack="rb"),
        node("b3", rack="rb"),
        node("c1", rack="rc"),
        node("c2", rack="rc"),
        node("loose", used=6),
    )
    # 2 GPUs: the node whose free count it uses up exactly
    p = place_gang(snap, GangRequest(1, 2, "H100"))
    assert isinstance(p, Placement) and p.nodes == ("loose",) and p.domain == "node loose"
    # 2×4 fits one empty node, but the two half-used nodes of rack ra leave 4 fragmented GPUs fewer (and
    # the empty node whole for an 8-GPU worker): worth more than the locality of one node (1 GPU)
    p = place_gang(snap, GangRequest(2, 4, "H100"))
    assert isinstance(p, Placement) and p.domain == "rack ra" and sorted(p.nodes) == ["a1", "a2"]
    # 2×8: a rack with exactly two free nodes (rc) rather than the one with three (rb)
    p = place_gang(snap, GangRequest(2, 8, "H100"))
    assert isinstance(p, Placement) and p.domain == "rack rc" and sorted(p.nodes) == ["c1", "c2"]
    # 2×4 with the empty nodes excluded: the two half-used nodes of rack ra
    p = place_gang(snap, GangRequest(2, 4, "H100"), exclude=["b1", "b2", "b3", "c1", "c2"])
    assert isinstance(p, Placement) and p.domain == "rack ra" and sorted(p.nodes) == ["a1", "a2"]
    # 4×8 spans racks in one zone, as few racks as possible
    p = place_gang(snap, GangRequest(4, 8, "H100"))
    assert isinstance(p, Placement) and p.domain == "zone z1"
    assert sorted(p.nodes) == ["b1", "b2", "b3", "c1"] or sorted(p.nodes) == ["b1", "b2", "b3", "c2"]


def test_a_gang_spreads_over_nodes_only_when_that_saves_more_than_the_locality_cost() -> None:
    # F(f) = f · P(size > f) with the default sizes: F(6) = 3, F(4) = 2, F(2) = 1.4, F(0) = 0.
    # 2×2: "four" used up exactly saves 2; t1 and t2 (2 free each) would save 2.8, but the second node
    # costs 1 GPU of locality: 1.8 < 2, so the gang stays on one node.
    snap = fleet(node("four", used=4), node("t1", rack="r", used=6), node("t2", rack="r", used=6))
    p = place_gang(snap, GangRequest(2, 2, "H100"))
    assert isinstance(p, Placement) and p.nodes == ("four", "four") and p.domain == "node four"
    # "six" instead (6 → 2 saves 1.6): the spread wins, 1.8 > 1.6
    snap = fleet(node("six", used=2), node("t1", rack="r", used=6), node("t2", rack="r", used=6))
    p = place_gang(snap, GangRequest(2, 2, "H100"))
    assert isinstance(p, Placement) and sorted(p.nodes) == ["t1", "t2"] and p.domain == "rack r"
    assert p.fragmented_after == pytest.approx(3 + 1.4 + 1.4 - 2.8)


def test_best_fit_reduces_fragmentation() -> None:
    snap = fleet(node("empty"), node("half", used=4), node("one", used=7))
    cap = Capacity.from_snapshot(snap, sizes=DEFAULT_SIZES)
    for want, req in (("one", GangRequest(1, 1)), ("half", GangRequest(1, 4)), ("empty", GangRequest(1, 8))):
        p = cap.place(req)
        assert isinstance(p, Placement) and p.nodes == (want,)
        assert p.fragmented_after <= cap.fragmented_gpus() + 1e-9
        cap.commit(p)
    assert cap.fragmented_gpus() == 0


def test_gang_stays_in_one_zone_even_when_two_zones_together_would_fit() -> None:
    snap = fleet(node("a", zone="z1"), node("b", zone="z2"))
    r = place_gang(snap, GangRequest(2, 8, "H100"))
    assert isinstance(r, Refusal)
    assert r.reason == (
        f"needs 2×8 H100 in one zone; the best zone ({r.best_zone}) has room for 1 of the 2 workers "
        "(1 node with 8+ free GPUs)"
    )
    assert r.best_zone in ("z1", "z2")
    assert r.placeable_workers == 1


def test_refusal_no_such_model() -> None:
    r = place_gang(fleet(node("a"), node("b", model="A100")), GangRequest(1, 8, "B200"))
    assert isinstance(r, Refusal)
    assert r.reason == "no node in the fleet has B200 GPUs (the fleet has A100, H100)"


def test_refusal_all_unschedulable_names_the_causes() -> None:
    snap = fleet(
        node("a", cordoned=True), node("b", cordoned=True), node("c", ready=False), node("d", model="A100")
    )
    r = place_gang(snap, GangRequest(1, 8, "H100"))
    assert isinstance(r, Refusal)
    assert r.reason == "no schedulable node has H100 GPUs (2 cordoned, 1 NotReady)"
    r = place_gang(snap, GangRequest(1, 8, "H100"), exclude=["d"])
    assert isinstance(r, Refusal) and "2 cordoned, 1 NotReady" in r.reason


def test_refusal_not_enough_in_any_zone_gives_the_numbers() -> None:
    snap = fleet(
        *(node(f"b{i}", zone="us-east-1b") for i in range(3)),
        node("b9", zone="us-east-1b", used=8),
        node("a0", zone="us-east-1a"),
        node("a1", zone="us-east-1a", cordoned=True),
    )
    r = place_gang(snap, GangRequest(4, 8, "H100", name="ml/train"))
    assert isinstance(r, Refusal)
    assert r.reason == (
        "needs 4×8 H100 in one zone; the best zone (us-east-1b) has room for 3 of the 4 workers "
        "(3 nodes with 8+ free GPUs); 1 H100 node unavailable (1 cordoned)"
    )
    assert (r.best_zone, r.placeable_workers) == ("us-east-1b", 3)


def test_refusal_when_no_node_has_a_worker_worth_of_free_gpus() -> None:
    snap = fleet(node("a", used=2), node("b", used=5))
    r = place_gang(snap, GangRequest(2, 8, "H100"))
    assert isinstance(r, Refusal)
    assert (
        r.reason
        == "needs 2×8 H100 in one zone; no schedulable H100 node has 8 free GPUs (the most is 6 on a)"
    )
    r = place_gang(snap, GangRequest(1, 16, "H100"))
    assert isinstance(r, Refusal)
    assert r.reason == "a worker needs 16 GPUs but no schedulable H100 node has more than 8"


def test_refusal_zone_pinned() -> None:
    snap = fleet(node("a", zone="z1"), node("b", zone="z2", ready=False), node("c", zone="z2", cordoned=True))
    r = place_gang(snap, GangRequest(1, 8, "H100", zone="z2"))
    assert isinstance(r, Refusal)
    assert r.reason == "no schedulable H100 node in zone z2 (1 cordoned, 1 NotReady)"
    r = place_gang(snap, GangRequest(1, 8, "H100", zone="z9"))
    assert isinstance(r, Refusal)
    assert r.reason == "no H100 node in zone z9 (schedulable ones are in z1)"
    p = place_gang(snap, GangRequest(1, 8, "H100", zone="z1"))
    assert isinstance(p, Placement) and p.nodes == ("a",)


def test_any_model_keeps_one_model() -> None:
    snap = fleet(node("h", model="H100", used=4), node("a", model="A100", used=4))
    r = place_gang(snap, GangRequest(2, 4))
    assert isinstance(r, Refusal)
    assert "the best zone (z1, " in r.reason and "room for 1 of the 2 workers" in r.reason
    assert GangRequest(2, 4).describe() == "2×4 GPUs"
    assert GangRequest(2, 4, "A100").describe() == "2×4 A100"


def test_request_and_release_validation() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        GangRequest(0, 8)
    with pytest.raises(ValueError, match="must ask for GPUs, CPU or memory"):
        GangRequest(1, 0)
    cap = Capacity.from_snapshot(fleet(node("a", used=2)))
    with pytest.raises(ValueError, match="more than its 8"):
        cap.release("a", 3)
    with pytest.raises(ValueError, match="already"):
        cap.add_nodes([node("a")])
    cap.add_nodes([node("new", zone="z7")])
    p = cap.place(GangRequest(1, 8, zone="z7"))
    assert isinstance(p, Placement) and p.nodes == ("new",)


def test_demand_sizes_from_snapshot() -> None:
    job = Job(namespace="ml", name="j", source="t", workers=3, gpus_per_worker=8)
    assert demand_sizes(FleetSnapshot(timestamp=0.0, jobs=(job,))) == {8: 1.0}
    assert demand_sizes(FleetSnapshot(timestamp=0.0)) == dict(DEFAULT_SIZES)
    cap = Capacity.from_snapshot(fleet(node("a", used=6), node("b", used=4)), sizes={8: 1.0})
    assert cap.fragmented_gpus() == 6  # 2 + 4 free GPUs, none usable by an 8-GPU request
    assert cap.fragmented_gpus({4: 1.0}) == 2
