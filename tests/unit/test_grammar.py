"""The argument grammar: one reading of ``N``, ``+N`` and ``-N`` for the CLI, ``:`` commands, the palette's
plan screens and the fields; names matched as users type them, never by prefix."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aios_tui.domain import Endpoint, FleetSnapshot, Node
from aios_tui.ops import Actor, Amount, ArgError, AuditLog, Ops, Role, TargetNotFound, get
from aios_tui.ops.argv import add_arguments, parse_words
from aios_tui.ops.grammar import Kind, Param, job_name, k8s_name, match_endpoint, match_name, match_nodes
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource


@pytest.mark.parametrize(
    ("text", "amount", "of_3"),
    [("5", Amount(5), 5), ("+2", Amount(2, True), 5), ("-1", Amount(-1, True), 2), (" 0 ", Amount(0), 0)],
)
def test_amounts(text: str, amount: Amount, of_3: int) -> None:
    assert Amount.parse(text) == amount
    assert amount.of(3) == of_3
    assert str(amount) == text.strip()


@pytest.mark.parametrize("bad", ["", "x", "1.5", "+", "--1", "1e3", "+-1", "1 2", "1234567890", "٣"])
def test_amounts_that_are_not(bad: str) -> None:
    with pytest.raises(ArgError, match=r"a whole number N, or \+N / -N"):
        Amount.parse(bad)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["", "+", "-"]), st.integers(0, 10**6))
def test_an_amount_reads_the_same_as_text_and_as_a_number(n: int, sign: str, current: int) -> None:
    amount = Amount.parse(f"{sign}{n}")
    expected = current + n if sign == "+" else current - n if sign == "-" else n
    assert amount.of(current) == expected
    assert Amount.parse(str(amount)) == amount


# --- the same in the CLI, ':' commands and the fields -----------------------------------------------------


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Ops:
    from aios_tui.domain import clock
    from aios_tui.ui.harness import START

    with clock.use(clock.FrozenClock(START)):
        sim = SimSource(seed=0, nodes=12)
        poller = Poller([sim])
        asyncio.run(poller.refresh())
    path = tmp_path_factory.mktemp("grammar") / "audit.jsonl"
    return Ops({sim.name: sim}, lambda: poller.snapshot, AuditLog(path), actor=Actor("t", Role.ADMIN))


def _cli(name: str, words: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, get(name))
    return {k: v for k, v in vars(parser.parse_args(words)).items() if v is not None}


@settings(max_examples=60, deadline=None)
@given(amount=st.integers(min_value=-6, max_value=6), relative=st.booleans())
def test_plus_and_minus_mean_the_same_everywhere(ops: Ops, amount: int, relative: bool) -> None:
    """The CLI's argv, a ``:`` command's words and a plan screen's field give the same plan."""
    if not relative and amount < 0:
        amount = -amount
    text = f"{amount:+d}" if relative else str(amount)
    for name, target, key in (
        ("scale-pool", "h100-a", "desired"),
        ("scale", "ml-staging/llama-3-8b-canary", "replicas"),
    ):
        via_cli = ops.plan(name, **_cli(name, [target, text]))
        via_command = ops.plan(name, **parse_words(get(name), [target, text]))
        via_field = ops.plan(name, **{get(name).params[0].name: target, key: text})
        assert via_cli.blockers == via_command.blockers == via_field.blockers
        assert via_cli.title == via_command.title == via_field.title
        if via_cli.ok:
            current = 2 if name == "scale-pool" else 3
            expected = current + amount if relative else amount
            assert via_cli.params[key] == via_command.params[key] == via_field.params[key] == expected


# --- names as users type them ----------------------------------------------------------------------------


def _snap() -> FleetSnapshot:
    nodes = tuple(
        Node(name=n, source="s", pool="p", zone="z", instance_type="p5", gpu_model="H100")
        for n in ("gpu-a-1", "gpu-a-2")
    )
    endpoints = (
        Endpoint("ml-prod", "chat", "s"),
        Endpoint("ml-staging", "chat", "s"),
        Endpoint("ml-prod", "rank", "s"),
    )
    return FleetSnapshot(timestamp=0.0, nodes=nodes, endpoints=endpoints)


def test_names_match_exactly_or_but_for_case_never_by_prefix() -> None:
    snap = _snap()
    assert match_name("gpu-a-1", snap.node_by_name, "node") == "gpu-a-1"
    assert match_name("GPU-A-1", snap.node_by_name, "node") == "gpu-a-1"
    with pytest.raises(TargetNotFound, match=r"node gpu-a not found \(did you mean gpu-a-\d, gpu-a-\d\?\)"):
        match_name("gpu-a", snap.node_by_name, "node")
    assert match_nodes(["gpu-a-2", "GPU-A-2", "gpu-a-1"], snap) == ("gpu-a-2", "gpu-a-1")
    with pytest.raises(TargetNotFound, match="nodes x, y not found"):
        match_nodes(["x", "gpu-a-1", "y"], snap)


def test_an_endpoint_by_its_name_alone_when_one_namespace_has_it() -> None:
    snap = _snap()
    assert match_endpoint("rank", snap) == "ml-prod/rank"
    assert match_endpoint("ML-PROD/RANK", snap) == "ml-prod/rank"
    with pytest.raises(
        TargetNotFound, match="endpoint chat is in several namespaces: ml-prod/chat, ml-staging/chat"
    ):
        match_endpoint("chat", snap)


def test_a_gpu_model_or_zone_is_matched_in_any_case() -> None:
    snap = _snap()
    param = Param("gpu_model", Kind.GPU_MODEL, "")
    assert param.resolve("h100", snap) == "H100"
    with pytest.raises(ArgError, match="no GPU model 'b200' in the fleet; it has H100"):
        param.resolve("b200", snap)


def test_other_kinds_check_their_form() -> None:
    count = Param("workers", Kind.COUNT, "", lo=1, hi=10, label="Workers")
    assert count.syntax("3") == 3
    for bad, why in (("0", "at least 1"), ("11", "at most 10"), ("two", "whole number")):
        with pytest.raises(ArgError, match=why):
            count.syntax(bad)
    seconds = Param("t", Kind.SECONDS, "", lo=0, hi=60)
    assert seconds.syntax("1.5") == 1.5
    for bad in ("nan", "-1", "61", "soon"):
        with pytest.raises(ArgError):
            seconds.syntax(bad)
    flag = Param("f", Kind.FLAG, "")
    assert (flag.syntax("y"), flag.syntax(""), flag.syntax(True)) == (True, False, True)
    with pytest.raises(ArgError, match="answer y or n"):
        flag.syntax("maybe")
    nodes = Param("nodes", Kind.NODES, "")
    assert nodes.syntax("a, b c a") == ("a", "b", "c")
    with pytest.raises(ArgError, match="name at least one node"):
        nodes.syntax("  ")
    with pytest.raises(ArgError, match="at most 253"):
        Param("e", Kind.ENDPOINT, "").syntax("x" * 300)


def test_job_names() -> None:
    assert job_name("train") == "default/train"
    assert job_name("ml/train-1") == "ml/train-1"
    for bad in ("ML/x", "a/b/c", "a/-x", "a/" + "x" * 64):
        with pytest.raises(ArgError, match="not a valid Kubernetes name"):
            job_name(bad)
    assert k8s_name("Alice.Smith@CORP") == "alice-smith-corp"
    assert k8s_name("!!!") == "user"


def test_a_command_with_a_mistake_says_the_usage() -> None:
    with pytest.raises(ArgError, match=r"usage: :scale ENDPOINT REPLICAS"):
        parse_words(get("scale"), ["a", "b", "c"])
    with pytest.raises(ArgError, match="unrecognized arguments: --force"):
        parse_words(get("drain"), ["n1", "--force"])
    assert parse_words(get("drain"), []) == {}  # a ':drain' with no node acts on the selection


def test_unknown_and_missing_arguments(ops: Ops, tmp_path: Path) -> None:
    with pytest.raises(ArgError, match="scale takes no bogus"):
        ops.plan("scale", endpoint="x", replicas=1, bogus=2)
    with pytest.raises(ArgError, match="scale needs REPLICAS"):
        ops.plan("scale", endpoint="ml-staging/llama-3-8b-canary")
